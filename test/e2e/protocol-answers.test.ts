import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { barrier, buffered, ClientPool, mapLimit, metricsText, metricValue, subscriber } from '../helpers/e2e.ts';
import { clientFrame, parseFrames, rawWebSocket, type RawWs } from '../helpers/raw-ws.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';

/**
 * Issue items 1 and 9: every request with an `id` gets exactly one answer, in request order; error
 * frames echo the id; `?topics=` errors name their topic; ids are capped; the request rate is bounded.
 */

/** The JSON text frames `raw` has received so far, parsed, in order. */
function texts(raw: RawWs): Record<string, unknown>[] {
  return parseFrames(raw.received())
    .filter((f) => f.opcode === 0x1)
    .map((f) => JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>);
}

/** Several client frames written to the socket in a single TCP write. */
function oneWrite(raw: RawWs, ...frames: unknown[]): void {
  raw.sock.write(Buffer.concat(frames.map((f) => clientFrame(0x1, JSON.stringify(f)))));
}

describe('protocol answers', () => {
  let h: Harness;
  const pool = new ClientPool();
  const raws: RawWs[] = [];
  afterEach(async () => {
    pool.closeAll();
    for (const r of raws.splice(0)) r.destroy();
    await h?.close();
  });

  async function raw(token: string, path = '/ws'): Promise<RawWs> {
    const r = await rawWebSocket(h.port, { authorization: `Bearer ${token}` }, { path });
    raws.push(r);
    expect(await r.waitText((t) => t.includes('"welcome"'))).toBeDefined();
    return r;
  }

  it('a subscribe and an unsubscribe in one TCP write: subscribed, then unsubscribed', async () => {
    h = await startServer();
    await h.ingest('one.t', 1);
    const r = await raw(await h.register(await h.createClient()));
    oneWrite(r, { type: 'subscribe', topic: 'one.t', id: 's' }, { type: 'unsubscribe', topic: 'one.t', id: 'u' });
    await eventually(() => texts(r).length >= 3, 3000, 'two answers');
    const [, sub, unsub] = texts(r);
    expect(sub).toMatchObject({ type: 'subscribed', topic: 'one.t', offset: 1, id: 's' });
    expect(unsub).toEqual({ type: 'unsubscribed', topic: 'one.t', id: 'u' });
    // Unsubscribed: nothing more arrives.
    await h.ingest('one.t', 2);
    oneWrite(r, { type: 'ping', id: 'p' });
    await eventually(() => texts(r).some((f) => f.type === 'pong'), 3000, 'pong');
    expect(texts(r).map((f) => f.type)).toEqual(['welcome', 'subscribed', 'unsubscribed', 'pong']);
  });

  it('answers come in request order: a replaying subscribe, an unsubscribe and a ping in one write', async () => {
    h = await startServer();
    for (let i = 1; i <= 30; i++) await h.ingest('ord.t', i);
    const r = await raw(await h.register(await h.createClient()));
    oneWrite(
      r,
      { type: 'subscribe', topic: 'ord.t', since: { offset: 0 }, id: 1 },
      { type: 'unsubscribe', topic: 'ord.t', id: 2 },
      { type: 'subscribe', topic: 'ord.t', id: 3 },
      { type: 'subscribe', topic: 'ord.t', id: 4 },
      { type: 'ping', id: 5 },
    );
    await eventually(() => texts(r).some((f) => f.type === 'pong'), 5000, 'pong');
    const got = texts(r).slice(1);
    expect(got[0]).toMatchObject({ type: 'subscribed', id: 1, offset: 30, recovered: true });
    expect(got.slice(1, 31).map((f) => f.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(got.slice(31)).toEqual([
      { type: 'unsubscribed', topic: 'ord.t', id: 2 },
      { type: 'subscribed', topic: 'ord.t', offset: 30, epoch: expect.any(String), recovered: false, id: 3 },
      { type: 'error', code: 'already_subscribed', message: expect.any(String), id: 4 },
      { type: 'pong', id: 5 },
    ]);
  });

  it('a forbidden publish gets error publish_not_allowed with the request id, then 4501', async () => {
    h = await startServer();
    // Without any publish rights, and outside the rights it has.
    for (const [publish, topic] of [
      [[], 'x.y'],
      [['chat.*'], 'billing.x'],
    ] as const) {
      const { c } = await pool.open(h, await h.register(await h.createClient({ publish: [...publish] })));
      c.send({ type: 'publish', topic, data: 1, id: 'pub-1' });
      expect(await c.next('error')).toEqual({
        type: 'error',
        code: 'publish_not_allowed',
        message: 'consumers are not allowed to send messages',
        id: 'pub-1',
      });
      expect((await c.closed).code).toBe(4501);
    }
  });

  it('?topics= errors name the topic they refer to; the answers come in the order of the list', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient({ subscribe: ['orders.*'] }));
    const { c } = await pool.open(h, token, { query: '?topics=orders.eu,a..b,billing.x,orders.eu' });
    await barrier(c);
    expect(buffered(c)).toEqual([
      { type: 'subscribed', topic: 'orders.eu', offset: 0, epoch: expect.any(String), recovered: false },
      { type: 'error', code: 'invalid_topic', message: expect.any(String), topic: 'a..b' },
      { type: 'error', code: 'forbidden', message: 'not allowed to subscribe to billing.x', topic: 'billing.x' },
      { type: 'error', code: 'already_subscribed', message: expect.any(String), topic: 'orders.eu' },
    ]);
  });

  it('request ids: strings of at most 64 characters and integers are echoed; any other id gets one bad_request without it', async () => {
    h = await startServer();
    await h.ingest('ids.t', 1);
    const c = await subscriber(h, []);
    for (const id of ['x'.repeat(64), 0, -7, Number.MAX_SAFE_INTEGER, '']) {
      c.send({ type: 'ping', id });
      expect(await c.next()).toEqual({ type: 'pong', id });
    }
    for (const id of ['x'.repeat(65), 1.5, 2 ** 53, null, true, { a: 1 }, [1]]) {
      c.send({ type: 'subscribe', topic: 'ids.t', id });
      expect(await c.next(), JSON.stringify(id)).toEqual({
        type: 'error',
        code: 'bad_request',
        message: '"id" must be a string of at most 64 characters or an integer',
      });
    }
    // None of those subscribes was carried out.
    expect(await c.subscribe('ids.t')).toMatchObject({ type: 'subscribed', offset: 1 });
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('a client past its request rate (ws.requests) is closed with 4002; one within it is not', async () => {
    h = await startServer({ ws: { requests: { perSecond: 5, burst: 50 } } });
    const calm = await subscriber(h, []);
    const r = await raw(await h.register(await h.createClient()));
    oneWrite(r, ...Array.from({ length: 80 }, (_, i) => ({ type: 'ping', id: i })));
    expect(await r.waitCloseCode(5000)).toBe(4002);
    // It got at most its burst of answers, then the close.
    expect(texts(r).filter((f) => f.type === 'pong').length).toBeLessThanOrEqual(50);
    expect(metricValue(await metricsText(h), 'hubcast_request_rate_closes_total')).toBe(1);
    expect(h.logs.some((l) => l.msg === 'request rate exceeded (ws.requests); closing 4002')).toBe(true);
    // A client within its budget is untouched.
    await mapLimit(
      Array.from({ length: 20 }, (_, i) => i),
      1,
      async (i) => {
        calm.send({ type: 'ping', id: i });
        expect(await calm.next('pong')).toEqual({ type: 'pong', id: i });
      },
    );
    expect(calm.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('WebSocket-level pings spend the request budget too: past it, 4002', async () => {
    h = await startServer({ ws: { requests: { perSecond: 5, burst: 50 } } });
    const r = await raw(await h.register(await h.createClient()));
    r.sock.write(Buffer.concat(Array.from({ length: 80 }, () => clientFrame(0x9, Buffer.alloc(125, 0x70)))));
    expect(await r.waitCloseCode(5000)).toBe(4002);
    // ws answers a ping before the server sees it: the one past the budget got its pong too.
    expect(parseFrames(r.received()).filter((f) => f.opcode === 0xa).length).toBeLessThanOrEqual(51);
  });

  it('the default request budget lets a client resubscribe its topics at once', async () => {
    h = await startServer();
    const c = await subscriber(h, []);
    const n = 256; // ws.maxSubscriptions
    for (let i = 0; i < n; i++) c.send({ type: 'subscribe', topic: `many.t${i}`, since: { offset: 0 }, id: i });
    c.send({ type: 'ping', id: 'done' });
    await eventually(() => buffered(c, 'pong').length === 1, 10_000, 'all answers');
    expect(buffered(c, 'subscribed').map((f) => f.id)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('control replies count against limits.maxBufferedBytes: a client that pings and reads nothing is closed with 4001', async () => {
    const cap = 65536;
    h = await startServer({ limits: { maxBufferedBytes: cap }, ws: { requests: { perSecond: 1e9, burst: 1e9 } } });
    const r = await raw(await h.register(await h.createClient()));
    r.sock.pause();
    const ping = clientFrame(0x1, JSON.stringify({ type: 'ping', id: 'x'.repeat(64) }));
    const batch = Buffer.concat(Array.from({ length: 500 }, () => ping));
    // At most 300k pings (about 27 MB of answers if nothing capped them).
    for (let i = 0; i < 600; i++) {
      if (h.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('slow consumer'))) break;
      if (!r.sock.write(batch)) {
        const drained = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 2000);
          r.sock.once('drain', () => {
            clearTimeout(t);
            resolve(true);
          });
        });
        if (!drained) break; // the server no longer reads it
      }
    }
    expect(metricValue(await metricsText(h), 'hubcast_slow_consumers_total')).toBe(1);
    r.sock.resume();
    expect(await r.waitCloseCode(10_000)).toBe(4001);
    // Whatever came before the close frame is whole pongs.
    const frames = parseFrames(r.received());
    expect(frames.at(-1)!.opcode).toBe(0x8);
    for (const f of frames.slice(1, -1)) expect(JSON.parse(f.payload.toString())).toEqual({ type: 'pong', id: 'x'.repeat(64) });
  }, 60_000);
});
