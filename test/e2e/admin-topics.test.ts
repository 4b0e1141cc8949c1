import { afterEach, describe, expect, it } from 'vitest';
import { adminFor, auditLines, type Admin } from '../helpers/admin.ts';
import { postRaw, subscriber } from '../helpers/e2e.ts';
import { startServer, type Harness } from '../helpers/server.ts';

/** The admin API's topics: the list, a topic's history page by page, a test message. */

describe('admin API: topics', () => {
  let h: Harness | undefined;
  let admin: Admin;
  afterEach(async () => {
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  it('a test message goes through the publish path: stored, delivered, counted, audited', async () => {
    h = await startServer();
    admin = await adminFor(h);
    const c = await subscriber(h, ['ops.test']);
    const r = await admin.post('/admin/api/topics/ops.test/messages', { data: { hello: 'world', n: [1, 2] } });
    expect(r).toMatchObject({ status: 202, body: { topic: 'ops.test', offset: 1, id: expect.stringMatching(/^m_/) } });
    expect(await c.next('message')).toMatchObject({ topic: 'ops.test', offset: 1, data: { hello: 'world', n: [1, 2] } });
    const metrics = await (await fetch(`${h.base}/metrics`)).text();
    expect(metrics).toMatch(/hubcast_messages_in_total\{source="admin"\} 1/);
    const line = auditLines(h).at(-1)!;
    expect(line).toMatchObject({
      level: 30,
      action: 'topics.publish',
      target: 'ops.test',
      result: 'ok',
      ip: '127.0.0.1',
      key_name: expect.stringMatching(/^ops-/),
    });
    expect(line.admin_key).toMatch(/^k_/);
    expect(JSON.stringify(line)).not.toContain(admin.key);

    const bad: [string, unknown, number, string][] = [
      ['no%20spaces', { data: 1 }, 400, 'invalid_topic'],
      ['a.*', { data: 1 }, 400, 'invalid_topic'],
      ['ops.test', {}, 400, 'bad_request'],
      ['ops.test', { data: 1, key: 'k' }, 400, 'bad_request'],
      ['ops.test', '{"data":', 400, 'invalid_json'],
      ['ops.test', `{"data":${'['.repeat(70)}${']'.repeat(70)}}`, 400, 'invalid_json'],
    ];
    for (const [topic, body, status, code] of bad) {
      const res = await admin.post(`/admin/api/topics/${topic}/messages`, body);
      expect({ topic, status: res.status, code: res.body?.error?.code }).toEqual({ topic, status, code });
    }
  });

  it('a test message up to limits.maxMessageBytes is taken; a larger one is 413 (the admin body limit does not apply)', async () => {
    h = await startServer({ limits: { maxMessageBytes: 100 * 1024 } });
    admin = await adminFor(h);
    const ok = await admin.post('/admin/api/topics/big.one/messages', { data: 'x'.repeat(90 * 1024) });
    expect(ok.status).toBe(202);
    const tooBig = await admin.post('/admin/api/topics/big.one/messages', { data: 'x'.repeat(101 * 1024) });
    expect(tooBig).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
  });

  it('lists topics with history and topics subscribed here, with offsets, epoch, subscribers and rate; paged by name', async () => {
    h = await startServer();
    admin = await adminFor(h);
    await subscriber(h, ['t.b', 't.waiting']);
    await subscriber(h, ['t.*']);
    for (const t of ['t.a', 't.b', 't.b', 't.c']) expect((await h.ingest(t, 1)).status).toBe(202);
    const r = await admin.get('/admin/api/topics');
    expect(r.status).toBe(200);
    const epoch = r.body.topics[0].epoch;
    expect(epoch).toEqual(expect.any(String));
    expect(r.body).toEqual({
      topics: [
        { topic: 't.a', last_offset: 1, epoch, subscribers: 1, published_per_s: expect.any(Number) },
        { topic: 't.b', last_offset: 2, epoch, subscribers: 2, published_per_s: expect.any(Number) },
        { topic: 't.c', last_offset: 1, epoch, subscribers: 1, published_per_s: expect.any(Number) },
        { topic: 't.waiting', last_offset: 0, epoch: null, subscribers: 2, published_per_s: 0 },
      ],
      next_cursor: null,
    });
    // The rate: two publications of t.b averaged over the seconds seen so far (the window moves each second).
    await expect
      .poll(async () => (await admin.get('/admin/api/topics')).body.topics.find((t: any) => t.topic === 't.b').published_per_s, {
        timeout: 3000,
      })
      .toBeGreaterThan(0);
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const p: any = await admin.get(`/admin/api/topics?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      names.push(...p.body.topics.map((t: any) => t.topic));
      cursor = p.body.next_cursor;
    } while (cursor);
    expect(names).toEqual(['t.a', 't.b', 't.c', 't.waiting']);
    expect((await admin.get('/admin/api/topics?cursor=bm8gc3BhY2Vz')).body.error.code).toBe('bad_request');
  });

  it('browses a topic’s history page by page: JSON as data, text as text, bytes as data_base64', async () => {
    h = await startServer();
    admin = await adminFor(h);
    expect((await h.ingest('h.t', { n: 1 })).status).toBe(202);
    expect((await postRaw(h, 'h.t', 'plain words', 'text/plain')).status).toBe(202);
    expect((await postRaw(h, 'h.t', new Uint8Array([0, 1, 254, 255]), 'application/octet-stream')).status).toBe(202);
    for (let i = 4; i <= 7; i++) await h.ingest('h.t', i);
    const first = await admin.get('/admin/api/topics/h.t/messages?limit=3');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      topic: 'h.t',
      epoch: expect.any(String),
      last_offset: 7,
      first_offset: 1,
      messages: [
        { offset: 1, ts: expect.any(String), kind: 'json', data: { n: 1 } },
        { offset: 2, ts: expect.any(String), kind: 'text', text: 'plain words' },
        { offset: 3, ts: expect.any(String), kind: 'binary', data_base64: Buffer.from([0, 1, 254, 255]).toString('base64') },
      ],
      next_since: 3,
    });
    const second = await admin.get('/admin/api/topics/h.t/messages?since=3&limit=3');
    expect(second.body.messages.map((m: any) => m.data)).toEqual([4, 5, 6]);
    const last = await admin.get(`/admin/api/topics/h.t/messages?since=${second.body.next_since}&limit=3`);
    expect(last.body.messages.map((m: any) => m.offset)).toEqual([7]);
    expect(last.body.next_since).toBeNull();
    const none = await admin.get('/admin/api/topics/never.used/messages');
    expect(none.body).toMatchObject({ topic: 'never.used', last_offset: 0, messages: [], next_since: null });
    expect(await admin.get('/admin/api/topics/h.*/messages')).toMatchObject({ status: 400, body: { error: { code: 'invalid_topic' } } });
    for (const q of ['since=-1', 'since=x', 'limit=0', 'limit=501', 'from=1'])
      expect((await admin.get(`/admin/api/topics/h.t/messages?${q}`)).body.error?.code, q).toBe('bad_request');
  });
});
