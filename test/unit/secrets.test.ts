import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hashSecret, MAX_CONCURRENT_HASHES, threadPoolSize, verifySecret } from '../../src/auth/secrets.ts';

describe('client-secret hashing', () => {
  it('reads the libuv pool size as libuv does (default 4, at most 1024)', () => {
    expect(threadPoolSize({})).toBe(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '8' })).toBe(8);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: 'lots' })).toBe(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '0' })).toBe(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' })).toBe(1024);
  });

  it('never hashes on the whole pool nor on every core', () => {
    const pool = threadPoolSize();
    expect(MAX_CONCURRENT_HASHES).toBeGreaterThanOrEqual(1);
    expect(MAX_CONCURRENT_HASHES).toBeLessThanOrEqual(Math.max(1, Math.floor(pool / 2)));
    expect(MAX_CONCURRENT_HASHES).toBeLessThanOrEqual(Math.max(1, availableParallelism() - 1));
  });

  it('queued checks all complete, with the right answers', async () => {
    const stored = await hashSecret('right');
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => verifySecret(i % 2 ? 'right' : 'wrong', stored)));
    expect(answers).toEqual([false, true, false, true, false, true]);
    expect(await verifySecret('right', undefined)).toBe(false);
  });
});
