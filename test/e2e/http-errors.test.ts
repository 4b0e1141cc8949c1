import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
import { rawHttp, upgradeHead } from '../helpers/raw-http.ts';
import { tryConnect } from '../helpers/upgrade.ts';

/** Sends a raw HTTP request and returns status, headers and JSON body of the answer (bounded). */
function rawRequest(port: number, lines: string[]): Promise<{ status: number; head: string; body: any }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let raw = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer: ${raw}`));
    }, 3000);
    sock.on('data', (d) => (raw += d.toString()));
    sock.on('close', () => {
      clearTimeout(timer);
      const [head = '', body = ''] = raw.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), head, body: body ? JSON.parse(body) : undefined });
    });
    sock.on('error', reject);
    sock.write(lines.join('\r\n') + '\r\n\r\n');
  });
}

describe('every HTTP error is the documented JSON body', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a known path with another method → 405 method_not_allowed with Allow', async () => {
    h = await startServer();
    for (const [method, path, allow] of [
      ['GET', '/consumers', 'POST'],
      ['PUT', '/entity/orders.eu', 'POST'],
      ['DELETE', '/healthz', 'GET'],
    ] as const) {
      const r = await h.fetchJson(path, { method });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.body.error.code).toBe('method_not_allowed');
      expect(r.headers.get('allow')).toBe(allow);
    }
    const nf = await h.fetchJson('/nowhere');
    expect(nf).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });

  it('malformed WebSocket handshakes are refused by Hubcast itself with JSON 400', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    const base = ['GET /ws HTTP/1.1', 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket', `Authorization: Bearer ${token}`];
    const noKey = await rawRequest(h.port, [...base, 'Sec-WebSocket-Version: 13']);
    expect(noKey.status).toBe(400);
    expect(noKey.body.error).toMatchObject({ code: 'bad_request', message: 'missing or invalid Sec-WebSocket-Key' });
    const badVersion = await rawRequest(h.port, [...base, 'Sec-WebSocket-Version: 7', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
    expect(badVersion.status).toBe(400);
    expect(badVersion.head).toMatch(/Sec-WebSocket-Version: 13, 8/);
    expect(badVersion.body.error.code).toBe('bad_request');
    const post = await rawRequest(h.port, [
      ...base.map((l) => l.replace('GET', 'POST')),
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ]);
    expect(post.status).toBe(400);
    expect(post.body.error.code).toBe('bad_request');
    // The same token still connects properly: nothing was consumed by the refusals.
    expect((await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(101);
  });

  it('POST /consumers/ (trailing slash) → 404 not_found, not a 405 that says "use POST"', async () => {
    h = await startServer();
    for (const [method, path] of [
      ['POST', '/consumers/'],
      ['POST', '/consumers/tickets/'],
      ['GET', '/healthz/'],
    ] as const) {
      const r = await h.fetchJson(path, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
      expect(r.headers.get('allow')).toBeNull();
    }
  });

  it("requests Node's parser refuses get the JSON error with the right status, then the connection closes", async () => {
    h = await startServer();
    const upgrade = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n';
    const cases: [string, string, number, string][] = [
      ['garbage', 'HELLO THERE\r\n\r\n', 400, 'bad_request'],
      ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400, 'bad_request'],
      ['bad header name', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', 400, 'bad_request'],
      ['no Host', 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'bad_request'],
      ['header overflow', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
      ['header overflow on an upgrade', `${upgrade}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
      ['Expect: other', 'POST /consumers HTTP/1.1\r\nHost: x\r\nExpect: later\r\nContent-Length: 2\r\n\r\n{}', 417, 'expectation_failed'],
      ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, 'method_not_allowed'],
    ];
    for (const [name, request, status, code] of cases) {
      const r = await rawHttp(h.port, [request], 3000, true);
      expect(r.timedOut, name).toBe(false);
      expect(r.status, `${name}: ${r.raw.slice(0, 200)}`).toBe(status);
      expect(r.headers['content-type'], name).toMatch(/^application\/json/);
      expect(JSON.parse(r.body), name).toEqual({ error: { code, message: expect.any(String) } });
      expect(r.closed, name).toBe(true);
    }
    expect((await h.fetchJson('/healthz')).status).toBe(200);
  });

  it('headers not complete within limits.headersTimeoutMs → 408 request_timeout as JSON', async () => {
    h = await startServer({ limits: { headersTimeoutMs: 1000 } });
    const r = await rawHttp(h.port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n'], 6000, true);
    expect(r.timedOut).toBe(false);
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'request_timeout', message: expect.any(String) } });
  });

  it("a malformed Sec-WebSocket-Protocol → JSON 400 from Hubcast (not the WebSocket library's text), even with a valid token", async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    for (const protocols of ['hubcast.v1,,x', 'hubcast.v1 x', 'hubcast.v1, hubcast.v1', 'hubcast.v1;x']) {
      const r = await rawHttp(h.port, [upgradeHead('/ws', { Authorization: `Bearer ${token}`, 'Sec-WebSocket-Protocol': protocols }, 'x')]);
      expect(r.status, protocols).toBe(400);
      expect(r.headers['content-type'], protocols).toMatch(/^application\/json/);
      expect(JSON.parse(r.body).error.code, protocols).toBe('bad_request');
    }
  });

  it("an unacceptable Sec-WebSocket-Extensions (ws.perMessageDeflate on) → JSON 400, not the WebSocket library's text", async () => {
    h = await startServer({ ws: { perMessageDeflate: true } });
    const token = await h.register(await h.createClient());
    const r = await rawHttp(h.port, [
      upgradeHead(
        '/ws',
        { Authorization: `Bearer ${token}`, 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=99' },
        'x',
      ),
    ]);
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'bad_request', message: expect.stringContaining('Sec-WebSocket-Extensions') });
  });

  it('a bearer subprotocol without hubcast.v1 → 400 saying what to offer', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    const r = await tryConnect(`${h.wsBase}/ws`, { protocols: [`hubcast.bearer.${token}`] });
    expect(r.status).toBe(400);
    expect('json' in r && r.json.error).toMatchObject({ code: 'bad_request', message: expect.stringContaining('hubcast.v1') });
  });
});
