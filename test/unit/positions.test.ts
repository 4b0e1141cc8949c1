import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Publication } from '../../src/broker/broker.ts';
import { Positions } from '../../src/gateway/positions.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { tempDir } from '../helpers/server.ts';

/** Positions against a real History (SQLite): what reaches the hub is every offset once, in order. */
describe('positions: in order, once, gaps filled from history', () => {
  let store: SqliteStore | undefined;
  let positions: Positions | undefined;
  afterEach(async () => {
    positions?.close();
    await store?.close();
    store = positions = undefined;
  });

  async function setup(opts: { gapWaitMs?: number; size?: number } = {}) {
    store = new SqliteStore({ dataDir: tempDir(), synchronous: 'normal', history: { size: opts.size ?? 1000, ttlS: 86400, dedupeS: 60 } });
    await store.open();
    const delivered: number[] = [];
    positions = new Positions({
      history: store,
      deliver: (p) => delivered.push(p.offset),
      wanted: () => true,
      gapWaitMs: opts.gapWaitMs ?? 30,
      log: pino({ level: 'silent' }),
    });
    return delivered;
  }

  /** Appends n messages to topic t; returns their publications in offset order. */
  async function append(n: number, topic = 't'): Promise<Publication[]> {
    const out: Publication[] = [];
    for (let i = 0; i < n; i++) {
      const payload = Buffer.from(JSON.stringify(i));
      const r = await store!.append({ topic, kind: 'json', payload, ts: Date.now() });
      out.push({ topic, offset: r.offset, epoch: r.epoch, ts: r.ts, kind: 'json', payload });
    }
    return out;
  }

  it('drops echoes and duplicates; holds one that came early until the missing one arrives', async () => {
    const got = await setup({ gapWaitMs: 5000 });
    const [p1, p2, p3, p4] = await append(4);
    positions!.track('t', 0, p1!.epoch);
    positions!.accept(p1!);
    positions!.accept(p1!);
    positions!.accept(p3!);
    positions!.accept(p4!);
    expect(got).toEqual([1]);
    positions!.accept(p2!);
    expect(got).toEqual([1, 2, 3, 4]);
    positions!.accept(p3!);
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('a missing offset that never arrives is read from history after gapWaitMs', async () => {
    const got = await setup({ gapWaitMs: 30 });
    const pubs = await append(10);
    positions!.track('t', 0, pubs[0]!.epoch);
    for (const p of pubs) if (p.offset !== 3 && p.offset !== 4 && p.offset !== 8) positions!.accept(p);
    expect(got).toEqual([1, 2]);
    await expect.poll(() => got, { timeout: 2000 }).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a position notice (bytes not carried) is read from history', async () => {
    const got = await setup();
    const pubs = await append(3);
    positions!.track('t', 0, pubs[0]!.epoch);
    positions!.position('t', 3, pubs[0]!.epoch);
    await expect.poll(() => got, { timeout: 2000 }).toEqual([1, 2, 3]);
  });

  it('resync after a broker outage recovers what was published meanwhile, with no new publication', async () => {
    const got = await setup();
    const pubs = await append(2);
    positions!.track('t', 0, pubs[0]!.epoch);
    for (const p of pubs) positions!.accept(p);
    await append(5); // dropped by the broker: never accepted
    expect(got).toEqual([1, 2]);
    positions!.resync();
    await expect.poll(() => got, { timeout: 2000 }).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('checkAll recovers a lost last publication with nothing published after it', async () => {
    const got = await setup();
    const pubs = await append(3);
    const other = await append(2, 'u');
    positions!.track('t', 0, pubs[0]!.epoch);
    positions!.track('u', 0, other[0]!.epoch);
    positions!.accept(pubs[0]!);
    positions!.accept(pubs[1]!); // offset 3 of t and all of u were lost by the broker
    expect(got).toEqual([1, 2]);
    await positions!.checkAll();
    await expect.poll(() => got, { timeout: 2000 }).toEqual([1, 2, 3, 1, 2]);
    expect(positions!.lastOf('t')).toBe(3);
    expect(positions!.lastOf('u')).toBe(2);
  });

  it('offsets no longer in history (trimmed) are skipped, never waited for forever', async () => {
    const got = await setup({ size: 2 });
    const pubs = await append(6);
    positions!.track('t', 0, pubs[0]!.epoch);
    positions!.accept(pubs[5]!);
    await expect.poll(() => got, { timeout: 2000 }).toEqual([5, 6]);
  });

  it('an untracked topic nobody here wants is ignored', async () => {
    await setup();
    const delivered: number[] = [];
    positions = new Positions({
      history: store!,
      deliver: (p) => delivered.push(p.offset),
      wanted: () => false,
      gapWaitMs: 10,
      log: pino({ level: 'silent' }),
    });
    const [p] = await append(1);
    positions.accept(p!);
    expect(delivered).toEqual([]);
    expect(positions.tracked).toBe(0);
  });
});
