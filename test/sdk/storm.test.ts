import { afterEach, describe, expect, it } from 'vitest';
import type { Hubcast, Message } from '../../packages/client/src/index.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import { recordStates } from './helpers/checker.ts';
import { closeHubs, hub, subscribed } from './helpers/hubs.ts';
import { freePort } from './helpers/net.ts';

/**
 * A reconnect storm: many SDK clients lose the server at once. Full jitter spreads their attempts,
 * each client's attempts stay few (bounded), all of them come back, and none misses a message.
 */

const CLIENTS = 40;
let h: Harness | undefined;
afterEach(async () => {
  await closeHubs();
  await h?.close();
  h = undefined;
});

describe('SDK: reconnect storm', () => {
  it(`${CLIENTS} clients after a restart: jittered, bounded attempts, all back, every message once and in order`, async () => {
    h = await startServer({ port: await freePort() });
    const creds = await h.createClient({ subscribe: ['storm.>'] });
    const tokens: string[] = [];
    for (let i = 0; i < CLIENTS; i++) tokens.push(await h.register(creds));
    const hubs: Hubcast[] = [];
    const got: Message[][] = [];
    const states: ReturnType<typeof recordStates>[] = [];
    for (const token of tokens) {
      const x = hub({ url: h.base, token, backoff: { initialMs: 300, maxMs: 2000 } });
      states.push(recordStates(x));
      const seen: Message[] = [];
      const sub = x.subscribe('storm.t');
      sub.on('message', (m) => seen.push(m));
      hubs.push(x);
      got.push(seen);
      await subscribed(sub);
    }
    for (let i = 1; i <= 5; i++) expect((await h.ingest('storm.t', { i })).status).toBe(202);
    await eventually(() => got.every((g) => g.length === 5), 5000, 'every client has 5 messages');

    await h.restart();
    for (let i = 6; i <= 10; i++) {
      // The first request may go out on a keep-alive connection of the stopped server: retry it (same key).
      const send = () => h!.ingest('storm.t', { i }, { 'idempotency-key': `s-${i}` });
      expect((await send().catch(send)).status).toBe(202);
    }
    await eventually(() => hubs.every((x) => x.state === 'connected'), 15_000, 'every client back');
    await eventually(() => got.every((g) => g.length === 10), 5000, 'every client has 10 messages');

    for (const g of got) expect(g.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const attempts = states.map((s) => s.filter((x) => x.state === 'connecting').length - 1);
    expect(Math.max(...attempts), 'reconnect attempts per client').toBeLessThanOrEqual(6);
    expect(Math.min(...attempts)).toBeGreaterThanOrEqual(1);
    const firstDelays = states.map((s) => s.find((x) => x.state === 'disconnected')!.info.retryInMs!);
    expect(new Set(firstDelays).size, 'first delays are spread (full jitter)').toBeGreaterThan(CLIENTS / 2);
    expect(Math.max(...firstDelays)).toBeLessThanOrEqual(300);
  }, 40_000);
});
