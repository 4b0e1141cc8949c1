import { connect } from 'node:net';
import type { Child } from '../lib/procs.ts';
import { monoMs, sleep } from '../lib/time.ts';

/** Helpers for contenders that are native binaries (nats-server, mosquitto). */

/** Does 127.0.0.1:`port` accept a TCP connection (within `timeoutMs`)? */
export function tcpOpen(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(timeoutMs, () => done(false));
  });
}

/** Resolves once 127.0.0.1:`port` accepts a TCP connection; rejects after `timeoutMs` or when `child` exits. */
export async function waitForTcp(port: number, timeoutMs: number, child: Child): Promise<void> {
  const deadline = monoMs() + timeoutMs;
  while (monoMs() < deadline) {
    if (!child.running) throw new Error(`${child.name} exited before port ${port} opened: ${JSON.stringify(await child.exited)}`);
    if (await tcpOpen(port)) return;
    await sleep(50);
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
}
