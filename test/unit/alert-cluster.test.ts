import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertManager, type DigestSink } from '../../src/alerts/alert-manager.ts';
import { createAlerts } from '../../src/alerts/index.ts';
import type { AlertDigest } from '../../src/alerts/notifier.ts';
import type { Leases } from '../../src/cluster/leases.ts';
import { MemoryLeases } from '../../src/cluster/memory-leases.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Clock } from '../../src/core/clock.ts';
import { WebhookSink } from '../helpers/webhook-sink.ts';

/**
 * Alert digests in a cluster: nodes sharing one Leases send one digest per group and window for the
 * cluster, not one per node; when the claim cannot be made (store down) they send anyway.
 */

const REPEAT_S = 600;
const WINDOW_MS = REPEAT_S * 1000;
/** The start of a window (2030-01-01T00:00:00Z is a multiple of 600 s). */
const T0 = Date.UTC(2030, 0, 1);

class SharedClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
}

function logLines() {
  const lines: Record<string, any>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, any>);
        cb();
      },
    }),
  );
  return { log, lines };
}

/** The cluster's store, as seen from a node whose connection to it is down: every call refused. */
class UnreachableLeases implements Leases {
  #refuse = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
  acquire = this.#refuse;
  release = this.#refuse;
  holder = this.#refuse;
  claimOnce = this.#refuse;
  unclaim = this.#refuse;
  async close() {}
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(10);
  }
}

/** A node's alerts, built from config as the server builds them, posting digests to `webhook`. */
async function node(nodeId: string, opts: { webhook: WebhookSink; clock: SharedClock; leases: Leases }) {
  const dataDir = mkdtempSync(join(tmpdir(), `hubcast-alerts-${nodeId}-`));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = parseConfig({
    nodeId,
    dataDir,
    alerts: { groupWaitS: 30, repeatS: REPEAT_S, webhook: { url: opts.webhook.url }, retry: { initialMs: 50, maxMs: 200 } },
  });
  const { log, lines } = logLines();
  const alerts = createAlerts(config, log, { clock: opts.clock, leases: opts.leases }) as AlertManager;
  await alerts.start();
  cleanups.push(() => alerts.close());
  return { alerts, lines };
}

/** Moves the shared clock by `ms` in 250 ms steps, ticking every node as its timer would. */
function advance(clock: SharedClock, nodes: { alerts: AlertManager }[], ms: number): void {
  for (let left = ms; left > 0; left -= 250) {
    clock.t += Math.min(250, left);
    for (const n of nodes) n.alerts.tick();
  }
}

const bogus = (ip: string) => ({ kind: 'invalid_token' as const, ip, detail: 'unknown' });

describe('alert digests in a cluster (shared Leases)', () => {
  it('two nodes raising the same kind in one window send one digest; the next window, one more', async () => {
    const webhook = await WebhookSink.start();
    cleanups.push(() => webhook.stop());
    const clock = new SharedClock(T0);
    const leases = new MemoryLeases();
    const a = await node('node-a', { webhook, clock, leases });
    const b = await node('node-b', { webhook, clock, leases });
    const nodes = [a, b];
    advance(clock, nodes, 5_000);
    for (let i = 0; i < 10; i++) a.alerts.raise(bogus('10.0.0.1'));
    advance(clock, nodes, 3_000);
    for (let i = 0; i < 7; i++) b.alerts.raise(bogus('10.0.0.2'));
    advance(clock, nodes, 40_000); // past both nodes' groupWaitS
    await waitFor(() => webhook.delivered.length >= 1, 5000, 'the first digest');
    await pause(300); // a second one would have arrived by now
    expect(webhook.delivered).toHaveLength(1);
    const first = webhook.delivered[0]!.body as AlertDigest;
    expect(first).toMatchObject({ kind: 'invalid_token', nodeId: 'node-a', count: 10, seq: 1 });
    // The other node says, at info, why it sent nothing.
    await waitFor(() => b.lines.some((l) => /not sent: this window's digest/.test(l.msg)), 2000, "node-b's log line");
    expect(b.lines.find((l) => /not sent: this window's digest/.test(l.msg))).toMatchObject({
      level: 30,
      alert: 'invalid_token',
      group: 'invalid_token',
      window: T0 / WINDOW_MS,
      summary: expect.stringMatching(/^invalid_token: 7 in /),
    });

    // Both nodes go on seeing the kind: at the next window's start both are due, one digest goes out.
    advance(clock, nodes, 60_000);
    for (let i = 0; i < 5; i++) a.alerts.raise(bogus('10.0.0.1'));
    for (let i = 0; i < 5; i++) b.alerts.raise(bogus('10.0.0.2'));
    advance(clock, nodes, WINDOW_MS - 108_000 - 250);
    await pause(200);
    expect(webhook.delivered, 'no repeat before the window ends').toHaveLength(1);
    advance(clock, nodes, 500);
    await waitFor(() => webhook.delivered.length >= 2, 5000, 'the second window’s digest');
    await pause(300);
    expect(webhook.delivered).toHaveLength(2);
    expect(Date.parse((webhook.delivered[1]!.body as AlertDigest).lastAt)).toBeLessThan(T0 + WINDOW_MS);
  });

  it('different groups (another client, another kind) are not folded together', async () => {
    const webhook = await WebhookSink.start();
    cleanups.push(() => webhook.stop());
    const clock = new SharedClock(T0);
    const leases = new MemoryLeases();
    const a = await node('node-a', { webhook, clock, leases });
    const b = await node('node-b', { webhook, clock, leases });
    a.alerts.raise({ kind: 'duplicate_connection', clientId: 'c_aaaaaaaaaaaaaaaa', ip: '10.0.0.1' });
    b.alerts.raise({ kind: 'duplicate_connection', clientId: 'c_bbbbbbbbbbbbbbbb', ip: '10.0.0.2' });
    b.alerts.raise({ kind: 'store_unavailable', detail: 'append: ECONNRESET' });
    advance(clock, [a, b], 31_000);
    await waitFor(() => webhook.delivered.length >= 3, 5000, 'three digests');
    await pause(300);
    expect(webhook.delivered.map((p) => `${(p.body as AlertDigest).kind}/${(p.body as AlertDigest).clientId ?? '-'}`).sort()).toEqual([
      'duplicate_connection/c_aaaaaaaaaaaaaaaa',
      'duplicate_connection/c_bbbbbbbbbbbbbbbb',
      'store_unavailable/-',
    ]);
  });

  it('when the claim cannot be made (the store is down), every node sends: a duplicate rather than none', async () => {
    const webhook = await WebhookSink.start();
    cleanups.push(() => webhook.stop());
    const clock = new SharedClock(T0);
    const down = new UnreachableLeases();
    const a = await node('node-a', { webhook, clock, leases: down });
    const b = await node('node-b', { webhook, clock, leases: down });
    a.alerts.raise({ kind: 'store_unavailable', detail: 'append: ECONNREFUSED' });
    b.alerts.raise({ kind: 'store_unavailable', detail: 'append: ECONNREFUSED' });
    advance(clock, [a, b], 31_000);
    await waitFor(() => webhook.delivered.length >= 2, 5000, 'both digests');
    expect(webhook.delivered.map((p) => (p.body as AlertDigest).nodeId).sort()).toEqual(['node-a', 'node-b']);
    expect(a.lines.some((l) => l.level === 40 && /sent unclaimed/.test(l.msg))).toBe(true);
  });
});

describe('AlertManager with leases, one node', () => {
  /** Keeps what the manager hands over. */
  class Recording implements DigestSink {
    readonly digests: AlertDigest[] = [];
    async start() {}
    accept(d: AlertDigest) {
      this.digests.push(d);
    }
    async close() {}
  }

  it("never suppresses its own digests: after the first, one at each window's start while events come", async () => {
    const clock = new SharedClock(T0 + 100_000);
    const sink = new Recording();
    const m = new AlertManager({ groupWaitS: 30, repeatS: REPEAT_S, clock, nodeId: 'n', host: 'h', sink, leases: new MemoryLeases() });
    // An event every 100 s from T0+150 s to T0+1750 s; the clock runs to T0+1900 s.
    while (clock.t < T0 + 1_900_000) {
      clock.t += 250;
      if ((clock.t - T0) % 100_000 === 50_000 && clock.t < T0 + 1_800_000) m.raise(bogus('10.0.0.1'));
      m.tick();
    }
    await pause(50);
    // At T0+180 s (groupWaitS after the first), then at the starts of windows 1, 2 and 3.
    expect(sink.digests.map((d) => [d.seq, d.count])).toEqual([
      [1, 1],
      [2, 4],
      [3, 6],
      [4, 6],
    ]);
    await m.close();
  });

  it('close() lets pending claims settle before the sink closes', async () => {
    const clock = new SharedClock(T0);
    const sink = new Recording();
    let closedWith = -1;
    sink.close = async () => void (closedWith = sink.digests.length);
    const m = new AlertManager({ groupWaitS: 30, repeatS: REPEAT_S, clock, nodeId: 'n', host: 'h', sink, leases: new MemoryLeases() });
    await m.start();
    m.raise(bogus('10.0.0.1'));
    await m.close();
    expect(closedWith).toBe(1);
  });
});
