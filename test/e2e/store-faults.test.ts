import { afterEach, describe, expect, it } from 'vitest';
import { FaultyPresence, FaultyStore } from '../helpers/faulty-store.ts';
import { startServer, type Harness } from '../helpers/server.ts';
import { tryConnect } from '../helpers/upgrade.ts';

describe('store failures: clear answers, nothing acknowledged that was not stored', () => {
  let h: Harness | undefined;
  let faulty: FaultyStore;
  let presence: FaultyPresence;
  afterEach(async () => {
    faulty?.fail.clear();
    faulty?.throwing.clear();
    presence?.fail.clear();
    await h?.close();
    h = undefined;
  });
  const start = () =>
    startServer(
      {},
      { wrapStore: (s) => (faulty = new FaultyStore(s)).store, wrapPresence: (p) => (presence = new FaultyPresence(p)).presence },
    );

  it('ingest answers 503 unavailable with Retry-After when the append fails; nothing is delivered', async () => {
    h = await start();
    const token = await h.register(await h.createClient());
    const c = await h.connect(token);
    await c.subscribe('orders.eu');
    faulty.fail.add('append');
    const r = await h.fetchJson('/entity', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.ingestKey}` },
      body: JSON.stringify({ topic: 'orders.eu', data: 1 }),
    });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('unavailable');
    expect(r.headers.get('retry-after')).toBe('1');
    faulty.fail.delete('append');
    const ok = await h.ingest('orders.eu', 2);
    expect(ok.body.offset).toBe(1);
    // The first message was never acknowledged and never delivered: the first thing to arrive is offset 1, data 2.
    expect(await c.next('message')).toMatchObject({ offset: 1, data: 2 });
  });

  it('a connect whose token lookup fails gets 503 (not 401: the consumer must not re-register)', async () => {
    h = await start();
    const token = await h.register(await h.createClient());
    faulty.fail.add('getToken');
    const r = await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(503);
    expect('json' in r && r.json.error.code).toBe('unavailable');
    expect(r.headers['retry-after']).toBe('1');
    faulty.fail.clear();
    expect((await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(101);
  });

  it('registration answers 503 when the store cannot be read', async () => {
    h = await start();
    const creds = await h.createClient();
    faulty.fail.add('getClient');
    const r = await h.fetchJson('/consumers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(creds),
    });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('unavailable');
  });

  it('ingest whose key lookup fails answers 503 unavailable (not 500, not 401); the admin routes too', async () => {
    h = await start();
    const admin = await h.createKey('ops', 'admin');
    faulty.fail.add('findKey');
    const r = await h.ingest('t.k', 1);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('unavailable');
    const p = await h.fetchJson('/topics/t.k/presence', { headers: { authorization: `Bearer ${admin}` } });
    expect(p.status).toBe(503);
    expect(p.body.error.code).toBe('unavailable');
    faulty.fail.clear();
    expect((await h.ingest('t.k', 2)).status).toBe(202);
  });

  it('a connection that cannot be recorded (presence registry down) is refused 503 before the 101; others keep receiving', async () => {
    h = await start();
    const a = await h.connect(await h.register(await h.createClient()));
    await a.subscribe('t.x');
    presence.fail.add('claim');
    const b = await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${await h.register(await h.createClient())}` } });
    expect(b.status).toBe(503);
    expect('json' in b ? b.json : undefined).toMatchObject({ error: { code: 'unavailable' } });
    presence.fail.clear();
    await h.ingest('t.x', 'still here');
    expect(await a.next('message')).toMatchObject({ data: 'still here' });
  });

  it('an internal error while setting a connection up closes it 1011; the process keeps serving', async () => {
    h = await start();
    const a = await h.connect(await h.register(await h.createClient()));
    await a.subscribe('t.y');
    faulty.throwing.add('touchToken');
    const b = await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${await h.register(await h.createClient())}` } });
    expect(b.status).toBe(101);
    const closed = await b.client.closed;
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(/^internal error e_/);
    const line = h.logs.find((l) => l.msg === 'internal error in a connection handler');
    expect(line?.correlation_id).toBe(closed.reason.replace('internal error ', ''));
    faulty.throwing.clear();
    await h.ingest('t.y', 'alive');
    expect(await a.next('message')).toMatchObject({ data: 'alive' });
  });

  it('a subscribe whose history read fails answers error unavailable; the connection stays', async () => {
    h = await start();
    const c = await h.connect(await h.register(await h.createClient()));
    faulty.fail.add('topicState');
    c.send({ type: 'subscribe', topic: 'a.b', id: 's1' });
    expect(await c.next('error')).toMatchObject({ code: 'unavailable', id: 's1' });
    faulty.fail.clear();
    expect(await c.subscribe('a.b')).toMatchObject({ type: 'subscribed', topic: 'a.b' });
  });
});
