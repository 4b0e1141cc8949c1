import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
import { TestClient } from '../helpers/ws-client.ts';

/**
 * CORS on the routes a browser page calls (docs/http-api.md#cors), over real HTTP: driven by
 * ws.allowedOrigins, preflight included; a refused origin gets no CORS header. (The browser's own view
 * of it is in test/browser/demo.chromium.test.ts.)
 */

const ALLOWED = 'http://app.example.test';
const REFUSED = 'http://evil.example.test';
const errorShape = (code: string) => ({ error: { code, message: expect.any(String) } });

function preflight(h: Harness, path: string, origin: string, method = 'POST') {
  return h.fetchJson(path, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization' },
  });
}

function corsHeaders(headers: Headers): Record<string, string> {
  return Object.fromEntries([...headers].filter(([k]) => k.startsWith('access-control-')));
}

describe('CORS with an allow-list (ws.allowedOrigins)', () => {
  let h: Harness;
  let token: string;

  beforeAll(async () => {
    h = await startServer({ ws: { allowedOrigins: [ALLOWED] } });
    token = await h.register(await h.createClient({ subscribe: ['demo.>'] }));
  });
  afterAll(() => h.close());

  const ticket = (origin?: string, bearer = token) =>
    h.fetchJson('/consumers/tickets', {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, ...(origin ? { origin } : {}) },
    });

  it('a preflight from a listed origin is 204 with the route’s method and headers', async () => {
    const r = await preflight(h, '/consumers/tickets', ALLOWED);
    expect(r.status).toBe(204);
    expect(corsHeaders(r.headers)).toEqual({
      'access-control-allow-origin': ALLOWED,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'Authorization, Content-Type',
      'access-control-max-age': '600',
    });
    expect(r.headers.get('vary')).toBe('Origin');
  });

  it('a preflight from an unlisted origin is 403 origin_not_allowed with no CORS header', async () => {
    const r = await preflight(h, '/consumers/tickets', REFUSED);
    expect(r.status).toBe(403);
    expect(r.body).toEqual(errorShape('origin_not_allowed'));
    expect(corsHeaders(r.headers)).toEqual({});
  });

  it('a ticket for a listed origin carries Access-Control-Allow-Origin, and opens a WebSocket from that origin', async () => {
    const r = await ticket(ALLOWED);
    expect(r.status).toBe(201);
    h.remember(r.body.ticket);
    expect(corsHeaders(r.headers)).toEqual({ 'access-control-allow-origin': ALLOWED, 'access-control-expose-headers': 'Retry-After' });
    expect(r.headers.get('vary')).toBe('Origin');
    const c = new TestClient(`${h.wsBase}/ws?ticket=${r.body.ticket}`, { headers: { origin: ALLOWED } });
    await c.opened;
    expect((await c.next('welcome')).type).toBe('welcome');
    c.ws.close();
  });

  it('errors for a listed origin carry the CORS headers too (the page reads the code and Retry-After)', async () => {
    const r = await ticket(ALLOWED, 'A'.repeat(43));
    expect(r.status).toBe(401);
    expect(r.body).toEqual(errorShape('unauthorized'));
    expect(r.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  it('a ticket request from an unlisted origin is refused as its upgrade would be: 403, no ticket, no CORS header', async () => {
    const r = await ticket(REFUSED);
    expect(r.status).toBe(403);
    expect(r.body).toEqual(errorShape('origin_not_allowed'));
    expect(corsHeaders(r.headers)).toEqual({});
    // The same origin is refused by the WebSocket upgrade: one allow-list.
    const c = new TestClient(`${h.wsBase}/ws`, { headers: { origin: REFUSED, authorization: `Bearer ${token}` } });
    await expect(c.opened).rejects.toMatchObject({ status: 403 });
  });

  it('a request without Origin (curl, a server) is not a CORS request: unchanged, no CORS header', async () => {
    const r = await ticket();
    expect(r.status).toBe(201);
    h.remember(r.body.ticket);
    expect(corsHeaders(r.headers)).toEqual({});
    // The answer still varies with Origin, so that no cache hands this copy to a page.
    expect(r.headers.get('vary')).toBe('Origin');
  });

  it('GET /client.js: CORS for a listed origin (module scripts are fetched in CORS mode); an unlisted one gets none', async () => {
    const ok = await h.fetchJson('/client.js', { headers: { origin: ALLOWED } });
    expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(ok.headers.get('vary')).toMatch(/^Origin\b/);
    const refused = await h.fetchJson('/client.js', { headers: { origin: REFUSED } });
    expect(refused.status).not.toBe(403);
    expect(corsHeaders(refused.headers)).toEqual({});
  });

  it('POST /consumers has no CORS: a page never holds a client secret (preflight 405, no CORS header)', async () => {
    const r = await preflight(h, '/consumers', ALLOWED);
    expect(r.status).toBe(405);
    expect(r.body).toEqual(errorShape('method_not_allowed'));
    expect(corsHeaders(r.headers)).toEqual({});
    const post = await h.fetchJson('/consumers', { method: 'POST', headers: { origin: ALLOWED } });
    expect(corsHeaders(post.headers)).toEqual({});
  });

  it('OPTIONS without Origin is not a preflight: 204 with Allow', async () => {
    const r = await h.fetchJson('/consumers/tickets', { method: 'OPTIONS' });
    expect(r.status).toBe(204);
    expect(r.headers.get('allow')).toBe('POST, OPTIONS');
    expect(corsHeaders(r.headers)).toEqual({});
  });
});

describe('CORS with no allow-list (any origin)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(() => h.close());

  it('any origin gets Access-Control-Allow-Origin: * (no Vary), preflight and request alike', async () => {
    const p = await preflight(h, '/consumers/tickets', REFUSED);
    expect(p.status).toBe(204);
    expect(p.headers.get('access-control-allow-origin')).toBe('*');
    expect(p.headers.get('vary')).toBeNull();
    const token = await h.register(await h.createClient());
    const r = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}`, origin: 'null' } });
    expect(r.status).toBe(201);
    h.remember(r.body.ticket);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
  });
});
