/**
 * Scenario (e) of issue 5: authenticated WebSocket handshakes/s — Hubcast with a Bearer token and
 * its full validation (format, SHA-256 lookup, idle TTL, client record, one-live-connection check,
 * connection recorded in the store), each connection then closed — against bare `ws` handshakes on
 * the frame-once server, with the same lean client, `concurrency` handshakes in flight, bounded in
 * time and count.
 *
 * Hubcast allows one live connection per token: the dial worker uses a pool of pre-issued tokens
 * round robin (a token comes back only after every other one, long after its connection closed);
 * any 409 is counted as a failure. Afterwards the server must report no connection left open.
 *
 * Flags: `--cpu-prof` (Hubcast runs with --cpu-prof; the notes list its busiest functions; `=all`: every server).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hubcast } from '../contenders/hubcast.ts';
import { wsFrameOnce, type Contender, type Started } from '../contenders/index.ts';
import { cpuMark, disturbanceNote, leastDisturbed, otherLoadPct } from '../lib/disturbance.ts';
import { scrapeMetrics, subdir } from '../lib/hubcast-server.ts';
import { Children, sampleProc } from '../lib/procs.ts';
import { sleep } from '../lib/time.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';
import type { DialConfig, DialResult } from './connect/protocol.ts';

export const name = 'connect';
export const describe =
  'Authenticated WebSocket handshakes/s (Bearer token, full validation, each connection then closed) vs bare `ws` handshakes, same lean client, 50 in flight (issue 5, e).';

const DIAL = fileURLToPath(new URL('./connect/dial.ts', import.meta.url));
const TARGET_RATIO = 0.8;
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);

interface Sizes {
  concurrency: number;
  tokens: number;
  warmMs: number;
  measureMs: number;
}
const FULL: Sizes = { concurrency: 50, tokens: 2000, warmMs: 1000, measureMs: 10_000 };
const QUICK: Sizes = { concurrency: 20, tokens: 400, warmMs: 300, measureMs: 2000 };

interface Run {
  contender: Contender;
  result: DialResult;
  cpuS: number | null;
  /** The dial worker's CPU over the window. */
  loadCpuS: number | null;
  /** Hubcast: connections the server still counts open 2 s after the last close. */
  leftOpen: number | null;
  /** CPU used by other processes during the window, % of one core. */
  otherLoad: number | null;
  notes: string[];
  profile?: ReturnType<NonNullable<Started['profile']>>;
}

async function runOne(ctx: ScenarioContext, c: Contender, s: Sizes, attempt: number): Promise<Run> {
  const dir = subdir(ctx.tmpDir, attempt > 1 ? `${c.name}-${attempt}` : c.name);
  const children = new Children(ctx.log);
  const profile = ctx.flags.has('--cpu-prof=all') || (ctx.flags.has('--cpu-prof') && c.name === 'hubcast');
  let server: Started | undefined;
  try {
    server = await c.start({ children, dir, subscribers: c.name === 'hubcast' ? s.tokens : 0, profile, log: ctx.log });
    const t = server.target;
    const cfg: DialConfig = {
      port: t.port,
      path: t.kind === 'hubcast' ? '/ws' : '/',
      tokens: t.kind === 'hubcast' ? t.tokens : [],
      sources: SOURCES,
      concurrency: s.concurrency,
      warmMs: s.warmMs,
      measureMs: s.measureMs,
      timeoutMs: 10_000,
      maxAttempts: 2_000_000,
    };
    const dial = children.start({ name: `dial(${c.name})`, script: DIAL, cpu: 1, ipc: true, logFile: join(dir, 'dial.log') });
    dial.send({ type: 'config', config: cfg });
    await dial.next('ready', 30_000);
    const bound = s.warmMs + s.measureMs + 60_000;
    await dial.next('window-start', bound);
    const a = sampleProc(server.pid);
    const la = sampleProc(dial.pid);
    const ma = cpuMark([server.pid, dial.pid]);
    await dial.next('window-end', bound);
    const z = sampleProc(server.pid);
    const lz = sampleProc(dial.pid);
    const mz = cpuMark([server.pid, dial.pid]);
    const { result } = await dial.next<{ result: DialResult }>('result', bound);
    let leftOpen: number | null = null;
    if (t.kind === 'hubcast') {
      // Polled (at most 2 s): every connection the dial worker closed must be gone from the server.
      const until = Date.now() + 2000;
      do {
        leftOpen = (await scrapeMetrics(t.port)).get('hubcast_connections') ?? null;
        if (leftOpen === 0) break;
        await sleep(100);
      } while (Date.now() < until);
    }
    if (!server.running()) throw new Error(`${c.name} exited during the run`);
    await server.stop();
    const prof = server.profile?.();
    return {
      contender: c,
      result,
      cpuS: a && z ? z.cpuS - a.cpuS : null,
      loadCpuS: la && lz ? lz.cpuS - la.cpuS : null,
      leftOpen,
      otherLoad: otherLoadPct(ma, mz),
      notes: server.notes,
      ...(prof ? { profile: prof } : {}),
    };
  } finally {
    await server?.stop();
    await children.stopAll(5000);
  }
}

const fmtRecord = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v.toLocaleString('en-US')}`)
    .join(', ');

function toVariant(ctx: ScenarioContext, r: Run, bare: Run | undefined): VariantResult {
  const isHub = r.contender.name === 'hubcast';
  const res = r.result;
  const failures = Object.values(res.failures).reduce((n, v) => n + v, 0);
  const ratio = bare && bare.result.perS > 0 ? res.perS / bare.result.perS : null;
  const figures: Figure[] = [
    {
      key: 'handshakes',
      label: 'handshakes/s (101 received, then closed)',
      value: res.perS,
      unit: '/s',
      note:
        `${res.completed.toLocaleString('en-US')} in ${(res.windowMs / 1000).toFixed(1)} s` +
        (r.cpuS !== null
          ? `; server CPU ${Math.round((r.cpuS / (res.windowMs / 1000)) * 100)}%, ${res.completed ? ((r.cpuS * 1e6) / res.completed).toFixed(0) : 'n/a'} µs per handshake (close included)`
          : '') +
        (r.loadCpuS !== null ? `; dial worker CPU ${Math.round((r.loadCpuS / (res.windowMs / 1000)) * 100)}%` : ''),
      ...(isHub && bare ? { baseline: { label: 'bare ws', value: bare.result.perS } } : {}),
      ...(isHub
        ? {
            target: {
              text: `≥ ${TARGET_RATIO}× bare ws${ctx.quick ? ' (judged in full runs)' : ''}`,
              met: ctx.quick ? null : ratio !== null && ratio >= TARGET_RATIO,
            },
          }
        : {}),
    },
    {
      key: 'handshake.p99',
      label: 'handshake time p99 (dial to 101)',
      value: res.handshakeMs.p99,
      unit: 'ms',
      note: `p50 ${res.handshakeMs.p50?.toFixed(2)} ms, max ${res.handshakeMs.max?.toFixed(1)} ms`,
      ...(isHub && bare ? { baseline: { label: 'bare ws p99', value: bare.result.handshakeMs.p99 } } : {}),
    },
    {
      key: 'failures',
      label: 'failed handshakes (refused, reset, timed out)',
      value: failures,
      unit: '',
      ...(failures ? { note: fmtRecord(res.failures) } : {}),
      target: { text: '0', met: failures === 0 },
    },
    {
      key: 'close_timeouts',
      label: 'closes not finished within 3 s',
      value: res.closeTimeouts,
      unit: '',
    },
  ];
  if (isHub)
    figures.push({
      key: 'left_open',
      label: 'connections the server still counts open after the last close (polled for 2 s)',
      value: r.leftOpen,
      unit: '',
      note: 'hubcast_connections from /metrics',
      target: { text: '0', met: r.leftOpen === 0 },
    });
  const notes = [...r.notes];
  if (r.profile?.functions.length)
    notes.push(
      `CPU profile of the server's main thread (${(r.profile.sampledMs / 1000).toFixed(0)} s sampled, ${(r.profile.busyMs / 1000).toFixed(1)} s busy), self time as a share of busy time: ` +
        r.profile.functions
          .slice(0, 15)
          .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
          .join('; '),
    );
  return {
    name: r.contender.name,
    label: r.contender.label,
    description: r.contender.description,
    expect: 'pass',
    figures,
    notes,
    raw: { result: res, cpuS: r.cpuS, loadCpuS: r.loadCpuS, leftOpen: r.leftOpen, profile: r.profile ?? null },
  };
}

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = ctx.quick ? QUICK : FULL;
  const runs: Run[] = [];
  for (const c of [hubcast, wsFrameOnce]) {
    ctx.log(`-- ${c.label}`);
    const {
      best: r,
      attempts,
      otherLoad,
    } = await leastDisturbed(
      ctx,
      c.name,
      (i) => runOne(ctx, c, s, i),
      (x) => x.otherLoad,
    );
    r.notes.push(disturbanceNote(otherLoad, attempts));
    runs.push(r);
    ctx.log(`  ${c.name}: ${Math.round(r.result.perS)} handshakes/s, failures ${fmtRecord(r.result.failures) || '0'}`);
  }
  const bare = runs.find((r) => r.contender.name === 'ws-frame-once');
  return {
    variants: runs.map((r) => toVariant(ctx, r, bare)),
    notes: [
      `Load: one dial worker on CPU 1, the lean WebSocket client (bench/lib/lean-ws.ts, Sec-WebSocket-Accept checked), ${s.concurrency} slots; each slot dials, ` +
        `counts the 101, sends a close frame (1000) and waits for the connection to end before the next dial. Source addresses ${SOURCES[0]}–${SOURCES[SOURCES.length - 1]} round robin. ` +
        `${s.warmMs / 1000} s warm-up, then a ${s.measureMs / 1000} s window: handshakes/s = 101s received in the window / the window; server CPU from /proc over the window (closes included).`,
      `Hubcast: \`hubcast start\`, default config (store.synchronous=full), ${s.tokens.toLocaleString('en-US')} consumer tokens of one client seeded into the store before the start ` +
        `(bench/lib/hubcast-seed.ts, via the hubcast contender; 4 of them re-issued through POST /consumers are not used here), presented as \`Authorization: Bearer\` round robin: ` +
        `a token comes back after ${s.tokens.toLocaleString('en-US')} dials, long after its previous connection closed (one live connection per token; a 409 would count as a failure).`,
      `Bare ws: bench/contenders/ws-frame-once.ts (\`ws\` WebSocketServer on a node:http server, no auth), path /.`,
    ],
  };
}
