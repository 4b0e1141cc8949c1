/**
 * Scenario (c) of issue 5: idle memory per connection. N connections, each authenticated (Hubcast:
 * its own Bearer token) and subscribed to one topic, held idle by a worker pinned to CPU 1, against
 * every contender (bare `ws` frame-once server, Socket.IO, NATS over WebSocket, Mosquitto over
 * WebSocket where they run): server RSS (from /proc) and, for Node servers, V8 heap (from a probe
 * preloaded into the server, asked over IPC) per connection = (after − before) / N.
 *
 * Before: after a warm-up (W connections opened, subscribed and closed: code paths compiled, pools
 * grown) and a settle of SETTLE_MS; after: SETTLE_MS after the N-th connection is subscribed. No
 * forced GC anywhere (garbage still on the heap counts, for everyone alike).
 *
 * Scale run (full mode): 50,000 Hubcast connections from several 127.0.0.x source addresses (one
 * address has ~28k ephemeral ports), three workers, the server asking for RLIMIT_NOFILE 200,000:
 * how many are held, and RSS per held connection.
 *
 * Flags: `--contenders=a,b` (as fanout), `--memory-n=N` (default 10,000; quick 1,000), `--no-scale`,
 * `--scale-n=N` (default 50,000), `--heap-snapshot` (after the sample, each Node server writes a heap
 * snapshot — a full GC first, live objects only — and the notes list what the connections hold).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pickContenders, type Contender, type Target } from '../contenders/index.ts';
import { heapGroups } from '../lib/heap-snapshot.ts';
import { seedHubcast } from '../lib/hubcast-seed.ts';
import { startHubcast, subdir } from '../lib/hubcast-server.ts';
import { Children, freePort, sampleProc, waitForHttp, type Child } from '../lib/procs.ts';
import { formatNumber } from '../lib/report.ts';
import { sleep } from '../lib/time.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';
import type { HoldCommand, HoldConfig, HoldStatus, Opened } from './memory/protocol.ts';

export const name = 'memory';
export const describe =
  'Idle memory per authenticated, subscribed connection at N = 10,000: RSS and heap per connection, Hubcast vs bare ws, Socket.IO, NATS-ws (issue 5, c); scale run: 50,000 Hubcast connections held.';

const HOLD = fileURLToPath(new URL('./memory/hold.ts', import.meta.url));
const PROBE = fileURLToPath(new URL('./memory/heap-probe.ts', import.meta.url));
const NODE_SCRIPTS: Record<string, string> = {
  'ws-frame-once': fileURLToPath(new URL('../contenders/ws-frame-once.ts', import.meta.url)),
  socketio: fileURLToPath(new URL('../contenders/socketio.ts', import.meta.url)),
};

const TOPIC = 'bench.mem';
const TARGET_KIB = 8;
/** Quick mode judges only that memory is bounded. */
const QUICK_BOUND_KIB = 64;
const SCALE_SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
const SCALE_WORKERS = 3;
const SCALE_NOFILE = 200_000;

interface Sizes {
  n: number;
  warm: number;
  settleMs: number;
  scale: number;
}

function sizes(ctx: ScenarioContext): Sizes {
  const num = (flag: string, dflt: number, max: number) => {
    const f = [...ctx.flags].find((x) => x.startsWith(`${flag}=`));
    if (!f) return dflt;
    const v = Number(f.slice(flag.length + 1));
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${flag}=N takes 1..${max}`);
    return v;
  };
  const n = num('--memory-n', ctx.quick ? 1000 : 10_000, 18_000);
  const scale = ctx.quick || ctx.flags.has('--no-scale') ? 0 : num('--scale-n', 50_000, 100_000);
  return { n, warm: ctx.quick ? 50 : 500, settleMs: ctx.quick ? 500 : 2000, scale };
}

interface Mem {
  rssMiB: number | null;
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
}

interface Server {
  pid: number;
  target: Target;
  running: () => boolean;
  stop: () => Promise<void>;
  /** Node servers with the heap probe: their heap figures. */
  heap?: () => Promise<{ heapUsed: number; heapTotal: number; external: number } | null>;
  /** Node servers with the heap probe: write a heap snapshot to `path`. */
  snapshot?: (path: string) => Promise<string | null>;
  notes: string[];
}

async function askHeap(child: Child): Promise<{ heapUsed: number; heapTotal: number; external: number } | null> {
  try {
    child.send({ type: 'heap?' });
    return await child.next<{ heapUsed: number; heapTotal: number; external: number }>('heap', 5000);
  } catch {
    return null;
  }
}

async function askSnapshot(child: Child, path: string): Promise<string | null> {
  try {
    child.send({ type: 'snapshot?', path });
    return (await child.next<{ path: string }>('snapshot', 120_000)).path;
  } catch {
    return null;
  }
}

async function startServer(
  ctx: ScenarioContext,
  c: Contender,
  children: Children,
  dir: string,
  tokens: number,
  nofile?: number,
): Promise<Server> {
  if (c.name === 'hubcast') {
    const dataDir = subdir(dir, 'data');
    const seeded = await seedHubcast(dataDir, { tokens, subscribe: ['bench.>'], name: 'bench-memory' });
    const proc = await startHubcast(children, {
      name: 'hubcast',
      dataDir,
      logFile: join(dir, 'server.log'),
      nodeArgs: ['--import', PROBE],
      ipc: true,
      ...(nofile ? { nofile } : {}),
    });
    return {
      pid: proc.child.pid,
      target: {
        kind: 'hubcast',
        port: proc.port,
        tokens: seeded.tokens,
        clientId: seeded.clientId,
        clientSecret: seeded.clientSecret,
        register: 0,
        ingestKey: seeded.ingestKey,
      },
      running: () => proc.child.running,
      stop: async () => void (await proc.child.stop(15_000)),
      heap: () => askHeap(proc.child),
      snapshot: (path) => askSnapshot(proc.child, path),
      notes: [`${tokens.toLocaleString('en-US')} consumer tokens seeded into the store in ${seeded.ms} ms (bench/lib/hubcast-seed.ts)`],
    };
  }
  const script = NODE_SCRIPTS[c.name];
  if (script) {
    const port = await freePort();
    const child = children.start({
      name: c.name,
      script,
      args: ['--port', String(port)],
      nodeArgs: ['--import', PROBE],
      ipc: true,
      cpu: 0,
      logFile: join(dir, 'server.log'),
    });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, child);
    return {
      pid: child.pid,
      target: { kind: c.name as 'ws-frame-once' | 'socketio', port },
      running: () => child.running,
      stop: async () => void (await child.stop(5000)),
      heap: () => askHeap(child),
      snapshot: (path) => askSnapshot(child, path),
      notes: [],
    };
  }
  const s = await c.start({ children, dir, subscribers: tokens, profile: false, log: ctx.log });
  return { pid: s.pid, target: s.target, running: s.running, stop: s.stop, notes: s.notes };
}

async function sample(server: Server): Promise<Mem> {
  const h = server.heap ? await server.heap() : null;
  return {
    rssMiB: sampleProc(server.pid)?.rssMiB ?? null,
    heapUsed: h?.heapUsed ?? null,
    heapTotal: h?.heapTotal ?? null,
    external: h?.external ?? null,
  };
}

/** RLIMIT_NOFILE (soft) of a process, from /proc/<pid>/limits. */
function openFilesLimit(pid: number): number | null {
  try {
    const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function startHold(children: Children, dir: string, tag: string, cfg: HoldConfig): Child {
  const w = children.start({ name: `hold(${tag})`, script: HOLD, cpu: 1, ipc: true, logFile: join(dir, `hold-${tag}.log`) });
  w.send({ type: 'config', config: cfg });
  return w;
}

const cmd = (w: Child, c: HoldCommand) => w.send({ type: 'cmd', cmd: c });

async function openRange(w: Child, from: number, to: number, timeoutMs: number): Promise<Opened> {
  cmd(w, { cmd: 'open', from, to });
  return (await w.next<{ opened: Opened }>('opened', timeoutMs)).opened;
}

async function status(w: Child): Promise<HoldStatus> {
  cmd(w, { cmd: 'status' });
  return (await w.next<{ status: HoldStatus }>('status', 30_000)).status;
}

async function closeAll(w: Child): Promise<void> {
  cmd(w, { cmd: 'close' });
  await w.next('closed', 60_000);
}

interface Measured {
  contender: Contender;
  n: number;
  idle: Mem;
  before: Mem;
  after: Mem;
  opened: Opened;
  warm: Opened;
  status: HoldStatus;
  serverAlive: boolean;
  notes: string[];
}

async function measureOne(ctx: ScenarioContext, c: Contender, s: Sizes): Promise<Measured> {
  const dir = subdir(ctx.tmpDir, c.name);
  const children = new Children(ctx.log);
  let server: Server | undefined;
  try {
    server = await startServer(ctx, c, children, dir, s.n + s.warm);
    const setupTimeoutMs = 180_000;
    const w = startHold(children, dir, c.name, {
      target: server.target,
      topic: TOPIC,
      connectConcurrency: 64,
      connectTimeoutMs: 15_000,
      setupTimeoutMs,
    });
    await w.next('ready', 30_000);
    await sleep(s.settleMs);
    const idle = await sample(server);
    // Warm-up: the last W tokens, opened and closed before `before`.
    const warm = await openRange(w, s.n, s.n + s.warm, setupTimeoutMs + 30_000);
    await closeAll(w);
    await sleep(s.settleMs);
    const before = await sample(server);
    const opened = await openRange(w, 0, s.n, setupTimeoutMs + 30_000);
    ctx.log(`  ${c.name}: ${opened.held.toLocaleString('en-US')} of ${s.n.toLocaleString('en-US')} held (${opened.ms} ms)`);
    await sleep(s.settleMs);
    const after = await sample(server);
    const st = await status(w);
    const serverAlive = server.running();
    const notes = [...server.notes];
    if (ctx.flags.has('--heap-snapshot') && server.snapshot) {
      const file = await server.snapshot(join(dir, `${c.name}.heapsnapshot`));
      if (file) notes.push(heapNote(file, st.alive));
    }
    await closeAll(w);
    cmd(w, { cmd: 'exit' });
    return { contender: c, n: s.n, idle, before, after, opened, warm, status: st, serverAlive, notes };
  } finally {
    await server?.stop();
    await children.stopAll(5000);
  }
}

/** What the live heap holds per connection: the groups with at least one object per two connections. */
function heapNote(file: string, n: number): string {
  const { groups, totalBytes } = heapGroups(file);
  const perConn = groups.filter((g) => g.count >= n / 2).slice(0, 20);
  const b = (x: number) => `${Math.round(x / n)} B`;
  return (
    `Heap snapshot (after a full GC: live objects only) ${(totalBytes / 2 ** 20).toFixed(1)} MiB = ${(totalBytes / n / 1024).toFixed(2)} KiB per connection; ` +
    `the biggest kinds with ≥ 1 object per 2 connections, self size per connection (objects per connection): ` +
    perConn.map((g) => `${g.name} ${b(g.bytes)} (${(g.count / n).toFixed(1)})`).join('; ')
  );
}

interface ScaleRun {
  n: number;
  before: Mem;
  after: Mem;
  opened: Opened[];
  status: HoldStatus[];
  serverAlive: boolean;
  nofile: number | null;
  ms: number;
}

async function scaleRun(ctx: ScenarioContext, hubcast: Contender, s: Sizes): Promise<ScaleRun> {
  const dir = subdir(ctx.tmpDir, 'scale');
  const children = new Children(ctx.log);
  let server: Server | undefined;
  try {
    server = await startServer(ctx, hubcast, children, dir, s.scale + s.warm, SCALE_NOFILE);
    const nofile = openFilesLimit(server.pid);
    ctx.log(`  scale: server RLIMIT_NOFILE ${nofile}`);
    const setupTimeoutMs = 240_000;
    const per = Math.ceil(s.scale / SCALE_WORKERS);
    const workers = Array.from({ length: SCALE_WORKERS }, (_, k) =>
      startHold(children, dir, `scale-${k}`, {
        target: server!.target,
        topic: TOPIC,
        connectConcurrency: 64,
        connectTimeoutMs: 20_000,
        setupTimeoutMs,
        sources: SCALE_SOURCES,
      }),
    );
    await Promise.all(workers.map((w) => w.next('ready', 60_000)));
    await openRange(workers[0]!, s.scale, s.scale + s.warm, setupTimeoutMs + 30_000);
    await closeAll(workers[0]!);
    await sleep(s.settleMs);
    const before = await sample(server);
    const started = Date.now();
    const opened = await Promise.all(
      workers.map((w, k) => openRange(w, k * per, Math.min(s.scale, (k + 1) * per), setupTimeoutMs + 30_000)),
    );
    const ms = Date.now() - started;
    ctx.log(
      `  scale: ${opened.reduce((n, o) => n + o.held, 0).toLocaleString('en-US')} of ${s.scale.toLocaleString('en-US')} set up (${ms} ms)`,
    );
    await sleep(s.settleMs);
    const after = await sample(server);
    const st = await Promise.all(workers.map((w) => status(w)));
    const serverAlive = server.running();
    await Promise.all(workers.map((w) => closeAll(w)));
    for (const w of workers) cmd(w, { cmd: 'exit' });
    return { n: s.scale, before, after, opened, status: st, serverAlive, nofile, ms };
  } finally {
    await server?.stop();
    await children.stopAll(5000);
  }
}

const kib = (bytes: number) => bytes / 1024;
const perConnKiB = (a: number | null, b: number | null, n: number, unitBytes: number) =>
  a === null || b === null || n <= 0 ? null : kib(((a - b) * unitBytes) / n);
const sumRecords = (rs: Record<string, number>[]) => {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
};
const fmtRecord = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v.toLocaleString('en-US')}`)
    .join(', ');

function toVariant(ctx: ScenarioContext, m: Measured, hub: Measured | undefined): VariantResult {
  const isHub = m.contender.name === 'hubcast';
  const held = m.status.alive;
  const rssPer = perConnKiB(m.after.rssMiB, m.before.rssMiB, held, 2 ** 20);
  const heapPer = perConnKiB(m.after.heapUsed, m.before.heapUsed, held, 1);
  const extPer = perConnKiB(m.after.external, m.before.external, held, 1);
  const failures = fmtRecord(m.opened.failures);
  const closed = fmtRecord(m.status.closedByServer);
  const bound = ctx.quick ? QUICK_BOUND_KIB : TARGET_KIB;
  const figures: Figure[] = [
    {
      key: 'rss.per_conn',
      label: `server RSS per connection, N=${m.n.toLocaleString('en-US')}`,
      value: rssPer,
      unit: 'KiB',
      note: `RSS ${m.before.rssMiB?.toFixed(1)} → ${m.after.rssMiB?.toFixed(1)} MiB`,
      ...(isHub
        ? {
            target: {
              text: ctx.quick ? `≤ ${QUICK_BOUND_KIB} KiB (quick: bounded; ≤ ${TARGET_KIB} KiB judged at N=10,000)` : `≤ ${TARGET_KIB} KiB`,
              met: rssPer !== null && rssPer <= bound,
            },
          }
        : {}),
    },
    {
      key: 'heap.per_conn',
      label: 'V8 heap used per connection',
      value: heapPer,
      unit: 'KiB',
      note:
        m.after.heapUsed === null
          ? 'not a Node server'
          : `heap used ${(m.before.heapUsed! / 2 ** 20).toFixed(1)} → ${(m.after.heapUsed / 2 ** 20).toFixed(1)} MiB, total ${(m.after.heapTotal! / 2 ** 20).toFixed(1)} MiB; external + array buffers ${extPer?.toFixed(2)} KiB per connection`,
    },
    {
      key: 'held',
      label: 'connections held (set up, subscribed, still open at the sample)',
      value: held,
      unit: '',
      note: `${m.opened.attempted.toLocaleString('en-US')} attempted, set up in ${(m.opened.ms / 1000).toFixed(1)} s${failures ? `; failed: ${failures}` : ''}${closed ? `; closed by the server: ${closed}` : ''}${m.serverAlive ? '' : '; THE SERVER EXITED'}`,
      // Judged for Hubcast; a contender that drops connections is reported, not a failed check of ours.
      ...(isHub ? { target: { text: `${m.n.toLocaleString('en-US')} (all)`, met: held === m.n && m.serverAlive } } : {}),
    },
    { key: 'rss.idle', label: 'server RSS at start (idle)', value: m.idle.rssMiB, unit: 'MiB' },
    { key: 'rss.before', label: 'server RSS before (after the warm-up)', value: m.before.rssMiB, unit: 'MiB' },
    { key: 'rss.after', label: 'server RSS with the connections held', value: m.after.rssMiB, unit: 'MiB' },
    {
      key: 'connect.rate',
      label: 'set-up rate (connect + authenticate + subscribe, 64 at once)',
      value: m.opened.ms > 0 ? (m.opened.held * 1000) / m.opened.ms : null,
      unit: '/s',
    },
  ];
  if (!isHub && hub) {
    const hubPer = perConnKiB(hub.after.rssMiB, hub.before.rssMiB, hub.status.alive, 2 ** 20);
    if (hubPer !== null && rssPer !== null) figures[0]!.note += `; Hubcast uses ×${formatNumber(hubPer / rssPer)} of this per connection`;
  }
  return {
    name: m.contender.name,
    label: m.contender.label,
    description: m.contender.description,
    expect: 'pass',
    figures,
    notes: m.notes,
    raw: { n: m.n, idle: m.idle, before: m.before, after: m.after, opened: m.opened, warm: m.warm, status: m.status },
  };
}

function scaleVariant(ctx: ScenarioContext, r: ScaleRun): VariantResult {
  const held = r.status.reduce((n, s) => n + s.alive, 0);
  const setUp = r.opened.reduce((n, o) => n + o.held, 0);
  const failures = fmtRecord(sumRecords(r.opened.map((o) => o.failures)));
  const closed = fmtRecord(sumRecords(r.status.map((s) => s.closedByServer)));
  const rssPer = perConnKiB(r.after.rssMiB, r.before.rssMiB, held, 2 ** 20);
  const heapPer = perConnKiB(r.after.heapUsed, r.before.heapUsed, held, 1);
  const limitNote =
    r.nofile !== null && r.nofile < r.n + 100
      ? `; the server's RLIMIT_NOFILE is ${r.nofile.toLocaleString('en-US')} (asked for ${SCALE_NOFILE.toLocaleString('en-US')}; the hard limit of this machine's container does not allow more, and raising it needs CAP_SYS_RESOURCE): one process cannot hold ${r.n.toLocaleString('en-US')} sockets here`
      : '';
  return {
    name: 'hubcast-scale',
    label: `Hubcast, ${r.n.toLocaleString('en-US')} (scale run)`,
    description:
      `The same Hubcast build, ${r.n.toLocaleString('en-US')} consumers (each its own token, subscribed) from ${SCALE_SOURCES.join(', ')} (round robin), ` +
      `${SCALE_WORKERS} hold workers on CPU 1, 64 set-ups at once each; the server started with \`ulimit -n ${SCALE_NOFILE}\` as far as the hard limit allows.`,
    expect: 'pass',
    figures: [
      {
        key: 'rss.per_conn',
        label: `server RSS per connection, N=${held.toLocaleString('en-US')} held`,
        value: rssPer,
        unit: 'KiB',
        note: `RSS ${r.before.rssMiB?.toFixed(1)} → ${r.after.rssMiB?.toFixed(1)} MiB`,
      },
      { key: 'heap.per_conn', label: 'V8 heap used per connection', value: heapPer, unit: 'KiB' },
      {
        key: 'held',
        label: 'connections held (set up, subscribed, still open at the sample)',
        value: held,
        unit: '',
        note:
          `${r.n.toLocaleString('en-US')} attempted, ${setUp.toLocaleString('en-US')} set up in ${(r.ms / 1000).toFixed(1)} s` +
          `${failures ? `; failed: ${failures}` : ''}${closed ? `; closed by the server: ${closed}` : ''}${r.serverAlive ? '' : '; THE SERVER EXITED'}${limitNote}`,
        target: { text: `${r.n.toLocaleString('en-US')} (all)`, met: ctx.quick ? null : held === r.n && r.serverAlive },
      },
      { key: 'rss.before', label: 'server RSS before (after the warm-up)', value: r.before.rssMiB, unit: 'MiB' },
      { key: 'rss.after', label: 'server RSS with the connections held', value: r.after.rssMiB, unit: 'MiB' },
      { key: 'server.nofile', label: "server's open-files limit (RLIMIT_NOFILE)", value: r.nofile, unit: '' },
    ],
    notes: [],
    raw: r,
  };
}

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = sizes(ctx);
  const { contenders, skipped } = await pickContenders(ctx.flags);
  const measured: Measured[] = [];
  const notes: string[] = [];
  for (const c of contenders) {
    ctx.log(`-- ${c.label}, N=${s.n.toLocaleString('en-US')}`);
    try {
      measured.push(await measureOne(ctx, c, s));
    } catch (err) {
      // Hubcast breaking is the scenario breaking; a contender that fails is reported and skipped.
      if (c.name === 'hubcast') throw err;
      ctx.log(`  ${c.name} failed: ${(err as Error).message}`);
      notes.push(`${c.label} could not be measured: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const hub = measured.find((m) => m.contender.name === 'hubcast');
  const variants = measured.map((m) => toVariant(ctx, m, hub));
  if (s.scale > 0 && hub) {
    ctx.log(`-- Hubcast scale run, N=${s.scale.toLocaleString('en-US')}`);
    variants.push(scaleVariant(ctx, await scaleRun(ctx, hub.contender, s)));
  }
  for (const { contender, why } of skipped) notes.push(`${contender.label}: not run (${why}).`);
  notes.push(
    `Per connection = (RSS after − RSS before) / connections held; RSS = VmRSS of the server process from /proc. Heap = V8 used_heap_size (v8.getHeapStatistics(): no /proc read, works in a server out of file descriptors), ` +
      `read by bench/scenarios/memory/heap-probe.ts preloaded into each Node server and asked over IPC (the same way for Hubcast, ws and Socket.IO); NATS and Mosquitto are not Node: heap n/a.`,
    `Before = after a warm-up of ${s.warm} connections opened, subscribed and closed, then ${s.settleMs / 1000} s; after = ${s.settleMs / 1000} s after the last of N was subscribed. No forced GC (the servers run without --expose-gc): uncollected garbage counts, alike for every contender.`,
    `Connections: one hold worker on CPU 1, 64 set-ups at once, the comparison adapters of bench/contenders/protocol.ts over the one lean WebSocket client. Each Hubcast connection presents its own ` +
      `Bearer token (full validation: format, SHA-256 lookup, idle TTL, client, then an ACL check on subscribe to \`${TOPIC}\`); tokens were seeded into the store before the start ` +
      `(bench/lib/hubcast-seed.ts: the rows POST /consumers writes, without its ≈ 50 ms scrypt check per registration, which would take ~8 minutes for 10,000 on one core).`,
  );
  return { variants, notes };
}
