import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { adminFor, auditLines, type Admin } from '../helpers/admin.ts';
import { subscriber } from '../helpers/e2e.ts';
import { startServer, type Harness } from '../helpers/server.ts';
import { tryConnect } from '../helpers/upgrade.ts';
import { WebhookSink } from '../helpers/webhook-sink.ts';

/** The admin API's overview, recent alerts and audit trail. */

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('admin API: overview, alerts, audit', () => {
  let h: Harness | undefined;
  let admin: Admin;
  let sink: WebhookSink | undefined;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
    await sink?.stop();
    sink = undefined;
  });

  it('overview: the node, its counts, rates over the last seconds, store and broker health', async () => {
    let faulty!: FaultyStore;
    h = await startServer({}, { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
    admin = await adminFor(h);
    const c = await subscriber(h, ['ov.a', 'ov.*']);
    for (let i = 0; i < 4; i++) expect((await h.ingest('ov.a', i)).status).toBe(202);
    for (let i = 0; i < 4; i++) await c.next('message');
    const r = await admin.get('/admin/api/overview');
    expect(r.status).toBe(200);
    const nodeId = h.server.config.nodeId;
    expect(r.body).toEqual({
      node: { id: nodeId, version: VERSION, started_at: expect.any(String), uptime_s: expect.any(Number) },
      nodes: [{ id: nodeId, connections: 1 }],
      connections: 1,
      subscriptions: 2,
      topics: 2,
      rates: { published_per_s: expect.any(Number), delivered_per_s: expect.any(Number), connects_per_s: expect.any(Number) },
      store: { type: 'sqlite', ok: true },
      broker: { type: 'memory', ok: true },
      alerts: { recent: 0, open: 0 },
    });
    expect(Date.parse(r.body.node.started_at)).toBeLessThanOrEqual(Date.now());
    // Once the second they happened in has passed: 4 publications and 4 deliveries, averaged over the seconds seen.
    await expect
      .poll(async () => (await admin.get('/admin/api/overview')).body.rates.published_per_s, { timeout: 3000 })
      .toBeGreaterThan(0);
    const now = (await admin.get('/admin/api/overview')).body.rates;
    expect(now.delivered_per_s).toBe(now.published_per_s);
    expect(now.connects_per_s).toBeGreaterThan(0);
    // The store probe (the one /healthz uses) fails: store.ok false within its cache time.
    faulty.fail.add('getClient');
    await expect.poll(async () => (await admin.get('/admin/api/overview')).body.store.ok, { timeout: 4000 }).toBe(false);
  });

  it('alerts: recent digests newest first, with each channel’s outcome (a failed webhook, then sent on retry)', async () => {
    sink = await WebhookSink.start();
    sink.failNext(1);
    h = await startServer({ alerts: { groupWaitS: 0, webhook: { url: sink.url }, retry: { initialMs: 1500, maxMs: 2000 } } });
    admin = await adminFor(h);
    expect((await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${'B'.repeat(43)}` } })).status).toBe(401);
    // The webhook answers 500 first: the channel's outcome is `failed` until the retry gets through.
    await expect
      .poll(async () => (await admin.get('/admin/api/alerts')).body.alerts[0]?.sent, { timeout: 5000 })
      .toEqual(expect.arrayContaining([{ channel: 'webhook', status: 'failed', at: expect.any(String) }]));
    await expect
      .poll(async () => (await admin.get('/admin/api/alerts')).body.alerts[0]?.sent, { timeout: 5000 })
      .toEqual(
        expect.arrayContaining([
          { channel: 'log', status: 'sent', at: expect.any(String) },
          { channel: 'webhook', status: 'sent', at: expect.any(String) },
        ]),
      );
    const [alert] = (await admin.get('/admin/api/alerts')).body.alerts;
    expect(alert).toEqual({
      id: sink.delivered[0]!.body.id,
      kind: 'invalid_token',
      at: expect.any(String),
      subject: expect.stringMatching(/^\[hubcast\] invalid_token: +1 in \d+ s \(1 source\)$/),
      summary: expect.stringMatching(/^invalid_token: /),
      count: 1,
      sent: expect.any(Array),
    });
    expect(alert.sent).toHaveLength(2);
    expect((await admin.get('/admin/api/overview')).body.alerts.recent).toBe(1);
    expect((await admin.get('/admin/api/alerts?limit=0')).body.error.code).toBe('bad_request');
  });

  it('audit: every action is one "admin action" log line and an entry of GET /admin/api/audit, newest first, without secrets', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const created = await admin.post('/admin/api/clients', { name: 'audited' });
    h.remember(created.body.secret);
    const key = await admin.post('/admin/api/keys', { name: 'k-audited', scope: 'ingest' });
    h.remember(key.body.secret);
    await admin.post('/admin/api/topics/au.t/messages', { data: 1 });
    await admin.del(`/admin/api/clients/${created.body.client.id}`);
    await admin.del('/admin/api/clients/c_missing');
    await admin.post('/admin/api/clients', { name: 'bad', subscribe: ['a/b'] });
    // Reads are not actions.
    await admin.get('/admin/api/clients');

    const keyRow = (await admin.get('/admin/api/keys')).body.keys.find((k: any) => k.name.startsWith('ops-'));
    const lines = auditLines(h);
    expect(lines.map((l) => [l.action, l.target, l.result])).toEqual([
      ['clients.create', created.body.client.id, 'ok'],
      ['keys.create', key.body.key.id, 'ok'],
      ['topics.publish', 'au.t', 'ok'],
      ['clients.revoke', created.body.client.id, 'ok'],
      ['clients.revoke', 'c_missing', 'not_found'],
    ]);
    for (const l of lines) {
      expect(l).toMatchObject({ level: 30, component: 'admin', admin_key: keyRow.id, key_name: keyRow.name, ip: '127.0.0.1' });
      for (const s of [admin.key, created.body.secret, key.body.secret]) expect(JSON.stringify(l)).not.toContain(s);
    }
    const audit = await admin.get('/admin/api/audit');
    expect(audit.status).toBe(200);
    expect(audit.body.actions).toHaveLength(5);
    expect(audit.body.actions[0]).toEqual({
      at: expect.any(String),
      key_id: keyRow.id,
      key_name: keyRow.name,
      address: '127.0.0.1',
      action: 'clients.revoke',
      target: 'c_missing',
      result: 'not_found',
    });
    expect(audit.body.actions.map((a: any) => a.action)).toEqual([
      'clients.revoke',
      'clients.revoke',
      'topics.publish',
      'keys.create',
      'clients.create',
    ]);
    expect((await admin.get('/admin/api/audit?limit=2')).body.actions).toHaveLength(2);
    expect((await admin.get('/admin/api/audit?cursor=x')).body.error.code).toBe('bad_request');
  });
});
