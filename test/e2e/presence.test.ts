import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';

describe('presence (one node; test/cluster covers several)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('GET /topics/<topic>/presence lists the subscribers (admin key); others get 401', async () => {
    h = await startServer();
    const admin = await h.createKey('ops', 'admin');
    const a = await h.connect(await h.register(await h.createClient({ name: 'a' })));
    const b = await h.connect(await h.register(await h.createClient({ name: 'b' })));
    await a.subscribe('room.1');
    await b.subscribe('room.1');
    await b.subscribe('room.2');
    const r = await h.fetchJson('/topics/room.1/presence', { headers: { authorization: `Bearer ${admin}` } });
    expect(r.status).toBe(200);
    expect(r.body.topic).toBe('room.1');
    expect(r.body.subscribers).toHaveLength(2);
    expect(r.body.subscribers[0]).toMatchObject({ connection_id: expect.stringMatching(/^cn_/), node: expect.any(String) });
    const denied = await h.fetchJson('/topics/room.1/presence', { headers: { authorization: `Bearer ${h.ingestKey}` } });
    expect(denied.status).toBe(401);
    expect(denied.body.error.code).toBe('invalid_key');
    const bad = await h.fetchJson('/topics/no%20spaces/presence', { headers: { authorization: `Bearer ${admin}` } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_topic');
    // An unsubscribe and a close take effect at once.
    b.send({ type: 'unsubscribe', topic: 'room.1', id: 'u' });
    await b.next('unsubscribed');
    a.close();
    await a.closed;
    await expect
      .poll(async () => (await h!.fetchJson('/topics/room.1/presence', { headers: { authorization: `Bearer ${admin}` } })).body.subscribers)
      .toEqual([]);
  });

  it('the presence request needs the presence right; join and leave events come to those who asked', async () => {
    h = await startServer();
    const watcherCreds = await h.createClient({ name: 'w', presence: ['room.>'] });
    const watcher = await h.connect(await h.register(watcherCreds));
    const plain = await h.connect(await h.register(await h.createClient({ name: 'p' })));
    plain.send({ type: 'presence', topic: 'room.1', id: 1 });
    expect(await plain.next('error')).toMatchObject({ id: 1, code: 'forbidden' });
    // Asking for events without the right is refused too.
    plain.send({ type: 'subscribe', topic: 'room.1', id: 2, presence: true });
    expect(await plain.next('error')).toMatchObject({ id: 2, code: 'forbidden' });

    watcher.send({ type: 'subscribe', topic: 'room.1', id: 's', presence: true });
    await watcher.next('subscribed');
    const other = await h.connect(await h.register(await h.createClient({ name: 'o' })));
    await other.subscribe('room.1');
    const join = await watcher.next('join');
    expect(join).toMatchObject({ topic: 'room.1', client_id: expect.stringMatching(/^c_/), connection_id: expect.stringMatching(/^cn_/) });

    watcher.send({ type: 'presence', topic: 'room.1', id: 3 });
    const p = await watcher.next('presence');
    expect(p).toMatchObject({ id: 3, topic: 'room.1', total: 2, truncated: false });
    expect((p.subscribers as { connection_id: string }[]).map((s) => s.connection_id)).toContain(join.connection_id);

    other.close();
    expect(await watcher.next('leave')).toMatchObject({ topic: 'room.1', connection_id: join.connection_id });
  });
});
