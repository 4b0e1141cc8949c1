import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ConfigInput } from '../../src/config/schema.ts';
import { eventually, startServer, type ClientCreds, type Harness } from '../helpers/server.ts';
import { fetchMetrics, metricValue, tryConnect, type Attempt } from '../helpers/upgrade.ts';
import { closeOf } from '../helpers/refusal.ts';
import type { Closed, TestClient } from '../helpers/ws-client.ts';

const DUPLICATE = { error: { code: 'duplicate_connection', message: expect.any(String) } };

/** Resolves with the close, or 'timeout' after `ms` (every wait is bounded). */
function closedWithin(c: TestClient, ms: number): Promise<Closed | 'timeout'> {
  return Promise.race([c.closed, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

describe('one live connection per token', () => {
  let h: Harness | undefined;
  let own: TestClient[] = [];

  afterEach(async () => {
    for (const c of own) c.ws.terminate();
    own = [];
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  async function setup(config: ConfigInput = {}) {
    h = await startServer(config);
    const creds = await h.createClient({ subscribe: ['>'] });
    h!.remember(creds.client_secret);
    const token = await register(creds);
    return { h, creds, token };
  }

  async function register(creds: ClientCreds): Promise<string> {
    const t = await h!.register(creds);
    h!.remember(t);
    return t;
  }

  async function attempt(token: string, opts: ConstructorParameters<typeof TestClient>[1] = {}): Promise<Attempt> {
    const a = await tryConnect(`${h!.wsBase}/ws`, { headers: { authorization: `Bearer ${token}` }, ...opts });
    own.push(a.client);
    return a;
  }

  async function connected(token: string, opts: ConstructorParameters<typeof TestClient>[1] = {}) {
    const a = await attempt(token, opts);
    expect(a.status, `handshake answer: ${'body' in a ? a.body : ''}`).toBe(101);
    const welcome = await a.client.next('welcome');
    return { client: a.client, welcome };
  }

  function expectDuplicate(a: Attempt): void {
    expect(a.status).toBe(409);
    if (!('body' in a)) throw new Error('expected a plain HTTP rejection');
    expect(a.json).toEqual(DUPLICATE);
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(a.headers.upgrade).toBeUndefined();
  }

  async function duplicateRejections(): Promise<number | undefined> {
    return metricValue(await fetchMetrics(h!.base), 'hubcast_duplicate_rejections_total');
  }

  async function stillServes(c: TestClient, id: string): Promise<void> {
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.send({ type: 'ping', id });
    expect(await c.next('pong')).toEqual({ type: 'pong', id });
  }

  describe('policy reject (default)', () => {
    it('a second connection with the same token → 409 duplicate_connection; the first stays open and keeps receiving', async () => {
      const { h, creds, token } = await setup();
      expect(await duplicateRejections()).toBe(0);
      const first = await connected(token);
      await first.client.subscribe('orders.eu');

      expectDuplicate(await attempt(token));
      // Whatever the credential method, it is the same token.
      expectDuplicate(await attempt('', { headers: { client_id: creds.client_id, token } }));
      // The browser forms are told by close code 4010 (a browser cannot read the 409).
      const DUP_CLOSE = { code: 4010, reason: 'duplicate_connection', frames: 0 };
      expect(await closeOf(await attempt('', { headers: {}, protocols: ['hubcast.v1', `hubcast.bearer.${token}`] }))).toEqual(DUP_CLOSE);
      const t = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(t.status).toBe(201);
      h!.remember(t.body.ticket);
      const byTicket = await tryConnect(`${h.wsBase}/ws?ticket=${t.body.ticket}`);
      own.push(byTicket.client);
      expect(await closeOf(byTicket)).toEqual(DUP_CLOSE);

      await stillServes(first.client, 'after-dups');
      expect((await h.ingest('orders.eu', { n: 1 })).status).toBe(202);
      expect(await first.client.next('message')).toMatchObject({ topic: 'orders.eu', offset: 1, data: { n: 1 } });

      const rows = await h.connections();
      expect(rows.map((r) => r.id)).toEqual([first.welcome.connection_id]);
      expect(await duplicateRejections()).toBe(4);
      expect(metricValue(await fetchMetrics(h.base), 'hubcast_connections')).toBe(1);
    });

    it('duplicates are per token: another token of the same client connects alongside', async () => {
      const { creds, token } = await setup();
      const first = await connected(token);
      const other = await register(creds);
      const second = await connected(other);
      expect(second.welcome.client_id).toBe(creds.client_id);
      expect(second.welcome.connection_id).not.toBe(first.welcome.connection_id);
      await stillServes(first.client, 'a');
      await stillServes(second.client, 'b');
      expect(await duplicateRejections()).toBe(0);
    });

    it('simultaneous attempts with one token: exactly one gets in, the others get 409', async () => {
      const { h, token } = await setup();
      const results = await Promise.all(Array.from({ length: 6 }, () => attempt(token)));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([101, 409, 409, 409, 409, 409]);
      for (const r of results.filter((x) => x.status === 409)) expectDuplicate(r);
      const winner = results.find((r) => r.status === 101)!;
      const welcome = await winner.client.next('welcome');
      await eventually(async () => (await h.connections()).length === 1, 3000, 'one connection recorded');
      expect((await h.connections()).map((r) => r.id)).toEqual([welcome.connection_id]);
      expect(await duplicateRejections()).toBe(5);
    });

    it('after the first connection closes, the token connects again', async () => {
      const { h, token } = await setup();
      const first = await connected(token);
      expectDuplicate(await attempt(token));
      await first.client.close(1000);
      await eventually(async () => (await h.connections()).length === 0, 3000, 'first connection removed');
      const again = await connected(token);
      expect(again.welcome.connection_id).not.toBe(first.welcome.connection_id);
    });

    it('half-open probe: a first connection that does not answer pings is terminated within probeMs; the next try gets in', async () => {
      const { h, token } = await setup({ duplicates: { probeMs: 300 } });
      const first = await connected(token, { autoPong: false });
      await eventually(async () => (await h.connections()).length === 1, 3000, 'first connection recorded');

      expectDuplicate(await attempt(token));
      const closed = await closedWithin(first.client, 3000);
      expect(closed).not.toBe('timeout');
      expect(closed).toMatchObject({ code: 1006 }); // terminated: no close frame
      await eventually(async () => (await h.connections()).length === 0, 3000, 'dead connection removed from the store');

      const next = await connected(token);
      expect(next.welcome.connection_id).not.toBe(first.welcome.connection_id);
      await eventually(
        async () => (await h.connections()).map((r) => r.id).join() === String(next.welcome.connection_id),
        3000,
        'new connection recorded',
      );
      await stillServes(next.client, 'new');
      expect(await duplicateRejections()).toBe(1);
      expect(metricValue(await fetchMetrics(h.base), 'hubcast_connections')).toBe(1);
    });

    it('half-open probe: a healthy first connection (answers pings) is not terminated', async () => {
      const { h, token } = await setup({ duplicates: { probeMs: 300 } });
      const first = await connected(token);
      expectDuplicate(await attempt(token));
      // Wait well past probeMs (bounded), then the first must still be there.
      expect(await closedWithin(first.client, 1200)).toBe('timeout');
      await stillServes(first.client, 'healthy');
      expectDuplicate(await attempt(token));
      expect(await closedWithin(first.client, 900)).toBe('timeout');
      await stillServes(first.client, 'still-healthy');
      expect((await h.connections()).map((r) => r.id)).toEqual([first.welcome.connection_id]);
      expect(await duplicateRejections()).toBe(2);
    });
  });

  describe('policy replace', () => {
    it('accepts the new connection and closes the old one with 4502', async () => {
      const { h, token } = await setup({ duplicates: { policy: 'replace' } });
      const old = await connected(token);
      await old.client.subscribe('orders.eu');
      await eventually(async () => (await h.connections()).length === 1, 3000, 'old connection recorded');

      const fresh = await connected(token);
      expect(fresh.welcome.connection_id).not.toBe(old.welcome.connection_id);
      const closed = await closedWithin(old.client, 3000);
      expect(closed).not.toBe('timeout');
      expect((closed as Closed).code).toBe(4502);

      await eventually(
        async () => (await h.connections()).map((r) => r.id).join() === String(fresh.welcome.connection_id),
        3000,
        'only the new connection recorded',
      );
      await fresh.client.subscribe('orders.eu');
      expect((await h.ingest('orders.eu', { n: 1 })).status).toBe(202);
      expect(await fresh.client.next('message')).toMatchObject({ topic: 'orders.eu', offset: 1, data: { n: 1 } });
      expect(await duplicateRejections()).toBe(0);

      // The replacement is itself the live connection: a third one replaces it in turn.
      const third = await connected(token);
      const closed2 = await closedWithin(fresh.client, 3000);
      expect((closed2 as Closed).code).toBe(4502);
      await stillServes(third.client, 'third');
      await eventually(
        async () => (await h.connections()).map((r) => r.id).join() === String(third.welcome.connection_id),
        3000,
        'only the third connection recorded',
      );
      expect(metricValue(await fetchMetrics(h.base), 'hubcast_connections')).toBe(1);
    });
  });
});
