import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { subdir } from '../lib/hubcast-server.ts';
import type { HotSummary } from '../lib/cpu-profile.ts';
import { waitForQuiet } from '../lib/machine.ts';
import { Children } from '../lib/procs.ts';
import { formatNumber } from '../lib/report.ts';
import { sleep } from '../lib/time.ts';
import type { Figure, ScenarioContext, VariantResult } from '../lib/types.ts';
import type { Correctness, LoadJob, LoadResult, Plan } from './job.ts';
import type { Contender } from './types.ts';

/**
 * One measurement of one contender: a fresh server on CPU 0, a fresh load generator on CPU 1, the
 * job, both stopped in a finally. A run disturbed by other work on the machine (more than
 * MAX_OTHER_LOAD % of a core outside the server and the load generator during the window) is
 * repeated, at most `tries` times in all, and the least disturbed one is kept.
 */

const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url));
export const MAX_OTHER_LOAD = 25;

export interface Outcome {
  contender: Contender;
  result: LoadResult;
  /** CPU used by other processes during the window, % of one core (null where /proc/stat is unreadable). */
  otherLoad: number | null;
  /** Runs made (a disturbed run is repeated); `run` is the one kept. */
  attempts: number;
  run: number;
  notes: string[];
  profile?: HotSummary;
}

function planBoundMs(p: Plan): number {
  return p.mode === 'window' ? 2 * p.maxMs : p.warmMs + p.durationMs + 2000;
}

async function runOnce(
  ctx: ScenarioContext,
  contender: Contender,
  job: Omit<LoadJob, 'target' | 'serverPid'>,
  dir: string,
): Promise<Outcome> {
  const children = new Children(ctx.log);
  // --cpu-prof: Hubcast; --cpu-prof=all: every Node contender (Hubcast, ws-frame-once, socketio).
  const profile = (ctx.flags.has('--cpu-prof') && contender.name === 'hubcast') || ctx.flags.has('--cpu-prof=all');
  let stop: (() => Promise<void>) | undefined;
  try {
    const server = await contender.start({ children, dir, subscribers: job.subscribers, profile, log: ctx.log });
    stop = server.stop;
    const load = children.start({ name: `load(${contender.name})`, script: LOAD, cpu: 1, ipc: true, logFile: join(dir, 'load.log') });
    const config: LoadJob = { ...job, target: server.target, serverPid: server.pid };
    load.send({ type: 'config', config });
    const ready = await load.next<{ connectMs: number; registerMs: number }>('ready', job.setupTimeoutMs + 30_000);
    ctx.log(
      `  ${contender.name}: ${job.subscribers.toLocaleString('en-US')} subscribers connected and subscribed in ${ready.connectMs} ms; go`,
    );
    load.send({ type: 'go' });
    const { result } = await load.next<{ result: LoadResult }>('result', planBoundMs(job.plan) + 2 * job.drainMs + 30_000);
    if (!server.running()) throw new Error(`${contender.name} exited during the run`);
    // The load generator closes its sockets and exits; then the server stops (with --cpu-prof it writes the profile).
    await Promise.race([load.exited, sleep(10_000)]);
    await server.stop();
    const other =
      result.cpu.machineBusyS === null || result.cpu.serverS === null
        ? null
        : Math.max(
            0,
            Math.round(((result.cpu.machineBusyS - result.cpu.serverS - result.cpu.loadS) / (result.measured.windowMs / 1000)) * 100),
          );
    const prof = server.profile?.({ fromUs: result.measured.fromMs * 1000, toUs: result.measured.toMs * 1000 });
    return { contender, result, otherLoad: other, attempts: 1, run: 1, notes: server.notes, ...(prof ? { profile: prof } : {}) };
  } finally {
    await stop?.();
    await children.stopAll(5000);
  }
}

/** Runs `job` against `contender`; repeats a disturbed run (full mode only). */
export async function measure(
  ctx: ScenarioContext,
  contender: Contender,
  job: Omit<LoadJob, 'target' | 'serverPid'>,
  tag: string,
): Promise<Outcome> {
  const tries = ctx.quick ? 1 : 3;
  let best: Outcome | undefined;
  for (let i = 1; i <= tries; i++) {
    if (!ctx.quick) {
      const quiet = await waitForQuiet(30_000, 0.15, ctx.log);
      if (quiet !== null && quiet >= 0.15)
        ctx.log(`  the machine is still busy (${Math.round(quiet * 100)}% of all cores); measuring anyway`);
    }
    const dir = subdir(ctx.tmpDir, `${tag}-${contender.name}${i > 1 ? `-${i}` : ''}`);
    const out = await runOnce(ctx, contender, job, dir);
    if (!best || (out.otherLoad ?? 0) < (best.otherLoad ?? 0)) best = { ...out, run: i };
    best.attempts = i;
    if ((out.otherLoad ?? 0) <= MAX_OTHER_LOAD) break;
    ctx.log(`  other processes used ${out.otherLoad}% of a core during the window${i < tries ? '; again' : ''}`);
  }
  return best!;
}

// ---------------------------------------------------------------- figures shared by the scenarios

export const deliveriesPerS = (r: LoadResult) => (r.measured.windowMs > 0 ? r.measured.delivered / (r.measured.windowMs / 1000) : null);

/** Server CPU per delivery over the window, µs. */
export const cpuPerDeliveryUs = (r: LoadResult) =>
  r.cpu.serverS === null || r.measured.delivered === 0 ? null : (r.cpu.serverS / r.measured.delivered) * 1e6;

/** Problems found by the correctness checks (0 = every message once, in the same order everywhere). */
export function faults(c: Correctness): number {
  const closes = Object.values(c.unexpectedCloses).reduce((a, b) => a + b, 0);
  return c.missing + c.extra + c.outOfOrder + c.stray + closes + (c.sequencesComplete ? 0 : 1);
}

export function faultNote(c: Correctness): string {
  const closes = Object.entries(c.unexpectedCloses)
    .map(([code, n]) => `${n} closed by the server (${code})`)
    .join(', ');
  const parts = [
    `${c.delivered.toLocaleString('en-US')} of ${c.expected.toLocaleString('en-US')} deliveries`,
    c.missing ? `${c.missing.toLocaleString('en-US')} missing` : '',
    c.extra ? `${c.extra.toLocaleString('en-US')} duplicated` : '',
    c.outOfOrder ? `${c.outOfOrder.toLocaleString('en-US')} out of order` : '',
    c.stray ? `${c.stray.toLocaleString('en-US')} stray` : '',
    c.sequencesComplete ? '' : 'a topic’s sequence is incomplete',
    closes,
  ];
  return parts.filter(Boolean).join(', ');
}

/** The load generator's CPU over the window, % of its core: near 100 % the figure is bounded by the load side. */
export const loadCpuPct = (r: LoadResult) => Math.round((r.cpu.loadS / (r.measured.windowMs / 1000)) * 100);

export const serverCpuPct = (r: LoadResult) =>
  r.cpu.serverS === null ? null : Math.round((r.cpu.serverS / (r.measured.windowMs / 1000)) * 100);

/** A performance target: shown but not judged in quick mode. */
export function perf(ctx: ScenarioContext, text: string, met: boolean | null): Figure['target'] {
  return { text: ctx.quick ? `${text} (judged in full runs)` : text, met: ctx.quick ? null : met };
}

/** One contender's column of a scenario: its figures, notes (plus `failures`, if any) and raw outcome data. */
export function contenderVariant(c: Contender, figures: Figure[], notes: string[], failures: string[], raw: unknown): VariantResult {
  return {
    name: c.name,
    label: c.label,
    description: c.description,
    expect: 'pass',
    figures,
    notes: [...notes, ...failures.map((e) => `FAILED: ${e}`)],
    raw,
  };
}

/** The notes line of each contender that could not run here. */
export const skippedNotes = (skipped: readonly { contender: Contender; why: string }[]) =>
  skipped.map((s) => `${s.contender.label} skipped: ${s.why}`);

/** `×1.23` */
export const times = (v: number | null) => (v === null ? 'n/a' : `×${formatNumber(v)}`);

/** Notes of one outcome for its variant. */
export function outcomeNotes(o: Outcome, tag: string): string[] {
  const r = o.result;
  const notes = [
    `${tag}: load generator ${loadCpuPct(r)}% of CPU 1, server ${serverCpuPct(r) ?? 'n/a'}% of CPU 0 over the ${(r.measured.windowMs / 1000).toFixed(2)} s window; ` +
      `other processes ${o.otherLoad ?? 'n/a'}% of a core${o.attempts > 1 ? ` (run ${o.run}, the least disturbed of ${o.attempts})` : ''}; ` +
      `connect + subscribe ${r.connectMs} ms${r.registerMs ? ` (${r.registerMs} ms of it registering through POST /consumers)` : ''}` +
      `${r.connectRetries ? `, ${r.connectRetries} failed connects retried` : ''}.`,
    ...o.notes.map((n) => `${tag}: ${n}.`),
  ];
  const server = serverCpuPct(r);
  if (loadCpuPct(r) >= 90)
    notes.push(
      server !== null && server >= 90
        ? `${tag}: both the server and the load generator were near their cores' limits.`
        : `${tag}: the load generator was near its core's limit (the server was not): this figure is bounded by the load side.`,
    );
  if (o.otherLoad !== null && o.otherLoad > MAX_OTHER_LOAD)
    notes.push(`${tag}: other processes used ${o.otherLoad}% of a core during the window: the figure is coloured by it.`);
  const failed = Object.entries(r.measured.publishFailed);
  if (failed.length) notes.push(`${tag}: failed publishes: ${failed.map(([k, n]) => `${k}: ${n}`).join(', ')}.`);
  if (o.profile?.functions.length)
    notes.push(
      `${tag}: CPU profile of the server's main thread during the window (${(o.profile.sampledMs / 1000).toFixed(1)} s sampled, ${(o.profile.busyMs / 1000).toFixed(1)} s busy; --cpu-prof slows it), self time: ` +
        o.profile.functions
          .slice(0, 12)
          .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
          .join('; '),
    );
  return notes;
}
