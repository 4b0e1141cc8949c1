import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { REFUSAL_CLOSE } from '../../src/gateway/refuse.ts';
import { ManualClock, startServer, type Harness } from '../helpers/server.ts';
import { closeOf, rawRefusal } from '../helpers/refusal.ts';
import { sha256Hex, tryConnect, withDb, type Attempt } from '../helpers/upgrade.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { upgradeHead } from '../helpers/raw-http.ts';

const BOGUS = 'A'.repeat(43);

/** A WebSocket opened by hand that never reads or answers anything after its 101 (bounded). */
function silentConnection(port: number, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => reject(new Error('no 101 within 3 s')), 3000);
    sock.once('data', (d) => {
      clearTimeout(timer);
      if (!d.toString('latin1').startsWith('HTTP/1.1 101')) return reject(new Error(d.toString('latin1').slice(0, 200)));
      sock.pause();
      resolve(sock);
    });
    sock.on('error', () => {});
    sock.write(upgradeHead('/ws', { Authorization: `Bearer ${token}` }));
  });
}
const EVIL = 'https://evil.example.com';

/**
 * Upgrade refusals: every refusal uses up the request's ticket (issue item 5); the browser forms
 * (ticket, bearer subprotocol) are told by close code, the header forms by HTTP status (item 11);
 * refusals are logged, rate-limited (item 12).
 */
describe('upgrade refusals', () => {
  let h: Harness | undefined;
  let own: TestClient[] = [];
  afterEach(async () => {
    for (const c of own) c.ws.terminate();
    own = [];
    await h?.close();
    h = undefined;
  });

  async function setup(config: ConfigInput = {}, clock?: ManualClock) {
    h = await startServer(config, clock ? { clock } : {});
    const creds = await h.createClient();
    const token = await h.register(creds);
    return { h, creds, token };
  }

  async function ticketFor(token: string): Promise<string> {
    const r = await h!.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(201);
    h!.remember(r.body.ticket);
    return r.body.ticket as string;
  }

  async function attempt(
    query: string,
    opts: { localAddress?: string; headers?: Record<string, string>; protocols?: string[] } = {},
  ): Promise<Attempt> {
    const a = await tryConnect(`${h!.wsBase}/ws${query}`, opts);
    own.push(a.client);
    return a;
  }

  async function connect(token: string, localAddress = '127.0.0.1'): Promise<TestClient> {
    const a = await attempt('', { headers: { authorization: `Bearer ${token}` }, localAddress });
    expect(a.status).toBe(101);
    await a.client.next('welcome');
    return a.client;
  }

  const ticketStored = (ticket: string): boolean =>
    withDb(h!.dataDir, (db) => db.prepare('SELECT 1 FROM tickets WHERE hash = ?').get(sha256Hex(ticket)) !== undefined);

  /** The ticket is useless now: gone from the store, and a clean attempt with it is told 4511. */
  async function expectSpent(ticket: string): Promise<void> {
    expect(ticketStored(ticket), 'ticket still stored').toBe(false);
    expect(await closeOf(await attempt(`?ticket=${ticket}`))).toEqual({ code: 4511, reason: 'unauthorized', frames: 0 });
  }

  describe('a ticket is used up by every refusal, whatever it is', () => {
    it('refused for its Origin (close 4513): the ticket cannot be used again', async () => {
      const { token } = await setup({ ws: { allowedOrigins: ['https://app.example.com'] } });
      const ticket = await ticketFor(token);
      expect(await closeOf(await attempt(`?ticket=${ticket}`, { headers: { origin: EVIL } }))).toEqual({
        code: 4513,
        reason: 'origin_not_allowed',
        frames: 0,
      });
      await expectSpent(ticket);
    });

    it('refused by the failure budget (close 4011)', async () => {
      const { token } = await setup({ limits: { authFailures: { perMinute: 1, burst: 2 } } });
      for (let i = 0; i < 2; i++)
        expect((await attempt('', { headers: { authorization: `Bearer ${BOGUS}` }, localAddress: '127.0.0.2' })).status).toBe(401);
      const ticket = await ticketFor(token);
      expect(await closeOf(await attempt(`?ticket=${ticket}`, { localAddress: '127.0.0.2' }))).toMatchObject({
        code: 4011,
        reason: 'rate_limited',
      });
      await expectSpent(ticket);
    });

    it('refused by the per-address and the node connection caps (close 4012, 4013)', async () => {
      const { h, token } = await setup({ limits: { connectionsPerIp: 1, maxConnections: 2 } });
      await connect(await h.register(await h.createClient()), '127.0.0.3');
      const perIp = await ticketFor(token);
      expect(await closeOf(await attempt(`?ticket=${perIp}`, { localAddress: '127.0.0.3' }))).toMatchObject({
        code: 4012,
        reason: 'connection_limit',
      });
      await expectSpent(perIp);
      const second = await connect(await h.register(await h.createClient()), '127.0.0.4');
      const node = await ticketFor(token);
      expect(await closeOf(await attempt(`?ticket=${node}`))).toMatchObject({ code: 4013, reason: 'unavailable' });
      second.ws.close();
      await second.closed;
      await new Promise((r) => setTimeout(r, 50));
      await expectSpent(node);
    });

    it('refused by the per-client cap after it was redeemed (close 4012)', async () => {
      const { h, creds, token } = await setup({ limits: { connectionsPerClient: 1 } });
      const first = await connect(await h.register(creds));
      const ticket = await ticketFor(token);
      expect(await closeOf(await attempt(`?ticket=${ticket}`))).toMatchObject({ code: 4012, reason: 'connection_limit' });
      first.ws.close();
      await first.closed;
      await new Promise((r) => setTimeout(r, 50));
      await expectSpent(ticket);
    });

    it('refused for a malformed handshake (400, before any credential is read)', async () => {
      const { h, token } = await setup();
      const malformed: Record<string, string>[] = [{ 'Sec-WebSocket-Key': 'short' }, { 'Sec-WebSocket-Protocol': 'hubcast.v1,,x' }];
      for (const headers of malformed) {
        const ticket = await ticketFor(token);
        const r = await rawRefusal(h.port, `/ws?ticket=${ticket}`, headers);
        expect(r.status).toBe(400);
        expect(r.json!.error.code).toBe('bad_request');
        await expectSpent(ticket);
      }
      // With a bearer subprotocol offered without hubcast.v1: 400 too, and the ticket is spent.
      const ticket = await ticketFor(token);
      const r = await rawRefusal(h.port, `/ws?ticket=${ticket}`, { 'Sec-WebSocket-Protocol': `hubcast.bearer.${token}` });
      expect(r.status).toBe(400);
      await expectSpent(ticket);
    });

    it('presented beside an Authorization header: the token connects, the ticket is spent all the same', async () => {
      const { h, creds, token } = await setup();
      const ticket = await ticketFor(token);
      const other = await h.register(creds);
      const a = await attempt(`?ticket=${ticket}`, { headers: { authorization: `Bearer ${other}` } });
      expect(a.status).toBe(101);
      await a.client.next('welcome');
      await expectSpent(ticket);
    });

    it('refused while the server shuts down (close 4013): spent across the restart', async () => {
      const { h, token } = await setup({ shutdown: { graceS: 2 } });
      const ticket = await ticketFor(token);
      // A connection that never answers the close handshake keeps the gateway in its shutdown grace.
      const stuck = await silentConnection(h.port, await h.register(await h.createClient()));
      const closing = h.server.close();
      await new Promise((r) => setTimeout(r, 100));
      const during = await attempt(`?ticket=${ticket}`).catch((err: Error) => err);
      if (during instanceof Error) throw new Error(`the port closed before the refusal: ${during.message}`);
      expect(await closeOf(during)).toMatchObject({ code: 4013, reason: 'unavailable' });
      await closing;
      stuck.destroy();
      await h.restart();
      await expectSpent(ticket);
    });
  });

  describe('browser forms are told by close code, header forms by HTTP status', () => {
    it('the same refusal, both ways: 401/4511, 403/4513, 409/4010; no frame precedes the close', async () => {
      const { token } = await setup({ ws: { allowedOrigins: ['https://app.example.com'] } });
      const bearer = (t: string) => ({ protocols: ['hubcast.v1', `hubcast.bearer.${t}`] });

      const h401 = await attempt('', { headers: { authorization: `Bearer ${BOGUS}` } });
      expect(h401.status).toBe(401);
      expect(await closeOf(await attempt('', bearer(BOGUS)))).toEqual({ code: 4511, reason: 'unauthorized', frames: 0 });

      const h403 = await attempt('', { headers: { authorization: `Bearer ${token}`, origin: EVIL } });
      expect(h403.status).toBe(403);
      const b403 = await attempt('', { ...bearer(token), headers: { origin: EVIL } });
      expect(b403.client.ws.protocol).toBe('hubcast.v1');
      expect(await closeOf(b403)).toEqual({ code: 4513, reason: 'origin_not_allowed', frames: 0 });

      await connect(token);
      expect((await attempt('', { headers: { authorization: `Bearer ${token}` } })).status).toBe(409);
      expect(await closeOf(await attempt('', bearer(token)))).toEqual({ code: 4010, reason: 'duplicate_connection', frames: 0 });
      // The refused sockets do not count as connections.
      expect(h!.server.connectionCount).toBe(1);
    });

    it('a source past ws.closeRefusals gets plain HTTP statuses again; another source is still told', async () => {
      await setup({ ws: { closeRefusals: { perMinute: 1, burst: 2 } } });
      const bearer = { protocols: ['hubcast.v1', `hubcast.bearer.${BOGUS}`] };
      for (let i = 0; i < 2; i++) expect((await closeOf(await attempt('', { ...bearer, localAddress: '127.0.0.5' }))).code).toBe(4511);
      const third = await attempt('', { ...bearer, localAddress: '127.0.0.5' });
      expect(third.status).toBe(401);
      expect('json' in third && third.json.error.code).toBe('unauthorized');
      expect((await closeOf(await attempt('', { ...bearer, localAddress: '127.0.0.6' }))).code).toBe(4511);
    });

    it('every close code of a refusal is in the close-code table of docs/websocket.md, with its reason', () => {
      const doc = readFileSync(new URL('../../docs/websocket.md', import.meta.url), 'utf8');
      for (const [code, close] of Object.entries(REFUSAL_CLOSE)) {
        expect(doc, String(close)).toContain(`| ${close} `);
        expect(doc, code).toContain(`**${close}** \`${code}\``);
      }
    });
  });

  describe('refusals are logged, rate-limited', () => {
    const refusedLines = () => h!.logs.filter((l) => l.msg === 'upgrade refused');

    it('a refused origin logs one line; a flood of them from one address does not; a summary follows the minute', async () => {
      const clock = new ManualClock();
      const { token } = await setup({ ws: { allowedOrigins: ['https://app.example.com'] } }, clock);
      expect((await attempt('', { headers: { authorization: `Bearer ${token}`, origin: EVIL } })).status).toBe(403);
      expect(refusedLines()).toEqual([
        expect.objectContaining({ level: 30, code: 'origin_not_allowed', status: 403, ip: '127.0.0.1', origin: EVIL }),
      ]);
      await Promise.all(Array.from({ length: 40 }, () => attempt('', { headers: { authorization: `Bearer ${token}`, origin: EVIL } })));
      expect(refusedLines()).toHaveLength(1);
      // Another reason from the same address is its own line.
      expect((await attempt('?x', { headers: { authorization: `Bearer ${token}`, 'sec-websocket-protocol': 'a b' } })).status).toBe(400);
      expect(refusedLines()).toHaveLength(2);
      clock.advance(61_000);
      expect((await attempt('', { headers: { authorization: `Bearer ${token}`, origin: EVIL } })).status).toBe(403);
      expect(h!.logs.filter((l) => String(l.msg).startsWith('upgrade refusals not logged'))).toEqual([
        expect.objectContaining({ held_back: 40, by_code: { origin_not_allowed: 40 } }),
      ]);
      expect(refusedLines()).toHaveLength(3);
      expect(h!.logText()).not.toContain(token);
    });
  });
});
