import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { HistoryLimits, Store } from '../../src/store/store.ts';
import { ManualClock, tempDir } from '../helpers/server.ts';

/**
 * The Store conformance suite: every implementation runs it. `make(dir)` must return stores that
 * share state when given the same `dir` (two processes on one store).
 */
const implementations: { name: string; make: (dir: string, history: Partial<HistoryLimits>, clock: ManualClock) => Store }[] = [
  {
    name: 'sqlite',
    make: (dir, history, clock) =>
      new SqliteStore({ dataDir: dir, synchronous: 'normal', history: { size: 1000, ttlS: 86400, dedupeS: 300, ...history }, clock }),
  },
  {
    name: 'sqlite, synchronous full (WAL fsync off the event loop)',
    make: (dir, history, clock) =>
      new SqliteStore({ dataDir: dir, synchronous: 'full', history: { size: 1000, ttlS: 86400, dedupeS: 300, ...history }, clock }),
  },
];

const client = (id: string) => ({ id, name: id, secretHash: 'scrypt$x', subscribe: ['a.>'], publish: [], createdAt: 1, revokedAt: null });
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

for (const impl of implementations) {
  describe(`Store conformance: ${impl.name}`, () => {
    // Message timestamps in these tests are small numbers; the store's clock stands near them.
    const clock = new ManualClock(0);
    const open = async (history: Partial<HistoryLimits> = {}, dir = tempDir()) => {
      const s = impl.make(dir, history, clock);
      await s.open();
      return s;
    };

    it('clients: create, get, list, revoke (deletes tokens, reported as a change)', async () => {
      const dir = tempDir();
      const s = await open({}, dir);
      const other = await open({}, dir);
      await s.createClient(client('c1'));
      await s.createToken({ hash: 'h1', clientId: 'c1', createdAt: 1, lastUsedAt: 1 });
      expect(await s.getClient('c1')).toMatchObject({ id: 'c1', subscribe: ['a.>'], revokedAt: null });
      expect(await s.getClient('nope')).toBeUndefined();
      expect(await other.revokeClient('c1', 5)).toBe(true);
      expect(await other.revokeClient('c1', 6)).toBe(false);
      expect((await s.getClient('c1'))?.revokedAt).toBe(5);
      expect(await s.getToken('h1')).toBeUndefined();
      expect((await s.pollChanges()).revokedClients).toEqual(['c1']);
      expect((await s.pollChanges()).revokedClients).toEqual([]);
      expect(await s.listClients()).toHaveLength(1);
      await s.close();
      await other.close();
    });

    it('keys: only unrevoked keys are found', async () => {
      const s = await open();
      await s.createKey({ id: 'k1', name: 'erp', scope: 'admin', hash: 'kh', createdAt: 1, revokedAt: null });
      expect(await s.findKey('kh')).toMatchObject({ name: 'erp', scope: 'admin' });
      expect(await s.revokeKey('erp', 2)).toBe(true);
      expect(await s.findKey('kh')).toBeUndefined();
      expect(await s.listKeys()).toHaveLength(1);
      await s.close();
    });

    it('tokens: touch, idle deletion spares live ones', async () => {
      const s = await open();
      await s.createToken({ hash: 'old', clientId: 'c', createdAt: 0, lastUsedAt: 0 });
      await s.createToken({ hash: 'live', clientId: 'c', createdAt: 0, lastUsedAt: 0 });
      await s.createToken({ hash: 'fresh', clientId: 'c', createdAt: 0, lastUsedAt: 0 });
      await s.touchToken('fresh', 100);
      await s.addConnection({ id: 'x', clientId: 'c', tokenHash: 'live', nodeId: 'n', connectedAt: 1, remoteAddress: '::1' });
      expect(await s.deleteIdleTokens(50)).toBe(1);
      expect(await s.getToken('old')).toBeUndefined();
      expect(await s.getToken('live')).toBeDefined();
      expect((await s.getToken('fresh'))?.lastUsedAt).toBe(100);
      await s.close();
    });

    it('tokens: capped creation revokes the least recently used idle tokens first, never a live one, never another client’s', async () => {
      const s = await open();
      const tok = (hash: string, clientId: string, at: number) => ({ hash, clientId, createdAt: at, lastUsedAt: at });
      await s.createToken(tok('a', 'c', 1)); // oldest, but live
      await s.createToken(tok('b', 'c', 2));
      await s.createToken(tok('c', 'c', 3));
      await s.createToken(tok('other', 'd', 0));
      await s.touchToken('b', 10); // used recently (not written yet): now newer than c
      await s.addConnection({ id: 'x', clientId: 'c', tokenHash: 'a', nodeId: 'n', connectedAt: 1, remoteAddress: '::1' });
      expect(await s.createTokenCapped(tok('n1', 'c', 20), 3)).toEqual({ created: true, revoked: ['c'] });
      expect(await s.getToken('c')).toBeUndefined();
      for (const h of ['a', 'b', 'n1', 'other']) expect(await s.getToken(h)).toBeDefined();
      // Under the cap nothing is revoked.
      expect(await s.createTokenCapped(tok('d1', 'd', 20), 3)).toEqual({ created: true, revoked: [] });
      // A lower cap than the client already holds: as many as needed go, oldest first.
      expect(await s.createTokenCapped(tok('n2', 'c', 21), 2)).toEqual({ created: true, revoked: ['b', 'n1'] });
      expect(await s.getToken('a')).toBeDefined();
      expect((await s.getToken('n2'))?.clientId).toBe('c');
      await s.close();
    });

    it('tokens: capped creation changes nothing when every token of the client is live', async () => {
      const s = await open();
      await s.createToken({ hash: 'a', clientId: 'c', createdAt: 1, lastUsedAt: 1 });
      await s.createToken({ hash: 'b', clientId: 'c', createdAt: 2, lastUsedAt: 2 });
      await s.addConnection({ id: 'x', clientId: 'c', tokenHash: 'a', nodeId: 'n1', connectedAt: 1, remoteAddress: '::1' });
      await s.addConnection({ id: 'y', clientId: 'c', tokenHash: 'b', nodeId: 'n2', connectedAt: 1, remoteAddress: '::1' });
      expect(await s.createTokenCapped({ hash: 'n', clientId: 'c', createdAt: 3, lastUsedAt: 3 }, 2)).toEqual({
        created: false,
        revoked: [],
      });
      expect(await s.getToken('n')).toBeUndefined();
      expect(await s.getToken('a')).toBeDefined();
      expect(await s.getToken('b')).toBeDefined();
      // Once a connection ends, its token can make room.
      await s.removeConnection('y');
      expect(await s.createTokenCapped({ hash: 'n', clientId: 'c', createdAt: 3, lastUsedAt: 3 }, 2)).toEqual({
        created: true,
        revoked: ['b'],
      });
      await s.close();
    });

    it('tokens: concurrent capped creations never leave a client over the cap, and are durable', async () => {
      const dir = tempDir();
      const s = await open({}, dir);
      const hashes = Array.from({ length: 20 }, (_, i) => `t${i}`);
      const results = await Promise.all(
        hashes.map((hash, i) => s.createTokenCapped({ hash, clientId: 'c', createdAt: i, lastUsedAt: i }, 3)),
      );
      expect(results.every((r) => r.created)).toBe(true);
      await s.close();
      const again = await open({}, dir);
      const kept = [];
      for (const h of hashes) if (await again.getToken(h)) kept.push(h);
      expect(kept).toEqual(['t17', 't18', 't19']);
      await again.close();
    });

    it('tickets are single use and expire', async () => {
      const s = await open();
      await s.createTicket('t1', 'tok', 1000);
      await s.createTicket('t2', 'tok', 1000);
      expect(await s.consumeTicket('t1', 999)).toBe('tok');
      expect(await s.consumeTicket('t1', 999)).toBeUndefined();
      expect(await s.consumeTicket('t2', 1000)).toBeUndefined();
      await s.close();
    });

    it('connections: add, find by token, remove, clear a node', async () => {
      const s = await open();
      const c = { clientId: 'c', tokenHash: 't', connectedAt: 1, remoteAddress: '127.0.0.1' };
      await s.addConnection({ id: 'a', nodeId: 'n1', ...c });
      await s.addConnection({ id: 'b', nodeId: 'n2', ...c });
      expect((await s.connectionsOfToken('t')).map((x) => x.id).sort()).toEqual(['a', 'b']);
      await s.removeConnection('a');
      expect(await s.hasConnection('a')).toBe(false);
      await s.clearConnections('n2');
      expect(await s.hasConnection('b')).toBe(false);
      await s.close();
    });

    it('append: offsets per topic from 1, settled in call order, durable across reopen with the same epoch', async () => {
      const dir = tempDir();
      const s = await open({}, dir);
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
      const epoch = results[0]!.epoch;
      const state = await s.topicState('odd');
      expect(state).toMatchObject({ offset: 25, epoch, firstRetained: 1 });
      expect(await s.topicState('never')).toMatchObject({ offset: 0, firstRetained: 1 });
      await s.close();
      const again = await open({}, dir);
      const hist = await again.readHistory('even', 20, 100);
      expect(hist.map((m) => [m.offset, JSON.parse(m.payload.toString())])).toEqual([
        [21, 40],
        [22, 42],
        [23, 44],
        [24, 46],
        [25, 48],
      ]);
      expect((await again.topicState('even')).epoch).toBe(epoch);
      await again.close();
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
      const s = await open({ size: 3, ttlS: 60 });
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
  });
}
