import { describe, expect, it } from 'vitest';
import { matches } from '../../src/core/topics.ts';
import { SubscriptionIndex } from '../../src/gateway/subscription-index.ts';

describe('SubscriptionIndex', () => {
  it('finds exact and wildcard members, each once', () => {
    const idx = new SubscriptionIndex<string>();
    idx.add('orders.eu', 'a');
    idx.add('orders.*', 'a');
    idx.add('orders.*', 'b');
    idx.add('orders.>', 'c');
    idx.add('*.eu', 'd');
    expect([...(idx.match('orders.eu') ?? [])].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect([...(idx.match('orders.eu.x') ?? [])].sort()).toEqual(['c']);
    expect(idx.match('orders')).toBeUndefined();
    expect(idx.match('billing.us')).toBeUndefined();
  });

  it('forgets removed members and prunes', () => {
    const idx = new SubscriptionIndex<string>();
    idx.add('a.*.c', 'x');
    idx.add('a.>', 'y');
    idx.add('a.b.c', 'z');
    idx.remove('a.*.c', 'x');
    idx.remove('a.>', 'y');
    expect([...(idx.match('a.b.c') ?? [])]).toEqual(['z']);
    idx.remove('a.b.c', 'z');
    expect(idx.match('a.b.c')).toBeUndefined();
    expect(idx.size).toBe(0);
  });

  it('agrees with matches() on random patterns and topics', () => {
    const segs = ['a', 'b', 'c'];
    let seed = 7;
    const rnd = (n: number) => (((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n) + n) % n;
    const topic = () => Array.from({ length: 1 + rnd(3) }, () => segs[rnd(3)]).join('.');
    const pattern = () => {
      const n = 1 + rnd(3);
      return Array.from({ length: n }, (_, i) => (i === n - 1 && rnd(4) === 0 ? '>' : rnd(3) === 0 ? '*' : segs[rnd(3)])).join('.');
    };
    const idx = new SubscriptionIndex<number>();
    const pats: string[] = [];
    for (let i = 0; i < 60; i++) {
      const p = pattern();
      pats.push(p);
      idx.add(p, i);
    }
    for (let i = 0; i < 200; i++) {
      const t = topic();
      const want = pats.map((p, j) => (matches(p, t) ? j : -1)).filter((j) => j >= 0);
      expect(
        [...(idx.match(t) ?? [])].sort((x, y) => x - y),
        `${t}`,
      ).toEqual(want);
    }
  });
});
