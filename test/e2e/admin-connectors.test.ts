import { createHmac } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adminFor, auditLines, type Admin } from '../helpers/admin.ts';
import { subscriber } from '../helpers/e2e.ts';
import { cli, startServer, tempDir, type Harness } from '../helpers/server.ts';

/** The admin API's connectors and dead-letter store: list, retry now, drop. */

const SECRET = 'webhook-secret-0123456789';
const sign = (body: string, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}`;

describe('admin API: connectors and dead letters', () => {
  let h: Harness | undefined;
  let admin: Admin;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  /** A webhook connector whose pipeline fails while `flag` exists (a lookup that is down). */
  async function start(): Promise<{ flag: string }> {
    const dir = tempDir();
    const flag = join(dir, 'broken');
    writeFileSync(flag, '');
    const mod = join(dir, 'enrich.mjs');
    writeFileSync(
      mod,
      `import { existsSync } from 'node:fs';
       export default (r) => { if (existsSync(${JSON.stringify(flag)})) throw new Error('lookup service down'); return { ...r, value: { ...r.value, enriched: true } }; };`,
    );
    h = await startServer({
      connectors: [{ name: 'shop', type: 'webhook', topic: 'orders.{{region}}', secret: SECRET, pipeline: [{ module: mod }] }],
    });
    admin = await adminFor(h);
    return { flag };
  }

  const hook = (body: string, id: string) =>
    h!.fetchJson('/hooks/shop', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubcast-signature': sign(body), 'idempotency-key': id },
      body,
    });

  it('lists dead letters, retries one now (again dead-lettered while the cause lasts, delivered once fixed), drops one', async () => {
    const { flag } = await start();
    const c = await subscriber(h!, ['orders.*']);
    for (const id of ['o-1', 'o-2']) expect((await hook(JSON.stringify({ region: 'eu', id }), id)).status).toBe(202);

    const list = await admin.get('/admin/api/dead-letters');
    expect(list.status).toBe(200);
    expect(list.body).toEqual({
      dead_letters: [
        {
          id: expect.any(Number),
          connector: 'shop',
          key: 'o-1',
          kind: 'json',
          reason: expect.stringMatching(/lookup service down/),
          at: expect.any(String),
          size: expect.any(Number),
        },
        {
          id: expect.any(Number),
          connector: 'shop',
          key: 'o-2',
          kind: 'json',
          reason: expect.stringMatching(/lookup service down/),
          at: expect.any(String),
          size: expect.any(Number),
        },
      ],
      next_cursor: null,
    });
    const [d1, d2] = list.body.dead_letters;
    expect((await admin.get('/admin/api/dead-letters?connector=other')).body.dead_letters).toEqual([]);
    const page1 = await admin.get('/admin/api/dead-letters?connector=shop&limit=1');
    expect(page1.body.dead_letters.map((d: any) => d.id)).toEqual([d1.id]);
    expect((await admin.get(`/admin/api/dead-letters?limit=1&cursor=${page1.body.next_cursor}`)).body).toEqual({
      dead_letters: [d2],
      next_cursor: null,
    });

    const connectors = await admin.get('/admin/api/connectors');
    expect(connectors.body.connectors).toEqual([
      expect.objectContaining({ name: 'shop', type: 'webhook', status: 'running', records_in: 2, dead_letters: 2, dead_letters_stored: 2 }),
    ]);

    // Still broken: dead-lettered again, under a new id.
    const again = await admin.post(`/admin/api/dead-letters/${d1.id}/retry`);
    expect(again).toMatchObject({
      status: 202,
      body: { retried: false, dead_letter: { id: expect.any(Number), reason: expect.stringMatching(/lookup/) } },
    });
    const d1b = again.body.dead_letter.id;
    expect(d1b).not.toBe(d1.id);
    expect(await admin.post(`/admin/api/dead-letters/${d1.id}/retry`)).toMatchObject({
      status: 404,
      body: { error: { code: 'not_found' } },
    });

    // Fixed: the retry publishes it, the subscriber gets it, the row is gone.
    unlinkSync(flag);
    const ok = await admin.post(`/admin/api/dead-letters/${d1b}/retry`);
    expect(ok).toMatchObject({
      status: 202,
      body: { retried: true, topic: 'orders.eu', offset: 1, published: [{ topic: 'orders.eu', offset: 1 }] },
    });
    expect(await c.next('message')).toMatchObject({ topic: 'orders.eu', offset: 1, data: { region: 'eu', id: 'o-1', enriched: true } });

    expect(await admin.del(`/admin/api/dead-letters/${d2.id}`)).toMatchObject({ status: 200, body: { dropped: true } });
    expect(await admin.del(`/admin/api/dead-letters/${d2.id}`)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect((await admin.get('/admin/api/dead-letters')).body.dead_letters).toEqual([]);
    expect(JSON.parse((await cli(['dlq', 'list', '--json', '--data-dir', h!.dataDir])).out).dead_letters).toEqual([]);

    for (const [method, path] of [
      ['POST', '/admin/api/dead-letters/abc/retry'],
      ['DELETE', '/admin/api/dead-letters/-1'],
    ] as const)
      expect((await admin.request(method, path)).body.error.code).toBe('bad_request');
    expect((await admin.get('/admin/api/dead-letters?cursor=eA')).body.error.code).toBe('bad_request');
    expect(auditLines(h!).map((l) => [l.action, l.target, l.result])).toEqual([
      ['dead_letters.retry', String(d1.id), 'dead_lettered'],
      ['dead_letters.retry', String(d1.id), 'not_found'],
      ['dead_letters.retry', String(d1b), 'ok'],
      ['dead_letters.drop', String(d2.id), 'ok'],
      ['dead_letters.drop', String(d2.id), 'not_found'],
    ]);
  });

  it('without connectors: an empty list, and 404 for any dead letter', async () => {
    h = await startServer();
    admin = await adminFor(h);
    expect((await admin.get('/admin/api/connectors')).body).toEqual({ connectors: [] });
    expect((await admin.get('/admin/api/dead-letters')).body).toEqual({ dead_letters: [], next_cursor: null });
    expect((await admin.post('/admin/api/dead-letters/1/retry')).status).toBe(404);
    expect((await admin.del('/admin/api/dead-letters/1')).status).toBe(404);
  });
});
