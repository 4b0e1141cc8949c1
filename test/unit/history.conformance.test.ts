import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { AppendRequest, HistoryLimits, Store } from '../../src/store/store.ts';
import { pgUrl, PG_PORT, testSchema } from '../helpers/postgres.ts';
import { ManualClock, tempDir } from '../helpers/server.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const pgUp = await requireService('PostgreSQL', PG_PORT);

const limits = (h: Partial<HistoryLimits>): HistoryLimits => ({ size: 1000, ttlS: 86400, dedupeS: 300, ...h });

/**
 * The History conformance suite: every implementation runs it. `place()` makes a new, empty store
 * location and returns a function that opens another process (node) on it.
 */
const implementations: { name: string; up: boolean; place: () => (history: Partial<HistoryLimits>, clock: ManualClock) => Store }[] = [
  ...(['normal', 'full'] as const).map((synchronous) => ({
    name: `sqlite, synchronous ${synchronous}`,
    up: true,
    place: () => {
      const dir = tempDir();
      return (history: Partial<HistoryLimits>, clock: ManualClock) =>
        new SqliteStore({ dataDir: dir, synchronous, history: limits(history), clock });
    },
  })),
  {
    name: 'postgres',
    up: pgUp,
    place: () => {
      const { backend } = testSchema();
      return (history: Partial<HistoryLimits>, clock: ManualClock) => backend({ history: limits(history), clock }).store;
    },
  },
];

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

for (const impl of implementations) {
  describe.skipIf(!impl.up)(`History conformance: ${impl.name}`, () => {
    // Message timestamps in these tests are small numbers; the store's clock stands near them.
    const open = async (history: Partial<HistoryLimits> = {}, at = impl.place(), clock = new ManualClock(0)) => {
      const s = at(history, clock);
      await s.open();
      return s;
    };

    it('append: offsets per topic from 1, settled in call order, durable across reopen with the same epoch', async () => {
      const at = impl.place();
      const s = await open({}, at);
      const settled: string[] = [];
      const reqs = Array.from({ length: 50 }, (_, i) => ({
        topic: i % 2 ? 'odd' : 'even',
        kind: 'json' as const,
        payload: json(i),
        ts: 10 + i,
      }));
      const results = await Promise.all(
        reqs.map((r, i) =>
          s.append(r).then((res) => {
            settled.push(`${i}`);
            return res;
          }),
        ),
      );
      expect(settled).toEqual(reqs.map((_, i) => `${i}`));
      expect(results.filter((_, i) => i % 2 === 0).map((r) => r.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(results[3]).toEqual({ offset: 2, epoch: results[0]!.epoch, ts: 13, duplicate: false });
      const epoch = results[0]!.epoch;
      const state = await s.topicState('odd');
      expect(state).toMatchObject({ offset: 25, epoch, firstRetained: 1 });
      expect(await s.topicState('never')).toEqual({ offset: 0, epoch, firstRetained: 1 });
      // latest(): many topics in one call; a topic without messages is absent.
      const latest = await s.latest(['odd', 'even', 'never']);
      expect([...latest.entries()].sort()).toEqual([
        ['even', { offset: 25, epoch }],
        ['odd', { offset: 25, epoch }],
      ]);
      expect((await s.latest([])).size).toBe(0);
      await s.close();
      const again = await open({}, at);
      const hist = await again.readHistory('even', 20, 100);
      expect(hist.map((m) => [m.offset, JSON.parse(m.payload.toString())])).toEqual([
        [21, 40],
        [22, 42],
        [23, 44],
        [24, 46],
        [25, 48],
      ]);
      expect(hist[0]).toMatchObject({ topic: 'even', ts: 50, kind: 'json' });
      expect((await again.topicState('even')).epoch).toBe(epoch);
      await again.close();
    });

    it('listTopics: topics with a message, in code-unit order, paged by name', async () => {
      const s = await open();
      // Mixed case, '-' and '_': a natural-language collation would order these differently.
      const names = ['b-x', 'B', 'a', 'a_b', 'a-b', 'a.b', 'z'];
      for (const [i, topic] of names.entries()) await s.append({ topic, kind: 'json', payload: json(i), ts: 10 + i });
      await s.append({ topic: 'a', kind: 'json', payload: json('again'), ts: 20 });
      const epoch = (await s.topicState('a')).epoch;
      const sorted = [...names].sort();
      const all = await s.listTopics('', 100);
      expect(all.map((t) => t.topic)).toEqual(sorted);
      expect(all.find((t) => t.topic === 'a')).toEqual({ topic: 'a', offset: 2, epoch });
      const first = await s.listTopics('', 3);
      const rest = await s.listTopics(first.at(-1)!.topic, 100);
      expect([...first, ...rest].map((t) => t.topic)).toEqual(sorted);
      expect(await s.listTopics('z', 10)).toEqual([]);
      await s.close();
    });

    it('append: appends of later turns queue behind a commit in progress, still in call order', async () => {
      const s = await open();
      const order: number[] = [];
      const all: Promise<unknown>[] = [];
      for (let turn = 0; turn < 5; turn++) {
        for (let i = 0; i < 20; i++)
          all.push(s.append({ topic: 't', kind: 'text', payload: Buffer.from('x'), ts: 1 }).then((r) => order.push(r.offset)));
        await new Promise<void>((r) => setImmediate(r));
      }
      await Promise.all(all);
      expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      await s.close();
    });

    it('readHistory: after, limit and a byte budget that always lets the first message through', async () => {
      const s = await open();
      for (let i = 1; i <= 6; i++) await s.append({ topic: 't', kind: 'binary', payload: Buffer.alloc(i * 10, i), ts: i });
      expect((await s.readHistory('t', 2, 3)).map((m) => m.offset)).toEqual([3, 4, 5]);
      expect((await s.readHistory('t', 6, 10)).map((m) => m.offset)).toEqual([]);
      // 30 + 40 = 70 bytes fit in 75; the 50 more of offset 5 do not.
      expect((await s.readHistory('t', 2, 10, 75)).map((m) => m.offset)).toEqual([3, 4]);
      expect((await s.readHistory('t', 2, 10, 70)).map((m) => m.offset)).toEqual([3, 4]);
      expect((await s.readHistory('t', 2, 10, 1)).map((m) => m.offset)).toEqual([3]);
      const [m] = await s.readHistory('t', 5, 1, 0);
      expect(m!.payload.equals(Buffer.alloc(60, 6))).toBe(true);
      expect(m!.kind).toBe('binary');
      await s.close();
    });

    it('append: idempotency keys dedupe within the window only', async () => {
      const s = await open({ dedupeS: 10 });
      const req = { topic: 't', kind: 'text' as const, payload: Buffer.from('x'), key: 'k', scope: 'key:a', requestHash: 'h1' };
      const a = await s.append({ ...req, ts: 1000 });
      const [b, c] = await Promise.all([s.append({ ...req, ts: 2000 }), s.append({ ...req, ts: 2000 })]);
      expect([a.duplicate, b.duplicate, c.duplicate]).toEqual([false, true, true]);
      expect([b.offset, c.offset]).toEqual([a.offset, a.offset]);
      expect([b.ts, b.epoch]).toEqual([1000, a.epoch]);
      const later = await s.append({ ...req, ts: 12_001 });
      expect(later).toMatchObject({ duplicate: false, offset: 2 });
      // In one turn: the first is stored, the repeat is its duplicate.
      const [x, y] = await Promise.all([s.append({ ...req, key: 'k2', ts: 13_000 }), s.append({ ...req, key: 'k2', ts: 13_000 })]);
      expect(x).toMatchObject({ duplicate: false, offset: 3 });
      expect(y).toMatchObject({ duplicate: true, offset: 3, ts: 13_000, epoch: a.epoch });
      // Without a key nothing is deduplicated.
      expect(await s.append({ ...req, key: undefined, ts: 13_000 })).toMatchObject({ duplicate: false, offset: 4 });
      await s.close();
    });

    it('append: a key reused in its scope for another topic or request hash is a conflict; other scopes are unrelated', async () => {
      const s = await open({ dedupeS: 10 });
      const req = { topic: 't', kind: 'json' as const, payload: json({ n: 1 }), key: 'k', scope: 'key:a', requestHash: 'h1' };
      expect(await s.append({ ...req, ts: 1000 })).toMatchObject({ offset: 1, duplicate: false });
      // Another payload (another hash) on the same topic, or the same payload on another topic: refused, nothing stored.
      const other = await s.append({ ...req, payload: json({ n: 2 }), requestHash: 'h2', ts: 2000 });
      expect(other).toMatchObject({ conflict: true, duplicate: false, offset: 0 });
      expect(await s.append({ ...req, topic: 'u', requestHash: 'h1', ts: 2000 })).toMatchObject({ conflict: true, offset: 0 });
      expect((await s.topicState('t')).offset).toBe(1);
      expect((await s.topicState('u')).offset).toBe(0);
      expect((await s.readHistory('t', 0, 10)).map((m) => m.payload.toString())).toEqual(['{"n":1}']);
      // The first request, retried, is still a duplicate; the same key from another publisher is its own message.
      expect(await s.append({ ...req, ts: 3000 })).toMatchObject({ duplicate: true, offset: 1 });
      expect(await s.append({ ...req, scope: 'key:b', payload: json({ n: 3 }), requestHash: 'h3', ts: 3000 })).toMatchObject({
        duplicate: false,
        offset: 2,
      });
      // Concurrent appends with one key and different requests: one message, one conflict, whatever the grouping.
      const [x, y] = await Promise.all([
        s.append({ ...req, key: 'race', requestHash: 'hx', ts: 4000 }),
        s.append({ ...req, key: 'race', requestHash: 'hy', ts: 4000 }),
      ]);
      expect([x.conflict ?? false, y.conflict ?? false]).toEqual([false, true]);
      expect((await s.topicState('t')).offset).toBe(3);
      // After the window the key is free, whatever the request.
      expect(await s.append({ ...req, requestHash: 'h9', ts: 14_001 })).toMatchObject({ duplicate: false, offset: 4 });
      await s.close();
    });

    it('retention: size and TTL trimming never change the last offset', async () => {
      const clock = new ManualClock(0);
      const s = await open({ size: 3, ttlS: 60 }, undefined, clock);
      for (let i = 1; i <= 10; i++) await s.append({ topic: 't', kind: 'binary', payload: Buffer.from([i]), ts: i * 1000 });
      expect((await s.readHistory('t', 0, 100)).map((m) => m.offset)).toEqual([8, 9, 10]);
      expect(await s.topicState('t')).toMatchObject({ offset: 10, firstRetained: 8 });
      clock.advance(9000 + 60_000);
      // Past the TTL: not replayed even before trim() deletes it.
      expect((await s.readHistory('t', 0, 100)).map((m) => m.offset)).toEqual([9, 10]);
      expect(await s.topicState('t')).toMatchObject({ offset: 10, firstRetained: 9 });
      await s.trim(clock.now());
      expect((await s.readHistory('t', 0, 100)).map((m) => m.offset)).toEqual([9, 10]);
      clock.advance(1e9);
      expect(await s.topicState('t')).toMatchObject({ offset: 10, firstRetained: 11 });
      await s.trim(clock.now());
      expect(await s.topicState('t')).toMatchObject({ offset: 10, firstRetained: 11 });
      const next = await s.append({ topic: 't', kind: 'binary', payload: Buffer.from([11]), ts: 1e9 });
      expect(next.offset).toBe(11);
      await s.close();
    });

    it('retention: more appends in one turn than the size keeps only the last ones', async () => {
      const s = await open({ size: 3 });
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => s.append({ topic: 't', kind: 'text', payload: Buffer.from(String(i + 1)), ts: i })),
      );
      expect(results.map((r) => r.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect((await s.readHistory('t', 0, 100)).map((m) => m.payload.toString())).toEqual(['6', '7', '8']);
      expect(await s.topicState('t')).toMatchObject({ offset: 8, firstRetained: 6 });
      await s.close();
    });

    it('close waits for pending appends, and is idempotent', async () => {
      const s = await open();
      const pending = Array.from({ length: 10 }, (_, i) => s.append({ topic: 't', kind: 'text', payload: Buffer.from('x'), ts: i }));
      await s.close();
      expect((await Promise.all(pending)).map((r) => r.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      await s.close();
    });
  });
}

describe.skipIf(!pgUp)('History on PostgreSQL: several nodes', () => {
  const req = (topic: string, n: number): AppendRequest => ({ topic, kind: 'text', payload: Buffer.from(String(n)), ts: n });

  it('nodes opening a new schema at once migrate it once and share one epoch', async () => {
    const { schema, backend } = testSchema();
    const stores = Array.from({ length: 5 }, () => backend({ clock: new ManualClock(0) }).store);
    await Promise.all(stores.map((s) => s.open()));
    const epochs = await Promise.all(stores.map(async (s) => (await s.topicState('t')).epoch));
    expect(new Set(epochs).size).toBe(1);
    const c = new pg.Client({ connectionString: pgUrl() });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT version FROM "${schema}".schema_migrations`);
      expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }]);
    } finally {
      await c.end();
    }
  });

  it('concurrent appends to one topic from two nodes get distinct offsets without gaps, each node’s in call order', async () => {
    const { backend } = testSchema();
    const [a, b] = [backend({ clock: new ManualClock(0) }).store, backend({ clock: new ManualClock(0) }).store];
    await a.open();
    await b.open();
    const fromA: Promise<number>[] = [];
    const fromB: Promise<number>[] = [];
    for (let turn = 0; turn < 10; turn++) {
      for (let i = 0; i < 30; i++) {
        fromA.push(a.append(req('t', turn * 100 + i)).then((r) => r.offset));
        fromB.push(b.append(req('t', 10_000 + turn * 100 + i)).then((r) => r.offset));
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    const [offA, offB] = [await Promise.all(fromA), await Promise.all(fromB)];
    for (const offs of [offA, offB]) expect(offs).toEqual([...offs].sort((x, y) => x - y));
    expect([...offA, ...offB].sort((x, y) => x - y)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect((await b.topicState('t')).offset).toBe(600);
    // Each stored message sits at the offset its node was given.
    const stored = new Map((await a.readHistory('t', 0, 1000)).map((m) => [m.offset, m.payload.toString()]));
    expect(stored.get(offA[0]!)).toBe('0');
    expect(stored.get(offB[299]!)).toBe(String(10_000 + 929));
    expect((await a.topicState('t')).epoch).toBe((await b.topicState('t')).epoch);
  });

  it('one idempotency key appended on two nodes at once gives one message', async () => {
    const { backend } = testSchema();
    const [a, b] = [backend({ clock: new ManualClock(0) }).store, backend({ clock: new ManualClock(0) }).store];
    await a.open();
    await b.open();
    for (let round = 0; round < 20; round++) {
      const r = { topic: 't', kind: 'text' as const, payload: Buffer.from('x'), key: `k${round}`, scope: 'key:a', requestHash: 'h', ts: 1 };
      const other = round % 2 ? { ...r, requestHash: 'other' } : r;
      const [x, y] = await Promise.all([a.append(r), b.append(other)]);
      expect([x, y].filter((res) => !res.duplicate && !res.conflict)).toHaveLength(1);
      if (round % 2 === 0) expect(x.offset).toBe(y.offset);
    }
    expect((await a.topicState('t')).offset).toBe(20);
    expect(await a.readHistory('t', 0, 100)).toHaveLength(20);
  });

  it('group commit: 2,000 appends made in one turn are one transaction', async () => {
    const { schema, backend } = testSchema();
    const s = backend({ clock: new ManualClock(0) }).store;
    await s.open();
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => s.append({ ...req(`t${i % 10}`, i), key: `k${i}`, scope: 'api', requestHash: 'h' })),
    );
    const ms = performance.now() - started;
    expect(results.filter((r) => r.offset === 200)).toHaveLength(10);
    const c = new pg.Client({ connectionString: pgUrl() });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT count(DISTINCT xmin::text)::int AS n, count(*)::int AS m FROM "${schema}".messages`);
      expect(rows[0]).toEqual({ n: 1, m: 2000 });
    } finally {
      await c.end();
    }
    // Loopback, one transaction: well under a second (a round trip per append would be far slower).
    expect(ms).toBeLessThan(5000);
  });

  it('rejects while PostgreSQL is unreachable, and recovers by itself when it is back', async () => {
    const proxy = await TcpProxy.start(PG_PORT);
    try {
      const { backend } = testSchema();
      const s = backend({ url: pgUrl(proxy.port), clock: new ManualClock(0) }).store;
      await s.open();
      expect((await s.append(req('t', 1))).offset).toBe(1);
      proxy.refuse();
      proxy.cut();
      await expect(s.append(req('t', 2))).rejects.toThrow();
      await expect(s.readHistory('t', 0, 10)).rejects.toThrow();
      await expect(s.topicState('t')).rejects.toThrow();
      proxy.accept();
      expect((await s.append(req('t', 3))).offset).toBe(2);
      expect((await s.readHistory('t', 0, 10)).map((m) => m.payload.toString())).toEqual(['1', '3']);
      await s.close();
    } finally {
      await proxy.close();
    }
  });
});
