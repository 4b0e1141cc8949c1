import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
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

  it('a bearer subprotocol without hubcast.v1 → 400 saying what to offer', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    const r = await tryConnect(`${h.wsBase}/ws`, { protocols: [`hubcast.bearer.${token}`] });
    expect(r.status).toBe(400);
    expect('json' in r && r.json.error).toMatchObject({ code: 'bad_request', message: expect.stringContaining('hubcast.v1') });
  });
});
