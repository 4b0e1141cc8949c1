import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { Store } from '../../src/store/store.ts';
import { barrier, buffered, metricsText, metricValue, subscriber, takeN } from '../helpers/e2e.ts';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { dropSchema, pgUrl, PG_PORT, uniqueSchema } from '../helpers/postgres.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import { requireService } from '../helpers/tcp-proxy.ts';

const pgUp = await requireService('PostgreSQL', PG_PORT);

type Reply = { status: number; body: any; headers: Headers };

/** POST /entities with the harness's ingest key (unless `headers` overrides it). */
function postBatch(h: Harness, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return h.fetchJson('/entities', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.ingestKey}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The documented HTTP error shape, exactly `{"error":{"code","message"}}`. */
function expectError(r: Reply, status: number, code: string): void {
  expect({ status: r.status, body: r.body }).toEqual({ status, body: { error: { code, message: expect.any(String) } } });
}

const itemError = (code: string) => ({ error: { code, message: expect.any(String) } });

/**
 * A store whose `append` hands the backend a write it refuses (a NULL payload) for the message whose
 * JSON payload is `"poison"`: the database fails in the middle of the group commit, as a full disk
 * or a lost connection would. Everything else reaches the real store unchanged.
 */
function poisoning(real: Store): Store {
  return new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (prop !== 'append') return (v as (...a: unknown[]) => unknown).bind(target);
      return (req: Parameters<Store['append']>[0]) =>
        target.append(req.payload.toString() === '"poison"' ? { ...req, payload: null as unknown as Buffer } : req);
    },
  });
}

/** The same batch suite on each store: SQLite (embedded default) and PostgreSQL (cluster store). */
const backends = [
  { name: 'sqlite', up: true },
  { name: 'postgres', up: pgUp },
] as const;

for (const backend of backends) {
  describe.skipIf(!backend.up)(`POST /entities on ${backend.name}: order, one result per item, one commit`, () => {
    let h: Harness | undefined;
    let schema: string | undefined;
    const ENV = ['HUBCAST_STORE_TYPE', 'HUBCAST_STORE_URL', 'HUBCAST_STORE_SCHEMA'] as const;

    /** A server on this backend. On PostgreSQL the harness's CLI (keys, clients) reaches the same schema through the environment. */
    async function start(config: ConfigInput = {}, wrapStore?: (s: Store) => Store): Promise<Harness> {
      let full = config;
      if (backend.name === 'postgres') {
        schema = uniqueSchema('hcbatch');
        Object.assign(process.env, { HUBCAST_STORE_TYPE: 'postgres', HUBCAST_STORE_URL: pgUrl(), HUBCAST_STORE_SCHEMA: schema });
        full = { ...config, store: { type: 'postgres', url: pgUrl(), schema, poolSize: 4 } };
      }
      h = await startServer(full, wrapStore ? { wrapStore } : {});
      return h;
    }

    afterEach(async () => {
      await h?.close();
      h = undefined;
      for (const k of ENV) delete process.env[k];
      if (schema) await dropSchema(schema);
      schema = undefined;
    });

    it('stores and delivers every message in array order, one commit, while single publishes to the same topic run beside it', async () => {
      const h = await start();
      const c = await subscriber(h, ['mix.>']);
      // 100 messages over two topics, interleaved, sent while 4 backends publish single messages to
      // one of them without pause (from before the batch is sent until it is answered).
      const messages = Array.from({ length: 100 }, (_, i) => ({ topic: i % 4 === 3 ? 'mix.b' : 'mix.a', data: { i } }));
      const single: { status: number; body: any }[] = [];
      let batchDone = false;
      const loops = Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let n = 0; !batchDone && n < 500; n++) single.push(await h.ingest('mix.a', { single: n }));
        }),
      );
      await eventually(() => single.length >= 8, 5000, 'single publishes under way');
      const batch = await postBatch(h, { messages });
      batchDone = true;
      await loops;
      expect(batch.status).toBe(200);
      expect(single.every((r) => r.status === 202)).toBe(true);
      const results = batch.body.results as { topic: string; offset: number; id: string }[];
      expect(results).toHaveLength(100);
      expect(Object.keys(batch.body)).toEqual(['results']);
      for (const [i, r] of results.entries()) {
        expect(Object.keys(r).sort()).toEqual(['id', 'offset', 'topic']);
        expect(r.topic).toBe(messages[i]!.topic);
      }
      expect(new Set(results.map((r) => r.id)).size).toBe(100);
      // One commit: the batch's messages of each topic have consecutive offsets, in array order;
      // the single publishes come before or after them, never in between.
      for (const topic of ['mix.a', 'mix.b']) {
        const offs = results.filter((r) => r.topic === topic).map((r) => r.offset);
        expect(offs).toEqual(offs.map((_, k) => offs[0]! + k));
      }
      expect(results.filter((r) => r.topic === 'mix.b').map((r) => r.offset)).toEqual(Array.from({ length: 25 }, (_, k) => k + 1));
      const singleOffsets = single.map((r) => r.body.offset as number);
      const total = single.length + 100;
      expect([...singleOffsets, ...results.filter((r) => r.topic === 'mix.a').map((r) => r.offset)].sort((x, y) => x - y)).toEqual(
        Array.from({ length: total - 25 }, (_, k) => k + 1),
      );
      // Delivered once each, per topic in offset order, the batch's in array order.
      const frames = await takeN(c, total, 'message', 10_000);
      for (const topic of ['mix.a', 'mix.b']) {
        const got = frames.filter((f) => f.topic === topic);
        expect(got.map((f) => f.offset)).toEqual(got.map((_, k) => k + 1));
      }
      const batchFrames = frames.filter((f) => (f.data as { i?: number }).i !== undefined);
      expect(batchFrames.map((f) => (f.data as { i: number }).i).sort((x, y) => x - y)).toEqual(messages.map((_, i) => i));
      for (const topic of ['mix.a', 'mix.b'])
        expect(batchFrames.filter((f) => f.topic === topic).map((f) => (f.data as { i: number }).i)).toEqual(
          messages.flatMap((m, i) => (m.topic === topic ? [i] : [])),
        );
      await barrier(c);
      expect(buffered(c, 'message')).toEqual([]);
    });

    it('a store failure part-way through the commit answers 503: nothing of the batch is stored or delivered', async () => {
      const h = await start({}, poisoning);
      const c = await subscriber(h, ['atom.>']);
      const messages = [
        { topic: 'atom.a', data: 1 },
        { topic: 'atom.b', data: 2 },
        { topic: 'atom.a', data: 'poison' },
        { topic: 'atom.a', data: 4 },
      ];
      const r = await postBatch(h, { messages });
      expectError(r, 503, 'unavailable');
      expect(r.headers.get('retry-after')).toBe('1');
      await barrier(c);
      expect(buffered(c, 'message')).toEqual([]);
      // Nothing was left behind: the same batch without the poison starts both topics at offset 1.
      const ok = await postBatch(h, { messages: messages.filter((m) => m.data !== 'poison') });
      expect(ok.status).toBe(200);
      expect(ok.body.results.map((x: { offset: number }) => x.offset)).toEqual([1, 1, 2]);
      const got = await takeN(c, 3);
      expect(got.map((f) => [f.topic, f.offset, f.data])).toEqual([
        ['atom.a', 1, 1],
        ['atom.b', 1, 2],
        ['atom.a', 2, 4],
      ]);
    });

    if (backend.name === 'postgres')
      it('PostgreSQL: the batch is one transaction (one xmin for all its rows)', async () => {
        const h = await start();
        const messages = Array.from({ length: 300 }, (_, i) => ({ topic: `xmin.t${i % 7}`, data: i }));
        const r = await postBatch(h, { messages });
        expect(r.status).toBe(200);
        const db = new pg.Client({ connectionString: pgUrl() });
        await db.connect();
        try {
          const { rows } = await db.query(
            `SELECT count(DISTINCT xmin::text)::int AS n, count(*)::int AS m FROM "${schema!}".messages WHERE topic LIKE 'xmin.%'`,
          );
          expect(rows[0]).toEqual({ n: 1, m: 300 });
        } finally {
          await db.end();
        }
      });
  });
}

describe('POST /entities: items, idempotency, caps, access', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({ limits: { maxMessageBytes: 1024, maxBatchMessages: 10, maxBatchBytes: 8192, maxJsonDepth: 8 } });
  });
  afterAll(async () => h?.close());

  it('validates each item on its own: refused items get an error entry and are not stored, the others are', async () => {
    const c = await subscriber(h, ['mixed.>']);
    const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
    const r = await postBatch(h, {
      messages: [
        { topic: 'mixed.a', data: { n: 1 }, id: 'mixed-1' },
        { topic: 'mixed.*', data: 2 },
        { topic: 'mixed.a' },
        { topic: 'mixed.a', data: 3, id: 7 },
        { topic: 'mixed.a', data: 3, id: '' },
        null,
        [{ topic: 'mixed.a', data: 4 }],
        { data: 5 },
        { topic: 'mixed.a', data: 'x'.repeat(2000) },
        { topic: 'mixed.b', data: deep(8) },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      results: [
        { topic: 'mixed.a', offset: 1, id: 'mixed-1' },
        itemError('invalid_topic'),
        itemError('bad_request'),
        itemError('bad_request'),
        itemError('bad_request'),
        itemError('bad_request'),
        itemError('bad_request'),
        itemError('invalid_topic'),
        itemError('payload_too_large'),
        { topic: 'mixed.b', offset: 1, id: expect.stringMatching(/^m_/) },
      ],
    });
    const got = await takeN(c, 2);
    expect(got.map((f) => [f.topic, f.offset, f.data])).toEqual([
      ['mixed.a', 1, { n: 1 }],
      ['mixed.b', 1, deep(8)],
    ]);
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    // A batch of refused items only is still answered 200, one error each; nothing is stored.
    const none = await postBatch(h, { messages: [{ topic: 'mixed.a' }, { topic: '', data: 1 }] });
    expect(none.body).toEqual({ results: [itemError('bad_request'), itemError('invalid_topic')] });
    expect((await postBatch(h, { messages: [{ topic: 'mixed.a', data: 'next' }] })).body.results[0].offset).toBe(2);
  });

  it('ids: a repeat is a duplicate (same offset, not delivered again), another message with the id a conflict — within a batch, across batches and with POST /entity', async () => {
    const c = await subscriber(h, ['idem.>']);
    const first = await postBatch(h, {
      messages: [
        { topic: 'idem.a', data: 1, id: 'k1' },
        { topic: 'idem.a', data: 1, id: 'k1' },
        { topic: 'idem.a', data: 2, id: 'k1' },
        { topic: 'idem.b', data: 1, id: 'k1' },
        { topic: 'idem.a', data: 3, id: 'k2' },
      ],
    });
    expect(first.body).toEqual({
      results: [
        { topic: 'idem.a', offset: 1, id: 'k1' },
        { topic: 'idem.a', offset: 1, id: 'k1', duplicate: true },
        itemError('idempotency_key_conflict'),
        itemError('idempotency_key_conflict'),
        { topic: 'idem.a', offset: 2, id: 'k2' },
      ],
    });
    // The whole batch retried: every stored message is a duplicate, nothing new is stored.
    const retry = await postBatch(h, {
      messages: [
        { topic: 'idem.a', data: 1, id: 'k1' },
        { topic: 'idem.a', data: 3, id: 'k2' },
        { topic: 'idem.a', data: 4, id: 'k3' },
      ],
    });
    expect(retry.body.results).toEqual([
      { topic: 'idem.a', offset: 1, id: 'k1', duplicate: true },
      { topic: 'idem.a', offset: 2, id: 'k2', duplicate: true },
      { topic: 'idem.a', offset: 3, id: 'k3' },
    ]);
    // Scoped per ingest key, exactly as POST /entity: the same id there is the same message...
    const single = await h.fetchJson('/entity', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.ingestKey}` },
      body: JSON.stringify({ topic: 'idem.a', data: 3, id: 'k2' }),
    });
    expect(single).toMatchObject({ status: 202, body: { topic: 'idem.a', offset: 2, id: 'k2' } });
    // ...and another ingest key's k1 is its own message.
    const other = await h.createKey('other-backend');
    const mine = await postBatch(h, { messages: [{ topic: 'idem.a', data: 9, id: 'k1' }] }, { authorization: `Bearer ${other}` });
    expect(mine.body.results).toEqual([{ topic: 'idem.a', offset: 4, id: 'k1' }]);
    const got = await takeN(c, 4);
    expect(got.map((f) => [f.offset, f.data])).toEqual([
      [1, 1],
      [2, 3],
      [3, 4],
      [4, 9],
    ]);
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });

  it('refuses the whole request, storing nothing: bad envelope, empty, too many, too large, too deep, not JSON', async () => {
    const c = await subscriber(h, ['cap.>']);
    const one = { topic: 'cap.a', data: 1 };
    expectError(await postBatch(h, { messages: [] }), 400, 'bad_request');
    expectError(await postBatch(h, {}), 400, 'bad_request');
    expectError(await postBatch(h, { messages: one }), 400, 'bad_request');
    expectError(await postBatch(h, [one]), 400, 'bad_request');
    expectError(await postBatch(h, 'null'), 400, 'bad_request');
    expectError(await postBatch(h, '{"messages":[{"topic":"cap.a","data":1}'), 400, 'invalid_json');
    expectError(await postBatch(h, ''), 400, 'invalid_json');
    // limits.maxBatchMessages (10)
    const tooMany = await postBatch(h, { messages: Array.from({ length: 11 }, () => one) });
    expectError(tooMany, 413, 'payload_too_large');
    expect(tooMany.body.error.message).toContain('limits.maxBatchMessages');
    expect((await postBatch(h, { messages: Array.from({ length: 10 }, () => one) })).status).toBe(200);
    // limits.maxBatchBytes (8192), though every message is under limits.maxMessageBytes (1024)
    const big = { messages: Array.from({ length: 10 }, () => ({ topic: 'cap.a', data: 'y'.repeat(900) })) };
    expect(JSON.stringify(big).length).toBeGreaterThan(8192);
    expectError(await postBatch(h, big), 413, 'payload_too_large');
    // limits.maxJsonDepth (8) is checked on the bytes before parsing: one item too deep refuses the body.
    const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
    const tooDeep = await postBatch(h, { messages: [one, { topic: 'cap.a', data: deep(9) }] });
    expectError(tooDeep, 400, 'invalid_json');
    expect(tooDeep.body.error.message).toContain('limits.maxJsonDepth');
    // Only the 10 of the one accepted batch were stored and delivered.
    const got = await takeN(c, 10);
    expect(got.map((f) => f.offset)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });

  it('takes application/json only, and refuses an Idempotency-Key header (each message has its own id)', async () => {
    const body = JSON.stringify({ messages: [{ topic: 'ct.a', data: 1 }] });
    expectError(await postBatch(h, body, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    expectError(await postBatch(h, body, { 'content-type': 'application/x-ndjson' }), 415, 'unsupported_media_type');
    const keyed = await postBatch(h, body, { 'idempotency-key': 'whole-batch' });
    expectError(keyed, 400, 'bad_request');
    expect(keyed.body.error.message).toContain('Idempotency-Key');
    expect((await postBatch(h, body, { 'content-type': 'application/vnd.acme+json; charset=utf-8' })).body.results[0].offset).toBe(1);
  });

  it('needs an ingest key like POST /entity: none or an unknown one is 401 invalid_key', async () => {
    const body = { messages: [{ topic: 'auth.a', data: 1 }] };
    expectError(await postBatch(h, body, { authorization: '' }), 401, 'invalid_key');
    expectError(await postBatch(h, body, { authorization: 'Bearer not-a-key' }), 401, 'invalid_key');
    expect((await postBatch(h, body)).status).toBe(200);
  });

  it('counts each stored message in hubcast_messages_in_total and the request in hubcast_ingest_requests_total', async () => {
    const before = await metricsText(h);
    const r = await postBatch(h, {
      messages: [
        { topic: 'metrics.a', data: 1, id: 'm1' },
        { topic: 'metrics.a', data: 1, id: 'm1' },
        { topic: 'metrics.a', data: 2 },
        { topic: 'metrics.*', data: 3 },
      ],
    });
    expect(r.status).toBe(200);
    await postBatch(h, { messages: [] });
    const after = await metricsText(h);
    const delta = (name: string, labels: Record<string, string>) =>
      (metricValue(after, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);
    expect(delta('hubcast_messages_in_total', { source: 'http' })).toBe(2);
    expect(delta('hubcast_ingest_requests_total', { status: '200' })).toBe(1);
    expect(delta('hubcast_ingest_requests_total', { status: '400' })).toBe(1);
  });

  it('does not collide with topics: POST /entity/batch publishes to the topic "batch"; GET /entities is 405', async () => {
    const c = await subscriber(h, ['batch']);
    const r = await h.fetchJson('/entity/batch', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.ingestKey}` },
      body: JSON.stringify({ messages: [] }),
    });
    expect(r).toMatchObject({ status: 202, body: { topic: 'batch', offset: 1 } });
    expect(await c.next('message')).toMatchObject({ topic: 'batch', offset: 1, data: { messages: [] } });
    const viaBatch = await postBatch(h, { messages: [{ topic: 'batch', data: 'in a batch' }] });
    expect(viaBatch.body.results).toEqual([{ topic: 'batch', offset: 2, id: expect.any(String) }]);
    const get = await h.fetchJson('/entities');
    expectError(get as Reply, 405, 'method_not_allowed');
  });
});

describe('POST /entities: refusals before anything is read', () => {
  let h: Harness | undefined;
  let faulty: FaultyStore | undefined;
  afterEach(async () => {
    faulty?.fail.clear();
    await h?.close();
    h = undefined;
    faulty = undefined;
  });

  it('403 ip_not_allowed from an address outside ingest.allow, with or without a key', async () => {
    h = await startServer({ ingest: { allow: ['10.0.0.0/8'] } });
    const body = { messages: [{ topic: 'acl.a', data: 1 }] };
    expectError(await postBatch(h, body), 403, 'ip_not_allowed');
    expectError(await postBatch(h, body, { authorization: '' }), 403, 'ip_not_allowed');
  });

  it('the store failing answers 503 unavailable with Retry-After; nothing is delivered; the retry with the same ids stores each once', async () => {
    h = await startServer({}, { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
    const c = await subscriber(h, ['down.>']);
    const messages = [
      { topic: 'down.a', data: 1, id: 'd1' },
      { topic: 'down.a', data: 2, id: 'd2' },
    ];
    faulty!.fail.add('append');
    const r = await postBatch(h, { messages });
    expectError(r, 503, 'unavailable');
    expect(r.headers.get('retry-after')).toBe('1');
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
    faulty!.fail.delete('append');
    const again = await postBatch(h, { messages });
    expect(again.body.results).toEqual([
      { topic: 'down.a', offset: 1, id: 'd1' },
      { topic: 'down.a', offset: 2, id: 'd2' },
    ]);
    expect((await takeN(c, 2)).map((f) => f.data)).toEqual([1, 2]);
  });
});
