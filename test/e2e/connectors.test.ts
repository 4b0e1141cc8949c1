import { createHmac } from 'node:crypto';
import Database from 'better-sqlite3';
import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from '../../src/server.ts';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { cli, eventually, startServer, tempDir, type Harness } from '../helpers/server.ts';
import { withDb } from '../helpers/upgrade.ts';

const SECRET = 'webhook-secret-0123456789';
const hmac = (text: string, secret = SECRET) => createHmac('sha256', secret).update(text).digest('hex');
/** The Stripe-style header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
const sign = (body: string, t = Math.floor(Date.now() / 1000)) => `t=${t},v1=${hmac(`${t}.${body}`)}`;

function webhookConfig(extra: Record<string, unknown> = {}, pipeline: Record<string, unknown>[] = []) {
  return {
    alerts: { groupWaitS: 1 },
    connectors: [{ name: 'shop', type: 'webhook' as const, topic: 'orders.{{region}}', secret: SECRET, pipeline, ...extra }],
  };
}

describe('connectors in the gateway: webhook → pipeline → publish path → consumer', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const hook = (body: string, headers: Record<string, string> = {}) =>
    h!.fetchJson('/hooks/shop', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubcast-signature': sign(body), ...headers },
      body,
    });

  it('delivers transformed records to subscribers, drops filtered ones, answers 202 after storing', async () => {
    h = await startServer(webhookConfig({}, [{ filter: 'status != "draft"' }, { set: { total: 'qty * price' } }]));
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    await c.subscribe('orders.eu');
    const draft = JSON.stringify({ id: 1, region: 'eu', status: 'draft', qty: 1, price: 3 });
    expect(await hook(draft, { 'idempotency-key': 'd1' })).toMatchObject({ status: 202, body: { accepted: 1 } });
    const real = JSON.stringify({ id: 2, region: 'eu', status: 'paid', qty: 2, price: 5 });
    expect((await hook(real, { 'idempotency-key': 'd2' })).status).toBe(202);
    const m = await c.next('message');
    expect(m).toMatchObject({ topic: 'orders.eu', offset: 1, data: { id: 2, total: 10 } });
    // A redelivery of the same delivery id is not delivered twice.
    expect((await hook(real, { 'idempotency-key': 'd2' })).status).toBe(202);
    await h.ingest('orders.eu', 'marker');
    expect(await c.next('message')).toMatchObject({ offset: 2, data: 'marker' });
  });

  it('refuses a bad signature (401 invalid_signature) and unknown hooks (404)', async () => {
    h = await startServer(webhookConfig());
    const body = JSON.stringify({ region: 'eu' });
    const bad = await hook(body, { 'x-hubcast-signature': 'sha256=' + '0'.repeat(64) });
    expect(bad).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
    expect((await hook(body, { 'x-hubcast-signature': '' })).status).toBe(401);
    const unknown = await h.fetchJson('/hooks/nope', { method: 'POST', body });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });

  it('a replayed delivery (same signature, new Idempotency-Key or none) is a duplicate, not a new record', async () => {
    h = await startServer(webhookConfig());
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    await c.subscribe('orders.eu');
    const body = JSON.stringify({ id: 1, region: 'eu' });
    const signature = sign(body);
    expect(await hook(body, { 'x-hubcast-signature': signature, 'idempotency-key': 'r1' })).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    });
    expect(await c.next('message')).toMatchObject({ topic: 'orders.eu', offset: 1, data: { id: 1 } });
    // The attacker replays the captured request with another (unsigned) id header, or without one.
    for (const headers of [{ 'idempotency-key': 'r2' }, {}] as Record<string, string>[]) {
      expect(await hook(body, { 'x-hubcast-signature': signature, ...headers })).toMatchObject({
        status: 202,
        body: { accepted: 0, duplicate: true },
      });
    }
    // Without an id header, the idempotency key is a hash of the signature: a sender retry of the same signed request is one record.
    const other = JSON.stringify({ id: 2, region: 'eu' });
    const sig2 = sign(other);
    expect((await hook(other, { 'x-hubcast-signature': sig2 })).body).toEqual({ accepted: 1 });
    expect(await c.next('message')).toMatchObject({ offset: 2, data: { id: 2 } });
    await h.ingest('orders.eu', 'marker');
    expect(await c.next('message')).toMatchObject({ offset: 3, data: 'marker' });
    // A restart does not reopen the window: seen signatures are durable.
    await h.restart();
    expect((await hook(body, { 'x-hubcast-signature': signature, 'idempotency-key': 'r3' })).body).toEqual({
      accepted: 0,
      duplicate: true,
    });
  });

  it('a redelivery whose pipeline output differs (e.g. $millis()) is not a new message: the first publication stands', async () => {
    h = await startServer(webhookConfig({}, [{ set: { at: '$millis()' } }]));
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    await c.subscribe('orders.eu');
    const body = JSON.stringify({ id: 5, region: 'eu' });
    const now = Math.floor(Date.now() / 1000);
    expect((await hook(body, { 'x-hubcast-signature': sign(body, now), 'idempotency-key': 'd5' })).status).toBe(202);
    const first = await c.next('message');
    await new Promise((r) => setTimeout(r, 5));
    // The sender retries the same delivery, signed again: the pipeline makes another payload under the same key.
    expect(await hook(body, { 'x-hubcast-signature': sign(body, now - 1), 'idempotency-key': 'd5' })).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    });
    await h.ingest('orders.eu', 'marker');
    expect(await c.next('message')).toMatchObject({ offset: 2, data: 'marker' });
    expect(first).toMatchObject({ offset: 1, data: { id: 5 } });
    expect(h.logs.some((l) => /first publication, which stands/.test(String(l.msg)))).toBe(true);
    const list = JSON.parse((await cli(['dlq', 'list', '--json', '--data-dir', h.dataDir])).out).dead_letters;
    expect(list).toEqual([]);
  });

  it('a signature timestamp outside toleranceS is 401 invalid_signature; several v1= entries allow a secret rotation', async () => {
    h = await startServer(webhookConfig({ toleranceS: 60 }));
    const body = JSON.stringify({ region: 'eu' });
    const now = Math.floor(Date.now() / 1000);
    for (const t of [now - 3600, now + 3600]) {
      const r = await hook(body, { 'x-hubcast-signature': sign(body, t) });
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({
        code: 'invalid_signature',
        message: expect.stringMatching(/away from the server clock \(tolerance 60 s\)/),
      });
    }
    // A valid signature over another timestamp than the one sent does not match.
    const forged = `t=${now},v1=${hmac(`${now - 3600}.${body}`)}`;
    expect((await hook(body, { 'x-hubcast-signature': forged })).status).toBe(401);
    for (const bad of ['', 't=abc,v1=00', `v1=${hmac(`${now}.${body}`)}`, `t=${now}`]) {
      const r = await hook(body, { 'x-hubcast-signature': bad });
      expect(r, bad).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
    }
    const rotated = `t=${now},v1=${hmac(`${now}.${body}`, 'the-old-secret-0123456789')},v1=${hmac(`${now}.${body}`)}`;
    expect(await hook(body, { 'x-hubcast-signature': rotated, 'idempotency-key': 'k1' })).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    });
  });

  it('a body-only sha256= signature is refused (replayable) unless legacySignature is set', async () => {
    const body = JSON.stringify({ region: 'eu' });
    const legacy = 'sha256=' + hmac(body);
    h = await startServer(webhookConfig());
    const r = await hook(body, { 'x-hubcast-signature': legacy });
    expect(r).toMatchObject({
      status: 401,
      body: { error: { code: 'invalid_signature', message: expect.stringContaining('t=<unix seconds>') } },
    });
    await h.close();
    h = await startServer(webhookConfig({ legacySignature: true }));
    expect(await hook(body, { 'x-hubcast-signature': legacy, 'idempotency-key': 'l1' })).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    });
    expect(await hook(body, { 'x-hubcast-signature': legacy, 'idempotency-key': 'l2' })).toMatchObject({
      status: 202,
      body: { duplicate: true },
    });
  });

  it('records the pipeline rejects go to the dead-letter store with the reason, alerted; dlq retry re-runs them', async () => {
    const dir = tempDir();
    const flag = join(dir, 'broken');
    writeFileSync(flag, '');
    const mod = join(dir, 'check.mjs');
    writeFileSync(
      mod,
      `import { existsSync } from 'node:fs'; export default (r) => { if (existsSync(${JSON.stringify(flag)})) throw new Error('enrichment service down'); return r; };`,
    );
    h = await startServer(webhookConfig({}, [{ module: mod }]));
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    await c.subscribe('orders.us');
    const noRegion = JSON.stringify({ id: 7 });
    expect((await hook(noRegion, { 'idempotency-key': 'x1' })).status).toBe(202);
    const body = JSON.stringify({ id: 8, region: 'us' });
    expect((await hook(body, { 'idempotency-key': 'x2' })).status).toBe(202);
    const list = JSON.parse((await cli(['dlq', 'list', '--json', '--data-dir', h.dataDir])).out).dead_letters;
    expect(list).toHaveLength(2);
    expect(list[0]).toMatchObject({ connector: 'shop', key: 'x1', reason: expect.stringContaining('enrichment service down') });
    await eventually(() => h!.logs.some((l) => l.alert === 'pipeline_error'), 5000, 'pipeline_error alert');
    // Fix the cause, retry one: it reaches the consumer; the other (no region) fails again at the topic template.
    unlinkSync(flag);
    expect((await cli(['dlq', 'retry', '--all', '--data-dir', h.dataDir])).code).toBe(0);
    expect(await c.next('message', 5000)).toMatchObject({ topic: 'orders.us', data: { id: 8, region: 'us' } });
    await eventually(
      async () => {
        const rows = JSON.parse((await cli(['dlq', 'list', '--json', '--data-dir', h!.dataDir])).out).dead_letters;
        return rows.length === 1 && rows[0].key === 'x1' && /region/.test(rows[0].reason);
      },
      5000,
      'x1 dead-lettered again',
    );
    expect((await cli(['dlq', 'drop', '--all', '--data-dir', h.dataDir])).code).toBe(0);
  });

  /** The dead letters as stored in `<dataDir>/connectors.db`. */
  const deadLetters = (dataDir: string) => {
    const db = new Database(join(dataDir, 'connectors.db'), { readonly: true });
    try {
      return db.prepare('SELECT * FROM dlq ORDER BY id').all() as {
        record_key: string;
        kind: string;
        value: Buffer;
        format: string;
      }[];
    } finally {
      db.close();
    }
  };

  it('a dead letter keeps the bytes as received; once the cause is fixed, dlq retry publishes exactly those bytes', async () => {
    // Numbers past 2^53, spacing, escapes: what a JSON.parse + JSON.stringify round trip would change.
    const body = '{"id": 12345678901234567890,  "zone": "eu", "price": 1.10, "note": "caf\\u00e9"}';
    h = await startServer(webhookConfig());
    expect((await hook(body, { 'idempotency-key': 'big-1' })).status).toBe(202);
    const [dead] = deadLetters(h.dataDir);
    expect({ key: dead!.record_key, kind: dead!.kind, value: dead!.value.toString() }).toEqual({ key: 'big-1', kind: 'json', value: body });
    // The operator fixes the topic template (the record has "zone", not "region"), restarts, retries.
    const dataDir = h.dataDir;
    await h.server.close(); // keeps the data directory
    h = await startServer(webhookConfig({ topic: 'orders.{{zone}}' }), { dataDir });
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    await c.subscribe('orders.eu');
    expect((await cli(['dlq', 'retry', '--all', '--data-dir', dataDir])).code).toBe(0);
    expect(await c.next('message', 5000)).toMatchObject({ topic: 'orders.eu', offset: 1 });
    const stored = withDb(dataDir, (db) => db.prepare("SELECT payload FROM messages WHERE topic = 'orders.eu'").pluck().get() as Buffer);
    expect(stored.toString()).toBe(body);
    expect(deadLetters(dataDir)).toEqual([]);
  });

  it('a value JSON cannot hold (a BigInt, a cycle) is kept as itself, not "[object Object]", and retried as itself', async () => {
    const dir = tempDir();
    const flag = join(dir, 'broken');
    writeFileSync(flag, '');
    const mod = join(dir, 'enrich.mjs');
    // Broken: it decorates the record in place (a BigInt, a back-reference) and then fails. Fixed: it
    // turns what it finds into JSON-friendly fields.
    writeFileSync(
      mod,
      `import { existsSync } from 'node:fs';
       export default (r) => {
         if (existsSync(${JSON.stringify(flag)})) { r.value.big = 2n ** 70n; r.value.self = r.value; throw new Error('lookup failed'); }
         return { ...r, value: { region: r.value.region, big: String(r.value.big), cyclic: r.value.self === r.value } };
       };`,
    );
    h = await startServer(webhookConfig({ itemsPath: 'items' }, [{ module: mod }]));
    const body = JSON.stringify({ items: [{ region: 'eu' }] });
    expect((await hook(body, { 'idempotency-key': 'v8-1' })).status).toBe(202);
    const [dead] = deadLetters(h.dataDir);
    expect(dead).toMatchObject({ record_key: 'v8-1:0', format: 'v8' });
    expect(dead!.value.toString()).not.toContain('[object Object]');
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['orders.*'] })));
    await c.subscribe('orders.eu');
    unlinkSync(flag);
    expect((await cli(['dlq', 'retry', '--all', '--data-dir', h.dataDir])).code).toBe(0);
    expect(await c.next('message', 5000)).toMatchObject({
      topic: 'orders.eu',
      data: { region: 'eu', big: '1180591620717411303424', cyclic: true },
    });
  });

  it('GET /connectors needs an admin key and shows state, records in and last record time', async () => {
    h = await startServer(webhookConfig());
    const admin = JSON.parse(
      (await cli(['keys', 'create', '--name', 'ops', '--scope', 'admin', '--json', '--data-dir', h.dataDir])).out,
    ).key;
    h.remember(admin);
    expect((await h.fetchJson('/connectors')).status).toBe(401);
    expect((await h.fetchJson('/connectors', { headers: { authorization: `Bearer ${h.ingestKey}` } })).status).toBe(401);
    await hook(JSON.stringify({ region: 'eu' }), { 'idempotency-key': 'k1' });
    const r = await h.fetchJson('/connectors', { headers: { authorization: `Bearer ${admin}` } });
    expect(r.status).toBe(200);
    expect(r.body.connectors).toEqual([
      expect.objectContaining({
        name: 'shop',
        type: 'webhook',
        status: 'running',
        records_in: 1,
        dead_letters: 0,
        last_record_at: expect.any(String),
      }),
    ]);
    const metrics = await (await fetch(`${h.base}/metrics`)).text();
    expect(metrics).toMatch(/hubcast_connector_records_total\{connector="shop"\} 1/);
    expect(metrics).toMatch(/hubcast_connector_up\{connector="shop",type="webhook",status="running"\} 1/);
    expect(metrics).toMatch(/hubcast_connector_last_record_timestamp_seconds\{connector="shop"\} \d+/);
  });

  it('store unavailable: the webhook answers 503 and nothing is acknowledged', async () => {
    let faulty!: FaultyStore;
    h = await startServer(webhookConfig(), { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
    faulty.fail.add('append');
    const body = JSON.stringify({ region: 'eu', id: 1 });
    const r = await hook(body, { 'idempotency-key': 'z1' });
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    faulty.fail.clear();
    expect((await hook(body, { 'idempotency-key': 'z1' })).status).toBe(202);
  });

  it('invalid pipeline config stops start-up with a message naming the step', () => {
    expect(() => createServer({ dataDir: tempDir(), ...webhookConfig({}, [{ set: { a: '1' } }, { filter: 'a >' }]) })).toThrow(
      /connectors\[0\]\.pipeline\[1\]\.filter: invalid JSONata/,
    );
    expect(() => createServer({ dataDir: tempDir(), ...webhookConfig({ topic: 'orders.{{region' }) })).toThrow(
      /can never give a valid topic/,
    );
    expect(() => createServer({ dataDir: tempDir(), ...webhookConfig({ topic: 'orders/{{region}}' }) })).toThrow(/connectors\.0/);
  });
});
