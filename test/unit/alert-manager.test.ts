import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertManager, type DigestSink } from '../../src/alerts/alert-manager.ts';
import type { AlertEvent } from '../../src/alerts/alerts.ts';
import { backoffMs, Delivery } from '../../src/alerts/delivery.ts';
import type { AlertDigest, Notifier } from '../../src/alerts/notifier.ts';
import { summarize } from '../../src/alerts/notifier.ts';
import { Spool } from '../../src/alerts/spool.ts';
import { eventually, ManualClock, tempDir } from '../helpers/server.ts';

/** A sink that keeps what the manager emits. */
class RecordingSink implements DigestSink {
  readonly digests: AlertDigest[] = [];
  started = false;
  closed = false;
  async start(): Promise<void> {
    this.started = true;
  }
  accept(d: AlertDigest): void {
    this.digests.push(d);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function setup(opts: { groupWaitS?: number; repeatS?: number; maxIpsPerGroup?: number; maxGroups?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const sink = new RecordingSink();
  const m = new AlertManager({ groupWaitS: 30, repeatS: 600, clock, nodeId: 'node-a', host: 'box', sink, ...opts });
  /** Moves time by `ms` in ticks of 250 ms, as the shared timer would. */
  const advance = (ms: number) => {
    for (let left = ms; left > 0; left -= 250) {
      clock.advance(Math.min(250, left));
      m.tick();
    }
  };
  return { clock, sink, m, advance };
}

const bogus = (ip: string, detail = 'unknown'): AlertEvent => ({ kind: 'invalid_token', ip, detail });

describe('AlertManager: grouping into digests', () => {
  it('sends one digest per group, groupWaitS after its first event, with count, times, sources and details', () => {
    const { sink, m, clock, advance } = setup();
    const start = clock.now();
    m.raise(bogus('10.0.0.1', 'unknown'));
    advance(10_000);
    for (let i = 0; i < 99; i++) m.raise(bogus(`10.0.0.${(i % 3) + 1}`, i % 2 ? 'malformed' : 'unknown'));
    advance(19_750);
    expect(sink.digests).toHaveLength(0);
    advance(250);
    expect(sink.digests).toHaveLength(1);
    const d = sink.digests[0]!;
    expect(d).toMatchObject({
      kind: 'invalid_token',
      count: 100,
      total: 100,
      seq: 1,
      sources: 3,
      sourcesCapped: false,
      details: ['unknown', 'malformed'],
      nodeId: 'node-a',
      host: 'box',
      firstAt: new Date(start).toISOString(),
      lastAt: new Date(start + 10_000).toISOString(),
    });
    expect(d.clientId).toBeUndefined();
    expect(d.topIps.reduce((n, x) => n + x.count, 0)).toBe(100);
    expect(d.id).toMatch(/^al_/);
    expect(summarize(d)).toBe('invalid_token: 100 in 10 s (3 sources)');
    advance(120_000);
    expect(sink.digests).toHaveLength(1);
  });

  it('groups per-client kinds per client_id, other kinds per kind only (client_id is never a key there)', () => {
    const { sink, m, advance } = setup({ groupWaitS: 1 });
    m.raise({ kind: 'consumer_sent_message', clientId: 'c_one', ip: '10.0.0.1', detail: 'malformed JSON' });
    m.raise({ kind: 'consumer_sent_message', clientId: 'c_two', ip: '10.0.0.2', detail: 'binary frame' });
    m.raise({ kind: 'consumer_sent_message', clientId: 'c_one', ip: '10.0.0.1', detail: 'binary frame' });
    m.raise({ kind: 'duplicate_connection', clientId: 'c_one', ip: '10.0.0.1' });
    m.raise({ kind: 'internal_error', clientId: 'c_one', detail: 'ref e_1' });
    m.raise({ kind: 'internal_error', clientId: 'c_two', detail: 'ref e_2' });
    m.raise({ kind: 'store_unavailable', detail: 'append: SQLITE_FULL' });
    advance(1000);
    const got = sink.digests.map((d) => [d.kind, d.clientId, d.count]).sort();
    expect(got).toEqual([
      ['consumer_sent_message', 'c_one', 2],
      ['consumer_sent_message', 'c_two', 1],
      ['duplicate_connection', 'c_one', 1],
      ['internal_error', undefined, 2],
      ['store_unavailable', undefined, 1],
    ]);
    const one = sink.digests.find((d) => d.clientId === 'c_one' && d.kind === 'consumer_sent_message')!;
    expect(one.details).toEqual(['malformed JSON', 'binary frame']);
    expect(summarize(one)).toBe('consumer_sent_message: client c_one: 2 in 0 s (1 source)');
    expect(sink.digests.find((d) => d.kind === 'store_unavailable')!).toMatchObject({ sources: 0, topIps: [] });
  });

  it('counts events per source IP and lists the top 5, busiest first', () => {
    const { sink, m, advance } = setup({ groupWaitS: 1 });
    // 20 addresses; 10.0.0.k sends k events.
    for (let k = 1; k <= 20; k++) for (let i = 0; i < k; i++) m.raise(bogus(`10.0.0.${k}`));
    advance(1000);
    const [d] = sink.digests;
    expect(d!.count).toBe(210);
    expect(d!.sources).toBe(20);
    expect(d!.topIps).toEqual([
      { ip: '10.0.0.20', count: 20 },
      { ip: '10.0.0.19', count: 19 },
      { ip: '10.0.0.18', count: 18 },
      { ip: '10.0.0.17', count: 17 },
      { ip: '10.0.0.16', count: 16 },
    ]);
  });

  it('keeps at most 5 distinct details, cut short, with credential-like runs masked', () => {
    const { sink, m, advance } = setup({ groupWaitS: 1 });
    const token = 'Yq3l0vX2m1cQz8RkT5pWbN7aHsJ4dEfGu6iOyCxVtLr';
    m.raise(bogus('10.0.0.1', `frame type "${token}"`));
    for (let i = 0; i < 10; i++) m.raise(bogus('10.0.0.1', `reason ${i}`));
    m.raise(bogus('10.0.0.1', 'x'.repeat(5000)));
    advance(1000);
    const [d] = sink.digests;
    expect(d!.details).toHaveLength(5);
    expect(d!.details[0]).toBe('frame type "[masked]"');
    expect(JSON.stringify(d)).not.toContain(token);
  });

  it('folds repeats into at most one digest per repeatS window, each covering everything since the previous one', () => {
    const { sink, m, advance } = setup({ groupWaitS: 30, repeatS: 600 });
    // One event every 10 s for 25 minutes.
    for (let t = 0; t < 1500; t += 10) {
      m.raise(bogus('10.0.0.1'));
      advance(10_000);
    }
    advance(600_000);
    const seqs = sink.digests.map((d) => [d.seq, d.count, d.total]);
    // First at 30 s (the events at 0, 10 and 20 s), then at 630 s and 1230 s, then what is left at 1830 s.
    expect(seqs).toEqual([
      [1, 3, 3],
      [2, 60, 63],
      [3, 60, 123],
      [4, 27, 150],
    ]);
    expect(sink.digests.reduce((n, d) => n + d.count, 0)).toBe(150);
  });

  it('10,000 bogus tokens from 20 addresses within a minute: one digest, two at most', () => {
    const { sink, m, advance } = setup({ groupWaitS: 30, repeatS: 600 });
    for (let s = 0; s < 60; s++) {
      for (let i = 0; i < 10_000 / 60; i++) m.raise(bogus(`192.0.2.${(i % 20) + 1}`));
      advance(1000);
    }
    expect(sink.digests).toHaveLength(1);
    advance(3_600_000);
    expect(sink.digests.length).toBeLessThanOrEqual(2);
    expect(sink.digests.reduce((n, d) => n + d.count, 0)).toBe(60 * Math.ceil(10_000 / 60));
    expect(sink.digests[0]!.sources).toBe(20);
  });

  it('forgets a group that stays quiet for a whole repeatS window: the next event opens a new group', () => {
    const { sink, m, advance } = setup({ groupWaitS: 5, repeatS: 60 });
    m.raise(bogus('10.0.0.1'));
    advance(5000);
    expect(sink.digests).toHaveLength(1);
    expect(m.groupCount).toBe(1);
    advance(60_000);
    expect(m.groupCount).toBe(0);
    m.raise(bogus('10.0.0.2'));
    advance(4750);
    expect(sink.digests).toHaveLength(1);
    advance(250);
    expect(sink.digests.map((d) => d.seq)).toEqual([1, 1]);
    expect(sink.digests[1]!.topIps).toEqual([{ ip: '10.0.0.2', count: 1 }]);
  });

  it('an event within the repeat window keeps the group: it waits for the window rather than going out after groupWaitS', () => {
    const { sink, m, advance } = setup({ groupWaitS: 5, repeatS: 60 });
    m.raise(bogus('10.0.0.1'));
    advance(5000);
    advance(50_000);
    m.raise(bogus('10.0.0.1'));
    advance(9750);
    expect(sink.digests).toHaveLength(1);
    advance(250);
    expect(sink.digests.map((d) => d.seq)).toEqual([1, 2]);
  });

  it('keeps memory bounded: source IPs per group and open groups are capped, every event still counted', () => {
    const { sink, m, advance } = setup({ groupWaitS: 1, maxIpsPerGroup: 50, maxGroups: 10 });
    for (let i = 0; i < 20_000; i++) m.raise(bogus(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    for (let c = 0; c < 100; c++) m.raise({ kind: 'consumer_sent_message', clientId: `c_${c}`, ip: '10.0.0.1' });
    expect(m.groupCount).toBeLessThanOrEqual(11);
    advance(1000);
    const flood = sink.digests.find((d) => d.kind === 'invalid_token')!;
    expect(flood).toMatchObject({ count: 20_000, sources: 50, sourcesCapped: true });
    expect(summarize(flood)).toBe('invalid_token: 20000 in 0 s (50+ sources)');
    const sent = sink.digests.filter((d) => d.kind === 'consumer_sent_message');
    expect(sent.reduce((n, d) => n + d.count, 0)).toBe(100);
    // The clients past the cap were folded into one digest of the kind, without a client_id.
    expect(sent.filter((d) => d.clientId === undefined)).toHaveLength(1);
  });

  it('raise() never throws, even on nonsense', () => {
    const { m } = setup();
    expect(() => m.raise({ kind: 'invalid_token', ip: 42 as never, detail: {} as never })).not.toThrow();
  });

  it('close() hands every unsent group to the sink, closes it once, and ignores later events', async () => {
    const { sink, m } = setup();
    await m.start();
    expect(sink.started).toBe(true);
    m.raise(bogus('10.0.0.1'));
    m.raise({ kind: 'store_unavailable', detail: 'append: SQLITE_FULL' });
    await Promise.all([m.close(), m.close()]);
    expect(sink.closed).toBe(true);
    expect(sink.digests.map((d) => d.kind).sort()).toEqual(['invalid_token', 'store_unavailable']);
    m.raise(bogus('10.0.0.1'));
    m.tick();
    expect(sink.digests).toHaveLength(2);
  });
});

/** A notifier that fails its first `failures` sends, then records. */
class FlakyNotifier implements Notifier {
  readonly channel = 'webhook';
  readonly sent: AlertDigest[] = [];
  attempts = 0;
  constructor(public failures: number) {}
  async send(d: AlertDigest): Promise<void> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9 via http://user:hunter2@example.test/'), { code: 'ECONNREFUSED' });
    }
    this.sent.push(d);
  }
  async close(): Promise<void> {}
}

function logSink() {
  const lines: Record<string, any>[] = [];
  let text = '';
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        text += chunk.toString();
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, any>);
        cb();
      },
    }),
  );
  return { log, lines, text: () => text };
}

function digest(n = 1): AlertDigest {
  const now = new Date().toISOString();
  return {
    id: `al_test${n}`,
    kind: 'store_unavailable',
    count: n,
    firstAt: now,
    lastAt: now,
    sources: 0,
    sourcesCapped: false,
    topIps: [],
    details: ['append: SQLITE_FULL'],
    seq: 1,
    total: n,
    nodeId: 'n',
    host: 'h',
  };
}

describe('Delivery: the durable spool', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('backoff doubles from initialMs, is jittered within [half, all], and is capped at maxMs', () => {
    expect(backoffMs(1, 1000, 300_000, () => 1)).toBe(1000);
    expect(backoffMs(1, 1000, 300_000, () => 0)).toBe(500);
    expect(backoffMs(4, 1000, 300_000, () => 1)).toBe(8000);
    expect(backoffMs(50, 1000, 300_000, () => 1)).toBe(300_000);
    expect(backoffMs(5000, 1000, 300_000, () => 0)).toBe(150_000);
  });

  it('retries a failing channel with backoff until it is delivered once, logging each failure without credentials', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { log, lines, text } = logSink();
    const flaky = new FlakyNotifier(3);
    const d = new Delivery({
      spoolPath: join(dir, 'alerts.db'),
      immediate: [],
      spooled: [flaky],
      retry: { initialMs: 20, maxMs: 50 },
      log,
    });
    await d.start();
    d.accept(digest());
    await eventually(() => flaky.sent.length === 1, 5000, 'delivery after 3 failures');
    expect(flaky.attempts).toBe(4);
    const failures = lines.filter((l) => l.msg === 'alert delivery failed; will retry');
    expect(failures.map((l) => [l.channel, l.attempt])).toEqual([
      ['webhook', 1],
      ['webhook', 2],
      ['webhook', 3],
    ]);
    expect(failures[0]!.level).toBe(40);
    expect(text()).not.toContain('hunter2');
    await d.close();
  });

  it('keeps undelivered digests across a restart and sends them after the next start()', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'alerts.db');
    const { log } = logSink();
    const down = new FlakyNotifier(Infinity);
    const first = new Delivery({ spoolPath: path, immediate: [], spooled: [down], retry: { initialMs: 10_000, maxMs: 10_000 }, log });
    await first.start();
    first.accept(digest(1));
    first.accept(digest(2));
    await eventually(() => down.attempts >= 1, 2000, 'a failed attempt');
    await first.close();
    const spool = new Spool(path);
    expect(spool.pending()).toEqual({ webhook: 2 });
    spool.close();

    const up = new FlakyNotifier(0);
    const second = new Delivery({ spoolPath: path, immediate: [], spooled: [up], retry: { initialMs: 10_000, maxMs: 10_000 }, log });
    await second.start();
    await eventually(() => up.sent.length === 2, 3000, 'spooled digests sent after restart');
    expect(up.sent.map((x) => x.id).sort()).toEqual(['al_test1', 'al_test2']);
    await second.close();
    const after = new Spool(path);
    expect(after.pending()).toEqual({});
    after.close();
  });

  it('close() does not wait long for a send that hangs', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { log } = logSink();
    const hanging: Notifier = { channel: 'email', send: () => new Promise<void>(() => {}), close: async () => {} };
    const d = new Delivery({
      spoolPath: join(dir, 'alerts.db'),
      immediate: [],
      spooled: [hanging],
      retry: { initialMs: 10, maxMs: 10 },
      log,
      closeWaitMs: 200,
    });
    await d.start();
    d.accept(digest());
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await d.close();
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('opens no spool file when no spooled channel is configured', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { log, lines } = logSink();
    const logged: AlertDigest[] = [];
    const immediate: Notifier = { channel: 'log', send: async (x) => void logged.push(x), close: async () => {} };
    const d = new Delivery({
      spoolPath: join(dir, 'alerts.db'),
      immediate: [immediate],
      spooled: [],
      retry: { initialMs: 1, maxMs: 1 },
      log,
    });
    await d.start();
    d.accept(digest());
    await d.close();
    expect(logged).toHaveLength(1);
    expect(existsSync(join(dir, 'alerts.db'))).toBe(false);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });
});
