import { describe, expect, it } from 'vitest';
import { allowedBy, covers, isValidPattern, isValidTopic, matches } from '../../src/core/topics.ts';

describe('topics', () => {
  it('accepts valid topic names and rejects invalid ones', () => {
    for (const t of ['a', 'orders.eu.created', 'A-b_c.9', 'x'.repeat(200)]) expect(isValidTopic(t), t).toBe(true);
    for (const t of ['', '.', 'a.', '.a', 'a..b', 'a b', 'a/b', 'a.*', 'a.>', 'é', 'x'.repeat(201), 42, null])
      expect(isValidTopic(t), String(t)).toBe(false);
  });

  it('accepts patterns with * anywhere and > only last', () => {
    for (const p of ['*', '>', 'orders.*', 'orders.>', '*.eu.*', 'a.*.>']) expect(isValidPattern(p), p).toBe(true);
    for (const p of ['>.a', 'a.>.b', 'a.**', 'a.b*', '', 'a..*']) expect(isValidPattern(p), p).toBe(false);
  });

  it('matches * as exactly one segment and > as one or more', () => {
    expect(matches('orders.*', 'orders.eu')).toBe(true);
    expect(matches('orders.*', 'orders.eu.x')).toBe(false);
    expect(matches('orders.*', 'orders')).toBe(false);
    expect(matches('orders.>', 'orders.eu')).toBe(true);
    expect(matches('orders.>', 'orders.eu.x.y')).toBe(true);
    expect(matches('orders.>', 'orders')).toBe(false);
    expect(matches('*.eu', 'orders.eu')).toBe(true);
    expect(matches('orders.eu', 'orders.eu')).toBe(true);
    expect(matches('orders.eu', 'orders.us')).toBe(false);
  });

  it('decides whether an ACL pattern covers a subscription pattern', () => {
    expect(covers('orders.>', 'orders.*')).toBe(true);
    expect(covers('orders.>', 'orders.eu.>')).toBe(true);
    expect(covers('orders.>', 'orders.>')).toBe(true);
    expect(covers('orders.*', 'orders.eu')).toBe(true);
    expect(covers('orders.*', 'orders.*')).toBe(true);
    expect(covers('orders.*', 'orders.>')).toBe(false);
    expect(covers('orders.eu', 'orders.*')).toBe(false);
    expect(covers('>', 'anything.at.all')).toBe(true);
    expect(allowedBy(['billing.*', 'orders.>'], 'orders.eu.x')).toBe(true);
    expect(allowedBy([], 'orders.eu')).toBe(false);
  });
});
