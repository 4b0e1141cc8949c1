import { rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.ts';
import { createServer } from '../../src/server.ts';
import { killChildren, startChild } from '../helpers/child.ts';
import { cli, startServer, tempDir, type Harness } from '../helpers/server.ts';
import { httpsJson, makeCert, servedFingerprint } from '../helpers/tls.ts';
import { TestClient } from '../helpers/ws-client.ts';

/** tls.cert / tls.key: HTTPS and WSS on one port, the certificate reloaded without dropping connections. */

const dirs: string[] = [];
const clients: TestClient[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await h?.close();
  h = undefined;
  await killChildren();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('hubcast-tls-');
  dirs.push(d);
  return d;
}

async function registerHttps(port: number, ca: Buffer[], creds: { client_id: string; client_secret: string }): Promise<string> {
  const r = await httpsJson(port, '/consumers', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(creds),
    ca,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.token as string;
}

function ingestHttps(port: number, ca: Buffer[], key: string, topic: string, data: unknown) {
  return httpsJson(port, '/entity', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ topic, data }),
    ca,
  });
}

async function wss(port: number, ca: Buffer[], token: string, topic: string): Promise<TestClient> {
  const c = new TestClient(`wss://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` }, ca });
  clients.push(c);
  await c.opened;
  await c.next('welcome');
  await c.subscribe(topic);
  return c;
}

/** Plain HTTP on the TLS port gets no HTTP answer (the TLS handshake fails and the socket closes). */
async function plainHttpFails(port: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => r.status,
    () => 'refused' as const,
  );
  expect(res).toBe('refused');
}

describe('TLS', () => {
  it('serves HTTPS and WSS on one port; reloadTls() switches certificates without dropping live connections', async () => {
    const d = dir();
    const first = makeCert(d);
    h = await startServer({ tls: { cert: first.cert, key: first.key } });
    const port = h.port;
    const ca = [first.pem];

    expect((await httpsJson(port, '/healthz', { ca })).status).toBe(200);
    expect(await servedFingerprint(port, ca)).toBe(first.fingerprint256);
    await plainHttpFails(port);

    const token = await registerHttps(port, ca, await h.createClient());
    h.remember(token);
    const c = await wss(port, ca, token, 'tls.t');
    expect((await ingestHttps(port, ca, h.ingestKey, 'tls.t', { n: 1 })).status).toBe(202);
    expect((await c.next('message')).data).toEqual({ n: 1 });

    // New files in place, then reload: live connections keep going, new ones get the new certificate.
    const second = makeCert(d);
    expect(second.fingerprint256).not.toBe(first.fingerprint256);
    await h.server.reloadTls();
    const both = [first.pem, second.pem];
    expect(await servedFingerprint(port, both)).toBe(second.fingerprint256);
    expect((await ingestHttps(port, [second.pem], h.ingestKey, 'tls.t', { n: 2 })).status).toBe(202);
    expect((await c.next('message')).data).toEqual({ n: 2 });
    expect(c.ws.readyState).toBe(c.ws.OPEN);

    // A broken file on reload: rejected with the key named, the current certificate stays.
    writeFileSync(second.cert, 'not a certificate');
    await expect(h.server.reloadTls()).rejects.toThrow(/tls\.cert/);
    expect(await servedFingerprint(port, both)).toBe(second.fingerprint256);
    expect((await ingestHttps(port, [second.pem], h.ingestKey, 'tls.t', { n: 3 })).status).toBe(202);
    expect((await c.next('message')).data).toEqual({ n: 3 });
  });

  it('slow TLS clients are dropped: a stalled handshake, and stalled headers after it, within limits.headersTimeoutMs', async () => {
    const d = dir();
    const cert = makeCert(d);
    h = await startServer({ tls: { cert: cert.cert, key: cert.key }, limits: { headersTimeoutMs: 1000 } });
    const port = h.port;
    // Bounds are generous (the checks run periodically), yet well below what would be unprotected.
    const noHandshake = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.resume();
      const t = setTimeout(() => (s.destroy(), resolve(false)), 5000);
      s.on('close', () => (clearTimeout(t), resolve(true)));
    });
    expect(noHandshake, 'a TCP connection that never starts TLS is closed').toBe(true);
    const stalledHeaders = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: [cert.pem] }, () => s.write('GET /heal'));
      s.on('error', () => {});
      s.resume(); // read the 408 and the end of the stream
      const t = setTimeout(() => (s.destroy(), resolve(false)), 5000);
      s.on('close', () => (clearTimeout(t), resolve(true)));
    });
    expect(stalledHeaders, 'a TLS connection whose request headers stall is closed').toBe(true);
    expect((await httpsJson(port, '/healthz', { ca: [cert.pem] })).status).toBe(200);
  });

  it('refuses to start on incomplete or unusable TLS config, naming the key', async () => {
    const d = dir();
    const a = makeCert(d, 'a');
    const b = makeCert(d, 'b');
    const base = { host: '127.0.0.1', port: 0, dataDir: d, logLevel: 'silent' as const };
    expect(() => createServer({ ...base, tls: { cert: a.cert } })).toThrow(/tls\.cert and tls\.key go together/);
    expect(() => createServer({ ...base, tls: { cert: `${d}/missing.crt`, key: a.key } })).toThrow(/tls\.cert: cannot read/);
    expect(() => createServer({ ...base, tls: { cert: a.cert, key: `${d}/missing.key` } })).toThrow(/tls\.key: cannot read/);
    expect(() => createServer({ ...base, tls: { cert: a.key, key: a.key } })).toThrow(/tls\.cert: .* does not hold a PEM certificate/);
    expect(() => createServer({ ...base, tls: { cert: a.cert, key: a.cert } })).toThrow(/tls\.key: .* private key/);
    expect(() => createServer({ ...base, tls: { cert: a.cert, key: b.key } })).toThrow(ConfigError);
    expect(() => createServer({ ...base, tls: { cert: a.cert, key: b.key } })).toThrow(/tls\.key: .* does not belong/);

    // The CLI: exit code 2 and the message on stderr.
    const only = await cli(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', d, '--tls-cert', a.cert]);
    expect(only.code).toBe(2);
    expect(only.err).toMatch(/tls/);
    const missing = await cli([
      'start',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--data-dir',
      d,
      '--tls-cert',
      a.cert,
      '--tls-key',
      `${d}/nope`,
    ]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/tls\.key: cannot read/);
  });

  it('hubcast start reloads the certificate on SIGHUP without dropping connections (a real process)', async () => {
    const d = dir();
    const first = makeCert(d);
    const client = JSON.parse((await cli(['clients', 'create', '--name', 'tls', '--subscribe', '>', '--json', '--data-dir', d])).out);
    const key = (JSON.parse((await cli(['keys', 'create', '--name', 'tls', '--json', '--data-dir', d])).out) as { key: string }).key;
    const p = await startChild(d, { HUBCAST_TLS_CERT: first.cert, HUBCAST_TLS_KEY: first.key });
    const ca = [first.pem];
    const token = await registerHttps(p.port, ca, client);
    const c = await wss(p.port, ca, token, 'tls.hup');
    expect((await ingestHttps(p.port, ca, key, 'tls.hup', 'before')).status).toBe(202);
    expect((await c.next('message')).data).toBe('before');
    await plainHttpFails(p.port);

    const second = makeCert(d);
    p.child.kill('SIGHUP');
    await p.waitForLog('TLS certificate reloaded');
    const both = [first.pem, second.pem];
    expect(await servedFingerprint(p.port, both)).toBe(second.fingerprint256);
    expect((await ingestHttps(p.port, [second.pem], key, 'tls.hup', 'after')).status).toBe(202);
    expect((await c.next('message')).data).toBe('after');

    // A bad file: the reload fails, is logged, and the process keeps serving the current certificate.
    writeFileSync(second.key, 'garbage');
    p.child.kill('SIGHUP');
    await p.waitForLog('TLS reload failed; keeping the current certificate');
    expect(await servedFingerprint(p.port, both)).toBe(second.fingerprint256);
    expect((await ingestHttps(p.port, [second.pem], key, 'tls.hup', 'still')).status).toBe(202);
    expect((await c.next('message')).data).toBe('still');

    p.child.kill('SIGTERM');
    expect((await c.closed).code).toBe(1001);
    expect((await p.exited).code).toBe(0);
    for (const secret of [token, key, client.client_secret as string]) expect(p.stderr()).not.toContain(secret);
  });
});
