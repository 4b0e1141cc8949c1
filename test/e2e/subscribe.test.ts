import { afterEach, describe, expect, it } from 'vitest';
import { barrier, buffered, ClientPool, mapLimit, metricsText, metricValue, subscriber, takeN } from '../helpers/e2e.ts';
import { startServer, type Harness } from '../helpers/server.ts';
import { WebSocket } from 'ws';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('subscribe', () => {
  let h: Harness;
  const pool = new ClientPool();
  afterEach(async () => {
    pool.closeAll();
    await h?.close();
  });

  it('answers subscribed {topic, offset = latest, epoch, recovered:false} echoing the id; no replay without since', async () => {
    h = await startServer();
    expect((await h.ingest('orders.eu', 'old-1')).body.offset).toBe(1);
    expect((await h.ingest('orders.eu', 'old-2')).body.offset).toBe(2);
    const c = await h.connect(await h.register(await h.createClient()));
    c.send({ type: 'subscribe', topic: 'orders.eu', id: 'req-1' });
    const sub = await c.next();
    expect(sub).toEqual({ type: 'subscribed', topic: 'orders.eu', offset: 2, epoch: expect.any(String), recovered: false, id: 'req-1' });
    expect((sub.epoch as string).length).toBeGreaterThan(0);

    c.send({ type: 'subscribe', topic: 'fresh.topic', id: 42 });
    const fresh = await c.next();
    expect(fresh).toEqual({ type: 'subscribed', topic: 'fresh.topic', offset: 0, epoch: expect.any(String), recovered: false, id: 42 });

    c.send({ type: 'subscribe', topic: 'no.id' });
    const noId = await c.next();
    expect(noId).toMatchObject({ type: 'subscribed', topic: 'no.id', offset: 0, recovered: false });
    expect('id' in noId).toBe(false);

    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    const live = await h.ingest('orders.eu', 'live');
    expect(live.body.offset).toBe(3);
    expect(await c.next('message')).toEqual({ type: 'message', topic: 'orders.eu', offset: 3, ts: expect.any(Number), data: 'live' });
  });

  it('a subscribe outside the ACL gets error forbidden and the connection stays usable', async () => {
    h = await startServer();
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    for (const [topic, id] of [
      ['billing.x', 'f1'],
      ['orders.>', 'f2'],
      ['orders.eu.x', 'f3'],
      ['orders', 'f4'],
      ['>', 'f5'],
      ['*.eu', 'f6'],
    ]) {
      c.send({ type: 'subscribe', topic, id });
      expect(await c.next(), topic).toEqual({ type: 'error', code: 'forbidden', message: expect.any(String), id });
    }
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    // Nothing of the denied topics is delivered.
    expect((await h.ingest('billing.x', 'secret')).status).toBe(202);
    expect((await h.ingest('orders.eu.x', 'deep')).status).toBe(202);
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    // Allowed subscribes still work, concrete and pattern.
    expect(await c.subscribe('orders.eu')).toMatchObject({ type: 'subscribed', topic: 'orders.eu', recovered: false });
    expect(await c.subscribe('orders.*')).toMatchObject({ type: 'subscribed', topic: 'orders.*' });
    expect((await h.ingest('orders.eu', 'ok')).status).toBe(202);
    expect(await c.next('message')).toMatchObject({ topic: 'orders.eu', offset: 1, data: 'ok' });
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });

  it('?topics= at connect subscribes right after welcome; a denied one gets forbidden', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient({ subscribe: ['orders.*', 'alerts.*'] }));
    const { c } = await pool.open(h, token, { query: '?topics=orders.eu,alerts.*,billing.x' });
    const frames = await takeN(c, 3, null);
    const subscribed = frames.filter((f) => f.type === 'subscribed').map((f) => f.topic);
    expect(subscribed.sort()).toEqual(['alerts.*', 'orders.eu']);
    expect(frames.find((f) => f.topic === 'orders.eu')).toMatchObject({ offset: 0, epoch: expect.any(String), recovered: false });
    expect(frames.filter((f) => f.type === 'error')).toEqual([
      { type: 'error', code: 'forbidden', message: 'not allowed to subscribe to billing.x', topic: 'billing.x' },
    ]);
    await h.ingest('orders.eu', 1);
    await h.ingest('alerts.fire', 2);
    await h.ingest('billing.x', 3);
    expect(await c.next('message')).toMatchObject({ topic: 'orders.eu', data: 1 });
    expect(await c.next('message')).toMatchObject({ topic: 'alerts.fire', data: 2 });
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });

  it('wildcards: "*" matches exactly one segment, ">" one or more', async () => {
    h = await startServer();
    const star = await subscriber(h, ['orders.*']);
    const tail = await subscriber(h, ['orders.>']);
    const mid = await subscriber(h, ['*.eu']);
    const topics = ['orders.eu', 'orders.eu.x', 'orders', 'other.eu', 'orders.us.y.z', 'ordersx.eu', 'orders.us'];
    for (const t of topics) expect((await h.ingest(t, t)).status).toBe(202);
    for (const c of [star, tail, mid]) await barrier(c);
    const got = (c: typeof star) => buffered(c, 'message').map((m) => m.topic);
    expect(got(star)).toEqual(['orders.eu', 'orders.us']);
    expect(got(tail)).toEqual(['orders.eu', 'orders.eu.x', 'orders.us.y.z', 'orders.us']);
    expect(got(mid)).toEqual(['orders.eu', 'other.eu', 'ordersx.eu']);
    expect(buffered(tail, 'message')[1]).toEqual({
      type: 'message',
      topic: 'orders.eu.x',
      offset: 1,
      ts: expect.any(Number),
      data: 'orders.eu.x',
    });
  });

  it('a connection whose subscriptions overlap receives each message once', async () => {
    h = await startServer();
    const c = await subscriber(h, ['orders.eu', 'orders.*', 'orders.>']);
    for (let i = 1; i <= 5; i++) expect((await h.ingest('orders.eu', i)).body.offset).toBe(i);
    await barrier(c);
    expect(buffered(c, 'message').map((m) => [m.topic, m.offset])).toEqual([1, 2, 3, 4, 5].map((o) => ['orders.eu', o]));
    // Dropping the concrete subscription leaves the patterns: still once each.
    c.send({ type: 'unsubscribe', topic: 'orders.eu', id: 'u' });
    expect(await c.next('unsubscribed')).toEqual({ type: 'unsubscribed', topic: 'orders.eu', id: 'u' });
    c.frames.splice(0);
    for (let i = 6; i <= 8; i++) await h.ingest('orders.eu', i);
    await barrier(c);
    expect(buffered(c, 'message').map((m) => m.offset)).toEqual([6, 7, 8]);
  });

  it('unsubscribe answers unsubscribed and stops delivery; errors for unknown and repeated subscriptions', async () => {
    h = await startServer();
    const c = await subscriber(h, ['u.a', 'u.b', 'u.*']);
    await h.ingest('u.a', 'before');
    expect(await c.next('message')).toMatchObject({ topic: 'u.a', data: 'before' });
    c.send({ type: 'unsubscribe', topic: 'u.a', id: 'x' });
    expect(await c.next()).toEqual({ type: 'unsubscribed', topic: 'u.a', id: 'x' });
    c.send({ type: 'unsubscribe', topic: 'u.*' });
    expect(await c.next()).toEqual({ type: 'unsubscribed', topic: 'u.*' });
    await h.ingest('u.a', 'after');
    await h.ingest('u.b', 'still');
    await barrier(c);
    expect(buffered(c, 'message').map((m) => [m.topic, m.data])).toEqual([['u.b', 'still']]);
    c.frames.splice(0);

    c.send({ type: 'unsubscribe', topic: 'u.a', id: 'again' });
    expect(await c.next()).toEqual({ type: 'error', code: 'not_subscribed', message: expect.any(String), id: 'again' });
    c.send({ type: 'subscribe', topic: 'u.b', id: 'dup' });
    expect(await c.next()).toEqual({ type: 'error', code: 'already_subscribed', message: expect.any(String), id: 'dup' });
    // Subscribing again works.
    expect(await c.subscribe('u.a')).toMatchObject({ topic: 'u.a', offset: 2, recovered: false });
    await h.ingest('u.a', 'back');
    expect(await c.next('message')).toMatchObject({ topic: 'u.a', offset: 3, data: 'back' });
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('ping → pong echoing the id', async () => {
    h = await startServer();
    const c = await subscriber(h, []);
    c.send({ type: 'ping', id: 'p-1' });
    expect(await c.next()).toEqual({ type: 'pong', id: 'p-1' });
    c.send({ type: 'ping', id: 7 });
    expect(await c.next()).toEqual({ type: 'pong', id: 7 });
    c.send({ type: 'ping' });
    expect(await c.next()).toEqual({ type: 'pong' });
  });

  it('an invalid topic or pattern gets error invalid_topic and the connection stays', async () => {
    h = await startServer();
    const c = await subscriber(h, []);
    const bad: unknown[] = ['orders..eu', 'orders eu', '', '.x', 'x.', 'orders.>.x', 'or*ders', 'a'.repeat(201), 5, null, ['a']];
    for (const [i, topic] of bad.entries()) {
      c.send({ type: 'subscribe', topic, id: `bad-${i}` });
      expect(await c.next(), JSON.stringify(topic)).toEqual({
        type: 'error',
        code: 'invalid_topic',
        message: expect.any(String),
        id: `bad-${i}`,
      });
    }
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(await c.subscribe('good.topic')).toMatchObject({ type: 'subscribed', topic: 'good.topic' });
  });

  it('per topic, each subscriber sees strictly increasing offsets without gaps (200 concurrent publishes)', async () => {
    h = await startServer();
    const subs = [await subscriber(h, ['seq.t']), await subscriber(h, ['seq.t', 'seq.other']), await subscriber(h, ['seq.*'])];
    const N = 200;
    const results = await mapLimit(
      Array.from({ length: N }, (_, i) => i),
      25,
      async (i) => (i % 10 === 0 ? h.ingest('seq.other', i) : h.ingest('seq.t', { i })),
    );
    for (const r of results) expect(r.status).toBe(202);
    const onT = results.filter((r) => r.body.topic === 'seq.t').map((r) => r.body.offset as number);
    expect(onT.length).toBe(180);
    expect([...onT].sort((a, b) => a - b)).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));

    // The data at offset n is what the POST answered with offset n sent.
    const sentAt = new Map(results.map((r, i) => [`${r.body.topic}:${r.body.offset}`, i]));
    for (const [k, c] of subs.entries()) {
      const want = k === 0 ? 180 : 200;
      const msgs = await takeN(c, want, 'message', 10_000);
      const seqT = msgs.filter((m) => m.topic === 'seq.t');
      expect(
        seqT.map((m) => m.offset),
        `subscriber ${k}`,
      ).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));
      for (const m of seqT) expect((m.data as { i: number }).i).toBe(sentAt.get(`seq.t:${m.offset}`));
      if (k > 0)
        expect(msgs.filter((m) => m.topic === 'seq.other').map((m) => m.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      await barrier(c);
      expect(buffered(c, 'message')).toEqual([]);
    }
  });
});

describe('client publish with rights', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('publish → ack {offset, id}; subscribers receive it; offsets are shared with ingest', async () => {
    h = await startServer();
    const listener = await subscriber(h, ['chat.room1', 'chat.>']);
    const talker = await h.connect(await h.register(await h.createClient({ publish: ['chat.>'] })));
    await talker.subscribe('chat.room1');
    talker.send({ type: 'publish', topic: 'chat.room1', data: { text: 'hi', n: 1 }, id: 'p1' });
    expect(await talker.next('ack')).toMatchObject({ type: 'ack', offset: 1, id: 'p1' });
    expect(await listener.next('message')).toEqual({
      type: 'message',
      topic: 'chat.room1',
      offset: 1,
      ts: expect.any(Number),
      data: { text: 'hi', n: 1 },
    });
    // The publisher is a subscriber too and gets its own message.
    expect(await talker.next('message')).toMatchObject({ topic: 'chat.room1', offset: 1 });
    expect((await h.ingest('chat.room1', 'from http')).body.offset).toBe(2);
    talker.send({ type: 'publish', topic: 'chat.room1', data: 'third', id: 'p3' });
    expect(await talker.next('ack')).toMatchObject({ type: 'ack', offset: 3, id: 'p3' });
    talker.send({ type: 'publish', topic: 'chat.room2.sub', data: [1] });
    const ack = await talker.next('ack');
    expect(ack).toMatchObject({ type: 'ack', offset: 1 });
    expect('id' in ack).toBe(false);
    expect((await takeN(listener, 3)).map((m) => [m.topic, m.offset, m.data])).toEqual([
      ['chat.room1', 2, 'from http'],
      ['chat.room1', 3, 'third'],
      ['chat.room2.sub', 1, [1]],
    ]);
    // Once each, although the listener's two subscriptions both match chat.room1.
    await barrier(listener);
    expect(buffered(listener, 'message')).toEqual([]);
    const metrics = await metricsText(h);
    expect(metricValue(metrics, 'hubcast_messages_in_total', { source: 'ws' })).toBe(3);
    expect(talker.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('back-to-back client publishes are acked and delivered in order', async () => {
    h = await startServer();
    const listener = await subscriber(h, ['chat.fast']);
    const talker = await h.connect(await h.register(await h.createClient({ publish: ['chat.*'] })));
    const N = 60;
    for (let i = 0; i < N; i++) talker.send({ type: 'publish', topic: 'chat.fast', data: { i }, id: `p${i}` });
    const acks = await takeN(talker, N, 'ack');
    expect(acks.map((a) => [a.id, a.offset])).toEqual(range(N).map((i) => [`p${i}`, i + 1]));
    const msgs = await takeN(listener, N);
    expect(msgs.map((m) => [m.offset, (m.data as { i: number }).i])).toEqual(range(N).map((i) => [i + 1, i]));
  });

  it('a publisher gets error invalid_topic for an invalid topic and stays connected', async () => {
    h = await startServer();
    const talker = await h.connect(await h.register(await h.createClient({ publish: ['chat.>'] })));
    talker.send({ type: 'publish', topic: 'chat..x', data: 1, id: 'bad' });
    expect(await talker.next()).toEqual({ type: 'error', code: 'invalid_topic', message: expect.any(String), id: 'bad' });
    talker.send({ type: 'publish', topic: 'chat.ok', data: 1, id: 'good' });
    expect(await talker.next('ack')).toMatchObject({ offset: 1, id: 'good' });
  });
});
