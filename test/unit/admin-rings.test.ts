import { Writable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AlertManager, type DigestSink } from '../../src/alerts/alert-manager.ts';
import type { AlertDigest } from '../../src/alerts/notifier.ts';
import { RecentAlerts } from '../../src/alerts/recent.ts';
import { MemoryLeases } from '../../src/cluster/memory-leases.ts';
import { AuditLog } from '../../src/http/admin/audit.ts';
import { adminGuard } from '../../src/http/admin/guard.ts';
import { RateMeter } from '../../src/metrics.ts';

/** The admin API's bounded memory: the rate window, the audit ring, the recent-alerts ring. */

const silent = pino({ level: 'silent' });

describe('RateMeter', () => {
  it('averages over the completed seconds of a 10 s window, per topic too, and forgets quiet topics', () => {
    const m = new RateMeter({ windowS: 10 });
    expect(m.rate('published')).toBe(0);
    for (let i = 0; i < 30; i++) m.published('a');
    m.delivered(60);
    m.connected();
    // The current second does not count yet.
    expect(m.rate('published')).toBe(0);
    m.tick();
    expect(m.rate('published')).toBe(30);
    expect(m.topicRate('a')).toBe(30);
    expect(m.rate('delivered')).toBe(60);
    expect(m.rate('connects')).toBe(1);
    m.tick();
    expect(m.rate('published')).toBe(15);
    for (let i = 0; i < 8; i++) m.tick();
    expect(m.rate('published')).toBe(3);
    expect(m.topicRate('b')).toBe(0);
    m.tick(); // the 30 leave the window
    expect(m.rate('published')).toBe(0);
    expect(m.topicRate('a')).toBe(0);
  });

  it('tracks at most maxTopics topics; further ones count only overall', () => {
    const m = new RateMeter({ windowS: 2, maxTopics: 2 });
    for (const t of ['a', 'b', 'c']) m.published(t);
    m.tick();
    expect([m.topicRate('a'), m.topicRate('b'), m.topicRate('c')]).toEqual([1, 1, 0]);
    expect(m.rate('published')).toBe(3);
  });
});

describe('AuditLog', () => {
  const guarded = async () => {
    // A request as the guard lets it through (an admin key, an allowed address).
    const req = {
      socket: { remoteAddress: '127.0.0.1' },
      headers: { authorization: `Bearer ${'K'.repeat(43)}` },
    } as unknown as FastifyRequest;
    const store = { findKey: async () => ({ id: 'k_1', name: 'ops', scope: 'admin', hash: 'h', createdAt: 0, revokedAt: null }) };
    const failures = { retryAfterS: () => 0, fail: () => undefined };
    await adminGuard({ allow: ['127.0.0.0/8'], store: store as never, failures: failures as never })(req);
    return req;
  };

  it('keeps the last 500 actions, newest first', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      new Writable({
        write(c: Buffer, _e, cb) {
          lines.push(JSON.parse(c.toString()) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const audit = new AuditLog({ log, max: 500 });
    const req = await guarded();
    for (let i = 0; i < 520; i++) audit.record(req, 'topics.publish', `t.${i}`, 'ok');
    const all = audit.list(1000);
    expect(all).toHaveLength(500);
    expect(all[0]!.target).toBe('t.519');
    expect(all.at(-1)!.target).toBe('t.20');
    expect(audit.list(3).map((a) => a.target)).toEqual(['t.519', 't.518', 't.517']);
    expect(lines).toHaveLength(520);
    expect(lines[0]).toMatchObject({
      msg: 'admin action',
      admin_key: 'k_1',
      key_name: 'ops',
      ip: '127.0.0.1',
      action: 'topics.publish',
      target: 't.0',
      result: 'ok',
    });
  });
});

describe('RecentAlerts', () => {
  const digest = (id: string, over: Partial<AlertDigest> = {}): AlertDigest => ({
    id,
    kind: 'invalid_token',
    count: 3,
    firstAt: new Date(0).toISOString(),
    lastAt: new Date(2000).toISOString(),
    sources: 1,
    sourcesCapped: false,
    topIps: [],
    details: [],
    seq: 1,
    total: 3,
    nodeId: 'n',
    host: 'h',
    ...over,
  });

  it('a bounded ring, newest first, the latest outcome per channel', () => {
    const r = new RecentAlerts({ max: 3, channels: ['log', 'webhook'] });
    for (const id of ['a', 'b', 'c', 'd']) r.outcome(digest(id), 'log', 'sent');
    r.outcome(digest('d'), 'webhook', 'failed');
    r.outcome(digest('d'), 'webhook', 'sent');
    const list = r.list();
    expect(list.map((a) => a.id)).toEqual(['d', 'c', 'b']);
    expect(list[0]!.sent.map((s) => [s.channel, s.status])).toEqual([
      ['log', 'sent'],
      ['webhook', 'sent'],
    ]);
    expect(r.list(1)).toHaveLength(1);
  });

  it('in a cluster, the node that loses the window’s claim records its digest as suppressed on every channel', async () => {
    const leases = new MemoryLeases();
    const clock = {
      t: 1_000_000,
      now() {
        return this.t;
      },
    };
    const sent: AlertDigest[] = [];
    const sink: DigestSink = { start: async () => undefined, accept: (d) => void sent.push(d), close: async () => undefined };
    const recent = new RecentAlerts({ channels: ['log', 'email'] });
    const make = (nodeId: string, withRecent: boolean) =>
      new AlertManager({ groupWaitS: 0, repeatS: 600, sink, clock, nodeId, leases, log: silent, ...(withRecent ? { recent } : {}) });
    const a = make('a', false);
    const b = make('b', true);
    a.raise({ kind: 'internal_error', detail: 'x' });
    a.tick();
    await new Promise((r) => setTimeout(r, 20));
    b.raise({ kind: 'internal_error', detail: 'y' });
    b.tick();
    await new Promise((r) => setTimeout(r, 20));
    expect(sent.map((d) => d.nodeId)).toEqual(['a']);
    const [entry] = recent.list();
    expect(entry).toMatchObject({ kind: 'internal_error', count: 1 });
    expect(entry!.sent.map((s) => [s.channel, s.status])).toEqual([
      ['log', 'suppressed'],
      ['email', 'suppressed'],
    ]);
    await Promise.all([a.close(), b.close()]);
  });
});
