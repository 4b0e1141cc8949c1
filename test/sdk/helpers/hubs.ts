import { Hubcast, type HubcastOptions, type Subscription } from '../../../packages/client/src/index.ts';

const open: Hubcast[] = [];

/** A Hubcast client closed by `closeHubs()` (afterEach). */
export function hub(opts: HubcastOptions): Hubcast {
  const x = new Hubcast(opts);
  open.push(x);
  return x;
}

export async function closeHubs(): Promise<void> {
  await Promise.all(open.splice(0).map((x) => x.close()));
}

/** Resolves at the next `subscribed` answer of `sub` (bounded). */
export function subscribed(sub: Subscription, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no subscribed for ${sub.topic} within ${timeoutMs} ms`)), timeoutMs);
    const off = sub.on('subscribed', () => {
      clearTimeout(t);
      off();
      resolve();
    });
  });
}
