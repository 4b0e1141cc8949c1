import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { eventually, ManualClock, tempDir } from '../helpers/server.ts';

/** What the SQLite store promises beyond the Store conformance suite. */
const make = (dir: string, synchronous: 'full' | 'normal' = 'full') =>
  new SqliteStore({ dataDir: dir, synchronous, history: { size: 1000, ttlS: 86400, dedupeS: 300 }, clock: new ManualClock(0) });
const msg = (n: number) => ({ topic: 't', kind: 'text' as const, payload: Buffer.from(String(n)), ts: n });
const nextCheckPhase = () => new Promise<void>((r) => setImmediate(r));

describe('SqliteStore', () => {
  it('synchronous full: a commit is neither settled nor replayed before its WAL fsync', async () => {
    const s = make(tempDir());
    await s.open();
    await s.append(msg(1));
    let settled = false;
    const pending = s.append(msg(2)).then((r) => ((settled = true), r));
    // The group commit ran in this check phase; the fsync's callback cannot have run yet.
    await nextCheckPhase();
    expect(settled).toBe(false);
    expect((await s.readHistory('t', 0, 10)).map((m) => m.offset)).toEqual([1]);
    expect((await s.topicState('t')).offset).toBe(1);
    expect((await pending).offset).toBe(2);
    expect((await s.readHistory('t', 0, 10)).map((m) => m.offset)).toEqual([1, 2]);
    expect((await s.topicState('t')).offset).toBe(2);
    await s.close();
  });

  it('synchronous full: commits made while an fsync runs are settled, in order, by the next one', async () => {
    const s = make(tempDir());
    await s.open();
    const order: number[] = [];
    const all: Promise<unknown>[] = [];
    for (let turn = 0; turn < 5; turn++) {
      for (let i = 0; i < 20; i++) {
        const n = turn * 20 + i + 1;
        all.push(s.append(msg(n)).then((r) => order.push(r.offset)));
      }
      await nextCheckPhase();
    }
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await s.close();
  });

  it('a second process appending to the same topic is refused, never given a reused offset', async () => {
    const dir = tempDir();
    const a = make(dir);
    const b = make(dir);
    await a.open();
    await b.open();
    expect((await a.append(msg(1))).offset).toBe(1);
    expect((await b.append(msg(2))).offset).toBe(2);
    await expect(a.append(msg(3))).rejects.toThrow();
    // The refusal dropped a's stale view: the next append reads the file again.
    expect((await a.append(msg(3))).offset).toBe(3);
    expect((await b.readHistory('t', 0, 10)).map((m) => m.payload.toString())).toEqual(['1', '2', '3']);
    await a.close();
    await b.close();
  });

  it('token last-use times are written by the idle sweep and on close', async () => {
    const dir = tempDir();
    const s = make(dir, 'normal');
    await s.open();
    await s.createToken({ hash: 'h', clientId: 'c', createdAt: 0, lastUsedAt: 0 });
    await s.touchToken('h', 500);
    expect((await s.getToken('h'))?.lastUsedAt).toBe(500);
    const other = make(dir, 'normal');
    await other.open();
    expect((await other.getToken('h'))?.lastUsedAt).toBe(0);
    expect(await s.deleteIdleTokens(400)).toBe(0);
    expect((await other.getToken('h'))?.lastUsedAt).toBe(500);
    await s.touchToken('h', 900);
    await s.close();
    expect((await other.getToken('h'))?.lastUsedAt).toBe(900);
    await other.close();
  });
});

describe('SqliteStore idempotency keys of an older data directory', () => {
  it('opens a database with the per-topic dedupe table, honours its unexpired keys, then drops it', async () => {
    const dir = tempDir();
    const s = make(dir);
    await s.open();
    await s.append({ ...msg(1000), key: 'old-key' });
    await s.close();
    // What an earlier version left behind: keys per topic, without scope or request hash.
    const db = new Database(join(dir, 'hubcast.db'));
    db.exec('DELETE FROM idempotency');
    db.exec(
      'CREATE TABLE dedupe (topic TEXT NOT NULL, key TEXT NOT NULL, "offset" INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (topic, key)) WITHOUT ROWID',
    );
    db.prepare('INSERT INTO dedupe VALUES (?, ?, ?, ?)').run('t', 'old-key', 1, 1000);
    db.close();
    const again = make(dir);
    await again.open();
    // A retry across the upgrade is still a duplicate, whatever its scope.
    expect(await again.append({ ...msg(2000), key: 'old-key', scope: 'key:a', requestHash: 'h' })).toMatchObject({
      duplicate: true,
      offset: 1,
    });
    await again.trim(1000 + 300_001);
    const tables = () => {
      const d = new Database(join(dir, 'hubcast.db'), { readonly: true });
      const names = d.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      d.close();
      return names;
    };
    expect(tables()).not.toContain('dedupe');
    expect(await again.append({ ...msg(400_000), key: 'old-key', scope: 'key:a', requestHash: 'h' })).toMatchObject({
      duplicate: false,
      offset: 2,
    });
    await again.close();
  });
});

describe('SqliteStore checkpoints', () => {
  it('a worker thread copies the WAL into the database file (SQLite auto-checkpoint is off)', async () => {
    const dir = tempDir();
    const s = make(dir, 'normal');
    await s.open();
    const dbFile = join(dir, 'hubcast.db');
    const before = statSync(dbFile).size;
    for (let i = 1; i <= 250; i++) await s.append({ topic: `t${i % 50}`, kind: 'binary', payload: Buffer.alloc(2000, i), ts: i });
    await eventually(() => statSync(dbFile).size > before + 250 * 1000, 5000, 'database file grown by a checkpoint');
    await s.close();
  });
});
