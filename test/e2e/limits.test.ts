import { afterEach, describe, expect, it } from 'vitest';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { ManualClock, startServer, type Harness } from '../helpers/server.ts';
import { tryConnect } from '../helpers/upgrade.ts';

const BOGUS = 'A'.repeat(43);

describe('flood resistance and limits', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const attempt = (token: string, localAddress = '127.0.0.1', headers: Record<string, string> = {}) =>
    tryConnect(`${h!.wsBase}/ws`, { headers: { authorization: `Bearer ${token}`, ...headers }, localAddress });

  it('a source past its failure budget gets 429 with Retry-After and no lookup; other sources are unaffected; it refills', async () => {
    const clock = new ManualClock();
    h = await startServer({ limits: { authFailures: { perMinute: 60, burst: 5 } } }, { clock });
    const good = await h.register(await h.createClient());
    for (let i = 0; i < 5; i++) expect((await attempt(BOGUS, '127.0.0.2')).status).toBe(401);
    const limited = await attempt(BOGUS, '127.0.0.2');
    expect(limited.status).toBe(429);
    expect('json' in limited && limited.json.error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Even a valid token from that address is refused without a lookup…
    expect((await attempt(good, '127.0.0.2')).status).toBe(429);
    // …while another address connects.
    const ok = await attempt(good, '127.0.0.1');
    expect(ok.status).toBe(101);
    ok.client.ws.terminate();
    const rejectedBefore = h.logs.filter((l) => l.msg === 'connection rejected: invalid credentials').length;
    expect(rejectedBefore).toBe(5);
    clock.advance(61_000);
    await new Promise((r) => setTimeout(r, 100));
    expect((await attempt(good, '127.0.0.2')).status).toBe(101);
  });

  it('failed registrations and ticket requests spend the consumer budget (bad ingest keys spend their own)', async () => {
    h = await startServer({ limits: { authFailures: { perMinute: 1, burst: 3 }, ingestAuthFailures: { perMinute: 1, burst: 3 } } });
    const creds = await h.createClient();
    const bad = { ...creds, client_secret: 'wrong' };
    const post = () =>
      h!.fetchJson('/consumers', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bad) });
    expect((await post()).status).toBe(401);
    expect((await post()).status).toBe(401);
    const ingest = await h.fetchJson('/entity', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BOGUS}` },
      body: JSON.stringify({ topic: 'a', data: 1 }),
    });
    expect(ingest.status).toBe(401);
    expect((await post()).status).toBe(401);
    const tickets = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${BOGUS}` } });
    expect(tickets.status).toBe(429);
    const limited = await post();
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(limited.headers.get('retry-after')).toBe('60');
  });

  it('client-secret hashing runs under a concurrency cap: excess registrations get 503 with Retry-After', async () => {
    h = await startServer({ limits: { registerConcurrency: 1 } });
    const creds = await h.createClient();
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        h!.fetchJson('/consumers', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(creds) }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses).toContain(201);
    expect(statuses).toContain(503);
    for (const r of results.filter((x) => x.status === 503)) {
      expect(r.body.error.code).toBe('unavailable');
      expect(r.headers.get('retry-after')).toBe('1');
    }
  });

  it('connection caps: global (503), per IP and per client (429 connection_limit)', async () => {
    h = await startServer({ limits: { maxConnections: 3, connectionsPerIp: 2, connectionsPerClient: 1 } });
    const c1 = await h.createClient();
    const c2 = await h.createClient();
    const c3 = await h.createClient();
    const a = await attempt(await h.register(c1), '127.0.0.1');
    expect(a.status).toBe(101);
    const sameClient = await attempt(await h.register(c1), '127.0.0.3');
    expect(sameClient.status).toBe(429);
    expect('json' in sameClient && sameClient.json.error.code).toBe('connection_limit');
    expect((await attempt(await h.register(c2), '127.0.0.1')).status).toBe(101);
    const thirdFromIp = await attempt(await h.register(c3), '127.0.0.1');
    expect(thirdFromIp.status).toBe(429);
    expect((await attempt(await h.register(c3), '127.0.0.2')).status).toBe(101);
    const c4 = await h.createClient();
    const overGlobal = await attempt(await h.register(c4), '127.0.0.4');
    expect(overGlobal.status).toBe(503);
    expect('json' in overGlobal && overGlobal.json.error.code).toBe('unavailable');
    // A closed connection frees its place.
    a.client.ws.close();
    await a.client.closed;
    await new Promise((r) => setTimeout(r, 50));
    expect((await attempt(await h.register(c4), '127.0.0.4')).status).toBe(101);
  });

  it('origin allow-list: exact match; other origins get 403; no Origin (not a browser) is allowed', async () => {
    h = await startServer({ ws: { allowedOrigins: ['https://app.example.com'] } });
    const creds = await h.createClient();
    const evil = await attempt(await h.register(creds), '127.0.0.1', { origin: 'https://evil.example.com' });
    expect(evil.status).toBe(403);
    expect('json' in evil && evil.json.error.code).toBe('origin_not_allowed');
    const near = await attempt(await h.register(creds), '127.0.0.1', { origin: 'https://app.example.com:8443' });
    expect(near.status).toBe(403);
    const ok = await attempt(await h.register(creds), '127.0.0.1', { origin: 'https://app.example.com' });
    expect(ok.status).toBe(101);
    ok.client.ws.terminate();
    await ok.client.closed;
    await new Promise((r) => setTimeout(r, 50));
    expect((await attempt(await h.register(creds), '127.0.0.1')).status).toBe(101);
  });

  it('an upgrade whose authentication stalls past limits.authTimeoutMs is destroyed', async () => {
    let faulty!: FaultyStore;
    h = await startServer({ limits: { authTimeoutMs: 300 } }, { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
    const token = await h.register(await h.createClient());
    faulty.slow.set('getToken', 3000);
    const started = Date.now();
    await expect(attempt(token)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2500);
    expect(h.logs.some((l) => l.msg === 'upgrade: authentication deadline passed; socket destroyed')).toBe(true);
    faulty.slow.clear();
    expect((await attempt(token)).status).toBe(101);
  });
});
