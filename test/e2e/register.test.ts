import { afterEach, describe, expect, it } from 'vitest';
import { cli, startServer, type ClientCreds, type Harness } from '../helpers/server.ts';
import { fetchMetrics, metricValue } from '../helpers/upgrade.ts';

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const errorShape = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('POST /consumers and POST /consumers/tickets', () => {
  let h: Harness | undefined;

  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  async function setup(): Promise<{ h: Harness; creds: ClientCreds }> {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['orders.>'] });
    h!.remember(creds.client_secret);
    return { h, creds };
  }

  function post(path: string, init: { headers?: Record<string, string>; body?: string } = {}) {
    return h!.fetchJson(path, { method: 'POST', ...init });
  }

  const remember = (token: unknown) => {
    if (typeof token === 'string') h!.remember(token);
    return token;
  };

  describe('register: 201 with every credential method', () => {
    it('JSON body {client_id, client_secret}', async () => {
      const { creds } = await setup();
      const r = await post('/consumers', { headers: { 'content-type': 'application/json' }, body: JSON.stringify(creds) });
      remember(r.body?.token);
      expect(r.status).toBe(201);
      expect(r.body).toEqual({
        client_id: creds.client_id,
        token: expect.stringMatching(TOKEN_RE),
        token_type: 'Bearer',
        expires_after_idle_s: 2592000,
        websocket_url: '/ws',
      });
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    });

    it('JSON body with a charset parameter on the content type', async () => {
      const { creds } = await setup();
      const r = await post('/consumers', {
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(creds),
      });
      remember(r.body?.token);
      expect(r.status).toBe(201);
      expect(r.body.client_id).toBe(creds.client_id);
      expect(r.body.token).toMatch(TOKEN_RE);
    });

    it('headers client_id and client_secret', async () => {
      const { creds } = await setup();
      const r = await post('/consumers', { headers: { client_id: creds.client_id, client_secret: creds.client_secret } });
      remember(r.body?.token);
      expect(r.status).toBe(201);
      expect(r.body).toEqual({
        client_id: creds.client_id,
        token: expect.stringMatching(TOKEN_RE),
        token_type: 'Bearer',
        expires_after_idle_s: 2592000,
        websocket_url: '/ws',
      });
    });

    it('HTTP Basic', async () => {
      const { creds } = await setup();
      const basic = Buffer.from(`${creds.client_id}:${creds.client_secret}`).toString('base64');
      h!.remember(basic);
      const r = await post('/consumers', { headers: { authorization: `Basic ${basic}` } });
      remember(r.body?.token);
      expect(r.status).toBe(201);
      expect(r.body).toEqual({
        client_id: creds.client_id,
        token: expect.stringMatching(TOKEN_RE),
        token_type: 'Bearer',
        expires_after_idle_s: 2592000,
        websocket_url: '/ws',
      });
    });

    it('every registration issues a new, distinct token, and each one connects', async () => {
      const { h, creds } = await setup();
      const a = remember(await h.register(creds)) as string;
      const b = remember(await h.register(creds)) as string;
      expect(a).toMatch(TOKEN_RE);
      expect(b).toMatch(TOKEN_RE);
      expect(a).not.toBe(b);
      // Both tokens are live credentials of the same client; neither is the client secret.
      expect([a, b]).not.toContain(creds.client_secret);
      const ca = await h.connect(a);
      const cb = await h.connect(b);
      expect(ca.ws.readyState).toBe(ca.ws.OPEN);
      expect(cb.ws.readyState).toBe(cb.ws.OPEN);
    });

    it('expires_after_idle_s follows tokens.idleTtl', async () => {
      h = await startServer({ tokens: { idleTtl: '1h' } });
      const creds = await h.createClient();
      h!.remember(creds.client_secret);
      const r = await post('/consumers', { headers: { 'content-type': 'application/json' }, body: JSON.stringify(creds) });
      remember(r.body?.token);
      expect(r.status).toBe(201);
      expect(r.body.expires_after_idle_s).toBe(3600);
    });
  });

  describe('register: 400 bad_request for missing or malformed credentials', () => {
    const cases: [string, (c: ClientCreds) => { headers?: Record<string, string>; body?: string }][] = [
      ['no credentials at all', () => ({})],
      ['an empty JSON body and no other credentials', () => ({ headers: { 'content-type': 'application/json' }, body: '' })],
      ['an empty JSON object', () => ({ headers: { 'content-type': 'application/json' }, body: '{}' })],
      [
        'JSON with client_id only',
        (c) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: c.client_id }) }),
      ],
      [
        'JSON with client_secret only',
        (c) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_secret: c.client_secret }) }),
      ],
      [
        'JSON with an empty client_id',
        (c) => ({
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_id: '', client_secret: c.client_secret }),
        }),
      ],
      [
        'JSON with a non-string client_secret',
        (c) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: c.client_id, client_secret: 42 }) }),
      ],
      ['invalid JSON', () => ({ headers: { 'content-type': 'application/json' }, body: '{"client_id": "c_x", "client_secret": ' })],
      [
        'a body that is not JSON (text/plain)',
        (c) => ({ headers: { 'content-type': 'text/plain' }, body: `${c.client_id}:${c.client_secret}` }),
      ],
      ['header client_id without client_secret', (c) => ({ headers: { client_id: c.client_id } })],
      ['header client_secret without client_id', (c) => ({ headers: { client_secret: c.client_secret } })],
      ['Basic that is not base64', () => ({ headers: { authorization: 'Basic !!!not-base64!!!' } })],
      ['Basic without a colon', (c) => ({ headers: { authorization: `Basic ${Buffer.from(c.client_id).toString('base64')}` } })],
      ['Basic with an empty secret', (c) => ({ headers: { authorization: `Basic ${Buffer.from(`${c.client_id}:`).toString('base64')}` } })],
      ['Basic with an empty id', (c) => ({ headers: { authorization: `Basic ${Buffer.from(`:${c.client_secret}`).toString('base64')}` } })],
      ['an Authorization scheme other than Basic', (c) => ({ headers: { authorization: `Bearer ${c.client_secret}` } })],
    ];

    it.each(cases)('%s → 400 bad_request', async (_name, make) => {
      const { creds } = await setup();
      const r = await post('/consumers', make(creds));
      expect(r.status).toBe(400);
      expect(r.body).toEqual(errorShape('bad_request'));
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    });
  });

  describe('register: 401 invalid_client', () => {
    it('unknown client, wrong secret and revoked client get the identical 401 body', async () => {
      const { h, creds } = await setup();
      const other = await h.createClient({ name: 'other' });
      h!.remember(other.client_secret);
      const json = (c: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(c) });

      const unknown = await post('/consumers', json({ client_id: 'c_doesnotexist000000000', client_secret: creds.client_secret }));
      const wrong = await post('/consumers', json({ client_id: creds.client_id, client_secret: other.client_secret }));
      const wrongByHeader = await post('/consumers', { headers: { client_id: creds.client_id, client_secret: 'x'.repeat(43) } });
      const wrongByBasic = await post('/consumers', {
        headers: { authorization: `Basic ${Buffer.from(`${creds.client_id}:nope`).toString('base64')}` },
      });

      const rev = await cli(['clients', 'revoke', creds.client_id, '--data-dir', h.dataDir]);
      expect(rev.code).toBe(0);
      const revoked = await post('/consumers', json(creds));

      for (const r of [unknown, wrong, wrongByHeader, wrongByBasic, revoked]) {
        expect(r.status).toBe(401);
        expect(r.body).toEqual(errorShape('invalid_client'));
      }
      // Identical bodies: nothing tells which of the cases it was.
      const bodies = new Set([unknown, wrong, wrongByHeader, wrongByBasic, revoked].map((r) => JSON.stringify(r.body)));
      expect(bodies.size).toBe(1);

      // The other client is unaffected by the revocation.
      const ok = await post('/consumers', json(other));
      remember(ok.body?.token);
      expect(ok.status).toBe(201);

      const m = await fetchMetrics(h.base);
      expect(metricValue(m, 'hubcast_auth_failures_total', { reason: 'invalid_client' })).toBe(5);
    });

    it('a revoked client’s existing token no longer gets tickets', async () => {
      const { h, creds } = await setup();
      const token = remember(await h.register(creds)) as string;
      const before = await post('/consumers/tickets', { headers: { authorization: `Bearer ${token}` } });
      remember(before.body?.ticket);
      expect(before.status).toBe(201);
      expect((await cli(['clients', 'revoke', creds.client_id, '--data-dir', h.dataDir])).code).toBe(0);
      const after = await post('/consumers/tickets', { headers: { authorization: `Bearer ${token}` } });
      expect(after.status).toBe(401);
      expect(after.body).toEqual(errorShape('unauthorized'));
    });
  });

  describe('tickets', () => {
    it('POST /consumers/tickets with a Bearer token → 201 {ticket, expires_in_s: 30}; each ticket is new', async () => {
      const { h, creds } = await setup();
      const token = remember(await h.register(creds)) as string;
      const r1 = await post('/consumers/tickets', { headers: { authorization: `Bearer ${token}` } });
      const r2 = await post('/consumers/tickets', { headers: { authorization: `Bearer ${token}` } });
      remember(r1.body?.ticket);
      remember(r2.body?.ticket);
      for (const r of [r1, r2]) {
        expect(r.status).toBe(201);
        expect(r.body).toEqual({ ticket: expect.stringMatching(TOKEN_RE), expires_in_s: 30 });
      }
      expect(r1.body.ticket).not.toBe(r2.body.ticket);
      expect(r1.body.ticket).not.toBe(token);
    });

    it('a ticket cannot be used as a Bearer token to get another ticket', async () => {
      const { h, creds } = await setup();
      const token = remember(await h.register(creds)) as string;
      const r = await post('/consumers/tickets', { headers: { authorization: `Bearer ${token}` } });
      remember(r.body?.ticket);
      expect(r.status).toBe(201);
      const again = await post('/consumers/tickets', { headers: { authorization: `Bearer ${r.body.ticket}` } });
      expect(again.status).toBe(401);
      expect(again.body).toEqual(errorShape('unauthorized'));
    });

    it('without a token or with a bad one → 401 unauthorized, identical bodies, counted by reason', async () => {
      const { h, creds } = await setup();
      const token = remember(await h.register(creds)) as string;
      const attempts: { headers?: Record<string, string> }[] = [
        {}, // missing
        { headers: { authorization: '' } },
        { headers: { authorization: 'Bearer' } },
        { headers: { authorization: 'Bearer not-a-token' } }, // malformed
        { headers: { authorization: `Bearer ${'A'.repeat(43)}` } }, // unknown
        { headers: { authorization: `Basic ${Buffer.from(`${creds.client_id}:${creds.client_secret}`).toString('base64')}` } },
        { headers: { authorization: `Bearer ${token}x` } },
        { headers: { token } }, // the token, but not as a Bearer header
      ];
      const rs = [];
      for (const a of attempts) rs.push(await post('/consumers/tickets', a));
      for (const r of rs) {
        expect(r.status).toBe(401);
        expect(r.body).toEqual(errorShape('unauthorized'));
      }
      expect(new Set(rs.map((r) => JSON.stringify(r.body))).size).toBe(1);

      const m = await fetchMetrics(h.base);
      expect(metricValue(m, 'hubcast_auth_failures_total', { reason: 'unknown' })).toBe(1);
      const reasons = ['missing', 'malformed', 'unknown', 'expired', 'revoked', 'client_mismatch', 'invalid_client'];
      const total = reasons.reduce((n, reason) => n + (metricValue(m, 'hubcast_auth_failures_total', { reason }) ?? 0), 0);
      expect(total).toBe(attempts.length);
    });
  });

  it('the logs record registrations and failures but never a secret, token, ticket or key', async () => {
    const { h, creds } = await setup();
    const token = remember(await h.register(creds)) as string;
    const t = await post('/consumers/tickets', { headers: { authorization: `Bearer ${token}` } });
    remember(t.body?.ticket);
    await post('/consumers', { headers: { client_id: creds.client_id, client_secret: `${creds.client_secret}x` } });
    const c = await h.connect(token);
    await c.close();
    const text = h.logText();
    expect(text).toContain(creds.client_id);
    for (const s of [creds.client_secret, `${creds.client_secret}x`, token, t.body.ticket, h.ingestKey]) expect(text).not.toContain(s);
  });
});
