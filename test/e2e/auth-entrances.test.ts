import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type ClientCreds, type Harness } from '../helpers/server.ts';
import { tryConnect, withDb } from '../helpers/upgrade.ts';

/**
 * The consumer and key entrances' defences: separate budgets of failed authentications, the cap on
 * tokens per client, the registration rate limits, and what reaches the log when a caller swaps
 * its client_id and client_secret.
 */

const BOGUS = 'A'.repeat(43);
const json = { 'content-type': 'application/json' };

/** POST over a real loopback socket bound to `from` (fetch cannot choose its source address). */
function postFrom(
  h: Harness,
  from: string,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.port, path, method: 'POST', headers, localAddress: from }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

describe('authentication entrances', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  const register = (creds: ClientCreds | Record<string, string>, from = '127.0.0.1') =>
    postFrom(h!, from, '/consumers', json, JSON.stringify(creds)).then((r) => {
      if (typeof r.body?.token === 'string') h!.remember(r.body.token as string);
      return r;
    });
  const ingest = (key: string, from = '127.0.0.1') =>
    postFrom(h!, from, '/entity', { ...json, authorization: `Bearer ${key}` }, JSON.stringify({ topic: 'a', data: 1 }));
  const ticket = (token: string) => h!.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}` } });

  describe('separate budgets of failed authentications', () => {
    it('browsers failing consumer authentication do not throttle ingest from the same address', async () => {
      h = await startServer({ limits: { authFailures: { perMinute: 1, burst: 3 } } });
      const creds = await h.createClient();
      const bad = { ...creds, client_secret: BOGUS };
      expect((await register(bad)).status).toBe(401);
      expect((await ticket(BOGUS)).status).toBe(401);
      expect((await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${BOGUS}` } })).status).toBe(401);
      // The consumer budget of 127.0.0.1 is spent: every consumer entrance answers 429…
      const limited = await register(creds);
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('rate_limited');
      expect((await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${BOGUS}` } })).status).toBe(429);
      // …while the backend's ingest from the same address goes on.
      const ok = await ingest(h.ingestKey);
      expect(ok.status).toBe(202);
    });

    it('a backend failing its ingest key does not throttle consumer registration from the same address', async () => {
      h = await startServer({ limits: { authFailures: { perMinute: 1, burst: 3 }, ingestAuthFailures: { perMinute: 1, burst: 2 } } });
      const creds = await h.createClient();
      expect((await ingest(BOGUS, '127.0.0.2')).status).toBe(401);
      expect((await ingest(BOGUS, '127.0.0.2')).status).toBe(401);
      const limited = await ingest(h.ingestKey, '127.0.0.2');
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('rate_limited');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await register(creds, '127.0.0.2')).status).toBe(201);
      // Another address's ingest is not affected either.
      expect((await ingest(h.ingestKey, '127.0.0.1')).status).toBe(202);
    });

    it('admin key failures have a budget of their own: they do not throttle ingest', async () => {
      h = await startServer({ admin: { allow: ['127.0.0.0/8'] }, limits: { ingestAuthFailures: { perMinute: 1, burst: 2 } } });
      const admin = () => h!.fetchJson('/connectors', { headers: { authorization: `Bearer ${BOGUS}` } });
      expect((await admin()).status).toBe(401);
      expect((await admin()).status).toBe(401);
      expect((await admin()).status).toBe(429);
      expect((await ingest(h.ingestKey)).status).toBe(202);
    });
  });

  describe('a client secret never reaches the log', () => {
    it('when the caller swaps client_id and client_secret (JSON, headers, Basic): a hash prefix is logged instead', async () => {
      h = await startServer();
      const creds = await h.createClient();
      const swapped = { client_id: creds.client_secret, client_secret: creds.client_id };
      expect((await register(swapped)).status).toBe(401);
      expect(
        (await postFrom(h, '127.0.0.1', '/consumers', { client_id: creds.client_secret, client_secret: creds.client_id }, '')).status,
      ).toBe(401);
      const basic = `Basic ${Buffer.from(`${creds.client_secret}:${creds.client_id}`).toString('base64')}`;
      h.remember(basic.slice(6));
      expect((await postFrom(h, '127.0.0.1', '/consumers', { authorization: basic }, '')).status).toBe(401);

      const rejected = h.logs.filter((l) => l.msg === 'registration rejected: invalid client');
      expect(rejected).toHaveLength(3);
      const prefix = createHash('sha256').update(creds.client_secret).digest('hex').slice(0, 12);
      for (const l of rejected) {
        expect(l.client_id).toBeUndefined();
        expect(l.client_id_sha256).toBe(prefix);
      }
      expect(h.logText()).not.toContain(creds.client_secret);
      // A value shaped like a client id is still logged as is (what operators search for).
      expect((await register({ client_id: creds.client_id, client_secret: BOGUS })).status).toBe(401);
      expect(h.logs.filter((l) => l.msg === 'registration rejected: invalid client').at(-1)!.client_id).toBe(creds.client_id);
    });
  });

  describe('tokens per client are capped', () => {
    it('past tokens.maxPerClient the least recently used idle token is revoked; a token with a live connection never is', async () => {
      h = await startServer({ tokens: { maxPerClient: 3 } });
      const creds = await h.createClient();
      const t1 = (await register(creds)).body.token as string;
      const t2 = (await register(creds)).body.token as string;
      const t3 = (await register(creds)).body.token as string;
      const live = await h.connect(t1); // t1 is the oldest, but live
      const r4 = await register(creds);
      expect(r4.status).toBe(201);
      const t4 = r4.body.token as string;
      // t2 (the oldest idle token) made room; the others work.
      expect((await ticket(t2)).status).toBe(401);
      for (const t of [t3, t4]) expect((await ticket(t)).status).toBe(201);
      expect(live.ws.readyState).toBe(live.ws.OPEN);
      expect(withDb(h.dataDir, (db) => db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE client_id = ?').get(creds.client_id))).toEqual({
        n: 3,
      });
      expect(h.logs.some((l) => l.msg === 'consumer registered' && l.revoked_tokens === 1)).toBe(true);
    });

    it('when every token of the client has a live connection: 429 token_limit with Retry-After, nothing revoked', async () => {
      h = await startServer({ tokens: { maxPerClient: 2 } });
      const creds = await h.createClient();
      const a = await h.connect((await register(creds)).body.token as string);
      const b = await h.connect((await register(creds)).body.token as string);
      const r = await register(creds);
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('token_limit');
      expect(r.headers['retry-after']).toBe('5');
      expect(a.ws.readyState).toBe(a.ws.OPEN);
      expect(b.ws.readyState).toBe(b.ws.OPEN);
      await a.close();
      // Once a token is idle again, the next registration replaces it.
      let again = await register(creds);
      for (let i = 0; i < 50 && again.status === 429; i++) {
        await new Promise((res) => setTimeout(res, 20));
        again = await register(creds);
      }
      expect(again.status).toBe(201);
    });
  });

  describe('successful registrations are rate-limited', () => {
    it('per client: past the burst, 429 registration_rate_limited with Retry-After; failures do not spend it', async () => {
      h = await startServer({ limits: { registrations: { perClientBurst: 3, perClientPerMinute: 6 } } });
      const creds = await h.createClient();
      const other = await h.createClient();
      // Someone without the secret cannot use up the client's allowance.
      for (let i = 0; i < 5; i++) expect((await register({ ...creds, client_secret: BOGUS }, '127.0.0.3')).status).toBe(401);
      for (let i = 0; i < 3; i++) expect((await register(creds)).status).toBe(201);
      const limited = await register(creds);
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('registration_rate_limited');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(10);
      // Another client from the same address is not affected.
      expect((await register(other)).status).toBe(201);
    });

    it('per source address, across clients', async () => {
      h = await startServer({ limits: { registrations: { perIpBurst: 2, perIpPerMinute: 1 } } });
      const [a, b, c] = [await h.createClient(), await h.createClient(), await h.createClient()];
      expect((await register(a)).status).toBe(201);
      expect((await register(b)).status).toBe(201);
      const limited = await register(c);
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('registration_rate_limited');
      expect(limited.headers['retry-after']).toBe('60');
      expect((await register(c, '127.0.0.4')).status).toBe(201);
    });
  });
});
