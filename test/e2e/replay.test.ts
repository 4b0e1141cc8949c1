import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  barrier,
  buffered,
  ClientPool,
  mapLimit,
  metricsText,
  metricValue,
  postRaw,
  serverSocketOf,
  subscriber,
  takeN,
} from '../helpers/e2e.ts';
import { eventually, ManualClock, startServer, type Harness } from '../helpers/server.ts';
import { decodeBinary, type Frame, type TestClient } from '../helpers/ws-client.ts';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Offsets of the message frames (JSON and binary) buffered by `c`, in arrival order; removes them. */
function drainOffsets(c: TestClient): number[] {
  const out: number[] = [];
  for (const f of c.frames.splice(0)) {
    if (Buffer.isBuffer(f)) out.push(decodeBinary(f).header.offset as number);
    else if (f.type === 'message') out.push(f.offset as number);
  }
  return out;
}

async function subscribeSince(c: TestClient, topic: string, since: unknown, id = 'since'): Promise<Frame> {
  c.send({ type: 'subscribe', topic, since, id });
  return c.next();
}

describe('replay', () => {
  let h: Harness;
  const pool = new ClientPool();
  afterEach(async () => {
    pool.closeAll();
    await h?.close();
  });

  it('after a reconnect, since {offset, epoch} replays exactly the missed messages in order, then live', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    const first = await pool.open(h, token);
    const sub = await first.c.subscribe('r.t');
    const epoch = sub.epoch as string;
    for (const i of range(1, 3)) expect((await h.ingest('r.t', { i })).body.offset).toBe(i);
    expect((await takeN(first.c, 3)).map((m) => m.offset)).toEqual([1, 2, 3]);
    expect((await first.c.close(1000)).code).toBe(1000);

    // Missed while away: JSON, text and binary.
    expect((await h.ingest('r.t', { i: 4 })).body.offset).toBe(4);
    expect((await postRaw(h, 'r.t', 'five ✓', 'text/plain')).body.offset).toBe(5);
    const bin = Buffer.from([0, 6, 0xff, 0x10]);
    expect((await postRaw(h, 'r.t', bin, 'application/octet-stream')).body.offset).toBe(6);
    expect((await h.ingest('r.t', { i: 7 })).body.offset).toBe(7);
    expect((await h.ingest('r.other', 'not mine')).status).toBe(202);

    const { c } = await pool.reopen(h, token);
    const again = await subscribeSince(c, 'r.t', { offset: 3, epoch });
    expect(again).toEqual({ type: 'subscribed', topic: 'r.t', offset: 7, epoch, recovered: true, id: 'since' });
    await eventually(() => c.frames.length >= 4, 3000, 'four replayed messages');
    const [m4, m5, m6, m7] = c.frames.splice(0, 4);
    expect(m4).toEqual({ type: 'message', topic: 'r.t', offset: 4, ts: expect.any(Number), data: { i: 4 } });
    expect(m5).toEqual({ type: 'message', topic: 'r.t', offset: 5, ts: expect.any(Number), data: 'five ✓' });
    expect(Buffer.isBuffer(m6)).toBe(true);
    const d6 = decodeBinary(m6 as Buffer);
    expect(d6.header).toEqual({ type: 'message', topic: 'r.t', offset: 6, ts: expect.any(Number) });
    expect(Buffer.compare(d6.payload, bin)).toBe(0);
    expect(m7).toMatchObject({ type: 'message', offset: 7, data: { i: 7 } });

    expect((await h.ingest('r.t', { i: 8 })).body.offset).toBe(8);
    await barrier(c);
    expect(drainOffsets(c)).toEqual([8]);
    const metrics = await metricsText(h);
    expect(metricValue(metrics, 'hubcast_messages_replayed_total')).toBe(4);
  });

  it('replayed messages keep their original timestamps', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    h = await startServer({}, { clock });
    await h.ingest('ts.t', 'a');
    clock.advance(5000);
    await h.ingest('ts.t', 'b');
    clock.advance(5000);
    const c = await subscriber(h, []);
    expect(await subscribeSince(c, 'ts.t', { offset: 0 })).toMatchObject({ recovered: true, offset: 2 });
    const [a, b] = await takeN(c, 2);
    expect(a).toMatchObject({ offset: 1, ts: 1_700_000_000_000, data: 'a' });
    expect(b).toMatchObject({ offset: 2, ts: 1_700_000_005_000, data: 'b' });
  });

  it('since {offset: 0} replays everything retained from the start with recovered: true', async () => {
    h = await startServer();
    for (const i of range(1, 5)) await h.ingest('z.t', i);
    const c = await subscriber(h, []);
    const sub = await subscribeSince(c, 'z.t', { offset: 0 });
    expect(sub).toEqual({ type: 'subscribed', topic: 'z.t', offset: 5, epoch: expect.any(String), recovered: true, id: 'since' });
    expect((await takeN(c, 5)).map((m) => [m.offset, m.data])).toEqual(range(1, 5).map((i) => [i, i]));
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    // With the right epoch too; and for a topic with no messages at all.
    const c2 = await subscriber(h, []);
    expect(await subscribeSince(c2, 'z.t', { offset: 0, epoch: sub.epoch })).toMatchObject({ recovered: true, offset: 5 });
    expect((await takeN(c2, 5)).map((m) => m.offset)).toEqual(range(1, 5));
    expect(await subscribeSince(c2, 'empty.t', { offset: 0 }, 'e')).toMatchObject({
      type: 'subscribed',
      offset: 0,
      recovered: true,
      id: 'e',
    });
    // Up to date: nothing to replay, still recovered.
    expect(await subscribeSince(c2, 'z.x', { offset: 0 }, 'x')).toMatchObject({ offset: 0, recovered: true });
    const c3 = await subscriber(h, []);
    expect(await subscribeSince(c3, 'z.t', { offset: 5, epoch: sub.epoch })).toMatchObject({ offset: 5, recovered: true });
    await barrier(c3);
    expect(buffered(c3, 'message')).toEqual([]);
  });

  it('a different epoch answers recovered: false and replays nothing', async () => {
    h = await startServer();
    for (const i of range(1, 4)) await h.ingest('ep.t', i);
    const c = await subscriber(h, []);
    const sub = await subscribeSince(c, 'ep.t', { offset: 1, epoch: 'not-the-epoch' });
    expect(sub).toEqual({ type: 'subscribed', topic: 'ep.t', offset: 4, epoch: expect.any(String), recovered: false, id: 'since' });
    expect(sub.epoch).not.toBe('not-the-epoch');
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    await h.ingest('ep.t', 5);
    expect(await c.next('message')).toMatchObject({ offset: 5, data: 5 });
  });

  it('history trimmed by history.size: recovered: false, the retained messages are replayed', async () => {
    h = await startServer({ history: { size: 3 } });
    for (const i of range(1, 10)) expect((await h.ingest('hs.t', i)).body.offset).toBe(i);
    const c = await subscriber(h, []);
    const sub = await subscribeSince(c, 'hs.t', { offset: 2 });
    expect(sub).toMatchObject({ type: 'subscribed', topic: 'hs.t', offset: 10, recovered: false });
    expect((await takeN(c, 3)).map((m) => [m.offset, m.data])).toEqual([
      [8, 8],
      [9, 9],
      [10, 10],
    ]);
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    // From just before the oldest retained message, nothing is lost: recovered.
    const c2 = await subscriber(h, []);
    expect(await subscribeSince(c2, 'hs.t', { offset: 7, epoch: sub.epoch })).toMatchObject({ offset: 10, recovered: true });
    expect((await takeN(c2, 3)).map((m) => m.offset)).toEqual([8, 9, 10]);
    const c3 = await subscriber(h, []);
    expect(await subscribeSince(c3, 'hs.t', { offset: 6 })).toMatchObject({ recovered: false });
    expect((await takeN(c3, 3)).map((m) => m.offset)).toEqual([8, 9, 10]);
  });

  it('history.ttlS: messages past the TTL are no longer replayed (recovered: false)', async () => {
    const clock = new ManualClock();
    h = await startServer({ history: { ttlS: 60 } }, { clock });
    for (const i of range(1, 3)) await h.ingest('ttl.t', i);
    clock.advance(30_000);
    for (const i of range(4, 5)) await h.ingest('ttl.t', i);
    clock.advance(40_000); // 1–3 are 70 s old, 4–5 are 40 s old
    const c = await subscriber(h, []);
    expect(await subscribeSince(c, 'ttl.t', { offset: 0 })).toMatchObject({ offset: 5, recovered: false });
    await barrier(c);
    expect(drainOffsets(c)).toEqual([4, 5]);
    // From offset 3 nothing retained is missing.
    const c2 = await subscriber(h, []);
    expect(await subscribeSince(c2, 'ttl.t', { offset: 3 })).toMatchObject({ offset: 5, recovered: true });
    await barrier(c2);
    expect(drainOffsets(c2)).toEqual([4, 5]);
  });

  it('history.ttlS: expired messages are gone after a restart (trimmed at start-up), offsets continue', async () => {
    const clock = new ManualClock();
    h = await startServer({ history: { ttlS: 60 } }, { clock });
    for (const i of range(1, 3)) await h.ingest('ttl.r', i);
    clock.advance(30_000);
    for (const i of range(4, 5)) await h.ingest('ttl.r', i);
    clock.advance(40_000);
    await h.restart();
    const c = await subscriber(h, []);
    expect(await subscribeSince(c, 'ttl.r', { offset: 0 })).toMatchObject({ offset: 5, recovered: false });
    await barrier(c);
    expect(drainOffsets(c)).toEqual([4, 5]);
    expect((await h.ingest('ttl.r', 6)).body.offset).toBe(6);
  });

  it('a restart keeps history and epoch: replay after restart is recovered', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    const old = await h.connect(token);
    const sub = await old.subscribe('rs.t');
    for (const i of range(1, 5)) await h.ingest('rs.t', { i });
    expect((await takeN(old, 5)).map((m) => m.offset)).toEqual(range(1, 5));
    await h.restart();
    expect((await old.closed).code).toBe(1001);

    // The token survives the restart too.
    const c = await h.connect(token);
    const again = await subscribeSince(c, 'rs.t', { offset: 2, epoch: sub.epoch });
    expect(again).toEqual({ type: 'subscribed', topic: 'rs.t', offset: 5, epoch: sub.epoch, recovered: true, id: 'since' });
    expect((await takeN(c, 3)).map((m) => [m.offset, m.data])).toEqual([3, 4, 5].map((i) => [i, { i }]));
    expect((await h.ingest('rs.t', { i: 6 })).body.offset).toBe(6);
    expect(await c.next('message')).toMatchObject({ offset: 6, data: { i: 6 } });
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    // A fresh subscriber after the restart sees the same epoch and latest offset.
    const other = await subscriber(h, []);
    expect(await subscribeSince(other, 'rs.t', { offset: 0 })).toMatchObject({ offset: 6, epoch: sub.epoch, recovered: true });
    expect((await takeN(other, 6)).map((m) => m.offset)).toEqual(range(1, 6));
  });

  it('messages published while the replay is served arrive exactly once and in order', async () => {
    h = await startServer();
    await mapLimit(range(1, 150), 25, (i) => h.ingest('live.t', { i }));
    const c = await subscriber(h, []);
    let done = 0;
    const posting = mapLimit(range(151, 300), 10, async (i) => {
      const r = await h.ingest('live.t', { i });
      done++;
      return r;
    });
    await eventually(() => done >= 5, 5000, 'some concurrent publishes');
    c.send({ type: 'subscribe', topic: 'live.t', since: { offset: 0 }, id: 'mid' });
    const results = await posting;
    for (const r of results) expect(r.status).toBe(202);
    const sub = await c.next();
    expect(sub).toMatchObject({ type: 'subscribed', topic: 'live.t', recovered: true, id: 'mid' });
    expect(sub.offset as number).toBeGreaterThanOrEqual(155);
    const msgs = await takeN(c, 300, 'message', 10_000);
    expect(msgs.map((m) => m.offset)).toEqual(range(1, 300));
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });

  it('since is refused on a wildcard (bad_request) and must be {offset ≥ 0, epoch?}', async () => {
    h = await startServer();
    await h.ingest('orders.eu', 1);
    const c = await subscriber(h, []);
    for (const [topic, since, id] of [
      ['orders.*', { offset: 0 }, 'w1'],
      ['orders.>', { offset: 0, epoch: 'x' }, 'w2'],
      ['orders.eu', { offset: -1 }, 'b1'],
      ['orders.eu', { offset: 1.5 }, 'b2'],
      ['orders.eu', { offset: '1' }, 'b3'],
      ['orders.eu', { epoch: 'x' }, 'b4'],
      ['orders.eu', { offset: 0, epoch: 5 }, 'b5'],
      ['orders.eu', 3, 'b6'],
    ] as const) {
      expect(await subscribeSince(c, topic, since, id), `${topic} ${JSON.stringify(since)}`).toEqual({
        type: 'error',
        code: 'bad_request',
        message: expect.any(String),
        id,
      });
    }
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    // None of the refused subscribes took effect.
    await h.ingest('orders.eu', 2);
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    expect(await c.subscribe('orders.*')).toMatchObject({ type: 'subscribed', topic: 'orders.*' });
  });
});

describe('slow consumers', () => {
  let h: Harness;
  const pool = new ClientPool();
  afterEach(async () => {
    pool.closeAll();
    await h?.close();
  });

  it('a consumer that stops reading is closed with 4001; the server queue stays bounded; others are unaffected', async () => {
    const cap = 65536;
    h = await startServer({ limits: { maxBufferedBytes: cap } });
    const fast = await subscriber(h, ['slow.t']);
    const token = await h.register(await h.createClient({ name: 'slow' }));
    const { c } = await pool.open(h, token);
    await c.subscribe('slow.t');
    const serverSide = serverSocketOf(c);
    expect(serverSide, 'server end of the slow connection').toBeDefined();
    c.ws.pause();

    const chunk = Buffer.alloc(16 * 1024, 0x5a);
    let published = 0;
    let maxQueued = 0;
    // Publish at least 5 MB, in batches, until the server has given up on the consumer (at most 16 MB).
    for (let batch = 0; batch < 32; batch++) {
      await mapLimit(range(1, 32), 8, async () => {
        const r = await postRaw(h, 'slow.t', chunk, 'application/octet-stream');
        expect(r.status).toBe(202);
        published++;
        maxQueued = Math.max(maxQueued, serverSide!.writableLength);
      });
      if (batch >= 9 && metricValue(await metricsText(h), 'hubcast_slow_consumers_total') === 1) break;
    }
    expect(metricValue(await metricsText(h), 'hubcast_slow_consumers_total')).toBe(1);
    // What the server holds in memory for the consumer never exceeds the cap (plus one close frame).
    expect(maxQueued).toBeLessThanOrEqual(cap + 256);

    c.ws.resume();
    let closeCode = 0;
    void c.closed.then((x) => (closeCode = x.code));
    await eventually(() => closeCode !== 0, 10_000, 'close of the slow consumer');
    expect(closeCode).toBe(4001);
    // It got a gap-free prefix of the topic, and not everything: the rest was not queued for it.
    const got = c
      .all()
      .filter((f): f is Buffer => Buffer.isBuffer(f))
      .map((b) => decodeBinary(b).header.offset as number);
    expect(got).toEqual(range(1, got.length));
    expect(got.length).toBeLessThan(published);
    expect(c.all().filter((f) => !Buffer.isBuffer(f))).toEqual([]);

    // The reading consumer got everything.
    const fastGot: number[] = [];
    await eventually(
      () => {
        for (const f of fast.frames.splice(0)) if (Buffer.isBuffer(f)) fastGot.push(decodeBinary(f).header.offset as number);
        return fastGot.length >= published;
      },
      10_000,
      'all messages at the reading consumer',
    );
    expect(fastGot).toEqual(range(1, published));
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);

    // 4001 means "may reconnect": the same token is welcome again.
    const again = await pool.reopen(h, token);
    expect(again.welcome).toMatchObject({ type: 'welcome' });
  });

  it('a reading consumer is not closed by a single message larger than maxBufferedBytes', async () => {
    h = await startServer({ limits: { maxBufferedBytes: 65536 } });
    const c = await subscriber(h, ['big.t']);
    const payload = Buffer.alloc(100 * 1024, 7);
    expect((await postRaw(h, 'big.t', payload, 'application/octet-stream')).status).toBe(202);
    const { header, payload: got } = decodeBinary(await c.nextBinary());
    expect(header.offset).toBe(1);
    expect(got.length).toBe(payload.length);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });
});
