import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import { Checker, recordStates } from './helpers/checker.ts';
import { closeHubs, hub, subscribed } from './helpers/hubs.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { freePort, sleep } from './helpers/net.ts';

/**
 * The SDK against a real server that goes away mid-stream: a graceful restart (1001) and a slow
 * consumer cut (4001). The application must see every acknowledged message once and in order.
 */

let h: Harness | undefined;
let proxy: TcpProxy | undefined;
afterEach(async () => {
  await closeHubs();
  await proxy?.close();
  proxy = undefined;
  await h?.close();
  h = undefined;
});

/** Publishes `n` messages over HTTP, alternating `topics`, retrying (same idempotency key) while the server is away. */
async function publishAll(hh: Harness, chk: Checker, topics: string[], n: number, from = 0, size = 0): Promise<void> {
  const pad = 'x'.repeat(size);
  for (let i = from; i < from + n; i++) {
    const topic = topics[i % topics.length]!;
    const data = size ? { i, pad } : { i };
    for (let tries = 0; ; tries++) {
      try {
        const r = await hh.ingest(topic, data, { 'idempotency-key': `m-${i}` });
        if (r.status === 202) {
          chk.ack(topic, r.body.offset as number, data);
          break;
        }
      } catch {
        // the server is restarting
      }
      if (tries > 500) throw new Error(`message ${i} not accepted`);
      await sleep(10);
    }
  }
}

describe('SDK: server restart mid-stream', () => {
  it('reconnects after 1001, resubscribes with since: nothing lost, duplicated or reordered', async () => {
    h = await startServer({ port: await freePort() });
    const creds = await h.createClient({ subscribe: ['r.>'] });
    const x = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, backoff: { initialMs: 50, maxMs: 400 } });
    const states = recordStates(x);
    const chk = new Checker();
    const subs = ['r.a', 'r.b'].map((t) => chk.watch(x.subscribe(t)));
    await Promise.all(subs.map((s) => subscribed(s)));
    const pub = publishAll(h, chk, ['r.a', 'r.b'], 300);
    await eventually(() => [...chk.acked.values()].reduce((n, m) => n + m.size, 0) >= 80, 10_000, '80 acks');
    await h.restart();
    await pub;
    await eventually(() => chk.caughtUp(), 15_000, 'the consumer to catch up');
    chk.assertExact();
    expect(states.filter((s) => s.state === 'disconnected')[0]?.info).toMatchObject({ code: 1001, action: 'reconnect' });
    expect(x.state).toBe('connected');
  });
});

describe('SDK: publishing through a restart', () => {
  it('publishes in flight at the restart are resent under their key: each acknowledged once, stored once', async () => {
    h = await startServer({ port: await freePort(), ws: { maxPayload: 65536 } });
    const creds = await h.createClient({ subscribe: ['pub.>'], publish: ['pub.>'] });
    const backoff = { initialMs: 50, maxMs: 300 };
    const producer = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, backoff, publishTimeoutMs: 15_000 });
    const consumer = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, backoff });
    const chk = new Checker();
    await subscribed(chk.watch(consumer.subscribe('pub.t')));
    const sends = (from: number) =>
      Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          producer.publish('pub.t', { i: from + k }).then((a) => chk.ack('pub.t', a.offset, { i: from + k })),
        ),
      );
    const first = sends(0);
    await h.restart();
    await Promise.all([first, sends(50)]);
    await eventually(() => chk.caughtUp(), 15_000, 'the consumer to catch up');
    chk.assertExact();
    const data = chk.seen.get('pub.t')!.map((m) => (m.data as { i: number }).i);
    expect(data.length, 'stored once each').toBe(100);
    expect(new Set(data).size).toBe(100);
  });
});

describe('SDK: slow consumer cut (4001)', () => {
  it('is closed with 4001 when it stops reading, reconnects and replays the rest in order, once', async () => {
    h = await startServer({ limits: { maxBufferedBytes: 65_536 } });
    proxy = await TcpProxy.start(h.port);
    const creds = await h.createClient({ subscribe: ['slow.>'] });
    const x = hub({
      url: `http://127.0.0.1:${proxy.port}`,
      clientId: creds.client_id,
      clientSecret: creds.client_secret,
      backoff: { initialMs: 50, maxMs: 400 },
    });
    const states = recordStates(x);
    const chk = new Checker();
    const sub = chk.watch(x.subscribe('slow.t'));
    await subscribed(sub);
    await publishAll(h, chk, ['slow.t'], 5);
    await eventually(() => chk.count('slow.t') === 5);
    proxy.pause();
    // 60 KB messages until the server gives up on the consumer (bounded: at most 400, ~24 MB).
    let n = 5;
    while (!h.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('slow consumer'))) {
      if (n >= 405) throw new Error('the server never cut the paused consumer');
      await publishAll(h, chk, ['slow.t'], 10, n, 60_000);
      n += 10;
    }
    await publishAll(h, chk, ['slow.t'], 10, n, 60_000);
    proxy.resume();
    await eventually(() => chk.caughtUp(), 20_000, 'the consumer to catch up');
    chk.assertExact();
    expect(states.find((s) => s.state === 'disconnected')?.info).toMatchObject({ code: 4001, action: 'reconnect' });
  });
});
