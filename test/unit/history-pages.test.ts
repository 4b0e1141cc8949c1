import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { ManualClock, tempDir } from '../helpers/server.ts';

/** readHistory's byte bound, which replay pages rely on (docs/websocket.md#replay-paging). */
describe('readHistory(topic, after, limit, maxBytes)', () => {
  it('returns no more payload bytes than maxBytes, but always the first message', async () => {
    const s = new SqliteStore({
      dataDir: tempDir(),
      synchronous: 'normal',
      history: { size: 1000, ttlS: 86400, dedupeS: 300 },
      clock: new ManualClock(0),
    });
    await s.open();
    for (const size of [10, 10, 10, 100, 10]) await s.append({ topic: 't', kind: 'binary', payload: Buffer.alloc(size), ts: 0 });
    const offsets = async (after: number, limit: number, maxBytes?: number) =>
      (await s.readHistory('t', after, limit, maxBytes)).map((m) => m.offset);
    expect(await offsets(0, 100)).toEqual([1, 2, 3, 4, 5]);
    expect(await offsets(0, 100, 30)).toEqual([1, 2, 3]);
    expect(await offsets(0, 100, 29)).toEqual([1, 2]);
    expect(await offsets(0, 2, 1000)).toEqual([1, 2]);
    // A message larger than the bound comes alone.
    expect(await offsets(3, 100, 50)).toEqual([4]);
    expect(await offsets(2, 100, 50)).toEqual([3]);
    expect(await offsets(4, 100, 50)).toEqual([5]);
    expect(await offsets(5, 100, 50)).toEqual([]);
    await s.close();
  });
});
