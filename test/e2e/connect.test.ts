import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ConfigInput } from '../../src/config/schema.ts';
import { cli, eventually, ManualClock, startServer, tempDir, type ClientCreds, type Harness } from '../helpers/server.ts';
import { dbToken, fetchMetrics, metricValue, rawUpgrade, sha256Hex, spawnServer, tryConnect, type Attempt } from '../helpers/upgrade.ts';
import { TestClient, type Frame } from '../helpers/ws-client.ts';
import { closeOf } from '../helpers/refusal.ts';

const DAY = 86_400_000;

describe('GET /ws: authenticate, connect, stay connected', () => {
  let h: Harness | undefined;
  let own: TestClient[] = [];

  afterEach(async () => {
    for (const c of own) c.ws.terminate();
    own = [];
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  async function setup(config: ConfigInput = {}, clock?: ManualClock) {
    h = await startServer(config, clock ? { clock } : {});
    const creds = await h.createClient({ subscribe: ['>'] });
    h!.remember(creds.client_secret);
    return { h, creds };
  }

  async function register(creds: ClientCreds): Promise<string> {
    const t = await h!.register(creds);
    h!.remember(t);
    return t;
  }

  async function ticketFor(token: string): Promise<string> {
    const r = await h!.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(201);
    h!.remember(r.body.ticket);
    return r.body.ticket as string;
  }

  /** A handshake through a real ws client; the client is cleaned up after the test. */
  async function attempt(query = '', opts: ConstructorParameters<typeof TestClient>[1] = {}, path = '/ws'): Promise<Attempt> {
    const a = await tryConnect(`${h!.wsBase}${path}${query}`, opts);
    own.push(a.client);
    return a;
  }

  async function connected(query = '', opts: ConstructorParameters<typeof TestClient>[1] = {}, path = '/ws') {
    const a = await attempt(query, opts, path);
    expect(a.status, `handshake answer: ${'body' in a ? a.body : ''}`).toBe(101);
    const welcome = await a.client.next('welcome');
    return { ...a, welcome };
  }

  const UNAUTHORIZED_CLOSE = { code: 4511, reason: 'unauthorized', frames: 0 };

  function expectUnauthorized(a: Attempt): void {
    expect(a.status).toBe(401);
    if (!('body' in a)) throw new Error('expected a plain HTTP rejection');
    expect(a.json).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(a.headers.upgrade).toBeUndefined();
    expect(a.client.ws.readyState).not.toBe(WebSocket.OPEN);
  }

  const welcomeOf = (creds: ClientCreds, heartbeat = 25): Frame => ({
    type: 'welcome',
    connection_id: expect.any(String),
    client_id: creds.client_id,
    heartbeat_s: heartbeat,
  });

  async function metrics(): Promise<string> {
    return fetchMetrics(h!.base);
  }

  describe('credential methods', () => {
    it('Authorization: Bearer → 101 and a welcome frame as the first frame', async () => {
      const { creds } = await setup();
      const token = await register(creds);
      const a = await attempt('', { headers: { authorization: `Bearer ${token}` } });
      expect(a.status).toBe(101);
      const first = await a.client.next();
      expect(first).toEqual(welcomeOf(creds));
      expect(String(first.connection_id).length).toBeGreaterThan(0);
      expect(first.connection_id).not.toContain(token);
    });

    it('the Bearer scheme is case-insensitive', async () => {
      const { creds } = await setup();
      const token = await register(creds);
      const { welcome } = await connected('', { headers: { authorization: `bearer ${token}` } });
      expect(welcome).toEqual(welcomeOf(creds));
    });

    it('also served at /ws/publish', async () => {
      const { creds } = await setup();
      const token = await register(creds);
      const { welcome } = await connected('', { headers: { authorization: `Bearer ${token}` } }, '/ws/publish');
      expect(welcome).toEqual(welcomeOf(creds));
    });

    it('headers client_id + token → 101; a client_id that is not the token’s → 401', async () => {
      const { h, creds } = await setup();
      const other = await h.createClient({ name: 'other' });
      h!.remember(other.client_secret);
      const token = await register(creds);

      const wrong = await attempt('', { headers: { client_id: other.client_id, token } });
      expectUnauthorized(wrong);
      const bogus = await attempt('', { headers: { client_id: 'c_nosuchclient', token } });
      expectUnauthorized(bogus);
      const onlyToken = await attempt('', { headers: { token } });
      expectUnauthorized(onlyToken);
      const onlyId = await attempt('', { headers: { client_id: creds.client_id } });
      expectUnauthorized(onlyId);

      const { welcome } = await connected('', { headers: { client_id: creds.client_id, token } });
      expect(welcome).toEqual(welcomeOf(creds));

      const m = await metrics();
      expect(metricValue(m, 'hubcast_auth_failures_total', { reason: 'client_mismatch' })).toBe(2);
    });

    it('subprotocol hubcast.v1 + hubcast.bearer.<token>: the server selects exactly hubcast.v1 and never echoes the token', async () => {
      const { creds } = await setup();
      const token = await register(creds);
      const a = await connected('', { protocols: ['hubcast.v1', `hubcast.bearer.${token}`] });
      expect(a.client.ws.protocol).toBe('hubcast.v1');
      expect(a.headers['sec-websocket-protocol']).toBe('hubcast.v1');
      expect(a.rawHeaders.length).toBeGreaterThan(0);
      expect(a.rawHeaders.join('\n')).not.toContain(token);
      expect(a.welcome).toEqual(welcomeOf(creds));
      await a.client.close();

      // The order of the offered protocols does not matter.
      const b = await connected('', { protocols: [`hubcast.bearer.${token}`, 'hubcast.v1'] });
      expect(b.client.ws.protocol).toBe('hubcast.v1');
      expect(b.rawHeaders.join('\n')).not.toContain(token);
    });

    it('subprotocol: the raw 101 response carries Sec-WebSocket-Protocol: hubcast.v1 and nothing of the token', async () => {
      const { h, creds } = await setup();
      const token = await register(creds);
      const r = await rawUpgrade(h.port, { headers: { 'Sec-WebSocket-Protocol': `hubcast.v1, hubcast.bearer.${token}` } });
      expect(r.status).toBe(101);
      expect(r.headers['sec-websocket-protocol']).toBe('hubcast.v1');
      expect(r.raw).not.toContain(token);
      expect(r.raw).not.toContain('hubcast.bearer');
    });

    it('?ticket= works once; the reused ticket → close 4511 unauthorized', async () => {
      const { creds } = await setup();
      const token = await register(creds);
      const ticket = await ticketFor(token);
      const a = await connected(`?ticket=${ticket}`);
      expect(a.welcome).toEqual(welcomeOf(creds));
      await a.client.close();
      await eventually(async () => (await h!.connections()).length === 0, 3000, 'connection removed');

      expect(await closeOf(await attempt(`?ticket=${ticket}`))).toEqual(UNAUTHORIZED_CLOSE);
      // The token itself is still good, and a fresh ticket works.
      const fresh = await ticketFor(token);
      expect((await connected(`?ticket=${fresh}`)).welcome).toEqual(welcomeOf(creds));
    });

    it('a ticket rejected once (here: while its token is connected → close 4010) is spent', async () => {
      const { creds } = await setup();
      const token = await register(creds);
      const ticket = await ticketFor(token);
      const first = await connected('', { headers: { authorization: `Bearer ${token}` } });
      expect(await closeOf(await attempt(`?ticket=${ticket}`))).toEqual({ code: 4010, reason: 'duplicate_connection', frames: 0 });
      await first.client.close();
      await eventually(async () => (await h!.connections()).length === 0, 3000, 'connection removed');
      expect(await closeOf(await attempt(`?ticket=${ticket}`))).toEqual(UNAUTHORIZED_CLOSE);
    });

    it('an expired ticket → close 4511 (ManualClock); a ticket within its 30 s works', async () => {
      const clock = new ManualClock();
      const { creds } = await setup({}, clock);
      const token = await register(creds);
      const late = await ticketFor(token);
      clock.advance(31_000);
      expect(await closeOf(await attempt(`?ticket=${late}`))).toEqual(UNAUTHORIZED_CLOSE);

      const timely = await ticketFor(token);
      clock.advance(29_000);
      expect((await connected(`?ticket=${timely}`)).welcome).toEqual(welcomeOf(creds));
    });
  });

  describe('rejections before the upgrade', () => {
    it('missing, malformed, unknown, expired, revoked, mismatched token: plain 401 with one identical body; browser forms: close 4511', async () => {
      const clock = new ManualClock();
      const { h, creds } = await setup({}, clock);
      const other = await h.createClient({ name: 'other' });
      const revokedClient = await h.createClient({ name: 'to-revoke' });
      h!.remember(other.client_secret, revokedClient.client_secret);

      const expiring = await register(creds);
      const revokedToken = await register(revokedClient);
      const good = await register(creds);
      const usedTicket = await ticketFor(good);
      const c = await connected(`?ticket=${usedTicket}`);
      await c.client.close();
      await eventually(async () => (await h.connections()).length === 0, 3000, 'connection removed');

      expect((await cli(['clients', 'revoke', revokedClient.client_id, '--data-dir', h.dataDir])).code).toBe(0);
      clock.advance(30 * DAY + 1000); // `expiring` was never used since issue: expired now

      const fresh = await register(other); // issued after the clock moved: valid
      const attempts: [string, Attempt][] = [
        ['missing', await attempt('')],
        ['empty bearer', await attempt('', { headers: { authorization: 'Bearer ' } })],
        ['malformed bearer', await attempt('', { headers: { authorization: 'Bearer abc' } })],
        ['other scheme', await attempt('', { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })],
        ['unknown', await attempt('', { headers: { authorization: `Bearer ${'A'.repeat(43)}` } })],
        ['expired', await attempt('', { headers: { authorization: `Bearer ${expiring}` } })],
        ['revoked', await attempt('', { headers: { authorization: `Bearer ${revokedToken}` } })],
        ['mismatch', await attempt('', { headers: { client_id: creds.client_id, token: fresh } })],
      ];
      for (const [name, a] of attempts) {
        expect(a.status, name).toBe(401);
        expectUnauthorized(a);
      }
      expect(new Set(attempts.map(([, a]) => ('body' in a ? a.body : ''))).size).toBe(1);
      // The browser forms cannot read a status: the same refusal is a close code, identical for all.
      for (const [name, a] of [
        ['used ticket', await attempt(`?ticket=${usedTicket}`)],
        ['unknown ticket', await attempt(`?ticket=${'B'.repeat(43)}`)],
        ['malformed ticket', await attempt('?ticket=nope')],
        ['unknown subprotocol token', await attempt('', { protocols: ['hubcast.v1', `hubcast.bearer.${'C'.repeat(43)}`] })],
      ] as const)
        expect(await closeOf(a), name).toEqual(UNAUTHORIZED_CLOSE);

      // Nothing was upgraded: no connection exists, none was recorded.
      const m = await metrics();
      expect(metricValue(m, 'hubcast_connections')).toBe(0);
      expect(await h.connections()).toEqual([]);
      // Revoking deletes the client's tokens, so a revoked token may be counted as `unknown`.
      for (const reason of ['missing', 'malformed', 'unknown', 'expired', 'client_mismatch'])
        expect(metricValue(m, 'hubcast_auth_failures_total', { reason }), reason).toBeGreaterThanOrEqual(1);
      const total = ['missing', 'malformed', 'unknown', 'expired', 'revoked', 'client_mismatch'].reduce(
        (n, reason) => n + (metricValue(m, 'hubcast_auth_failures_total', { reason }) ?? 0),
        0,
      );
      expect(total).toBe(attempts.length + 4); // the four browser forms count as failures too

      // The valid token still connects.
      expect((await connected('', { headers: { authorization: `Bearer ${fresh}` } })).welcome).toEqual(welcomeOf(other));
    });

    it('the raw HTTP answer to a rejected upgrade is a plain 401 with the JSON body, then the socket closes', async () => {
      const { h } = await setup();
      const r = await rawUpgrade(h.port, { headers: { Authorization: `Bearer ${'A'.repeat(43)}` } });
      expect(r.raw.startsWith('HTTP/1.1 401 ')).toBe(true);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.headers.upgrade).toBeUndefined();
      expect(r.headers['sec-websocket-accept']).toBeUndefined();
      expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
      expect(JSON.parse(r.body)).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });

      const missing = await rawUpgrade(h.port);
      expect(missing.status).toBe(401);
      expect(missing.body).toBe(r.body);
    });

    it('an upgrade on an unknown path → 404 not_found, even with a valid token', async () => {
      const { h, creds } = await setup();
      const token = await register(creds);
      for (const path of ['/nope', '/', '/ws/other', '/wsx', '/consumers']) {
        const r = await rawUpgrade(h.port, { path, headers: { Authorization: `Bearer ${token}` } });
        expect(r.status, path).toBe(404);
        expect(JSON.parse(r.body), path).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
        expect(r.headers.upgrade).toBeUndefined();
      }
      const a = await attempt('', { headers: { authorization: `Bearer ${token}` } }, '/nope');
      expect(a.status).toBe(404);
      expect('json' in a && a.json).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
      expect(await h.connections()).toEqual([]);
    });
  });

  describe('?topics= at connect', () => {
    it('subscribes at connect: the subscribed frames come right after welcome, and messages flow', async () => {
      const { h, creds } = await setup();
      const token = await register(creds);
      await h.ingest('a.b', { before: true });
      const a = await attempt('?topics=a.b,c.*', { headers: { authorization: `Bearer ${token}` } });
      expect(a.status).toBe(101);
      const frames = [await a.client.next(), await a.client.next(), await a.client.next()];
      expect(frames[0]).toEqual(welcomeOf(creds));
      const subs = frames.slice(1).sort((x, y) => String(x.topic).localeCompare(String(y.topic)));
      expect(subs[0]).toEqual({ type: 'subscribed', topic: 'a.b', offset: 1, epoch: expect.any(String), recovered: false });
      expect(subs[1]).toMatchObject({ type: 'subscribed', topic: 'c.*' });
      // Nothing from before the connect is replayed without `since`.
      expect(a.client.all()).toEqual([]);

      expect((await h.ingest('c.x', { n: 1 })).status).toBe(202);
      expect(await a.client.next('message')).toMatchObject({ type: 'message', topic: 'c.x', offset: 1, data: { n: 1 } });
      expect((await h.ingest('a.b', { n: 2 })).status).toBe(202);
      expect(await a.client.next('message')).toMatchObject({ type: 'message', topic: 'a.b', offset: 2, data: { n: 2 } });
      expect((await h.ingest('c.x.y', { n: 3 })).status).toBe(202);
      a.client.send({ type: 'ping', id: 'p1' });
      expect(await a.client.next()).toEqual({ type: 'pong', id: 'p1' });
      expect(a.client.all()).toEqual([]); // c.x.y does not match c.*
    });

    it('a topic outside the client’s ACL given at connect → error forbidden, the connection stays', async () => {
      const { h } = await setup();
      const narrow = await h.createClient({ name: 'narrow', subscribe: ['orders.*'] });
      h!.remember(narrow.client_secret);
      const token = await register(narrow);
      const a = await connected('?topics=orders.eu,secret.stuff', { headers: { authorization: `Bearer ${token}` } });
      const f1 = await a.client.next();
      const f2 = await a.client.next();
      const byType = Object.fromEntries([f1, f2].map((f) => [f.type, f]));
      expect(byType.subscribed).toMatchObject({ type: 'subscribed', topic: 'orders.eu', offset: 0 });
      expect(byType.error).toMatchObject({ type: 'error', code: 'forbidden' });
      a.client.send({ type: 'ping' });
      expect(await a.client.next()).toEqual({ type: 'pong' });
      expect(a.client.ws.readyState).toBe(WebSocket.OPEN);
    });
  });

  describe('token idle expiry (injectable clock)', () => {
    it('a token unused for more than 30 days since issue → 401; one used within 30 days connects', async () => {
      const clock = new ManualClock();
      const { creds } = await setup({}, clock);
      const stale = await register(creds);
      clock.advance(DAY);
      const recent = await register(creds);
      clock.advance(29 * DAY + 1000); // stale: 30 d + 1 s since issue; recent: 29 d + 1 s
      expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${stale}` } }));
      expect((await connected('', { headers: { authorization: `Bearer ${recent}` } })).welcome).toEqual(welcomeOf(creds));
      // An expired token stays rejected (it is not revived by a retry), and tickets are refused too.
      expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${stale}` } }));
      const t = await h!.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${stale}` } });
      expect(t.status).toBe(401);
      expect(t.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      expect(metricValue(await metrics(), 'hubcast_auth_failures_total', { reason: 'expired' })).toBeGreaterThanOrEqual(1);
    });

    it('idle time counts from when the last connection ended, and the token’s last use is recorded', async () => {
      const clock = new ManualClock();
      const { h, creds } = await setup({}, clock);
      const token = await register(creds);
      const issuedAt = clock.now();
      expect(dbToken(h.dataDir, token)?.last_used_at).toBe(issuedAt);

      clock.advance(29 * DAY);
      const a = await connected('', { headers: { authorization: `Bearer ${token}` } });
      await eventually(async () => (await h.connections()).length === 1, 3000, 'connection recorded');
      // Written to the file within a few seconds (last-use times ride along with the next commit).
      await eventually(() => dbToken(h.dataDir, token)?.last_used_at === issuedAt + 29 * DAY, 4000, 'last use recorded at connect');

      clock.advance(10 * DAY); // connected for 10 days
      const endedAt = clock.now();
      await a.client.close();
      await eventually(async () => (await h.connections()).length === 0, 3000, 'connection removed');
      await eventually(() => dbToken(h.dataDir, token)?.last_used_at === endedAt, 4000, 'last use recorded at disconnect');

      clock.advance(29 * DAY); // 68 d since issue, 39 d since connect, 29 d since the connection ended
      const b = await connected('', { headers: { authorization: `Bearer ${token}` } });
      expect(b.welcome).toEqual(welcomeOf(creds));
      await b.client.close();
      await eventually(async () => (await h.connections()).length === 0, 3000, 'connection removed');

      clock.advance(30 * DAY + 1000); // unused for 30 d + 1 s since the last connection ended
      expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${token}` } }));
    });

    it('a connected token does not expire while connected', async () => {
      const clock = new ManualClock();
      const { h, creds } = await setup({}, clock);
      const token = await register(creds);
      const a = await connected('', { headers: { authorization: `Bearer ${token}` } });
      clock.advance(31 * DAY);
      const t = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(t.status).toBe(201);
      h!.remember(t.body.ticket);
      a.client.send({ type: 'ping' });
      expect(await a.client.next()).toEqual({ type: 'pong' });
      await a.client.close();
      await eventually(async () => (await h.connections()).length === 0, 3000, 'connection removed');
      clock.advance(DAY);
      expect((await connected('', { headers: { authorization: `Bearer ${token}` } })).welcome).toEqual(welcomeOf(creds));
    });

    it('tokens.idleTtl is honoured (1h)', async () => {
      const clock = new ManualClock();
      const { creds } = await setup({ tokens: { idleTtl: '1h' } }, clock);
      const old = await register(creds);
      clock.advance(2 * 60_000);
      const young = await register(creds);
      clock.advance(59 * 60_000); // old: 61 min idle; young: 59 min idle
      expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${old}` } }));
      expect((await connected('', { headers: { authorization: `Bearer ${young}` } })).welcome).toEqual(welcomeOf(creds));
    });
  });

  describe('the connection in the store', () => {
    it('is recorded against client_id and token while connected and removed on a client close', async () => {
      const { h, creds } = await setup();
      const token = await register(creds);
      const a = await connected('', { headers: { authorization: `Bearer ${token}` } });
      const rows = await eventually(async () => {
        const r = await h.connections();
        return r.length === 1 ? r : undefined;
      });
      expect(rows).toHaveLength(1);
      expect(rows![0]).toMatchObject({
        id: a.welcome.connection_id,
        client_id: creds.client_id,
        token_hash: sha256Hex(token),
        remote_address: expect.stringMatching(/127\.0\.0\.1$/),
      });
      expect(metricValue(await metrics(), 'hubcast_connections')).toBe(1);
      const closed = await a.client.close(1000);
      expect(closed.code).toBe(1000);
      await eventually(async () => (await h.connections()).length === 0, 3000, 'connection removed after close');
      await eventually(async () => metricValue(await metrics(), 'hubcast_connections') === 0, 3000, 'gauge back to 0');
    });

    it('is removed when the client vanishes without a close handshake (terminate)', async () => {
      const { h, creds } = await setup();
      const t1 = await register(creds);
      const t2 = await register(creds);
      const a = await connected('', { headers: { authorization: `Bearer ${t1}` } });
      const b = await connected('', { headers: { authorization: `Bearer ${t2}` } });
      await eventually(async () => (await h.connections()).length === 2, 3000, 'two connections recorded');
      expect(metricValue(await metrics(), 'hubcast_connections')).toBe(2);
      a.client.ws.terminate();
      await eventually(
        async () => {
          const r = await h.connections();
          return r.length === 1 && r[0]!.id === b.welcome.connection_id;
        },
        3000,
        'terminated connection removed, the other kept',
      );
      expect(metricValue(await metrics(), 'hubcast_connections')).toBe(1);
      // The terminated one's token can connect again.
      const again = await connected('', { headers: { authorization: `Bearer ${t1}` } });
      expect(again.welcome.connection_id).not.toBe(a.welcome.connection_id);
      await eventually(async () => (await h.connections()).length === 2, 3000, 'reconnection recorded');
    });
  });

  describe('server shutdown', () => {
    it('closes live connections with 1001 and leaves no connection recorded in the store', async () => {
      const { h, creds } = await setup();
      const token = await register(creds);
      const a = await connected('', { headers: { authorization: `Bearer ${token}` } });
      await eventually(async () => (await h.connections()).length === 1, 3000, 'connection recorded');
      await h.restart();
      const closed = await Promise.race([a.client.closed, new Promise<'timeout'>((r) => setTimeout(async () => r('timeout'), 3000))]);
      expect(closed).toMatchObject({ code: 1001 });
      expect(await h.connections()).toEqual([]);
      // The token survives the restart.
      expect((await connected('', { headers: { authorization: `Bearer ${token}` } })).welcome).toEqual(welcomeOf(creds));
    });
  });

  describe('process crash', () => {
    it('a connection left behind by a crashed process is not still recorded once the hub runs again', async () => {
      const dataDir = tempDir();
      const created = await cli(['clients', 'create', '--name', 'crash', '--subscribe', '>', '--json', '--data-dir', dataDir]);
      expect(created.code).toBe(0);
      const creds = JSON.parse(created.out) as ClientCreds;
      const seen = [creds.client_secret];
      const proc = await spawnServer(dataDir);
      let token: string;
      try {
        const reg = await fetch(`http://127.0.0.1:${proc.port}/consumers`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(creds),
        });
        expect(reg.status).toBe(201);
        token = ((await reg.json()) as { token: string }).token;
        seen.push(token);
        const a = await tryConnect(`ws://127.0.0.1:${proc.port}/ws`, { headers: { authorization: `Bearer ${token}` } });
        own.push(a.client);
        expect(a.status).toBe(101);
        const welcome = await a.client.next('welcome');
        expect(welcome.connection_id).toBeTruthy();
        const gauge = async () => metricValue(await (await fetch(`http://127.0.0.1:${proc.port}/metrics`)).text(), 'hubcast_connections');
        await eventually(async () => (await gauge()) === 1, 3000, 'connection live in the crashing process');
      } finally {
        await proc.kill(); // crash: no close handler runs
      }
      for (const s of seen) expect(proc.stderr(), 'a secret was logged').not.toContain(s);

      // The hub starts again on the same data: the dead process's connection is gone from the store,
      // and the token (not expired, no live connection) connects.
      h = await startServer({}, { dataDir });
      const again = await connected('', { headers: { authorization: `Bearer ${token}` } });
      expect(again.welcome).toEqual(welcomeOf(creds));
      await eventually(async () => (await h!.connections()).length >= 1, 3000, 'new connection recorded');
      expect((await h!.connections()).map((r) => r.id)).toEqual([again.welcome.connection_id]);
    });
  });

  describe('heartbeat', () => {
    it('a client that does not answer pings is terminated; a healthy one stays', async () => {
      const { h, creds } = await setup({ ws: { heartbeatS: 1 } });
      const deadToken = await register(creds);
      const liveToken = await register(creds);
      const dead = await connected('', { headers: { authorization: `Bearer ${deadToken}` }, autoPong: false });
      const live = await connected('', { headers: { authorization: `Bearer ${liveToken}` } });
      expect(dead.welcome).toEqual(welcomeOf(creds, 1));
      await eventually(async () => (await h.connections()).length === 2, 3000, 'both recorded');

      const closed = await Promise.race([dead.client.closed, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 4500))]);
      expect(closed).not.toBe('timeout');
      expect(closed).toMatchObject({ code: 1006 }); // terminated: no close frame
      expect(live.client.ws.readyState).toBe(WebSocket.OPEN);
      live.client.send({ type: 'ping' });
      expect(await live.client.next('pong')).toEqual({ type: 'pong' });
      await eventually(
        async () => {
          const r = await h.connections();
          return r.length === 1 && r[0]!.id === live.welcome.connection_id;
        },
        3000,
        'dead connection removed from the store',
      );
      expect(metricValue(await metrics(), 'hubcast_connections')).toBe(1);
    });
  });

  describe('revocation', () => {
    it('revoking the client with the CLI closes its live connection with 4500 and its token stops working', async () => {
      const { h, creds } = await setup();
      const bystander = await h.createClient({ name: 'bystander' });
      h!.remember(bystander.client_secret);
      const token = await register(creds);
      const token2 = await register(creds);
      const otherToken = await register(bystander);
      const a = await connected('', { headers: { authorization: `Bearer ${token}` } });
      const a2 = await connected('', { protocols: ['hubcast.v1', `hubcast.bearer.${token2}`] });
      const b = await connected('', { headers: { authorization: `Bearer ${otherToken}` } });
      await eventually(async () => (await h.connections()).length === 3, 3000, 'all recorded');

      const r = await cli(['clients', 'revoke', creds.client_id, '--data-dir', h.dataDir]);
      expect(r.code).toBe(0);
      // Every live connection of the revoked client is closed with 4500.
      for (const c of [a, a2]) {
        const closed = await Promise.race([c.client.closed, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 3000))]);
        expect(closed).not.toBe('timeout');
        expect((closed as { code: number }).code).toBe(4500);
      }

      await eventually(
        async () => {
          const rows = await h.connections();
          return rows.length === 1 && rows[0]!.client_id === bystander.client_id;
        },
        3000,
        'revoked connection removed',
      );
      expect(b.client.ws.readyState).toBe(WebSocket.OPEN);
      expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${token}` } }));
      expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${token2}` } }));
      const reg = await h.fetchJson('/consumers', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(creds),
      });
      expect(reg.status).toBe(401);
      expect(reg.body).toEqual({ error: { code: 'invalid_client', message: expect.any(String) } });
    });
  });

  it('metrics count connections and auth failures by reason', async () => {
    const { creds } = await setup();
    const token = await register(creds);
    const m0 = await metrics();
    expect(metricValue(m0, 'hubcast_connections')).toBe(0);
    expectUnauthorized(await attempt(''));
    expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${'Z'.repeat(43)}` } }));
    expectUnauthorized(await attempt('', { headers: { authorization: `Bearer ${'Z'.repeat(43)}` } }));
    const a = await connected('', { headers: { authorization: `Bearer ${token}` } });
    const m1 = await metrics();
    expect(metricValue(m1, 'hubcast_connections')).toBe(1);
    expect(metricValue(m1, 'hubcast_auth_failures_total', { reason: 'missing' })).toBe(1);
    expect(metricValue(m1, 'hubcast_auth_failures_total', { reason: 'unknown' })).toBe(2);
    await a.client.close();
    await eventually(async () => metricValue(await metrics(), 'hubcast_connections') === 0, 3000, 'gauge back to 0');
  });
});
