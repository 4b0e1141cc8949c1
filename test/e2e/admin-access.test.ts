import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from '../../src/server.ts';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { adminFor } from '../helpers/admin.ts';
import { startServer, type Harness } from '../helpers/server.ts';

/**
 * Who may use the admin API: every route behind the guard (admin.allow, an admin-scope key, the
 * failure budget), the store down answered 503, and the separate admin listener.
 */

const BOGUS = 'A'.repeat(43);

/** Every admin route, with a path that exists (the guard answers before any lookup). */
const ROUTES: [method: string, path: string][] = [
  ['GET', '/admin/api/overview'],
  ['GET', '/admin/api/clients'],
  ['POST', '/admin/api/clients'],
  ['GET', '/admin/api/clients/c_x'],
  ['DELETE', '/admin/api/clients/c_x'],
  ['GET', '/admin/api/keys'],
  ['POST', '/admin/api/keys'],
  ['DELETE', '/admin/api/keys/k_x'],
  ['GET', '/admin/api/connections'],
  ['DELETE', '/admin/api/connections/cn_x'],
  ['GET', '/admin/api/topics'],
  ['GET', '/admin/api/topics/t.a/messages'],
  ['POST', '/admin/api/topics/t.a/messages'],
  ['GET', '/admin/api/connectors'],
  ['GET', '/admin/api/dead-letters'],
  ['POST', '/admin/api/dead-letters/1/retry'],
  ['DELETE', '/admin/api/dead-letters/1'],
  ['GET', '/admin/api/alerts'],
  ['GET', '/admin/api/audit'],
  ['GET', '/admin/api/stream'],
  ['GET', '/connectors'],
  ['GET', '/topics/t.a/presence'],
];

/** A request from a chosen loopback source address (fetch cannot choose it). */
function requestFrom(
  port: number,
  from: string,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, localAddress: from }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('admin API: access', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  it('every route answers 401 invalid_key without a key, with an ingest key, with an unknown key; and 200 with an admin key', async () => {
    h = await startServer({ limits: { ingestAuthFailures: { perMinute: 1000, burst: 1000 } } });
    for (const [method, path] of ROUTES) {
      for (const auth of [undefined, `Bearer ${h.ingestKey}`, `Bearer ${BOGUS}`, 'Basic eDp5']) {
        const r = await h.fetchJson(path, { method, headers: auth ? { authorization: auth } : {} });
        expect({ method, path, auth: auth?.slice(0, 6), status: r.status, code: r.body?.error?.code }).toEqual({
          method,
          path,
          auth: auth?.slice(0, 6),
          status: 401,
          code: 'invalid_key',
        });
      }
    }
    const admin = await adminFor(h);
    for (const path of ['/admin/api/overview', '/admin/api/clients', '/admin/api/keys', '/connectors', '/topics/t.a/presence'])
      expect((await admin.get(path)).status, path).toBe(200);
  });

  it('an address outside admin.allow gets 403 ip_not_allowed on every route, before its key is looked at', async () => {
    h = await startServer({ admin: { allow: ['127.0.0.1/32'] } });
    const admin = await adminFor(h);
    for (const [method, path] of ROUTES) {
      const r = await requestFrom(h.port, '127.0.0.2', method, path, { authorization: `Bearer ${admin.key}` });
      expect({ path, method, status: r.status, code: r.body?.error?.code }).toEqual({ path, method, status: 403, code: 'ip_not_allowed' });
    }
    // The same key from the allowed address.
    expect((await requestFrom(h.port, '127.0.0.1', 'GET', '/admin/api/overview', { authorization: `Bearer ${admin.key}` })).status).toBe(
      200,
    );
  });

  it('failed admin keys spend the admin budget: 429 rate_limited with Retry-After, even for a valid key then', async () => {
    h = await startServer({ limits: { ingestAuthFailures: { perMinute: 1, burst: 2 } } });
    const admin = await adminFor(h);
    const bad = () => h!.fetchJson('/admin/api/clients', { headers: { authorization: `Bearer ${BOGUS}` } });
    expect((await bad()).status).toBe(401);
    expect((await bad()).status).toBe(401);
    const limited = await bad();
    expect(limited).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await admin.get('/admin/api/clients')).status).toBe(429);
    // Ingest has its own budget.
    expect((await h.ingest('t.a', 1)).status).toBe(202);
  });

  it('unknown admin paths are 404, known ones with another method 405', async () => {
    h = await startServer();
    const admin = await adminFor(h);
    expect(await admin.get('/admin/api/nope')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    const r = await admin.request('PUT', '/admin/api/clients');
    expect(r).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } });
    expect(r.headers.get('allow')).toBe('GET, POST');
  });

  it('a key store that cannot be read answers 503 unavailable (not 401, not 500)', async () => {
    let faulty!: FaultyStore;
    h = await startServer({}, { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
    const admin = await adminFor(h);
    faulty.fail.add('findKey');
    const r = await admin.get('/admin/api/overview');
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    expect(r.headers.get('retry-after')).toBe('1');
    faulty.fail.clear();
    faulty.fail.add('listClients');
    expect(await admin.get('/admin/api/clients')).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    faulty.fail.clear();
    expect((await admin.get('/admin/api/clients')).status).toBe(200);
  });

  it('admin.listen.port: the admin routes are served only on their own listener, and 404 on the main one', async () => {
    h = await startServer({ admin: { listen: { host: '127.0.0.1', port: 0 } } });
    const addr = h.server.adminAddress();
    expect(addr).not.toBeNull();
    expect(addr!.port).not.toBe(h.port);
    const adminBase = `http://127.0.0.1:${addr!.port}`;
    const onAdmin = await adminFor(h, { base: () => adminBase });
    const onMain = await adminFor(h, { key: onAdmin.key });
    for (const [method, path] of ROUTES) {
      const main = await onMain.request(method, path);
      expect({ path, method, status: main.status, code: main.body?.error?.code }).toEqual({ path, method, status: 404, code: 'not_found' });
    }
    expect((await onAdmin.get('/admin/api/overview')).body.node.id).toBe(h.server.config.nodeId);
    expect((await onAdmin.get('/connectors')).status).toBe(200);
    expect((await onAdmin.get('/topics/t.a/presence')).status).toBe(200);
    // The admin listener serves nothing else; the main one everything else.
    expect((await onAdmin.request('POST', '/entity')).status).toBe(404);
    expect((await h.ingest('t.a', 1)).status).toBe(202);
    // Its guard still applies.
    expect((await fetch(`${adminBase}/admin/api/overview`)).status).toBe(401);
    expect(h.logs.some((l) => l.msg === 'admin routes listening on their own port' && l.port === addr!.port)).toBe(true);
    // The main port itself cannot be the admin port.
    expect(() => createServer({ port: 9000, admin: { listen: { port: 9000 } } })).toThrow(/admin\.listen\.port is the main port/);
  });
});
