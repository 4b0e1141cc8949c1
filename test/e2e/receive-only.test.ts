import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { barrier, buffered, ClientPool, metricsText, metricValue } from '../helpers/e2e.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

const NOT_ALLOWED = { type: 'error', code: 'publish_not_allowed', message: 'consumers are not allowed to send messages' };

/** Waits (bounded) for the close, failing with what was received if it does not come. */
async function closedWith(c: TestClient, timeoutMs = 3000): Promise<number> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms; frames: ${JSON.stringify(c.all())}`)), timeoutMs);
  });
  try {
    return (await Promise.race([c.closed, timeout])).code;
  } finally {
    clearTimeout(t);
  }
}

const storedIds = async (h: Harness) => (await h.connections()).map((r) => r.id);

interface Case {
  name: string;
  rights?: { subscribe?: string[]; publish?: string[] };
  frame: string | Buffer | object;
}

const cases: Case[] = [
  { name: 'plain text that is not JSON', frame: 'hello there' },
  { name: 'truncated JSON', frame: '{"type":"subscribe",' },
  { name: 'a binary frame', frame: Buffer.from([1, 2, 3, 0xff]) },
  { name: 'a binary frame holding a valid JSON subscribe', frame: Buffer.from('{"type":"subscribe","topic":"a.b"}') },
  { name: 'a JSON array', frame: '[{"type":"ping"}]' },
  { name: 'a JSON string', frame: '"ping"' },
  { name: 'JSON null', frame: 'null' },
  { name: 'an unknown type', frame: { type: 'hello' } },
  { name: 'an object without type', frame: { topic: 'orders.eu' } },
  { name: 'a message frame echoed back', frame: { type: 'message', topic: 'orders.eu', offset: 1, data: 1 } },
  { name: 'a publish without any publish rights', frame: { type: 'publish', topic: 'orders.eu', data: { x: 1 } } },
  {
    name: 'a publish to a topic outside the publish ACL',
    rights: { publish: ['chat.>'] },
    frame: { type: 'publish', topic: 'orders.eu', data: { x: 1 } },
  },
  {
    name: 'a publish to the parent of the publish ACL',
    rights: { publish: ['chat.*'] },
    frame: { type: 'publish', topic: 'chat.room.deep', data: 1 },
  },
];

describe('receive-only consumers', () => {
  let h: Harness;
  const pool = new ClientPool();
  afterEach(async () => {
    pool.closeAll();
    await h?.close();
  });

  it.each(cases)(
    '$name → error publish_not_allowed, log, store cleaned, close 4501; the token may reconnect',
    async ({ rights, frame }) => {
      h = await startServer();
      const creds = await h.createClient({ subscribe: ['>'], ...rights });
      const token = await h.register(creds);
      const { c, welcome } = await pool.open(h, token);
      const connectionId = welcome.connection_id as string;
      expect(welcome).toEqual({ type: 'welcome', connection_id: expect.any(String), client_id: creds.client_id, heartbeat_s: 25 });
      await c.subscribe('orders.eu');
      await eventually(async () => (await storedIds(h)).includes(connectionId), 3000, 'connection recorded in the store');

      c.send(frame);
      // Anything sent after the forbidden frame is not answered.
      c.send({ type: 'subscribe', topic: 'after.forbidden', id: 'late' });
      expect(await closedWith(c)).toBe(4501);
      expect(c.all()).toEqual([NOT_ALLOWED]);

      const line = h.logs.find((l) => l.client_id === creds.client_id && l.connection_id === connectionId && Number(l.level) >= 40);
      expect(line, JSON.stringify(h.logs.slice(-5))).toBeDefined();
      await eventually(async () => !(await storedIds(h)).includes(connectionId), 3000, 'connection removed from the store');
      expect(h.logText()).not.toContain(token);

      const metrics = await metricsText(h);
      expect(metricValue(metrics, 'hubcast_forbidden_sends_total')).toBe(1);

      // The token is still valid: a deliberate reconnect is welcomed, under a new connection id.
      const again = await pool.reopen(h, token);
      expect(again.welcome).toMatchObject({ type: 'welcome', client_id: creds.client_id });
      expect(again.welcome.connection_id).not.toBe(connectionId);
      expect(await again.c.subscribe('orders.eu')).toMatchObject({ type: 'subscribed', offset: 0 });
      expect((await h.ingest('orders.eu', 'after')).status).toBe(202);
      expect(await again.c.next('message')).toMatchObject({ topic: 'orders.eu', offset: 1, data: 'after' });
      await eventually(async () => (await storedIds(h)).includes(again.welcome.connection_id as string), 3000, 'new connection recorded');
    },
  );

  it('a forbidden send closes only the offending connection; the counter counts each one', async () => {
    h = await startServer();
    const bystander = await h.connect(await h.register(await h.createClient()));
    await bystander.subscribe('orders.eu');
    const a = await h.connect(await h.register(await h.createClient({ name: 'a' })));
    const b = await h.connect(await h.register(await h.createClient({ name: 'b' })));
    a.send('nope');
    b.send({ type: 'publish', topic: 'orders.eu', data: 1 });
    expect(await closedWith(a)).toBe(4501);
    expect(await closedWith(b)).toBe(4501);
    expect(a.all()).toEqual([NOT_ALLOWED]);
    expect(b.all()).toEqual([NOT_ALLOWED]);
    // The refused publish was not published.
    expect((await h.ingest('orders.eu', 'real')).body.offset).toBe(1);
    expect(await bystander.next('message')).toMatchObject({ offset: 1, data: 'real' });
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    expect(metricValue(await metricsText(h), 'hubcast_forbidden_sends_total')).toBe(2);
  });

  it('a frame larger than ws.maxPayload closes with 1009; the connection is cleaned up and may reconnect', async () => {
    h = await startServer();
    const token = await h.register(await h.createClient());
    const { c, welcome } = await pool.open(h, token);
    // Exactly maxPayload (4096 bytes) is still fine (padded with a field the server ignores: ids are capped).
    const base = JSON.stringify({ type: 'ping', pad: '' });
    const exact = JSON.stringify({ type: 'ping', pad: 'x'.repeat(4096 - base.length) });
    expect(Buffer.byteLength(exact)).toBe(4096);
    c.send(exact);
    expect(await c.next('pong')).toMatchObject({ type: 'pong' });
    await eventually(async () => (await storedIds(h)).includes(welcome.connection_id as string), 3000, 'connection recorded');

    c.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(4097 - base.length) }));
    expect(await closedWith(c)).toBe(1009);
    await eventually(
      async () => !(await storedIds(h)).includes(welcome.connection_id as string),
      3000,
      'connection removed from the store',
    );
    const again = await pool.reopen(h, token);
    expect(again.welcome).toMatchObject({ type: 'welcome' });
  });

  it('ws.maxPayload is configurable: a publishing client may send bigger frames', async () => {
    h = await startServer({ ws: { maxPayload: 16384 } });
    const talker = await h.connect(await h.register(await h.createClient({ publish: ['big.>'] })));
    await talker.subscribe('big.t');
    const data = 'd'.repeat(10_000);
    talker.send({ type: 'publish', topic: 'big.t', data, id: 'p' });
    expect(await talker.next('ack')).toMatchObject({ type: 'ack', offset: 1, id: 'p' });
    expect(await talker.next('message')).toMatchObject({ offset: 1, data });
    await barrier(talker);
    expect(buffered(talker, 'error')).toEqual([]);
    talker.send({ type: 'ping', id: 'y'.repeat(17_000) });
    expect(await closedWith(talker)).toBe(1009);
  });
});
