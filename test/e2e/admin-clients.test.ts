import { afterEach, describe, expect, it } from 'vitest';
import { adminFor, auditLines, type Admin } from '../helpers/admin.ts';
import { cli, eventually, startServer, type Harness } from '../helpers/server.ts';

/** The admin API's clients and keys: list, create (the secret once), show, revoke; bodies and paging. */

describe('admin API: clients and keys', () => {
  let h: Harness | undefined;
  let admin: Admin;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  async function createClient(body: Record<string, unknown>) {
    const r = await admin.post('/admin/api/clients', body);
    if (typeof r.body?.secret === 'string') h!.remember(r.body.secret as string);
    return r;
  }

  it('a client created through the API registers with POST /consumers, connects, and is listed with its connection', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const r = await createClient({ name: 'shop-frontend', subscribe: ['orders.*', ' orders.* ', 'audit.>'], presence: ['room.1'] });
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const { client, secret } = r.body;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(client).toEqual({
      id: expect.stringMatching(/^c_[A-Za-z0-9_-]{16}$/),
      name: 'shop-frontend',
      subscribe: ['orders.*', 'audit.>'],
      publish: [],
      presence: ['room.1'],
      created_at: expect.any(String),
      revoked_at: null,
      connections: 0,
    });
    const token = await h.register({ client_id: client.id, client_secret: secret });
    const ws = await h.connect(token);
    expect((await ws.subscribe('orders.eu')).type).toBe('subscribed');
    expect((await admin.get(`/admin/api/clients/${client.id}`)).body.client).toMatchObject({ id: client.id, connections: 1 });
    const list = await admin.get('/admin/api/clients');
    expect(list.body.next_cursor).toBeNull();
    expect(list.body.clients.find((c: any) => c.id === client.id)).toMatchObject({ connections: 1 });
    // The CLI sees it too (one registry), and nothing anywhere shows the secret or its hash.
    const cliList = JSON.parse((await cli(['clients', 'list', '--json', '--data-dir', h.dataDir])).out).clients;
    expect(cliList.map((c: any) => c.client_id)).toContain(client.id);
    expect(JSON.stringify(list.body)).not.toMatch(/scrypt|secret/);
    expect(h.logText()).not.toContain(secret);
  });

  it('create: a malformed body is refused before anything is stored', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const cases: [unknown, number, string, RegExp?][] = [
      [{}, 400, 'bad_request', /name/],
      [{ name: '' }, 400, 'bad_request', /name/],
      [{ name: 'x'.repeat(201) }, 400, 'bad_request', /name/],
      [{ name: 'a', extra: 1 }, 400, 'bad_request', /unknown field: extra/],
      [{ name: 'a', subscribe: 'orders.*' }, 400, 'bad_request', /subscribe/],
      [{ name: 'a', subscribe: ['orders/eu'] }, 400, 'bad_request', /subscribe: "orders\/eu" is not a valid topic pattern/],
      [{ name: 'a', publish: ['a.>.b'] }, 400, 'bad_request', /publish/],
      [{ name: 'a', subscribe: Array.from({ length: 101 }, (_, i) => `t${i}`) }, 400, 'bad_request', /subscribe/],
      [[1, 2], 400, 'bad_request'],
      ['{"name":', 400, 'invalid_json'],
      [
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
        400,
        'invalid_json',
        /nested/,
      ],
      [JSON.stringify({ name: 'x'.repeat(70 * 1024) }), 413, 'payload_too_large'],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await admin.post('/admin/api/clients', body);
      expect({ body: String(JSON.stringify(body)).slice(0, 40), status: r.status, code: r.body?.error?.code }).toEqual({
        body: String(JSON.stringify(body)).slice(0, 40),
        status,
        code,
      });
      if (message) expect(r.body.error.message).toMatch(message);
    }
    const text = await admin.post('/admin/api/clients', 'name=a', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(text).toMatchObject({ status: 415, body: { error: { code: 'unsupported_media_type' } } });
    expect((await admin.get('/admin/api/clients')).body.clients).toEqual([]);
  });

  it('revoke: the live connection closes with 4500, the client can no longer register, a second revoke answers the same time', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const { client, secret } = (await createClient({ name: 'gone', subscribe: ['>'] })).body;
    const ws = await h.connect(await h.register({ client_id: client.id, client_secret: secret }));
    const r = await admin.del(`/admin/api/clients/${client.id}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ client: { ...client, revoked_at: expect.any(String), connections: expect.any(Number) }, closed: 1 });
    expect((await ws.closed).code).toBe(4500);
    const again = await h.fetchJson('/consumers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: client.id, client_secret: secret }),
    });
    expect(again.status).toBe(401);
    const twice = await admin.del(`/admin/api/clients/${client.id}`);
    expect(twice.body).toEqual({ client: { ...r.body.client, connections: 0 }, closed: 0 });
    expect(await admin.del('/admin/api/clients/c_nope')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await admin.get('/admin/api/clients/c_nope')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    const lines = auditLines(h).filter((l) => l.action === 'clients.revoke');
    expect(lines.map((l) => [l.target, l.result])).toEqual([
      [client.id, 'ok'],
      [client.id, 'already_revoked'],
      ['c_nope', 'not_found'],
    ]);
  });

  it('lists are paged: limit and next_cursor walk every client once; bad paging parameters are 400', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createClient({ name: `c${i}` })).body.client.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: any = await admin.get(`/admin/api/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.clients.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.clients.map((c: any) => c.id));
      cursor = r.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
    for (const q of ['limit=0', 'limit=501', 'limit=abc', 'cursor=', 'cursor=%2F%2F', 'cursor=bm9wZQ', 'limit=1&limit=2', 'colour=red'])
      expect((await admin.get(`/admin/api/clients?${q}`)).body.error?.code, q).toBe('bad_request');
    expect((await admin.get('/admin/api/clients?limit=500')).body.clients).toHaveLength(5);
  });

  it('keys: created (the key once), usable for ingest, listed without secrets, revoked; an admin key cannot revoke itself', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const r = await admin.post('/admin/api/keys', { name: 'backend', scope: 'ingest' });
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    h.remember(r.body.secret);
    expect(r.body).toEqual({
      key: { id: expect.stringMatching(/^k_/), name: 'backend', scope: 'ingest', created_at: expect.any(String), revoked_at: null },
      secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    const ingest = () =>
      h!.fetchJson('/entity', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${r.body.secret}` },
        body: JSON.stringify({ topic: 't.k', data: 1 }),
      });
    expect((await ingest()).status).toBe(202);
    const list = await admin.get('/admin/api/keys');
    // Oldest first (two keys made in the same millisecond are in id order).
    expect(list.body.keys.map((k: any) => k.name).sort()).toEqual(['backend', expect.stringMatching(/^ops-/), 'test-ingest']);
    expect(list.body.next_cursor).toBeNull();
    for (const k of list.body.keys) expect(Object.keys(k).sort()).toEqual(['created_at', 'id', 'name', 'revoked_at', 'scope']);

    const revoked = await admin.del(`/admin/api/keys/${r.body.key.id}`);
    expect(revoked).toMatchObject({ status: 200, body: { key: { id: r.body.key.id, revoked_at: expect.any(String) } } });
    await eventually(async () => (await ingest()).status === 401, 3000, 'the revoked key refused');
    expect((await admin.del(`/admin/api/keys/${r.body.key.id}`)).body).toEqual(revoked.body);
    expect(await admin.del('/admin/api/keys/k_nope')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });

    // The caller's own key: 409, and it still works.
    const own = list.body.keys.find((k: any) => k.scope === 'admin');
    expect(await admin.del(`/admin/api/keys/${own.id}`)).toMatchObject({ status: 409, body: { error: { code: 'self_revocation' } } });
    expect((await admin.get('/admin/api/keys')).status).toBe(200);

    // An admin key made through the API can revoke the first one, which then stops working.
    const second = await admin.post('/admin/api/keys', { name: 'ops-2', scope: 'admin' });
    h.remember(second.body.secret);
    const admin2 = await adminFor(h, { key: second.body.secret });
    expect((await admin2.del(`/admin/api/keys/${own.id}`)).status).toBe(200);
    expect((await admin.get('/admin/api/keys')).status).toBe(401);

    for (const body of [
      { name: 'x' },
      { name: 'x', scope: 'root' },
      { name: '', scope: 'ingest' },
      { name: 'x', scope: 'ingest', id: 'k_1' },
    ])
      expect((await admin2.post('/admin/api/keys', body)).body.error?.code, JSON.stringify(body)).toBe('bad_request');
    const lines = auditLines(h);
    expect(lines.filter((l) => l.action === 'keys.create').map((l) => l.result)).toEqual(['ok', 'ok']);
    expect(lines.filter((l) => l.action === 'keys.revoke').map((l) => l.result)).toEqual([
      'ok',
      'already_revoked',
      'not_found',
      'self_revocation',
      'ok',
    ]);
  });
});
