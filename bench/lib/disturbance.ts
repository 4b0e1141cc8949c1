import { machineCpu, waitForQuiet } from './machine.ts';
import { sampleProc } from './procs.ts';
import type { ScenarioContext } from './types.ts';

/**
 * Other work on this small machine colours throughput and latency. A measurement samples the CPU
 * of the whole machine and of its own processes at its window's edges; what the others used is
 * `otherLoadPct`. `leastDisturbed` waits for a quiet machine, measures, and repeats a disturbed run
 * (full mode only, at most three runs in all), keeping the least disturbed one.
 */

/** Above this (% of one core used by other processes during the window) a run is repeated. */
export const MAX_OTHER_LOAD = 25;

export interface CpuMark {
  atMs: number;
  machineBusyS: number | null;
  /** CPU seconds of our processes (server, workers, this orchestrator). */
  oursS: number;
}

export function cpuMark(pids: number[]): CpuMark {
  let ours = 0;
  for (const pid of pids) ours += sampleProc(pid)?.cpuS ?? 0;
  const self = process.cpuUsage();
  ours += (self.user + self.system) / 1e6;
  return { atMs: Date.now(), machineBusyS: machineCpu()?.busyS ?? null, oursS: ours };
}

/** CPU used by processes other than ours between two marks, % of one core. */
export function otherLoadPct(a: CpuMark, z: CpuMark): number | null {
  if (a.machineBusyS === null || z.machineBusyS === null || z.atMs <= a.atMs) return null;
  const other = z.machineBusyS - a.machineBusyS - (z.oursS - a.oursS);
  return Math.max(0, Math.round((other / ((z.atMs - a.atMs) / 1000)) * 100));
}

export async function leastDisturbed<T>(
  ctx: ScenarioContext,
  what: string,
  run: (attempt: number) => Promise<T>,
  otherOf: (t: T) => number | null,
): Promise<{ best: T; attempts: number; otherLoad: number | null }> {
  const tries = ctx.quick ? 1 : 3;
  let best: { best: T; attempts: number; otherLoad: number | null } | undefined;
  for (let i = 1; i <= tries; i++) {
    if (!ctx.quick) {
      const quiet = await waitForQuiet(30_000, 0.15, ctx.log);
      if (quiet !== null && quiet >= 0.15)
        ctx.log(`  the machine is still busy (${Math.round(quiet * 100)}% of all cores); measuring anyway`);
    }
    const r = await run(i);
    const other = otherOf(r);
    if (!best || (other ?? 0) < (best.otherLoad ?? 0)) best = { best: r, attempts: i, otherLoad: other };
    if ((other ?? 0) <= MAX_OTHER_LOAD) break;
    ctx.log(`  ${what}: other processes used ${other}% of a core during the window${i < tries ? '; again' : ''}`);
  }
  return best!;
}

/** The note a variant carries about disturbance. */
export function disturbanceNote(otherLoad: number | null, attempts: number): string {
  const base = `other processes used ${otherLoad ?? 'n/a'}% of a core during the window${attempts > 1 ? ` (least disturbed of ${attempts} runs)` : ''}`;
  return otherLoad !== null && otherLoad > MAX_OTHER_LOAD ? `${base}: the figures are coloured by it` : base;
}
