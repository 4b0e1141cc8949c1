import { describe, expect, it } from 'vitest';
import { FailureBudget } from '../../src/core/rate-limit.ts';

describe('FailureBudget', () => {
  it('allows a burst, then asks to wait until a token refills', () => {
    let now = 0;
    const b = new FailureBudget({ perMinute: 30, burst: 3, now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(b.retryAfterS('10.0.0.1')).toBe(0);
      b.fail('10.0.0.1');
    }
    expect(b.retryAfterS('10.0.0.1')).toBe(2); // 30/min: one token every 2 s
    expect(b.retryAfterS('10.0.0.2')).toBe(0);
    now += 2000;
    expect(b.retryAfterS('10.0.0.1')).toBe(0);
  });

  it('groups IPv6 by /64 and IPv4-mapped addresses with IPv4', () => {
    expect(FailureBudget.key('2001:db8:1:2:aaaa::1')).toBe(FailureBudget.key('2001:db8:1:2:bbbb::9'));
    expect(FailureBudget.key('2001:db8:1:3::1')).not.toBe(FailureBudget.key('2001:db8:1:2::1'));
    expect(FailureBudget.key('::ffff:127.0.0.2')).toBe('127.0.0.2');
  });

  it('stays bounded and forgets refilled sources', () => {
    let now = 0;
    const b = new FailureBudget({ perMinute: 60, burst: 2, maxSources: 100, now: () => now });
    for (let i = 0; i < 1000; i++) b.fail(`10.0.${i >> 8}.${i & 255}`);
    expect(b.size).toBeLessThanOrEqual(100);
    now += 10_000;
    b.sweep();
    expect(b.size).toBe(0);
  });
});
