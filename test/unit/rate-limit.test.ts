import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FailureBudget, ipv6Groups, RateBuckets, sourceKey } from '../../src/core/rate-limit.ts';

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

  it('counts failures from one /64 in one bucket whatever the spelling of the addresses', () => {
    const b = new FailureBudget({ perMinute: 1, burst: 3, now: () => 0 });
    b.fail('2001:db8:abcd::1');
    b.fail('2001:db8:abcd:0:1::9');
    b.fail('2001:0DB8:ABCD:0000:ffff:ffff:ffff:ffff');
    expect(b.retryAfterS('2001:db8:abcd:0::42')).toBeGreaterThan(0);
    expect(b.retryAfterS('2001:db8:abcd:1::1')).toBe(0);
    expect(b.size).toBe(1);
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

describe('RateBuckets', () => {
  it('is a token bucket per key, bounded in keys', () => {
    let now = 0;
    const r = new RateBuckets({ perMinute: 60, burst: 2, maxKeys: 10, now: () => now });
    r.take('c_a');
    r.take('c_a');
    expect(r.retryAfterS('c_a')).toBe(1);
    expect(r.retryAfterS('c_b')).toBe(0);
    now += 1000;
    expect(r.retryAfterS('c_a')).toBe(0);
    for (let i = 0; i < 50; i++) r.take(`k${i}`);
    expect(r.size).toBeLessThanOrEqual(10);
  });
});

describe('sourceKey', () => {
  const table: [string, string][] = [
    // IPv4 as is
    ['127.0.0.1', '127.0.0.1'],
    ['10.1.2.3', '10.1.2.3'],
    // IPv4-mapped IPv6, dotted and hex, any case and spelling
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:102:304', '1.2.3.4'],
    ['::FFFF:0102:0304', '1.2.3.4'],
    ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
    ['0000:0000:0000:0000:0000:ffff:7f00:0001', '127.0.0.1'],
    ['::ffff:127.0.0.2', '127.0.0.2'],
    // The pair: `::` inside the first four groups
    ['2001:db8:abcd::1', '2001:db8:abcd:0::/64'],
    ['2001:db8:abcd:0:1::9', '2001:db8:abcd:0::/64'],
    ['2001:db8:abcd:0::', '2001:db8:abcd:0::/64'],
    ['2001:0db8:abcd:0000:0000:0000:0000:0001', '2001:db8:abcd:0::/64'],
    ['2001:DB8:ABCD::FFFF', '2001:db8:abcd:0::/64'],
    // `::` at the start, end, and spanning the /64 boundary
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['1::', '1:0:0:0::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:3::', '2001:db8:1:2::/64'],
    ['2001:db8:1::2:3:4:5', '2001:db8:1:0::/64'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    // A zone id is not part of the address
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['fe80::abcd:1%1', 'fe80:0:0:0::/64'],
    // IPv4-compatible (deprecated) and NAT64 are not IPv4-mapped: grouped by /64
    ['::1.2.3.4', '0:0:0:0::/64'],
    ['64:ff9b::1.2.3.4', '64:ff9b:0:0::/64'],
    // Not addresses: kept as they are (a bucket of their own)
    ['', ''],
    ['not-an-ip', 'not-an-ip'],
  ];
  it.each(table)('%s → %s', (ip, key) => {
    expect(sourceKey(ip)).toBe(key);
  });

  it('every text form of an address expands to the same 8 groups, and every address of a /64 has one key', () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(
        fc.array(group, { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: 8 }),
        fc.boolean(),
        (g, at, len, upper) => {
          const full = g.map((n) => n.toString(16).padStart(4, '0')).join(':');
          // Compress a run of groups (whatever their value, `::` must stand for zeros: zero them first).
          const zeroed = g.map((n, i) => (i >= at && i < at + len ? 0 : n));
          const end = Math.min(8, at + len);
          const left = zeroed.slice(0, at).map((n) => n.toString(16));
          const right = zeroed.slice(end).map((n) => n.toString(16));
          let compressed = `${left.join(':')}::${right.join(':')}`;
          if (upper) compressed = compressed.toUpperCase();
          expect(ipv6Groups(full)).toEqual(g);
          expect(ipv6Groups(compressed)).toEqual(zeroed);
          const mapped = zeroed[0] === 0 && zeroed.slice(0, 5).every((n) => n === 0) && zeroed[5] === 0xffff;
          if (!mapped)
            expect(sourceKey(compressed)).toBe(
              sourceKey(
                zeroed
                  .slice(0, 4)
                  .map((n) => n.toString(16))
                  .join(':') + ':ffff::1',
              ),
            );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects what is not an IPv6 address', () => {
    for (const s of ['1.2.3.4', '2001:db8::1::2', '2001:db8:1:2:3:4:5:6:7', 'gggg::1', ':::', '']) expect(ipv6Groups(s)).toBeUndefined();
  });
});
