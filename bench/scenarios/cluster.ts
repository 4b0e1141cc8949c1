/**
 * Cluster mode (issue 10): three Hubcast nodes as one hub on this machine — the PostgreSQL store in
 * a fresh schema (dropped afterwards) and a cluster broker (Redis by default) under a fresh prefix.
 *
 * 1. Cross-node delivery cost: N subscribers on node A and N on node B (one topic), M messages
 *    POSTed to A at a steady rate: latency p99 (publisher's CLOCK_MONOTONIC stamp in the payload to
 *    receipt) and server CPU per delivery (/proc utime + stime of each node over the window ÷ its
 *    deliveries) on B (the other node) against A (the publishing node, the same run's baseline).
 *    Twice: a light load (`--lat-n`, 10 per node) judges the latency of the hop; a heavy one
 *    (`--cross-n`, 2,000 per node) the CPU per delivery (its latencies are shown: there, on two
 *    cores, the workers reading 4,000 frames per message are the queue). A and B are pinned to a
 *    core each for this phase (as on machines of their own); the workers are interleaved A, B.
 * 2. Scale: 50,000 authenticated, subscribed connections across the three nodes (each its own
 *    token, ~16,700 per node: one process may hold at most 20,000 file descriptors here), held by
 *    three workers: time to set up all, server CPU per set-up, RSS per connection per node; then K
 *    broadcasts (one POST /entity to node A each) reaching all of them: time to the last delivery
 *    and p99, the median over the K.
 * 3. Ingest on the PostgreSQL store vs SQLite, same run: one node each, `POST /entity` from the
 *    ingest scenario's load generator at a few concurrency levels.
 *
 * Every connection must receive every message of its topic once, in order (a gap or a duplicate is
 * counted; quick mode judges only this). Phase 1 runs first on the fresh nodes, its connections
 * closed before phase 2 (its tokens are distinct from phase 2's).
 *
 * Placement: the nodes and workers are not pinned (three nodes on one core cannot set up 50,000
 * connections in the time budget here; `--pin` pins them as the other scenarios do). Other load on
 * the machine is measured (lib/disturbance.ts) and reported beside the figures.
 *
 * Flags: `--brokers=redis,nats,postgres` (default redis: one cluster run per broker), `--cluster-n=N`
 * (default 50,000; quick 600), `--cross-n=N` (subscribers per node, default 2,000), `--lat-n=N`
 * (subscribers per node of the light phase, default 10), `--cross-m=M`,
 * `--cross-rate=R` (messages/s), `--broadcasts=K` (default 5), `--no-ingest`, `--cpu-prof` (every
 * node profiled: the busiest functions of A and B within the cross-node window, and of A during
 * the set-up and the broadcasts), `--pin` (nodes on CPU 0, workers on CPU 1),
 * `--connect-concurrency=N` (set-ups in flight per worker, default 64), `--no-presence-events` (nodes with cluster.presenceEvents=false: no join/leave control message
 * per subscribe), `--store=sqlite` (plumbing: three independent SQLite nodes on the in-memory
 * broker — nothing crosses nodes, so only the publishing node's subscribers are expected to receive).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpPipeline } from '../contenders/http-pipeline.ts';
import { stamp, template } from '../contenders/payload.ts';
import { perf } from '../contenders/session.ts';
import {
  backendPids,
  BROKERS,
  dropSchema,
  requireService,
  startNodes,
  storeConfig,
  uniqueName,
  type BrokerKind,
  type ClusterNode,
  type Topology,
} from '../lib/cluster-nodes.ts';
import type { ClusterHoldCommand, ClusterHoldConfig, Opened, Progress, Report } from '../lib/cluster-protocol.ts';
import { planSeed, writeSeed, type SeedPlan } from '../lib/cluster-seed.ts';
import { hotFunctions, type HotSummary, type ProfileWindow } from '../lib/cpu-profile.ts';
import { cpuMark, MAX_OTHER_LOAD, otherLoadPct, type CpuMark } from '../lib/disturbance.ts';
import { setAffinity, waitForQuiet } from '../lib/machine.ts';
import { mergeHistograms } from '../lib/histogram.ts';
import { scrapeMetrics, subdir } from '../lib/hubcast-server.ts';
import { Children, sampleProc, type Child } from '../lib/procs.ts';
import { formatNumber } from '../lib/report.ts';
import type { Summary } from '../lib/stats.ts';
import { monoMs, sleep, sleepUntil } from '../lib/time.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';
import type { IngestLoadConfig, IngestLoadResult } from './ingest/protocol.ts';

export const name = 'cluster';
export const describe =
  'Three nodes as one hub (PostgreSQL store, Redis broker; --brokers for NATS, PostgreSQL): 50,000 authenticated, subscribed connections across them and broadcasts reaching all; cross-node p99 and CPU per delivery vs the publishing node; ingest on PostgreSQL vs SQLite (issue 10).';

const HOLD = fileURLToPath(new URL('../lib/cluster-hold.ts', import.meta.url));
const INGEST_LOAD = fileURLToPath(new URL('./ingest/load.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const NODES = 3;
const WORKERS = 3;
/**
 * No explicit source address: each node listens on its own port, so connect()'s own choice of local
 * port may reuse one port toward every node (and a loopback TIME_WAIT port, tcp_tw_reuse=2), and
 * ~16,700 connections per node fit in one address's 28,232 ephemeral ports. Binding to 127.0.0.x
 * first (as the memory scenario must, 50,000 to one port) makes the kernel search for a port no
 * socket holds, TIME_WAIT included: measured here, that search made the workers the bottleneck
 * (116 s of CPU for 47,674 set-ups, mostly system time, with ~16,000 sockets in TIME_WAIT from
 * earlier runs).
 */
const SOURCES: string[] = [];
/** This machine's hard RLIMIT_NOFILE: a node or a worker holds at most ~19,000 sockets. */
const NOFILE = 20_000;
const PER_PROCESS_MAX = 19_000;
const SCALE_TOPIC = 'bench.all';
const CROSS_TOPIC = 'bench.cross';
const PAYLOAD = 190;
const CPU_RATIO = 1.3;
const P99_EXTRA_MS = 5;
const BROKER_LABEL: Record<BrokerKind, string> = { redis: 'Redis', nats: 'NATS', postgres: 'PostgreSQL (LISTEN/NOTIFY)' };

interface Sizes {
  n: number;
  crossN: number;
  /** Subscribers per node of the light cross-node phase (the latency target). */
  latN: number;
  crossM: number;
  crossRate: number;
  crossWarm: number;
  broadcasts: number;
  settleMs: number;
  setupTimeoutMs: number;
  /** Set-ups in flight per worker. */
  connectConcurrency: number;
  ingest: IngestLoadConfig['levels'] | null;
}

function num(ctx: ScenarioContext, flag: string, dflt: number, min: number, max: number): number {
  const f = [...ctx.flags].find((x) => x.startsWith(`${flag}=`));
  if (!f) return dflt;
  const v = Number(f.slice(flag.length + 1));
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`${flag}=N takes ${min}..${max}`);
  return v;
}

function sizes(ctx: ScenarioContext): Sizes {
  const q = ctx.quick;
  return {
    n: Math.round(num(ctx, '--cluster-n', q ? 600 : 50_000, NODES, NODES * PER_PROCESS_MAX)),
    crossN: Math.round(num(ctx, '--cross-n', q ? 100 : 2000, 1, 5000)),
    latN: Math.round(num(ctx, '--lat-n', q ? 5 : 10, 1, 5000)),
    crossM: Math.round(num(ctx, '--cross-m', q ? 50 : 300, 1, 100_000)),
    crossRate: num(ctx, '--cross-rate', q ? 50 : 10, 1, 10_000),
    crossWarm: q ? 5 : 20,
    broadcasts: Math.round(num(ctx, '--broadcasts', q ? 2 : 5, 1, 100)),
    settleMs: q ? 500 : 2000,
    setupTimeoutMs: q ? 60_000 : 360_000,
    connectConcurrency: Math.round(num(ctx, '--connect-concurrency', 64, 1, 1000)),
    ingest: ctx.flags.has('--no-ingest')
      ? null
      : q
        ? [{ connections: 16, warmMs: 200, measureMs: 800 }]
        : [1, 16, 64].map((connections) => ({ connections, warmMs: 1000, measureMs: 5000 })),
  };
}

function brokers(ctx: ScenarioContext): BrokerKind[] {
  const f = [...ctx.flags].find((x) => x.startsWith('--brokers='));
  if (!f) return ['redis'];
  const list = f.slice('--brokers='.length).split(',').filter(Boolean);
  const bad = list.filter((b) => !(BROKERS as readonly string[]).includes(b));
  if (bad.length || list.length === 0) throw new Error(`--brokers= takes a list of ${BROKERS.join(', ')}`);
  return [...new Set(list)] as BrokerKind[];
}

const fmtN = (n: number) => n.toLocaleString('en-US');
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : null;
};
const fmtRecord = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${fmtN(v)}`)
    .join(', ');
const addRecords = (rs: Record<string, number>[]) => {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
};

/** CPU seconds of a set of processes, per pid (a process gone by the second reading is left out). */
const cpuOf = (pids: number[]) => new Map(pids.map((p) => [p, sampleProc(p)?.cpuS ?? null]));
function cpuDelta(a: Map<number, number | null>, z: Map<number, number | null>): number {
  let d = 0;
  for (const [pid, x] of a) {
    const y = z.get(pid);
    if (x !== null && y !== null && y !== undefined) d += y - x;
  }
  return d;
}

/** The CPU used by the machine's other processes between two marks of ours (nodes, workers, backends, this one). */
class Disturbance {
  readonly #pids: number[];
  #mark: CpuMark | undefined;
  worst: number | null = null;
  constructor(pids: number[]) {
    this.#pids = pids;
  }
  start(): void {
    this.#mark = cpuMark(this.#pids);
  }
  stop(): number | null {
    if (!this.#mark) return null;
    const o = otherLoadPct(this.#mark, cpuMark(this.#pids));
    if (o !== null && (this.worst === null || o > this.worst)) this.worst = o;
    return o;
  }
}

// ---------------------------------------------------------------- publishing

/** POST /entity with the stamped payload of bench/contenders/payload.ts, over lean keep-alive connections. */
class Publisher {
  readonly #pipes = new Map<number, HttpPipeline>();
  readonly #tpl = template(PAYLOAD);
  readonly #headers: Record<string, string>;
  readonly statuses: Record<string, number> = {};

  constructor(ingestKey: string) {
    this.#headers = { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' };
  }

  /** Resolves with the stamp (CLOCK_MONOTONIC, ms) and whether the node answered 202. */
  publish(port: number, topic: string, seq: number): Promise<{ atMs: number; ok: boolean }> {
    let pipe = this.#pipes.get(port);
    if (!pipe) this.#pipes.set(port, (pipe = new HttpPipeline(port, 4)));
    const ns = process.hrtime.bigint();
    const body = Buffer.concat([Buffer.from(`{"topic":"${topic}","data":`), stamp(this.#tpl, seq, 0, ns), Buffer.from('}')]);
    return new Promise((resolve) =>
      pipe.post('/entity', this.#headers, body, (status) => {
        this.statuses[status] = (this.statuses[status] ?? 0) + 1;
        resolve({ atMs: Number(ns) / 1e6, ok: status === 202 });
      }),
    );
  }

  close(): void {
    for (const p of this.#pipes.values()) p.close();
  }
}

// ---------------------------------------------------------------- the hold workers

const cmd = (w: Child, c: ClusterHoldCommand) => w.send({ type: 'cmd', cmd: c });

async function ask<T>(workers: Child[], c: ClusterHoldCommand, answer: string, key: string, timeoutMs: number): Promise<T[]> {
  for (const w of workers) cmd(w, c);
  return Promise.all(workers.map(async (w) => (await w.next<Record<string, T>>(answer, timeoutMs))[key]!));
}

/** Opens `tokens[k]` on `nodes[k]`, the list split into contiguous slices, one per worker. */
async function openAll(
  workers: Child[],
  topic: string,
  tokens: string[],
  nodes: number[],
  timeoutMs: number,
  /** The worker of each token; default: consecutive equal shares. */
  workerOf?: (i: number) => number,
): Promise<{ opened: Opened[]; ms: number }> {
  const per = Math.ceil(tokens.length / workers.length);
  const pick = workerOf ?? ((i: number) => Math.floor(i / per));
  const started = monoMs();
  workers.forEach((w, k) => {
    const mine = tokens.map((_, i) => i).filter((i) => pick(i) === k);
    cmd(w, { cmd: 'open', topic, tokens: mine.map((i) => tokens[i]!), nodes: mine.map((i) => nodes[i]!) });
  });
  const opened = await Promise.all(workers.map(async (w) => (await w.next<{ opened: Opened }>('opened', timeoutMs)).opened));
  return { opened, ms: Math.round(monoMs() - started) };
}

/**
 * Waits (bounded) until every held connection on the nodes in `expect` has received every message
 * of the tracked window; resolves with how many had and how many were held, per node.
 */
async function waitDone(workers: Child[], expect: boolean[], timeoutMs: number): Promise<Progress & { ms: number }> {
  const started = monoMs();
  const deadline = started + timeoutMs;
  let last: Progress = { held: [], done: [] };
  for (let i = 0; i < 100_000; i++) {
    const ps = await ask<Progress>(workers, { cmd: 'progress' }, 'progress', 'progress', 30_000);
    last = {
      held: Array.from({ length: NODES }, (_, n) => sum(ps.map((p) => p.held[n] ?? 0))),
      done: Array.from({ length: NODES }, (_, n) => sum(ps.map((p) => p.done[n] ?? 0))),
    };
    if (last.held.every((h, n) => !expect[n] || last.done[n]! >= h)) break;
    if (monoMs() > deadline) break;
    await sleep(20);
  }
  return { ...last, ms: Math.round(monoMs() - started) };
}

function startWorkers(children: Children, dir: string, ports: number[], s: Sizes, pin: boolean): Child[] {
  const cfg: ClusterHoldConfig = {
    ports,
    sources: SOURCES,
    connectConcurrency: s.connectConcurrency,
    connectTimeoutMs: 30_000,
    setupTimeoutMs: s.setupTimeoutMs,
  };
  return Array.from({ length: WORKERS }, (_, k) => {
    const w = children.start({
      name: `hold-${k}`,
      script: HOLD,
      ...(pin ? { cpu: 1 } : {}),
      ipc: true,
      nofile: NOFILE,
      logFile: join(dir, `hold-${k}.log`),
    });
    w.send({ type: 'config', config: cfg });
    return w;
  });
}

// ---------------------------------------------------------------- one cluster run

interface CrossRun {
  n: number;
  m: number;
  rate: number;
  published: number;
  publishMs: number;
  /** Per node: deliveries in the window, latency, CPU seconds over the window, connections. */
  nodes: { deliveries: number; expected: number; latency: Summary; cpuS: number | null; held: number; complete: number }[];
  gaps: number;
  duplicates: number;
  waitedMs: number;
  /** CPU of the PostgreSQL, Redis and NATS processes over the window, seconds. */
  backendCpuS: number;
  /** CPU of processes not ours over the window, % of one core. */
  otherLoad: number | null;
  profiles: (HotSummary | undefined)[];
  window: ProfileWindow;
}

interface Broadcast {
  seq: number;
  ok: boolean;
  lastMs: number | null;
  latency: Summary;
  delivered: number;
  /** Connections held on the nodes expected to receive it. */
  expected: number;
  /** Of those, how many received it once (fresh, in order). */
  complete: number;
  waitedMs: number;
}

interface ScaleRun {
  n: number;
  opened: Opened[];
  setupMs: number;
  held: number[];
  rssBefore: (number | null)[];
  rssAfter: (number | null)[];
  /** Connections held per node when `rssAfter` was read. */
  heldAtSample: number[];
  /** Per node: times it lost its cluster lease and closed every connection (1013), and how many it closed so. */
  fences: { events: number; closed: number }[];
  nofile: (number | null)[];
  broadcasts: Broadcast[];
  gaps: number;
  duplicates: number;
  closedByServer: Record<string, number>;
  /** The worst CPU of processes not ours during a broadcast, % of one core. */
  otherLoad: number | null;
  /** CPU seconds over the set-up of the connections: each node, the workers, the backends; other processes' load. */
  setupCpu: { nodesS: number[]; workersS: number; backendsS: number; otherLoad: number | null };
  window: ProfileWindow;
}

interface ClusterRun {
  label: string;
  topology: Topology;
  seedMs: number;
  tokens: number;
  /** Cross-node delivery at a light load (`--lat-n` per node): the hop's own latency. */
  latency: CrossRun;
  /** Cross-node delivery at a heavy load (`--cross-n` per node): CPU per delivery, latency under load. */
  cross: CrossRun;
  scale: ScaleRun;
  /** Node A's busiest functions during the broadcasts and during the set-up of the connections (--cpu-prof). */
  broadcastProfile: HotSummary | undefined;
  setupProfile: HotSummary | undefined;
  publishStatuses: Record<string, number>;
  nodesAlive: boolean;
}

/** The nodes that must receive a message POSTed to node 0: every node of a cluster, only node 0 when the nodes are independent. */
const expectedNodes = (t: Topology) => Array.from({ length: NODES }, (_, i) => t.store === 'postgres' || i === 0);

function openFilesLimit(pid: number): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function clusterRun(ctx: ScenarioContext, s: Sizes, topology: Topology, label: string, dir: string): Promise<ClusterRun> {
  const children = new Children(ctx.log);
  const cpuProf = ctx.flags.has('--cpu-prof');
  const pin = ctx.flags.has('--pin');
  const expect = expectedNodes(topology);
  const pub = { p: undefined as Publisher | undefined };
  let nodes: ClusterNode[] = [];
  try {
    // ---- seed
    const tokens = s.n + 2 * s.crossN + 2 * s.latN;
    const plan: SeedPlan = await planSeed({ tokens, subscribe: ['bench.>'], name: 'bench-cluster' });
    const dataDirs = Array.from({ length: NODES }, (_, i) => subdir(dir, `node-${i}`, 'data'));
    let seedMs = 0;
    if (topology.store === 'postgres') seedMs = await writeSeed(storeConfig(topology, dataDirs[0]!), plan);
    else for (const d of dataDirs) seedMs += await writeSeed(storeConfig(topology, d), plan);
    ctx.log(`  ${fmtN(tokens)} tokens seeded in ${seedMs} ms`);

    // ---- nodes and workers
    nodes = await startNodes(children, {
      topology,
      count: NODES,
      dir,
      dataDir: (i) => dataDirs[i]!,
      nofile: NOFILE,
      cpu: pin ? 0 : null,
      cpuProf,
      ...(ctx.flags.has('--no-presence-events') ? { config: { 'cluster.presenceEvents': 'false' } } : {}),
    });
    const ports = nodes.map((x) => x.port);
    ctx.log(`  nodes ${nodes.map((x) => `${x.nodeId} :${x.port} pid ${x.child.pid}`).join(', ')}`);
    const workers = startWorkers(children, dir, ports, s, pin);
    await Promise.all(workers.map((w) => w.next('ready', 60_000)));
    pub.p = new Publisher(plan.ingestKey);
    const publisher = pub.p;
    let seq = 0;

    // ---- 1. cross-node delivery: N on A (node 0), N on B (node 1), publishing to A — twice: light
    // (the latency of the hop) and heavy (the CPU per delivery, and the latency under that load).
    let gapsSoFar = 0;
    let duplicatesSoFar = 0;
    let tokenAt = s.n;
    const crossPhase = async (light: boolean, cn: number, cm: number, rate: number): Promise<CrossRun> => {
      const what = light ? 'light' : 'heavy';
      ctx.log(`-- cross-node (${what}): ${fmtN(cn)} subscribers on A and on B, ${fmtN(cm)} messages to A at ${rate}/s`);
      const crossTokens = plan.tokens.slice(tokenAt, tokenAt + 2 * cn);
      tokenAt += 2 * cn;
      // Alternating A, B: each worker holds as many subscribers of A as of B, so that a worker's own
      // turn on the CPU colours both sides alike (with A's in some workers and B's in others, the
      // figure compared the workers' scheduling, not the nodes).
      const crossNodes = crossTokens.map((_, k) => k % 2);
      // Light: A's subscribers in one worker, B's in another (a worker reading both would serve B's
      // copies after A's, which arrive a hop earlier — its own queue, not the hub's); heavy: all workers.
      const workerOf = light && workers.length >= 2 ? (k: number) => k % 2 : undefined;
      const co = await openAll(workers, CROSS_TOPIC, crossTokens, crossNodes, s.setupTimeoutMs + 30_000, workerOf);
      const coHeld = sum(co.opened.map((o) => o.held));
      ctx.log(`  ${fmtN(coHeld)} of ${fmtN(crossTokens.length)} subscribed in ${co.ms} ms`);
      if (coHeld === 0)
        throw new Error(`no cross-node subscriber could connect: ${fmtRecord(addRecords(co.opened.map((o) => o.failures)))}`);
      // Each node of the comparison on a core of its own, as if on its own machine (the workers, the
      // backends and C float): unpinned, the publishing node A, busy with its own fan-out when B's copy
      // arrives, kept one core while B shared the other with the workers, and B's figure measured that.
      const placed = !pin && setAffinity(nodes[0]!.child.pid, '0') && setAffinity(nodes[1]!.child.pid, '1');
      await sleep(s.settleMs);
      // Warm-up (not measured): code paths compiled, and the broker's interest in place on B.
      await ask(workers, { cmd: 'track', from: seq, to: seq + s.crossWarm }, 'tracking', 'type', 30_000);
      const warmAt = monoMs();
      for (let i = 0; i < s.crossWarm; i++) {
        await sleepUntil(warmAt + (i * 1000) / rate);
        void publisher.publish(ports[0]!, CROSS_TOPIC, seq++);
      }
      const warm = await waitDone(workers, expect, 30_000);
      if (warm.held.some((h, i) => expect[i] && warm.done[i]! < h))
        ctx.log(`  warm-up: not every subscriber got the warm-up messages (${JSON.stringify(warm)}); measuring anyway`);
      const from = seq;
      const to = seq + cm;
      await ask(workers, { cmd: 'track', from, to }, 'tracking', 'type', 30_000);
      const backends = backendPids();
      const dist = new Disturbance([...nodes.map((x) => x.child.pid), ...workers.map((w) => w.pid), ...backends]);
      const backA = cpuOf(backends);
      const cpuA = nodes.map((x) => sampleProc(x.child.pid));
      dist.start();
      const t0 = monoMs();
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < cm; i++) {
        await sleepUntil(t0 + (i * 1000) / rate);
        pending.push(publisher.publish(ports[0]!, CROSS_TOPIC, seq++));
      }
      const publishMs = Math.round(monoMs() - t0);
      await Promise.all(pending);
      const waited = await waitDone(workers, expect, 30_000 + (cm * 1000) / rate);
      const cpuZ = nodes.map((x) => sampleProc(x.child.pid));
      const crossOther = dist.stop();
      const backendCpuS = cpuDelta(backA, cpuOf(backends));
      const crossWindow: ProfileWindow = { fromUs: t0 * 1000, toUs: monoMs() * 1000 };
      const reports = await ask<Report>(workers, { cmd: 'report' }, 'report', 'report', 60_000);
      const cross: CrossRun = {
        n: cn,
        m: cm,
        rate: rate,
        published: cm,
        publishMs,
        nodes: Array.from({ length: NODES }, (_, i) => {
          const held = sum(reports.map((r) => r.conns[i]!.held));
          const deliveries = sum(reports.map((r) => sum(r.nodes[i]!.count)));
          const expected = expect[i] ? held * cm : 0;
          const a = cpuA[i];
          const z = cpuZ[i];
          return {
            deliveries,
            expected,
            latency: mergeHistograms(reports.map((r) => r.nodes[i]!.latency)).summary(Math.max(0, expected - deliveries)),
            cpuS: a && z ? z.cpuS - a.cpuS : null,
            held,
            complete: sum(reports.map((r) => r.conns[i]!.complete)),
          };
        }),
        // The workers count since they started: this phase's own.
        gaps: sum(reports.flatMap((r) => r.conns.map((c) => c.gaps))) - gapsSoFar,
        duplicates: sum(reports.flatMap((r) => r.conns.map((c) => c.duplicates))) - duplicatesSoFar,
        waitedMs: waited.ms,
        backendCpuS,
        otherLoad: crossOther,
        profiles: [],
        window: crossWindow,
      };
      for (const [i, x] of cross.nodes.entries())
        if (x.held)
          ctx.log(
            `  node ${nodes[i]!.nodeId}: ${fmtN(x.deliveries)} of ${fmtN(x.expected)} deliveries, p99 ${x.latency.p99?.toFixed(2) ?? 'n/a'} ms, ` +
              `${x.cpuS !== null && x.deliveries ? ((x.cpuS * 1e6) / x.deliveries).toFixed(2) : 'n/a'} µs CPU per delivery`,
          );
      if (placed) for (const x of nodes.slice(0, 2)) setAffinity(x.child.pid, `0-${Math.max(1, availableParallelism() - 1)}`);
      await ask(workers, { cmd: 'close' }, 'closed', 'type', 60_000);
      await waitForServersToLetGo(nodes, 20_000);
      gapsSoFar += cross.gaps;
      duplicatesSoFar += cross.duplicates;
      return cross;
    };
    const latency = await crossPhase(true, s.latN, s.crossM, s.crossRate);
    const cross = await crossPhase(false, s.crossN, s.crossM, s.crossRate);

    // ---- 2. scale: n connections across the three nodes, then broadcasts
    ctx.log(`-- scale: ${fmtN(s.n)} connections across ${NODES} nodes`);
    await sleep(s.settleMs);
    const rssBefore = nodes.map((x) => sampleProc(x.child.pid)?.rssMiB ?? null);
    const scaleTokens = plan.tokens.slice(0, s.n);
    const backends = backendPids();
    const setupPids = [...nodes.map((x) => x.child.pid), ...workers.map((w) => w.pid)];
    const setupCpuA = cpuOf(setupPids);
    const setupBackA = cpuOf(backends);
    const sdist = new Disturbance([...setupPids, ...backends]);
    sdist.start();
    const scaleFrom = monoMs();
    const so = await openAll(
      workers,
      SCALE_TOPIC,
      scaleTokens,
      scaleTokens.map((_, i) => i % NODES),
      s.setupTimeoutMs + 30_000,
    );
    const setupOther = sdist.stop();
    const setupCpuZ = cpuOf(setupPids);
    const setupCpu = {
      nodesS: nodes.map((x) => cpuDelta(new Map([[x.child.pid, setupCpuA.get(x.child.pid) ?? null]]), setupCpuZ)),
      workersS: cpuDelta(new Map(workers.map((w) => [w.pid, setupCpuA.get(w.pid) ?? null])), setupCpuZ),
      backendsS: cpuDelta(setupBackA, cpuOf(backends)),
      otherLoad: setupOther,
    };
    const setUp = sum(so.opened.map((o) => o.held));
    ctx.log(
      `  set-up CPU: nodes ${setupCpu.nodesS.map((x) => x.toFixed(1)).join(' / ')} s, workers ${setupCpu.workersS.toFixed(1)} s, backends ${setupCpu.backendsS.toFixed(1)} s; other processes ${setupOther ?? 'n/a'}% of a core`,
    );
    ctx.log(
      `  ${fmtN(setUp)} of ${fmtN(s.n)} set up in ${so.ms} ms${setUp < s.n ? ` (failed: ${fmtRecord(addRecords(so.opened.map((o) => o.failures)))})` : ''}`,
    );
    await sleep(s.settleMs);
    const rssAfter = nodes.map((x) => sampleProc(x.child.pid)?.rssMiB ?? null);
    const heldAtSample = (await ask<Progress>(workers, { cmd: 'progress' }, 'progress', 'progress', 30_000)).reduce(
      (acc, p) => acc.map((n, i) => n + (p.held[i] ?? 0)),
      new Array<number>(NODES).fill(0),
    );
    const broadcasts: Broadcast[] = [];
    const broadcastFrom = monoMs();
    const bdist = new Disturbance([...nodes.map((x) => x.child.pid), ...workers.map((w) => w.pid), ...backendPids()]);
    // One warm-up broadcast (index 0, not in the medians), then K.
    for (let b = 0; b <= s.broadcasts; b++) {
      const bs = seq++;
      await ask(workers, { cmd: 'track', from: bs, to: bs + 1 }, 'tracking', 'type', 30_000);
      bdist.start();
      const { atMs, ok } = await publisher.publish(ports[0]!, SCALE_TOPIC, bs);
      const w = await waitDone(workers, expect, 60_000);
      bdist.stop();
      const rs = await ask<Report>(workers, { cmd: 'report' }, 'report', 'report', 60_000);
      const expected = sum(w.held.map((h, i) => (expect[i] ? h : 0)));
      const delivered = sum(rs.flatMap((r) => r.nodes.map((x) => x.count[0] ?? 0)));
      const lasts = rs.flatMap((r) => r.nodes.map((x) => x.lastAt[0] ?? 0)).filter((x) => x > 0);
      const br: Broadcast = {
        seq: bs,
        ok,
        lastMs: lasts.length && delivered >= expected ? Math.max(...lasts) - atMs : null,
        latency: mergeHistograms(rs.flatMap((r) => r.nodes.map((x) => x.latency))).summary(Math.max(0, expected - delivered)),
        delivered,
        expected,
        complete: sum(w.done.map((d, i) => (expect[i] ? d : 0))),
        waitedMs: w.ms,
      };
      broadcasts.push(br);
      ctx.log(
        `  broadcast ${b}${b === 0 ? ' (warm-up)' : ''}: ${fmtN(delivered)} of ${fmtN(expected)} delivered, last after ${br.lastMs?.toFixed(1) ?? 'n/a'} ms, p99 ${br.latency.p99?.toFixed(1) ?? 'n/a'} ms`,
      );
      await sleep(300);
    }
    const scaleWindow: ProfileWindow = { fromUs: scaleFrom * 1000, toUs: monoMs() * 1000 };
    const final = await ask<Report>(workers, { cmd: 'report' }, 'report', 'report', 60_000);
    const nodesAlive = nodes.every((x) => x.child.running);
    const scale: ScaleRun = {
      n: s.n,
      opened: so.opened,
      setupMs: so.ms,
      held: Array.from({ length: NODES }, (_, i) => sum(final.map((r) => r.conns[i]!.held))),
      rssBefore,
      rssAfter,
      heldAtSample,
      fences: readFences(nodes),
      nofile: nodes.map((x) => openFilesLimit(x.child.pid)),
      broadcasts,
      gaps: sum(final.flatMap((r) => r.conns.map((c) => c.gaps))) - gapsSoFar,
      duplicates: sum(final.flatMap((r) => r.conns.map((c) => c.duplicates))) - duplicatesSoFar,
      closedByServer: addRecords(final.map((r) => r.closedByServer)),
      otherLoad: bdist.worst,
      setupCpu,
      window: scaleWindow,
    };
    await ask(workers, { cmd: 'close' }, 'closed', 'type', 60_000);
    for (const w of workers) cmd(w, { cmd: 'exit' });

    let broadcastProfile: HotSummary | undefined;
    let setupProfile: HotSummary | undefined;
    if (cpuProf) {
      // A profile is written on a clean exit only.
      await Promise.all(nodes.map((x) => x.child.stop(30_000)));
      cross.profiles = nodes.map((x) => (x.profDir ? hotFunctions(x.profDir, ROOT, 15, cross.window) : undefined));
      latency.profiles = nodes.map((x) => (x.profDir ? hotFunctions(x.profDir, ROOT, 15, latency.window) : undefined));
      const a = nodes[0]!;
      if (a.profDir) {
        broadcastProfile = hotFunctions(a.profDir, ROOT, 15, { fromUs: broadcastFrom * 1000, toUs: scaleWindow.toUs });
        setupProfile = hotFunctions(a.profDir, ROOT, 15, { fromUs: scaleFrom * 1000, toUs: (scaleFrom + so.ms) * 1000 });
      }
    }
    return {
      label,
      topology,
      seedMs,
      tokens,
      latency,
      cross,
      scale,
      broadcastProfile,
      setupProfile,
      publishStatuses: { ...publisher.statuses },
      nodesAlive,
    };
  } finally {
    pub.p?.close();
    await children.stopAll(15_000);
    if (topology.store === 'postgres')
      await dropSchema(topology.schema).catch((err: unknown) => ctx.log(`  could not drop ${topology.schema}: ${String(err)}`));
  }
}

/** The "cluster lease lost" lines of each node's log (src/gateway/gateway.ts `fence()`): times, and connections closed. */
function readFences(nodes: ClusterNode[]): { events: number; closed: number }[] {
  return nodes.map((x) => {
    let events = 0;
    let closed = 0;
    try {
      for (const line of readFileSync(x.logFile, 'utf8').split('\n')) {
        if (!line.includes('cluster lease lost')) continue;
        events++;
        closed += Number(/"connections":(\d+)/.exec(line)?.[1] ?? 0);
      }
    } catch {
      // no log: nothing counted
    }
    return { events, closed };
  });
}

/** One connection per token: before reusing nodes, wait (bounded) until they have let go of every connection. */
async function waitForServersToLetGo(nodes: ClusterNode[], timeoutMs: number): Promise<void> {
  const deadline = monoMs() + timeoutMs;
  while (monoMs() < deadline) {
    const counts = await Promise.all(nodes.map(async (x) => (await scrapeMetrics(x.port)).get('hubcast_connections') ?? 0));
    if (counts.every((c) => c === 0)) return;
    await sleep(50);
  }
}

// ---------------------------------------------------------------- ingest: PostgreSQL store vs SQLite

interface IngestRun {
  store: 'postgres' | 'sqlite';
  load: IngestLoadResult;
  cpuS: (number | null)[];
  /** The worst CPU of processes not ours during a level's window, % of one core. */
  otherLoad: number | null;
}

async function ingestRun(
  ctx: ScenarioContext,
  levels: IngestLoadConfig['levels'],
  store: 'postgres' | 'sqlite',
  dir: string,
): Promise<IngestRun> {
  const children = new Children(ctx.log);
  const topology: Topology =
    store === 'postgres'
      ? { store: 'postgres', broker: 'memory', schema: uniqueName('bench_ingest'), prefix: 'unused' }
      : { store: 'sqlite' };
  try {
    const dataDir = subdir(dir, 'data');
    const plan = await planSeed({ tokens: 0, subscribe: ['bench.>'], name: 'bench-ingest' });
    // The SQLite node itself runs with its defaults (synchronous=full), as in the ingest scenario.
    await writeSeed(storeConfig(topology, dataDir), plan);
    const [node] = await startNodes(children, { topology, count: 1, dir, dataDir: () => dataDir, nofile: NOFILE, cpu: 0, cpuProf: false });
    const cfg: IngestLoadConfig = {
      port: node!.port,
      authorization: `Bearer ${plan.ingestKey}`,
      levels,
      topicPrefix: 'bench.ingest',
      dataBytes: PAYLOAD,
      timeoutMs: 10_000,
      maxRequestsPerLevel: 1_000_000,
    };
    const load = children.start({ name: `ingest-load(${store})`, script: INGEST_LOAD, cpu: 1, ipc: true, logFile: join(dir, 'load.log') });
    load.send({ type: 'config', config: cfg });
    await load.next('ready', 30_000);
    const budget = levels.reduce((n, l) => n + l.warmMs + l.measureMs, 0) + 60_000;
    const cpuS: (number | null)[] = [];
    const dist = new Disturbance([node!.child.pid, load.pid, ...backendPids()]);
    for (let i = 0; i < levels.length; i++) {
      await load.next(`window-start-${i}`, budget);
      const a = sampleProc(node!.child.pid);
      dist.start();
      await load.next(`window-end-${i}`, budget);
      dist.stop();
      const z = sampleProc(node!.child.pid);
      cpuS.push(a && z ? z.cpuS - a.cpuS : null);
    }
    const result = (await load.next<{ result: IngestLoadResult }>('result', budget)).result;
    return { store, load: result, cpuS, otherLoad: dist.worst };
  } finally {
    await children.stopAll(15_000);
    if (topology.store === 'postgres')
      await dropSchema(topology.schema).catch((err: unknown) => ctx.log(`  could not drop ${topology.schema}: ${String(err)}`));
  }
}

// ---------------------------------------------------------------- figures

const cpuPerDeliveryUs = (x: CrossRun['nodes'][number]) => (x.cpuS !== null && x.deliveries > 0 ? (x.cpuS * 1e6) / x.deliveries : null);

/** A cross-node latency figure: p99, with p50 and p999 in the note. */
function latencyFigure(key: string, load: 'light' | 'heavy', where: string, x: CrossRun['nodes'][number], extra = ''): Figure {
  const l = x.latency;
  return {
    key,
    label: `cross-node, ${load} load: latency p99 on ${where}`,
    value: l.p99,
    unit: 'ms',
    note: `p50 ${l.p50?.toFixed(2) ?? 'n/a'} ms, p999 ${l.p999?.toFixed(2) ?? 'n/a'} ms; ${fmtN(x.held)} subscribers${extra}`,
  };
}

function clusterVariant(ctx: ScenarioContext, r: ClusterRun, s: Sizes): VariantResult {
  const clustered = r.topology.store === 'postgres';
  const [a, b] = r.cross.nodes;
  const sc = r.scale;
  const held = sum(sc.held);
  const setUpCount = sum(sc.opened.map((o) => o.held));
  const measured = sc.broadcasts.slice(1);
  const lastMs = median(measured.map((x) => x.lastMs ?? Infinity));
  const p99 = median(measured.map((x) => x.latency.p99 ?? Infinity));
  const fin = (v: number | null) => (v === null || !Number.isFinite(v) ? null : v);
  // Broadcast faults: deliveries missing (every broadcast, warm-up included) + gaps + duplicates.
  const missing = sum(sc.broadcasts.map((x) => Math.max(0, x.expected - x.delivered)));
  const incomplete = sum(sc.broadcasts.map((x) => x.expected - x.complete));
  const bFaults = missing + sc.gaps + sc.duplicates;
  const perNodeRss = sc.rssAfter.map((x, i) =>
    x !== null && sc.rssBefore[i] !== null && sc.heldAtSample[i] ? ((x - sc.rssBefore[i]!) * 1024) / sc.heldAtSample[i]! : null,
  );
  const heldSampled = sum(sc.heldAtSample);
  const fenceEvents = sum(sc.fences.map((f) => f.events));
  const rssTotal = sum(sc.rssAfter.map((x, i) => (x ?? 0) - (sc.rssBefore[i] ?? 0)));
  const [la, lb] = r.latency.nodes;
  const phases = [r.latency, r.cross];
  const crossMissing = sum(phases.flatMap((p) => p.nodes.map((x) => Math.max(0, x.expected - x.deliveries))));
  const crossGaps = sum(phases.map((p) => p.gaps));
  const crossDuplicates = sum(phases.map((p) => p.duplicates));
  const crossFaults = crossMissing + crossGaps + crossDuplicates;
  const failures = fmtRecord(addRecords(sc.opened.map((o) => o.failures)));
  const closed = fmtRecord(sc.closedByServer);
  const cpuA = cpuPerDeliveryUs(a!);
  const cpuB = cpuPerDeliveryUs(b!);
  const figures: Figure[] = [
    {
      key: 'scale.held',
      label: `connections held across ${NODES} nodes (authenticated, subscribed, open after the broadcasts)`,
      value: held,
      unit: '',
      note:
        `per node ${sc.held.map(fmtN).join(' / ')}; ${fmtN(sum(sc.opened.map((o) => o.held)))} of ${fmtN(sc.n)} set up` +
        `${failures ? `; failed: ${failures}` : ''}${closed ? `; closed by a server: ${closed}` : ''}${r.nodesAlive ? '' : '; A NODE EXITED'}` +
        `; nodes' RLIMIT_NOFILE ${sc.nofile.map((x) => (x === null ? 'n/a' : fmtN(x))).join(' / ')}`,
      target: { text: `${fmtN(sc.n)} (all)`, met: held === sc.n && r.nodesAlive },
    },
    {
      key: 'scale.setup',
      label: `time to connect, authenticate and subscribe all ${fmtN(sc.n)}`,
      value: sc.setupMs / 1000,
      unit: 's',
      note: `${fmtN(Math.round((sum(sc.opened.map((o) => o.held)) * 1000) / Math.max(1, sc.setupMs)))} set-ups/s, ${WORKERS} workers × ${s.connectConcurrency} at once`,
    },
    {
      key: 'scale.setup_cpu',
      label: 'server CPU per connection set up (all nodes)',
      value: setUpCount ? (sum(sc.setupCpu.nodesS) * 1e6) / setUpCount : null,
      unit: 'µs',
      note:
        `nodes ${sc.setupCpu.nodesS.map((x) => x.toFixed(1)).join(' / ')} s, the ${WORKERS} workers ${sc.setupCpu.workersS.toFixed(1)} s, PostgreSQL/Redis/NATS ${sc.setupCpu.backendsS.toFixed(1)} s` +
        `; other processes used ${sc.setupCpu.otherLoad ?? 'n/a'}% of a core meanwhile`,
    },
    {
      key: 'scale.rss_per_conn',
      label: 'server RSS per connection (all nodes: RSS growth ÷ connections held at the sample)',
      value: heldSampled ? (rssTotal * 1024) / heldSampled : null,
      unit: 'KiB',
      note: `${fmtN(heldSampled)} held at the sample; per node ${perNodeRss.map((x) => (x === null ? 'n/a' : `${x.toFixed(2)} KiB`)).join(' / ')}; RSS ${sc.rssBefore.map((x) => x?.toFixed(0)).join('/')} → ${sc.rssAfter.map((x) => x?.toFixed(0)).join('/')} MiB`,
    },
    {
      key: 'scale.fenced',
      label: 'nodes that lost their cluster lease (closing every connection with 1013)',
      value: fenceEvents,
      unit: '',
      note: `per node ${sc.fences.map((f) => `${f.events} (${fmtN(f.closed)} closed)`).join(' / ')}: the "cluster lease lost" lines of the nodes' logs`,
      target: { text: '0', met: fenceEvents === 0 },
    },
    {
      key: 'broadcast.last',
      label: `broadcast: time to the last delivery (median of ${measured.length})`,
      value: fin(lastMs),
      unit: 'ms',
      note: `each: ${measured.map((x) => (x.lastMs === null ? 'incomplete' : x.lastMs.toFixed(0))).join(', ')} ms; one POST /entity to node A, from the publisher's stamp`,
    },
    {
      key: 'broadcast.p99',
      label: `broadcast: delivery latency p99 (median of ${measured.length})`,
      value: fin(p99),
      unit: 'ms',
      note: `each p50/p99: ${measured.map((x) => `${x.latency.p50?.toFixed(0) ?? 'n/a'}/${x.latency.p99?.toFixed(0) ?? 'n/a'}`).join(', ')} ms`,
    },
    {
      key: 'broadcast.faults',
      label: 'broadcast faults (deliveries missing, gaps, duplicates)',
      value: bFaults,
      unit: '',
      note:
        `${sc.broadcasts.length} broadcasts (warm-up included) × the connections expected to receive them: ${fmtN(missing)} missing, ${fmtN(sc.gaps)} gaps, ${fmtN(sc.duplicates)} duplicates; ` +
        `${fmtN(incomplete)} (connection, broadcast) pairs not received fresh and in order` +
        (clustered ? '' : '; plumbing mode: only node A’s connections are expected to receive'),
      target: { text: '0', met: bFaults === 0 && incomplete === 0 && sc.broadcasts.every((x) => x.ok) },
    },
    latencyFigure('cross.p99.publishing', 'light', 'the publishing node (A)', la!),
    {
      ...latencyFigure('cross.p99.other', 'light', 'the other node (B)', lb!),
      baseline: { label: 'publishing node', value: la!.latency.p99 },
      ...(clustered
        ? {
            target: perf(
              ctx,
              `≤ the publishing node's + ${P99_EXTRA_MS} ms`,
              lb!.latency.p99 !== null && la!.latency.p99 !== null ? lb!.latency.p99 <= la!.latency.p99 + P99_EXTRA_MS : false,
            ),
          }
        : {}),
    },
    latencyFigure('cross.heavy.p99.publishing', 'heavy', 'the publishing node (A)', a!),
    {
      ...latencyFigure(
        'cross.heavy.p99.other',
        'heavy',
        'the other node (B)',
        b!,
        ` (not judged: with ${fmtN(a!.held + b!.held)} deliveries per message on two cores, the subscribers' own workers are the queue; see the notes)`,
      ),
      baseline: { label: 'publishing node', value: a!.latency.p99 },
    },
    {
      key: 'cross.cpu.publishing',
      label: 'cross-node, heavy load: server CPU per delivery on the publishing node (A)',
      value: cpuA,
      unit: 'µs',
      note: `${a!.cpuS?.toFixed(2) ?? 'n/a'} s CPU for ${fmtN(a!.deliveries)} deliveries (ingest of the ${fmtN(r.cross.m)} messages included)`,
    },
    {
      key: 'cross.cpu.other',
      label: 'cross-node, heavy load: server CPU per delivery on the other node (B)',
      value: cpuB,
      unit: 'µs',
      note: `${b!.cpuS?.toFixed(2) ?? 'n/a'} s CPU for ${fmtN(b!.deliveries)} deliveries`,
      baseline: { label: 'publishing node', value: cpuA },
      ...(clustered
        ? { target: perf(ctx, `≤ ${CPU_RATIO}× the publishing node's`, cpuA !== null && cpuB !== null ? cpuB <= CPU_RATIO * cpuA : false) }
        : {}),
    },
    {
      key: 'cross.faults',
      label: 'cross-node faults (deliveries missing, gaps, duplicates)',
      value: crossFaults,
      unit: '',
      note:
        `both loads: ${fmtN(crossMissing)} missing of ${fmtN(sum(phases.flatMap((p) => p.nodes.map((x) => x.expected))))}, ${fmtN(crossGaps)} gaps, ${fmtN(crossDuplicates)} duplicates` +
        (clustered ? '' : '; plumbing mode: B is not expected to receive'),
      target: { text: '0', met: crossFaults === 0 },
    },
    {
      key: 'cross.backend_cpu',
      label: 'cross-node: CPU of PostgreSQL, Redis and NATS per message published',
      value: r.cross.m ? (r.cross.backendCpuS * 1e6) / r.cross.m : null,
      unit: 'µs',
      note: `${r.cross.backendCpuS.toFixed(2)} s over the window: the append, the broker's fan-out to B, lease renewals (and anything else they served meanwhile)`,
    },
    {
      key: 'cross.idle_cpu',
      label: 'cross-node: CPU of the idle node (C) over the window',
      value: r.cross.nodes[2]!.cpuS,
      unit: 's',
      note: 'no subscribers: its lease renewals and whatever the broker sends it',
    },
  ];
  const disturbed = (o: number | null) =>
    `${o ?? 'n/a'}% of a core${o !== null && o > MAX_OTHER_LOAD ? ' — the latencies are coloured by it' : ''}`;
  const notes: string[] = [
    `Other processes (not the nodes, workers, backends or the bench) used ${disturbed(r.cross.otherLoad)} during the cross-node window and at worst ${disturbed(sc.otherLoad)} during a broadcast.`,
    `${fmtN(r.tokens)} tokens seeded through the Store interface in ${r.seedMs} ms (bench/lib/cluster-seed.ts); publishes: ${fmtRecord(r.publishStatuses)} (HTTP status: count).`,
    `Cross-node, light load: ${fmtN(r.latency.m)} messages at ${r.latency.rate}/s to ${fmtN(la!.held)} subscribers on A and ${fmtN(lb!.held)} on B; ` +
      `p50 B − A = ${la!.latency.p50 !== null && lb!.latency.p50 !== null ? (lb!.latency.p50 - la!.latency.p50).toFixed(2) : 'n/a'} ms, p99 B − A = ${la!.latency.p99 !== null && lb!.latency.p99 !== null ? (lb!.latency.p99 - la!.latency.p99).toFixed(2) : 'n/a'} ms: the hop through the broker. ` +
      `Heavy load: the same with ${fmtN(a!.held)} + ${fmtN(b!.held)} subscribers, for the CPU per delivery; its latencies are shown, not judged — on this two-core machine the 3 workers that read ${fmtN(a!.held + b!.held)} frames per message share the cores with A and B, and B's copies, arriving a broker hop later, queue behind A's in those workers (A and B each on a core of their own, the workers interleaved, B still trails A by about one fan-out).`,
    `Cross-node window (heavy): ${fmtN(r.cross.m)} messages at ${r.cross.rate}/s published in ${(r.cross.publishMs / 1000).toFixed(1)} s, all delivered ${(r.cross.waitedMs / 1000).toFixed(1)} s after the last publish; ` +
      `CPU per delivery on B ÷ A = ×${cpuA && cpuB ? formatNumber(cpuB / cpuA) : 'n/a'}; p99 B − A = ${a!.latency.p99 !== null && b!.latency.p99 !== null ? (b!.latency.p99 - a!.latency.p99).toFixed(2) : 'n/a'} ms.`,
  ];
  for (const [i, p] of r.cross.profiles.entries()) {
    if (!p?.functions.length || i > 1) continue;
    notes.push(
      `CPU profile of node ${i === 0 ? 'A (publishing)' : 'B (other)'} within the cross-node window (${(p.busyMs / 1000).toFixed(1)} s busy), self time share: ` +
        p.functions
          .slice(0, 12)
          .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
          .join('; '),
    );
  }
  for (const [what, p] of [
    ['the set-up of the connections', r.setupProfile],
    ['the broadcasts', r.broadcastProfile],
  ] as const)
    if (p?.functions.length)
      notes.push(
        `CPU profile of node A during ${what} (${(p.busyMs / 1000).toFixed(1)} s busy of ${(p.sampledMs / 1000).toFixed(1)} s), self time share: ` +
          p.functions
            .slice(0, 12)
            .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
            .join('; '),
      );
  const t = r.topology;
  const events = ctx.flags.has('--no-presence-events') ? 'cluster.presenceEvents false (--no-presence-events); ' : '';
  return {
    name: t.store === 'postgres' ? `hubcast-cluster-${t.broker}` : 'hubcast-plumbing',
    label: r.label,
    description:
      t.store === 'postgres'
        ? `${NODES} \`hubcast start\` nodes (nodeId bench-a/b/c)${ctx.flags.has('--pin') ? ' on CPU 0' : ''}, store.type postgres (fresh schema ${t.schema}, dropped afterwards), broker.type ${t.broker} (prefix ${t.prefix}); ${events}otherwise defaults.`
        : `${NODES} independent \`hubcast start\` nodes${ctx.flags.has('--pin') ? ' on CPU 0' : ''}, each its own SQLite data dir and the in-memory broker: the plumbing check (nothing crosses nodes); ${events}otherwise defaults.`,
    expect: 'pass',
    figures,
    notes,
    raw: { sizes: s, latency: r.latency, cross: r.cross, scale: r.scale, seedMs: r.seedMs, publishStatuses: r.publishStatuses },
  };
}

function ingestVariant(ctx: ScenarioContext, pg: IngestRun, lite: IngestRun): VariantResult {
  const figures: Figure[] = [];
  pg.load.levels.forEach((l, i) => {
    const b = lite.load.levels[i];
    const cpu = (r: IngestRun, k: number) => {
      const lv = r.load.levels[k];
      const c = r.cpuS[k];
      return lv && c != null && lv.completed ? `${((c * 1e6) / lv.completed).toFixed(0)} µs server CPU/request` : 'n/a';
    };
    figures.push({
      key: `ingest.rps.c${l.connections}`,
      label: `PostgreSQL store: requests/s, ${l.connections} conn`,
      value: l.rps,
      unit: '/s',
      note: `${fmtN(l.completed)} in ${(l.windowMs / 1000).toFixed(1)} s; ${cpu(pg, i)} (SQLite: ${cpu(lite, i)})`,
      baseline: { label: 'SQLite store', value: b?.rps ?? null },
    });
    figures.push({
      key: `ingest.p99.c${l.connections}`,
      label: `PostgreSQL store: latency p99, ${l.connections} conn`,
      value: l.latencyMs.p99,
      unit: 'ms',
      note: `p50 ${l.latencyMs.p50?.toFixed(2)} ms (SQLite p50 ${b?.latencyMs.p50?.toFixed(2) ?? 'n/a'} ms)`,
      baseline: { label: 'SQLite store', value: b?.latencyMs.p99 ?? null },
    });
  });
  const bad = (r: IngestRun) =>
    sum(
      r.load.levels.map(
        (l) =>
          sum(
            Object.entries(l.byStatus)
              .filter(([st]) => st !== '202')
              .map(([, c]) => c),
          ) + sum(Object.values(l.errors)),
      ),
    );
  const failures = bad(pg) + bad(lite);
  figures.push({
    key: 'ingest.failures',
    label: 'answers other than 202, errors, timeouts (both stores)',
    value: failures,
    unit: '',
    target: { text: '0', met: failures === 0 },
  });
  void ctx;
  return {
    name: 'hubcast-ingest',
    label: 'Ingest: PostgreSQL store vs SQLite',
    description:
      'One `hubcast start` node each, on CPU 0: store.type postgres (fresh schema, broker memory) against the default SQLite store (synchronous=full); `POST /entity` from the ingest scenario’s load generator (bench/scenarios/ingest/load.ts, CPU 1), closed loop, one topic per connection. Ratios: PostgreSQL ÷ SQLite.',
    expect: 'pass',
    figures,
    notes: [
      `Other processes (not the node, its load generator or the backends) used at worst ${pg.otherLoad ?? 'n/a'}% of a core during a PostgreSQL level and ${lite.otherLoad ?? 'n/a'}% during a SQLite level` +
        ((pg.otherLoad ?? 0) > MAX_OTHER_LOAD || (lite.otherLoad ?? 0) > MAX_OTHER_LOAD ? ': the ratios are coloured by it.' : '.'),
    ],
    raw: { postgres: pg, sqlite: lite },
  };
}

// ---------------------------------------------------------------- run

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = sizes(ctx);
  const plumbing = [...ctx.flags].some((f) => f === '--store=sqlite');
  const list = plumbing ? [] : brokers(ctx);
  if (Math.ceil(s.n / NODES) > PER_PROCESS_MAX || Math.ceil((s.n + 2 * s.crossN) / WORKERS) > PER_PROCESS_MAX)
    throw new Error(
      `--cluster-n: at most ${fmtN(PER_PROCESS_MAX)} connections per node and per worker here (RLIMIT_NOFILE ${fmtN(NOFILE)})`,
    );
  if (!plumbing || s.ingest) await requireService('postgres');
  for (const b of list) if (b !== 'postgres') await requireService(b);

  const variants: VariantResult[] = [];
  const targets: { topology: Topology; label: string; tag: string }[] = plumbing
    ? [{ topology: { store: 'sqlite' }, label: `${NODES} independent nodes (SQLite, memory broker)`, tag: 'plumbing' }]
    : list.map((b) => ({
        topology: { store: 'postgres', broker: b, schema: uniqueName('bench_cluster'), prefix: uniqueName('bench') },
        label: `${NODES} nodes: PostgreSQL store + ${BROKER_LABEL[b]} broker`,
        tag: b,
      }));
  for (const t of targets) {
    ctx.log(`== ${t.label}`);
    if (!ctx.quick) await waitForQuiet(60_000, 0.15, ctx.log);
    const dir = join(ctx.tmpDir, t.tag);
    mkdirSync(dir, { recursive: true });
    variants.push(clusterVariant(ctx, await clusterRun(ctx, s, t.topology, t.label, dir), s));
  }
  if (s.ingest) {
    ctx.log('== ingest: PostgreSQL store vs SQLite');
    const lite = await ingestRun(ctx, s.ingest, 'sqlite', subdir(ctx.tmpDir, 'ingest-sqlite'));
    const pg = await ingestRun(ctx, s.ingest, 'postgres', subdir(ctx.tmpDir, 'ingest-postgres'));
    variants.push(ingestVariant(ctx, pg, lite));
  }
  return {
    variants,
    notes: [
      (ctx.flags.has('--pin')
        ? `Placement (2 cores, --pin): every node of the cluster pinned to CPU 0, the ${WORKERS} hold workers to CPU 1 (taskset). `
        : `Placement (2 cores): the cluster's nodes and the ${WORKERS} hold workers are not pinned — the machine's two cores serve all of them (with --pin, three nodes on CPU 0 spent ~280 s of CPU on ~45,000 set-ups: that one core, not the connections, was the limit). `) +
        `The ingest comparison pins its one node to CPU 0 and its load generator to CPU 1, as the ingest scenario does. PostgreSQL, Redis and NATS are the machine's own servers, unpinned; the publisher (this process) is unpinned. ` +
        `Nodes and workers start with \`ulimit -n ${NOFILE}\` (the hard limit here): one process holds at most ~${fmtN(PER_PROCESS_MAX)} sockets, hence ${WORKERS} workers and ~${fmtN(Math.ceil(s.n / NODES))} connections per node.`,
      `Scale: connection i (its own Bearer token, full validation, then \`subscribe\` to \`${SCALE_TOPIC}\`) goes to node i mod ${NODES}, from 127.0.0.1 with the local port chosen by connect() (one port may serve each node; see SOURCES in the scenario for why not bind to several source addresses); ` +
        `RSS per connection = (VmRSS ${s.settleMs / 1000} s after the last set-up − VmRSS before, after the cross-node phase and ${s.settleMs / 1000} s) ÷ connections held, per node and summed. ` +
        `Broadcasts: one warm-up, then ${s.broadcasts}, each one POST /entity (~${PAYLOAD}-byte data) to node A once the previous one reached everyone; latency = receipt (CLOCK_MONOTONIC in the worker) − the publisher's stamp taken just before the request was written, so it includes the ingest (PostgreSQL append) and, for B and C, the broker hop.`,
      `Cross-node: ${fmtN(s.crossN)} subscribers to \`${CROSS_TOPIC}\` on A and ${fmtN(s.crossN)} on B (distinct tokens from the scale phase), ${s.crossWarm} warm-up messages, then ${fmtN(s.crossM)} at ${s.crossRate}/s (open loop) POSTed to A. ` +
        `CPU per delivery = the node's utime + stime (/proc/<pid>/stat) from the first measured publish to the last delivery ÷ its deliveries in the window; A's includes the ingest of every message. Every connection's sequence is checked: exactly the next one, else a gap or a duplicate.`,
      `Tokens: written through the Store interface before the nodes start (bench/lib/cluster-seed.ts) — what POST /consumers writes, without its deliberate ≈ 50 ms scrypt check per registration.`,
    ],
  };
}
