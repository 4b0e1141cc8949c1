import { mkdtempSync, rmSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertEvent, Alerts } from '../../src/alerts/alerts.ts';
import type { Leases } from '../../src/cluster/leases.ts';
import { MemoryLeases } from '../../src/cluster/memory-leases.ts';
import { settings as fileSettings } from '../../src/connectors/file.ts';
import type { ConnectorConfig } from '../../src/connectors/index.ts';
import { ConnectorRuntime, type ConnectorInfo } from '../../src/connectors/runtime.ts';
import { settings as webhookSettings } from '../../src/connectors/webhook.ts';
import { systemClock } from '../../src/core/clock.ts';
import type { PublishInput } from '../../src/core/publisher.ts';
import { commonFields } from '../helpers/connector-context.ts';

/**
 * Connectors run once in the cluster: two ConnectorRuntime "nodes" share one Leases and one watched
 * folder (a `file` connector); only the lease holder runs it, the other takes over when the holder
 * stops or loses its store, and every record is stored exactly once across the handover.
 */

const LEASE_MS = 900;
const FILES = 24;

/**
 * The Leases backends this runs on: each gives every node its own Leases over one shared state.
 *
 * LEAD — add the PostgreSQL backend here once `src/store/postgres-leases.ts` is merged, e.g.
 *   postgres: async () => {
 *     if (!(await requireService('postgres', 5432))) return undefined;   // test/helpers/tcp-proxy.ts
 *     const schema = `t_leases_${randomBytes(4).toString('hex')}`;
 *     const nodes: PostgresLeases[] = [];
 *     return {
 *       forNode: () => { const l = new PostgresLeases({ url: 'postgres://postgres@127.0.0.1:5432/test', schema }); nodes.push(l); return l; },
 *       close: async () => { for (const l of nodes) await l.close(); await dropSchema(schema); },
 *     };
 *   },
 */
interface LeasesBackend {
  forNode(): Leases | Promise<Leases>;
  close(): Promise<void>;
}
const BACKENDS: Record<string, () => Promise<LeasesBackend | undefined>> = {
  memory: async () => {
    const shared = new MemoryLeases();
    return { forNode: () => shared, close: () => shared.close() };
  },
};

/** A node's way to the shared leases, which the test can break: every call refused, or never answered. */
class NodeLeases implements Leases {
  mode: 'ok' | 'refuse' | 'hang' = 'ok';
  readonly #inner: Leases;
  constructor(inner: Leases) {
    this.#inner = inner;
  }
  #call<T>(f: () => Promise<T>): Promise<T> {
    if (this.mode === 'refuse') return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    return f();
  }
  acquire(name: string, holder: string, ttlMs: number) {
    return this.#call(() => this.#inner.acquire(name, holder, ttlMs));
  }
  release(name: string, holder: string) {
    return this.#call(() => this.#inner.release(name, holder));
  }
  holder(name: string) {
    return this.#call(() => this.#inner.holder(name));
  }
  claimOnce(key: string, ttlMs: number) {
    return this.#call(() => this.#inner.claimOnce(key, ttlMs));
  }
  unclaim(key: string) {
    return this.#call(() => this.#inner.unclaim(key));
  }
  async close() {}
}

/**
 * The shared store, as far as connectors see it: it keeps one message per (scope, key) — the
 * idempotency contract of store.ts — and records every publish call, by node, in call order.
 */
class SharedStore {
  readonly calls: { node: string; scope: string | undefined; key: string | undefined; at: number }[] = [];
  readonly messages = new Map<string, PublishInput>();
  sinkFor(node: string) {
    return {
      publish: async (input: PublishInput) => {
        this.calls.push({ node, scope: input.scope, key: input.key, at: Date.now() });
        const id = `${input.scope}\u0000${input.key}`;
        if (!this.messages.has(id)) this.messages.set(id, input);
        return {};
      },
    };
  }
  values(): unknown[] {
    return [...this.messages.values()].map((m) => JSON.parse(Buffer.from(m.payload as Uint8Array).toString('utf8')) as unknown);
  }
}

class QuietAlerts implements Alerts {
  readonly events: AlertEvent[] = [];
  raise(e: AlertEvent) {
    this.events.push(e);
  }
  async start() {}
  async close() {}
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(5);
  }
  return Date.now() - start;
}

function fileConnector(dir: string): ConnectorConfig {
  return { ...commonFields('drop', 'file', 'drops'), ...fileSettings.parse({ path: dir, pollMs: 20, format: 'json' }) } as ConnectorConfig;
}

interface Node {
  id: string;
  runtime: ConnectorRuntime;
  info(): ConnectorInfo;
}

function node(id: string, opts: { configs: ConnectorConfig[]; store: SharedStore; leases?: Leases }): Node {
  const runtime = new ConnectorRuntime({
    configs: opts.configs,
    sink: opts.store.sinkFor(id),
    dataDir: tempDir(`hubcast-${id}-`), // node-local: the connector state is not shared
    alerts: new QuietAlerts(),
    log: pino({ level: 'silent' }),
    clock: systemClock,
    ...(opts.leases ? { leases: opts.leases, nodeId: id, leaseMs: LEASE_MS } : {}),
  });
  cleanups.push(() => runtime.stop());
  return { id, runtime, info: () => runtime.list()[0]! };
}

/** Drops `n` stable JSON files into `dir`, one every `gapMs` (bounded: returns when all are written). */
async function produce(dir: string, n: number, gapMs: number): Promise<void> {
  const past = new Date(Date.now() - 5000);
  for (let i = 0; i < n; i++) {
    const path = join(dir, `rec-${String(i).padStart(3, '0')}.json`);
    await writeFile(path, JSON.stringify({ n: i }));
    await utimes(path, past, past);
    await pause(gapMs);
  }
}

const running = (i: ConnectorInfo) => i.status !== 'standby' && i.status !== 'stopped';

/** Every record stored exactly once, and no node published after the other had begun (never both at once). */
function expectExactlyOnceAndNoOverlap(store: SharedStore, first: string, second: string): void {
  expect(
    store
      .values()
      .map((v) => (v as { n: number }).n)
      .sort((a, b) => a - b),
  ).toEqual([...Array(FILES).keys()]);
  expect(new Set(store.calls.map((c) => c.scope))).toEqual(new Set(['connector:drop']));
  const firstB = store.calls.findIndex((c) => c.node === second);
  const lastA = store.calls.map((c) => c.node).lastIndexOf(first);
  expect(firstB, `${second} published`).toBeGreaterThan(-1);
  expect(lastA, `${first} published`).toBeGreaterThan(-1);
  expect(lastA, `${first} published after ${second} had begun`).toBeLessThan(firstB);
  // A redelivery (the file in flight at the handover, read again by the new holder) is stored once.
  expect(store.calls.length - store.messages.size).toBeLessThanOrEqual(1);
}

for (const [backendName, open] of Object.entries(BACKENDS)) {
  describe(`connector leases (${backendName})`, () => {
    async function cluster() {
      const backend = await open();
      if (!backend) return undefined;
      cleanups.push(() => backend.close());
      const dir = tempDir('hubcast-drop-');
      const store = new SharedStore();
      const leasesA = new NodeLeases(await backend.forNode());
      const leasesB = new NodeLeases(await backend.forNode());
      const a = node('node-a', { configs: [fileConnector(dir)], store, leases: leasesA });
      const b = node('node-b', { configs: [fileConnector(dir)], store, leases: leasesB });
      await a.runtime.start();
      await b.runtime.start();
      return { dir, store, a, b, leasesA, leasesB };
    }

    it('one node runs the connector; a clean stop hands it over at once; every record stored once', async () => {
      const c = await cluster();
      if (!c) return;
      const { dir, store, a, b } = c;
      expect(running(a.info())).toBe(true);
      expect(a.info().holder).toBe('node-a');
      expect(b.info()).toMatchObject({ status: 'standby', holder: 'node-a' });
      const producing = produce(dir, FILES, 25);
      await waitFor(() => store.messages.size >= 6, 5000, 'node-a to publish');
      expect(store.calls.every((x) => x.node === 'node-a')).toBe(true);
      await a.runtime.stop();
      // Released on stop: node-b takes over at its next attempt (every LEASE_MS / 3), not when the
      // lease expires (at least 2/3 of LEASE_MS after the stop, LEASE_MS after node-a's last renewal).
      const tookMs = await waitFor(() => running(b.info()), LEASE_MS, 'node-b to take over');
      expect(tookMs).toBeLessThan(LEASE_MS / 2);
      expect(b.info().holder).toBe('node-b');
      await producing;
      await waitFor(() => store.messages.size === FILES, 10_000, 'every record');
      await pause(100); // nothing more arrives
      expectExactlyOnceAndNoOverlap(store, 'node-a', 'node-b');
    });

    for (const fault of ['refuse', 'hang'] as const) {
      it(`a holder whose store calls ${fault === 'refuse' ? 'are refused' : 'never answer'} stops before its lease expires; the other takes over`, async () => {
        const c = await cluster();
        if (!c) return;
        const { dir, store, a, b, leasesA } = c;
        const producing = produce(dir, FILES, 25);
        await waitFor(() => store.messages.size >= 6, 5000, 'node-a to publish');
        const cutAt = Date.now();
        leasesA.mode = fault;
        // Refused: at its next renewal (≤ LEASE_MS/3). Unanswered: 2/3 of LEASE_MS after its last success.
        const stoppedMs = await waitFor(() => a.info().status === 'standby', LEASE_MS, 'node-a to stop');
        expect(stoppedMs).toBeLessThan(fault === 'refuse' ? LEASE_MS / 2 : LEASE_MS);
        // node-a could not release (its store is gone): node-b waits for the lease to expire.
        await waitFor(() => running(b.info()), 2 * LEASE_MS, 'node-b to take over');
        expect(Date.now() - cutAt).toBeLessThan(2 * LEASE_MS);
        await producing;
        await waitFor(() => store.messages.size === FILES, 10_000, 'every record');
        // node-a's store is back: it stays on standby, naming the holder.
        leasesA.mode = 'ok';
        await waitFor(() => a.info().holder === 'node-b', LEASE_MS, 'node-a to see node-b as the holder');
        expect(a.info().status).toBe('standby');
        await pause(100);
        expectExactlyOnceAndNoOverlap(store, 'node-a', 'node-b');
      });
    }
  });
}

describe('connector runtime without leases (one node)', () => {
  it('runs every connector at once and reports no holder', async () => {
    const store = new SharedStore();
    const dir = tempDir('hubcast-drop-');
    const n = node('solo', { configs: [fileConnector(dir)], store });
    await n.runtime.start();
    await writeFile(join(dir, 'one.json'), '{"n":1}');
    await utimes(join(dir, 'one.json'), new Date(Date.now() - 5000), new Date(Date.now() - 5000));
    await waitFor(() => store.messages.size === 1, 5000, 'the record');
    expect(n.info().status).toBe('running');
    expect(n.info()).not.toHaveProperty('holder');
  });

  it('with leases, webhooks are not leased: every node answers the requests that reach it', async () => {
    const shared = new MemoryLeases();
    const store = new SharedStore();
    const hook = { ...commonFields('shop', 'webhook', 'orders'), ...webhookSettings.parse({ secret: 'change-me-to-a-long-secret' }) };
    const a = node('node-a', { configs: [hook as ConnectorConfig], store, leases: shared });
    const b = node('node-b', { configs: [hook as ConnectorConfig], store, leases: shared });
    await a.runtime.start();
    await b.runtime.start();
    expect([a.info().status, b.info().status]).toEqual(['running', 'running']);
    expect(a.info()).not.toHaveProperty('holder');
    expect(await shared.holder('connector:shop')).toBeUndefined();
  });
});
