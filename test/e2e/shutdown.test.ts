import { connect as netConnect } from 'node:net';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { killChildren, startChild, type Child } from '../helpers/child.ts';
import { rawWebSocket } from '../helpers/raw-ws.ts';
import { cli, tempDir } from '../helpers/server.ts';
import { TestClient } from '../helpers/ws-client.ts';

/**
 * Graceful shutdown of `hubcast start` (real processes): on SIGTERM/SIGINT it stops accepting, lets
 * in-flight ingest finish, closes consumers with 1001, closes the store and exits 0 within
 * `shutdown.graceS`, whatever its clients do.
 */

const dirs: string[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await killChildren();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Setup {
  dir: string;
  client: { client_id: string; client_secret: string };
  key: string;
}

async function setup(): Promise<Setup> {
  const dir = tempDir('hubcast-shutdown-');
  dirs.push(dir);
  const client = JSON.parse((await cli(['clients', 'create', '--name', 'sd', '--subscribe', '>', '--json', '--data-dir', dir])).out);
  const key = (JSON.parse((await cli(['keys', 'create', '--name', 'sd', '--json', '--data-dir', dir])).out) as { key: string }).key;
  return { dir, client, key };
}

async function register(p: Child, s: Setup): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${p.port}/consumers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(s.client),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { token: string }).token;
}

async function consumer(p: Child, token: string, topic?: string): Promise<TestClient> {
  const c = new TestClient(`ws://127.0.0.1:${p.port}/ws`, { headers: { authorization: `Bearer ${token}` } });
  clients.push(c);
  await c.opened;
  await c.next('welcome');
  if (topic) await c.subscribe(topic);
  return c;
}

/** Resolves with the exit, or with 'still running' after `ms` (a bound, not a timing target). */
function exitWithin(p: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  return Promise.race([p.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms))]);
}

/**
 * A POST /entity/<topic> whose headers are sent (and answered with 100 Continue, so the server is
 * handling the request) but whose body waits for `finish()`.
 */
function pendingIngest(port: number, key: string, topic: string, body: string) {
  const sock = netConnect({ host: '127.0.0.1', port });
  sock.on('error', () => {});
  let raw = '';
  const cut = Math.floor(body.length / 2);
  const continued = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no 100 Continue: ${raw}`)), 5000);
    sock.on('data', (d: Buffer) => {
      raw += d.toString();
      if (raw.startsWith('HTTP/1.1 100 ')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const response = new Promise<{ status: number; body: any }>((resolve) => {
    const settle = () => {
      const rest = raw.replace(/^HTTP\/1\.1 100 [^\r]*\r\n\r\n/, '');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(rest);
      const sep = rest.indexOf('\r\n\r\n');
      let json: unknown;
      try {
        json = JSON.parse(rest.slice(sep + 4));
      } catch {
        json = undefined;
      }
      resolve({ status: m ? Number(m[1]) : 0, body: json });
    };
    sock.on('data', () => {
      const rest = raw.replace(/^HTTP\/1\.1 100 [^\r]*\r\n\r\n/, '');
      const len = /content-length: (\d+)/i.exec(rest);
      const sep = rest.indexOf('\r\n\r\n');
      if (len && sep !== -1 && Buffer.byteLength(rest.slice(sep + 4)) >= Number(len[1])) settle();
    });
    sock.on('close', settle);
  });
  sock.on('connect', () => {
    sock.write(
      `POST /entity/${topic} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n` +
        body.slice(0, cut),
    );
  });
  return {
    continued,
    response,
    finish: () => sock.write(body.slice(cut)),
    destroy: () => sock.destroy(),
  };
}

describe('graceful shutdown (hubcast start)', () => {
  it('SIGTERM: in-flight ingest gets its 202 and is durable, new requests are refused, consumers get 1001, exit 0', async () => {
    const s = await setup();
    const p = await startChild(s.dir);
    const token = await register(p, s);
    const c = await consumer(p, token, 'sd.inflight');

    const body = JSON.stringify({ note: 'in flight at SIGTERM', pad: 'x'.repeat(2000) });
    const ingest = pendingIngest(p.port, s.key, 'sd.inflight', body);
    await ingest.continued;

    p.child.kill('SIGTERM');
    await p.waitForLog('shutting down');
    expect((await c.closed).code).toBe(1001);
    // New work is refused while the in-flight request runs: 503 (still listening) or no connection.
    const probe = await fetch(`http://127.0.0.1:${p.port}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
      (r) => r.status,
      () => 'refused' as const,
    );
    expect([503, 'refused']).toContain(probe);

    ingest.finish();
    const res = await ingest.response;
    expect(res.status).toBe(202);
    expect(res.body.offset).toBe(1);
    expect(await exitWithin(p, 15_000)).toEqual({ code: 0, signal: null });
    expect(p.stderr()).not.toContain(s.key);
    expect(p.stderr()).not.toContain(token);

    // Durable: after a restart on the same data folder it is in history.
    const again = await startChild(s.dir);
    const c2 = await consumer(again, await register(again, s));
    c2.send({ type: 'subscribe', topic: 'sd.inflight', since: { offset: 0 } });
    expect((await c2.next('subscribed')).offset).toBe(1);
    const m = await c2.next('message');
    expect(m.offset).toBe(1);
    expect(m.data).toEqual(JSON.parse(body));
  });

  it('a consumer that never answers the close handshake does not hold the process beyond shutdown.graceS', async () => {
    const s = await setup();
    const p = await startChild(s.dir, { HUBCAST_SHUTDOWN_GRACE_S: '2' });
    const polite = await consumer(p, await register(p, s), 'sd.stubborn');
    const stubborn = await rawWebSocket(p.port, { Authorization: `Bearer ${await register(p, s)}` });
    expect(await stubborn.waitText((t) => t.includes('"welcome"'))).toBeDefined();

    p.child.kill('SIGTERM');
    expect((await polite.closed).code).toBe(1001);
    // The stubborn one is told 1001 as well, never answers, and is dropped.
    expect(await stubborn.waitCloseCode(3000)).toBe(1001);
    // graceS is 2: the bound is generous (start-up of the close path, a loaded machine), not a timing target.
    expect(await exitWithin(p, 6000)).toEqual({ code: 0, signal: null });
    expect(await stubborn.waitClosed(1000)).toBe(true);
    stubborn.destroy();
  });

  it('an ingest whose body never completes does not hold the process beyond shutdown.graceS; nothing is acknowledged', async () => {
    const s = await setup();
    const p = await startChild(s.dir, { HUBCAST_SHUTDOWN_GRACE_S: '2' });
    const ingest = pendingIngest(p.port, s.key, 'sd.stalled', JSON.stringify({ never: 'finished' }));
    await ingest.continued;
    p.child.kill('SIGTERM');
    expect(await exitWithin(p, 6000)).toEqual({ code: 0, signal: null });
    expect((await ingest.response).status).not.toBe(202);
    ingest.destroy();
    // Cut off by the bounded HTTP close, before the hard deadline had to fire.
    const msgs = p.logs().map((l) => l.msg);
    expect(msgs).toContain('in-flight HTTP requests did not finish within the shutdown grace period; closing their connections');
    expect(msgs).toContain('hubcast stopped');

    const again = await startChild(s.dir);
    const c = await consumer(again, await register(again, s));
    c.send({ type: 'subscribe', topic: 'sd.stalled', since: { offset: 0 } });
    expect((await c.next('subscribed')).offset).toBe(0);
  });

  it('SIGINT shuts down the same way; a second signal does not cut the shutdown short', async () => {
    const s = await setup();
    const p = await startChild(s.dir);
    const c = await consumer(p, await register(p, s));
    p.child.kill('SIGINT');
    p.child.kill('SIGINT');
    expect((await c.closed).code).toBe(1001);
    expect(await exitWithin(p, 15_000)).toEqual({ code: 0, signal: null });
    expect(p.logs().some((l) => l.msg === 'hubcast stopped')).toBe(true);
  });
});
