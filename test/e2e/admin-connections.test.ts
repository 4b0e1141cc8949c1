import { afterEach, describe, expect, it } from 'vitest';
import { Hubcast, type State } from '../../packages/client/src/index.ts';
import { closeAction } from '../../packages/client/src/protocol.ts';
import { adminFor, auditLines, readEvents, type Admin } from '../helpers/admin.ts';
import { startServer, type Harness } from '../helpers/server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

/** The admin API's live connections: list with filters, kick (4503 / 4003), and the event stream. */

describe('admin API: connections', () => {
  let h: Harness | undefined;
  let admin: Admin;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  async function consumer(subscribe: string[] = [], name = 'test'): Promise<{ ws: TestClient; clientId: string; id: string }> {
    const creds = await h!.createClient({ name });
    const ws = await h!.connect(await h!.register(creds));
    for (const t of subscribe) await ws.subscribe(t);
    const welcome = (await admin.get(`/admin/api/connections?client=${creds.client_id}`)).body.connections[0];
    return { ws, clientId: creds.client_id, id: welcome.id };
  }

  it('lists this node’s live connections with their subscriptions, filtered by client, topic and address', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const a = await consumer(['orders.eu', 'audit.>']);
    const b = await consumer(['orders.eu']);
    const c = await consumer();
    const all = await admin.get('/admin/api/connections');
    expect(all.status).toBe(200);
    expect(all.body.next_cursor).toBeNull();
    expect(all.body.connections.map((x: any) => x.id)).toEqual([a.id, b.id, c.id]);
    expect(all.body.connections[0]).toEqual({
      id: a.id,
      client_id: a.clientId,
      node: h.server.config.nodeId,
      address: '127.0.0.1',
      connected_at: expect.any(String),
      subscriptions: ['orders.eu', 'audit.>'],
      queued_bytes: 0,
    });
    const ids = async (q: string) => (await admin.get(`/admin/api/connections?${q}`)).body.connections.map((x: any) => x.id);
    expect(await ids(`client=${b.clientId}`)).toEqual([b.id]);
    expect(await ids('topic=orders.eu')).toEqual([a.id, b.id]);
    expect(await ids('topic=audit.%3E')).toEqual([a.id]);
    expect(await ids('topic=orders.eu&client=' + a.clientId)).toEqual([a.id]);
    expect(await ids('address=127.0.0.1')).toEqual([a.id, b.id, c.id]);
    expect(await ids('address=10.0.0.1')).toEqual([]);
    expect(await ids('client=c_nobody')).toEqual([]);
    const first = await admin.get('/admin/api/connections?limit=2');
    expect(first.body.connections).toHaveLength(2);
    const rest = await admin.get(`/admin/api/connections?limit=2&cursor=${first.body.next_cursor}`);
    expect(rest.body).toEqual({ connections: [expect.objectContaining({ id: c.id })], next_cursor: null });
    expect(await admin.get('/admin/api/connections?topic=no%20spaces')).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_topic' } },
    });
    expect(await admin.get('/admin/api/connections?address=localhost')).toMatchObject({
      status: 400,
      body: { error: { code: 'bad_request' } },
    });
  });

  it('kick: 4503 by default (the SDK stops), 4003 with ?reconnect=true (the SDK reconnects); the token stays valid', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const creds = await h.createClient();
    const token = await h.register(creds);
    const ws = await h.connect(token);
    const id = (await admin.get('/admin/api/connections')).body.connections[0].id;
    const r = await admin.del(`/admin/api/connections/${id}`);
    expect(r).toMatchObject({ status: 200, body: { kicked: true, node: h.server.config.nodeId, code: 4503 } });
    const closed = await ws.closed;
    expect(closed).toEqual({ code: 4503, reason: 'disconnected by an operator' });
    expect(closeAction(closed.code)).toBe('stop');

    // The same token connects again (a deliberate reconnect): kicked with reconnect, 4003.
    const again = await h.connect(token);
    const id2 = (await admin.get('/admin/api/connections')).body.connections[0].id;
    expect((await admin.del(`/admin/api/connections/${id2}?reconnect=true`)).body).toMatchObject({ kicked: true, code: 4003 });
    expect((await again.closed).code).toBe(4003);
    expect(closeAction(4003)).toBe('reconnect');

    expect(await admin.del(`/admin/api/connections/${id2}`)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await admin.del('/admin/api/connections/cn_nope')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await admin.del(`/admin/api/connections/${id2}?reconnect=yes`)).toMatchObject({
      status: 400,
      body: { error: { code: 'bad_request' } },
    });
    expect(auditLines(h).map((l) => [l.action, l.target, l.result])).toEqual([
      ['connections.kick', id, 'ok'],
      ['connections.kick', id2, 'ok'],
      ['connections.kick', id2, 'not_found'],
      ['connections.kick', 'cn_nope', 'not_found'],
    ]);
  });

  it('the SDK reconnects after a kick with ?reconnect=true (4003) and stops after a plain kick (4503)', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const creds = await h.createClient();
    const hub = new Hubcast({
      url: h.base,
      clientId: creds.client_id,
      clientSecret: creds.client_secret,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    try {
      const states: State[] = [];
      const errors: { closeCode?: number }[] = [];
      hub.on('state', (st) => states.push(st));
      hub.on('error', (e) => errors.push(e as { closeCode?: number }));
      await hub.connect();
      const only = async () => (await admin.get('/admin/api/connections')).body.connections;
      const first = (await only())[0].id;
      expect((await admin.del(`/admin/api/connections/${first}?reconnect=true`)).body.code).toBe(4003);
      await expect
        .poll(async () => (await only()).map((c: any) => c.id).filter((id: string) => id !== first), { timeout: 5000 })
        .toHaveLength(1);
      expect(hub.state).toBe('connected');
      const second = (await only())[0].id;
      expect((await admin.del(`/admin/api/connections/${second}`)).body.code).toBe(4503);
      await expect.poll(() => hub.state, { timeout: 3000 }).toBe('closed');
      expect(errors.at(-1)).toMatchObject({ closeCode: 4503 });
      expect(states).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'connected', 'closed']);
      expect(await only()).toEqual([]);
    } finally {
      await hub.close();
    }
  });

  it('the event stream sends an overview every second and connection events as they happen', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const creds = await h.createClient({ name: 'watched' });
    const token = await h.register(creds);
    let ws: TestClient | undefined;
    const url = `${h.base}/admin/api/stream`;
    const got = await readEvents(
      url,
      admin.key,
      (events) => {
        const overviews = events.filter((e) => e.event === 'overview').length;
        // Once the stream is up, a consumer comes and goes.
        if (overviews === 1 && !ws) void h!.connect(token).then((c) => ((ws = c), c.close()));
        return overviews >= 3 && events.some((e) => e.event === 'connection' && e.data.event === 'close');
      },
      8000,
    );
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const conn = got.events.filter((e) => e.event === 'connection').map((e) => e.data);
    expect(conn).toEqual([
      { event: 'open', id: expect.stringMatching(/^cn_/), client_id: creds.client_id, address: '127.0.0.1' },
      { event: 'close', id: conn[0].id, client_id: creds.client_id, address: '127.0.0.1', code: 1005 },
    ]);
    const overview = got.events.find((e) => e.event === 'overview')!.data;
    expect(overview).toMatchObject({ node: { id: h.server.config.nodeId }, store: { ok: true }, broker: { ok: true } });
    expect(Object.keys(overview).sort()).toEqual(Object.keys((await admin.get('/admin/api/overview')).body).sort());
  });

  it('at most admin.maxStreams streams: the next gets 429 connection_limit; a closed one frees its place; a revoked key ends its stream', async () => {
    h = await startServer({ admin: { maxStreams: 1 } });
    admin = await adminFor(h);
    const url = `${h.base}/admin/api/stream`;
    let second: Awaited<ReturnType<typeof readEvents>> | undefined;
    const first = await readEvents(url, admin.key, (events) => {
      if (events.length === 1 && !second) void readEvents(url, admin.key, () => true).then((r) => (second = r));
      return second !== undefined;
    });
    expect(first.status).toBe(200);
    expect(second).toMatchObject({ status: 429, events: [{ event: 'body', data: { error: { code: 'connection_limit' } } }] });
    expect(second!.headers['retry-after']).toBe('5');
    // The first one is gone: there is room again.
    await expect.poll(async () => (await readEvents(url, admin.key, (e) => e.length > 0)).status, { timeout: 3000 }).toBe(200);
    expect((await h.fetchJson('/admin/api/stream')).status).toBe(401);

    // Revoked while streaming: the stream ends within the key check (5 s).
    const other = await h.createKey('ops-other', 'admin');
    const revokedAt = Date.now();
    const watching = readEvents(url, admin.key, () => false, 9000);
    await new Promise((r) => setTimeout(r, 300));
    const key = (await admin.get('/admin/api/keys')).body.keys.find((k: any) => k.name.startsWith('ops-') && k.name !== 'ops-other');
    expect((await (await adminFor(h, { key: other })).del(`/admin/api/keys/${key.id}`)).status).toBe(200);
    const ended = await watching;
    expect(ended.status).toBe(200);
    expect(Date.now() - revokedAt).toBeLessThan(8000);
    expect(h.logs.some((l) => l.msg === 'admin event stream ended: its key was revoked')).toBe(true);
  }, 20_000);
});
