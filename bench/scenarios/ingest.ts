/**
 * Scenario (d) of issue 5: `POST /entity` requests/s with the 202 sent only after the durable commit
 * (store.synchronous=full, group commit), against a bare Fastify 5 endpoint answering 202 to the same
 * body with no storage — at a few concurrency levels of keep-alive clients (closed loop, one request
 * in flight per connection) from a separate pinned process; p50/p99 latency per level.
 *
 * Durability: after the last level the Hubcast server is killed with SIGKILL (no graceful flush),
 * its data dir is reopened through the Store interface, and every offset acknowledged with 202 must
 * be in history.
 *
 * Variants: `hubcast` (defaults: synchronous=full), `hubcast-batch` (the same server, `POST /entities`
 * with 100 messages per request: messages/s as a ratio of `hubcast`'s, measured in the same run),
 * `bare` (Fastify, no storage); full runs add `hubcast-normal` (synchronous=normal: commits without
 * fsync) to show what the fsync costs.
 * `--cpu-prof`: the Hubcast servers run with --cpu-prof; the report lists their busiest functions.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.ts';
import { createStore } from '../../src/store/index.ts';
import { hotFunctions } from '../lib/cpu-profile.ts';
import { cpuMark, disturbanceNote, leastDisturbed, otherLoadPct } from '../lib/disturbance.ts';
import { seedHubcast } from '../lib/hubcast-seed.ts';
import { startHubcast, subdir } from '../lib/hubcast-server.ts';
import { Children, freePort, sampleProc, waitForHttp, type Child } from '../lib/procs.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';
import type { IngestLevel, IngestLoadConfig, IngestLoadResult, LevelResult } from './ingest/protocol.ts';

export const name = 'ingest';
export const describe =
  '`POST /entity` requests/s with 202 after the durable commit (synchronous=full, group commit) vs a bare Fastify endpoint, at 1/16/64 keep-alive clients; p99; every 202 durable. Batch ingest (`POST /entities`, 100 per request): messages/s vs one per request.';

const LOAD = fileURLToPath(new URL('./ingest/load.ts', import.meta.url));
const BARE = fileURLToPath(new URL('./ingest/bare-http.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const TARGET_RATIO = 0.8;
const DATA_BYTES = 190;
/** Messages per `POST /entities` request in the batch variant. */
const BATCH = 100;
/** Large enough that no acknowledged message is trimmed before the durability check. */
const HISTORY_SIZE = 10_000_000;

interface Sizes {
  levels: IngestLevel[];
  maxRequestsPerLevel: number;
}
const FULL: Sizes = {
  levels: [1, 16, 64].map((connections) => ({ connections, warmMs: 1000, measureMs: 5000 })),
  maxRequestsPerLevel: 1_000_000,
};
const QUICK: Sizes = {
  levels: [1, 16].map((connections) => ({ connections, warmMs: 200, measureMs: 800 })),
  maxRequestsPerLevel: 100_000,
};

type Kind = 'hubcast' | 'hubcast-batch' | 'hubcast-normal' | 'bare';

interface Run {
  kind: Kind;
  load: IngestLoadResult;
  /** Server CPU seconds used in each level's measured window. */
  cpuS: (number | null)[];
  durability?: { checked: number; missing: number; duplicates: number; topics: number; ms: number };
  profile?: ReturnType<typeof hotFunctions>;
  rssMiB: number | null;
  /** CPU used by other processes during the windows (the worst level), % of one core. */
  otherLoad: number | null;
  notes: string[];
}

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const sizes = ctx.quick ? QUICK : FULL;
  const kinds: Kind[] = ctx.quick ? ['hubcast', 'hubcast-batch', 'bare'] : ['hubcast', 'hubcast-batch', 'hubcast-normal', 'bare'];
  const runs: Run[] = [];
  for (const kind of kinds) {
    ctx.log(`-- ${kind}`);
    const { best, attempts, otherLoad } = await leastDisturbed(
      ctx,
      kind,
      (i) => runOne(ctx, kind, sizes, i),
      (r) => r.otherLoad,
    );
    best.notes.push(disturbanceNote(otherLoad, attempts));
    runs.push(best);
  }
  const bare = runs.find((r) => r.kind === 'bare')!;
  const single = runs.find((r) => r.kind === 'hubcast')!;
  const variants = runs.map((r) => toVariant(ctx, r, bare, single, sizes));
  return {
    variants,
    notes: [
      `Load: one worker process (CPU 1), a lean HTTP/1.1 client on raw sockets (request bytes built by hand, answer read from the status line and Content-Length). ` +
        `Level = N keep-alive connections, each with one request in flight (closed loop); ${sizes.levels[0]!.warmMs} ms warm-up, then a ${sizes.levels[0]!.measureMs / 1000} s window: ` +
        `requests/s = answers completed in the window / window; latency = send to full answer.`,
      `Body: \`{"topic":"bench.ingest.l<level>.c<conn>","data":{"seq","at","pad"}}\` with a ~${DATA_BYTES}-byte data value, application/json; Hubcast with \`Authorization: Bearer <ingest key>\` (key lookup on every request).`,
      `Hubcast: \`hubcast start\` with its defaults (store.synchronous=full: the 202 is sent after the group commit's fsync) except history.size=${HISTORY_SIZE.toLocaleString('en-US')}, ` +
        `so that no acknowledged message is trimmed before the check. The ingest key and client were written into the data dir before the start (bench/lib/hubcast-seed.ts).`,
      `Durability: after the last level the server is killed with SIGKILL (no graceful close, nothing flushed on the way out); the data dir is reopened through the Store interface and every (topic, offset) acknowledged with 202 is looked up in history.`,
      `Batch: the same server (a fresh data dir), each request \`POST /entities\` with ${BATCH} messages of the connection's topic (the same data as above), answered 200 with a result per message after one commit; ` +
        `messages/s = messages acknowledged with an offset by the requests completed in the window / window, compared with Hubcast's one-message-per-request rate at the same level in the same run. ` +
        `Every result's offset goes through the same SIGKILL durability check; a batch whose offsets are not consecutive (not one commit, or out of array order) is counted.`,
      `Bare endpoint: Fastify 5, logger off, default JSON body parser, POST /entity → 202 {"topic","offset","id"}, no storage, no key check (bench/scenarios/ingest/bare-http.ts).`,
      `Server CPU per request = server CPU time (from /proc) during the window / requests completed in it; a server below 100% of its core while the client waits is blocked (fsync), not busy.`,
    ],
  };
}

async function runOne(ctx: ScenarioContext, kind: Kind, sizes: Sizes, attempt: number): Promise<Run> {
  const dir = subdir(ctx.tmpDir, attempt > 1 ? `${kind}-${attempt}` : kind);
  const children = new Children(ctx.log);
  const profDir = ctx.flags.has('--cpu-prof') && kind !== 'bare' ? join(dir, 'cpu-prof') : undefined;
  try {
    let server: Child;
    let port: number;
    let authorization = '';
    let dataDir = '';
    if (kind === 'bare') {
      port = await freePort();
      server = children.start({
        name: 'bare-http',
        script: BARE,
        args: ['--port', String(port)],
        cpu: 0,
        logFile: join(dir, 'server.log'),
      });
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, server);
    } else {
      dataDir = subdir(dir, 'data');
      const seeded = await seedHubcast(dataDir, { tokens: 0, subscribe: ['bench.>'], name: 'bench-ingest' });
      authorization = `Bearer ${seeded.ingestKey}`;
      const hc = await startHubcast(children, {
        name: kind,
        dataDir,
        logFile: join(dir, 'server.log'),
        config: { 'history.size': HISTORY_SIZE, 'store.synchronous': kind === 'hubcast-normal' ? 'normal' : 'full' },
        ...(profDir ? { cpuProfDir: profDir } : {}),
      });
      server = hc.child;
      port = hc.port;
    }
    const cfg: IngestLoadConfig = {
      port,
      authorization,
      levels: sizes.levels,
      topicPrefix: 'bench.ingest',
      dataBytes: DATA_BYTES,
      timeoutMs: 10_000,
      ...(kind === 'hubcast-batch'
        ? { batch: BATCH, maxRequestsPerLevel: Math.ceil(sizes.maxRequestsPerLevel / BATCH) }
        : { maxRequestsPerLevel: sizes.maxRequestsPerLevel }),
    };
    const load = children.start({ name: 'ingest-load', script: LOAD, cpu: 1, ipc: true, logFile: join(dir, 'load.log') });
    load.send({ type: 'config', config: cfg });
    await load.next('ready', 30_000);
    // Server CPU at each window's edges: the worker's windows are timed from its own start, so
    // sample on its marks.
    const cpuS: (number | null)[] = [];
    const others: number[] = [];
    const budget = sizes.levels.reduce((n, l) => n + l.warmMs + l.measureMs, 0) + 60_000;
    for (let i = 0; i < sizes.levels.length; i++) {
      await load.next(`window-start-${i}`, budget);
      const a = sampleProc(server.pid);
      const ma = cpuMark([server.pid, load.pid]);
      await load.next(`window-end-${i}`, budget);
      const z = sampleProc(server.pid);
      const other = otherLoadPct(ma, cpuMark([server.pid, load.pid]));
      if (other !== null) others.push(other);
      cpuS.push(a && z ? z.cpuS - a.cpuS : null);
    }
    const result = (await load.next<{ result: IngestLoadResult }>('result', budget)).result;
    const rssMiB = sampleProc(server.pid)?.rssMiB ?? null;
    let durability: Run['durability'];
    let profile: Run['profile'];
    if (kind === 'bare') await server.stop(5000);
    else {
      if (profDir) {
        // A profile is written on a clean exit only: stop gracefully (the durability check needs a
        // kill, so a profiled run checks after a graceful stop and says so).
        await server.stop(15_000);
        profile = hotFunctions(profDir, ROOT);
      } else {
        server.proc.kill('SIGKILL');
        await server.exited;
      }
      durability = await checkDurability(dataDir, result.acked);
    }
    const otherLoad = others.length ? Math.max(...others) : null;
    return {
      kind,
      load: result,
      cpuS,
      rssMiB,
      otherLoad,
      notes: [],
      ...(durability ? { durability } : {}),
      ...(profile ? { profile } : {}),
    };
  } finally {
    await children.stopAll(5000);
  }
}

/** Reopens the data dir (Store interface: WAL recovery included) and looks up every acknowledged offset. */
async function checkDurability(dataDir: string, acked: Record<string, number[]>): Promise<NonNullable<Run['durability']>> {
  const started = Date.now();
  const store = createStore(parseConfig({ dataDir, history: { size: HISTORY_SIZE } }));
  await store.open();
  let checked = 0;
  let missing = 0;
  let duplicates = 0;
  try {
    for (const [topic, offsets] of Object.entries(acked)) {
      if (offsets.length === 0) continue;
      const have = new Set<number>();
      let after = 0;
      // Bounded: at most the number of acknowledged offsets, read in pages.
      for (let page = 0; page < 10_000; page++) {
        const rows = await store.readHistory(topic, after, 5000);
        for (const r of rows) have.add(r.offset);
        if (rows.length < 5000) break;
        after = rows[rows.length - 1]!.offset;
      }
      const seen = new Set<number>();
      for (const o of offsets) {
        checked++;
        if (seen.has(o)) duplicates++;
        seen.add(o);
        if (!have.has(o)) missing++;
      }
    }
  } finally {
    await store.close();
  }
  return { checked, missing, duplicates, topics: Object.keys(acked).length, ms: Date.now() - started };
}

const LABELS: Record<Kind, { label: string; description: string }> = {
  hubcast: {
    label: 'Hubcast',
    description:
      '`hubcast start`, defaults (store.synchronous=full): key lookup, JSON checks, group-committed history append, 202 after the commit.',
  },
  'hubcast-normal': {
    label: 'Hubcast, synchronous=normal',
    description:
      'As Hubcast, with store.synchronous=normal (WAL commits without fsync: survives a process crash, not a power loss). For comparison only.',
  },
  'hubcast-batch': {
    label: 'Hubcast, batches of 100',
    description: `As Hubcast (synchronous=full), each request \`POST /entities\` with ${BATCH} messages: one parse, one commit, 200 with a result per message after the commit.`,
  },
  bare: { label: 'bare Fastify', description: 'Fastify 5, POST /entity → 202 JSON, no storage, no key check.' },
};

const fmtLevel = (l: LevelResult) => `${l.connections} conn`;

/** Messages acknowledged per second in a level's window. */
const msgRate = (l: LevelResult | undefined) => (l ? (l.messages * 1000) / l.windowMs : null);

function toVariant(ctx: ScenarioContext, r: Run, bare: Run, single: Run, sizes: Sizes): VariantResult {
  const figures: Figure[] = [];
  const isBare = r.kind === 'bare';
  const isBatch = r.kind === 'hubcast-batch';
  const okStatus = isBatch ? '200' : '202';
  const last = sizes.levels.length - 1;
  r.load.levels.forEach((l, i) => {
    const b = bare.load.levels[i];
    const ratio = b && b.rps > 0 ? l.rps / b.rps : null;
    const cpu = r.cpuS[i];
    const cpuNote = (per: number, what: string) =>
      cpu != null
        ? `; server CPU ${Math.round((cpu / (l.windowMs / 1000)) * 100)}%, ${per ? ((cpu * 1e6) / per).toFixed(1) : 'n/a'} µs/${what}`
        : '';
    if (isBatch) {
      // The batch-ingest figure (issue 12): messages/s against one message per request, same level, same run.
      figures.push({
        key: `msgs.c${l.connections}`,
        label: `messages/s, ${fmtLevel(l)}`,
        value: msgRate(l),
        unit: '/s',
        note: `${l.completed.toLocaleString('en-US')} requests of ${BATCH} in ${(l.windowMs / 1000).toFixed(1)} s${cpuNote(l.messages, 'message')}`,
        baseline: { label: 'Hubcast, one per POST /entity', value: msgRate(single.load.levels[i]) },
      });
      figures.push({
        key: `batch.p99.c${l.connections}`,
        label: `latency p99 of a batch, ${fmtLevel(l)}`,
        value: l.latencyMs.p99,
        unit: 'ms',
        note: `p50 ${l.latencyMs.p50?.toFixed(2)} ms, max ${l.latencyMs.max?.toFixed(1)} ms`,
      });
      return;
    }
    // The target is the product's (defaults): the synchronous=normal variant is shown for comparison only.
    const judged = r.kind === 'hubcast' && i === last;
    figures.push({
      key: `rps.c${l.connections}`,
      label: `requests/s, ${fmtLevel(l)}`,
      value: l.rps,
      unit: '/s',
      note: `${l.completed.toLocaleString('en-US')} in ${(l.windowMs / 1000).toFixed(1)} s${cpuNote(l.completed, 'request')}`,
      ...(!isBare ? { baseline: { label: 'bare Fastify', value: b?.rps ?? null } } : {}),
      ...(judged
        ? {
            target: {
              text: `≥ ${TARGET_RATIO}× bare${ctx.quick ? ' (judged in full runs)' : ''}`,
              met: ctx.quick ? null : ratio !== null && ratio >= TARGET_RATIO,
            },
          }
        : {}),
    });
    figures.push({
      key: `p99.c${l.connections}`,
      label: `latency p99, ${fmtLevel(l)}`,
      value: l.latencyMs.p99,
      unit: 'ms',
      note: `p50 ${l.latencyMs.p50?.toFixed(2)} ms, max ${l.latencyMs.max?.toFixed(1)} ms`,
      ...(!isBare ? { baseline: { label: 'bare Fastify p99', value: b?.latencyMs.p99 ?? null } } : {}),
    });
    // Side by side with the batch variant's figure of the same key.
    if (!isBare)
      figures.push({
        key: `msgs.c${l.connections}`,
        label: `messages/s, ${fmtLevel(l)}`,
        value: msgRate(l),
        unit: '/s',
        note: 'one per request',
      });
  });
  const failures = r.load.levels.reduce(
    (n, l) =>
      n +
      Object.entries(l.byStatus)
        .filter(([s]) => s !== okStatus)
        .reduce((m, [, c]) => m + c, 0) +
      Object.values(l.errors).reduce((m, c) => m + c, 0) +
      l.itemErrors,
    0,
  );
  const detail = r.load.levels
    .map((l) => {
      const bad = {
        ...Object.fromEntries(Object.entries(l.byStatus).filter(([s]) => s !== okStatus)),
        ...l.errors,
        ...(l.itemErrors ? { refused_messages: l.itemErrors } : {}),
      };
      return Object.keys(bad).length ? `${fmtLevel(l)}: ${JSON.stringify(bad)}` : '';
    })
    .filter(Boolean)
    .join('; ');
  figures.push({
    key: 'failures',
    label: isBatch ? 'answers other than 200, refused messages, errors, timeouts' : 'answers other than 202, errors, timeouts',
    value: failures,
    unit: '',
    ...(detail ? { note: detail } : {}),
    target: { text: '0', met: failures === 0 },
  });
  if (isBatch) {
    const broken = r.load.levels.reduce((n, l) => n + l.nonContiguous, 0);
    figures.push({
      key: 'batch.noncontiguous',
      label: 'batches whose offsets are not consecutive',
      value: broken,
      unit: '',
      target: { text: '0', met: broken === 0 },
    });
  }
  if (r.durability) {
    const d = r.durability;
    figures.push({
      key: 'durability.missing',
      label: 'acknowledged offsets missing from history after SIGKILL',
      value: d.missing + r.load.ackWithoutOffset,
      unit: '',
      note: `${d.checked.toLocaleString('en-US')} acknowledged offsets on ${d.topics} topics looked up in ${d.ms} ms${r.profile ? '; profiled run: checked after a graceful stop, not a kill' : ''}${r.load.ackWithoutOffset ? `; ${r.load.ackWithoutOffset} answers without their offsets` : ''}`,
      target: { text: '0', met: d.missing + r.load.ackWithoutOffset === 0 && d.checked > 0 },
    });
    figures.push({
      key: 'durability.duplicates',
      label: 'offsets acknowledged twice on one topic',
      value: d.duplicates,
      unit: '',
      target: { text: '0', met: d.duplicates === 0 },
    });
  }
  figures.push({ key: 'server.rss', label: 'server RSS after the run', value: r.rssMiB, unit: 'MiB' });
  const notes: string[] = [...r.notes];
  if (r.profile?.functions.length) {
    notes.push(
      `CPU profile of the server's main thread (${(r.profile.sampledMs / 1000).toFixed(0)} s sampled, ${(r.profile.busyMs / 1000).toFixed(1)} s busy), ` +
        `self time as a share of busy time: ` +
        r.profile.functions
          .slice(0, 12)
          .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
          .join('; '),
    );
  }
  return {
    name: r.kind,
    label: LABELS[r.kind].label,
    description: LABELS[r.kind].description,
    expect: 'pass',
    figures,
    notes,
    raw: { levels: r.load.levels, cpuS: r.cpuS, durability: r.durability ?? null, profile: r.profile ?? null },
  };
}
