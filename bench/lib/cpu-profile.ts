import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The busiest functions (self time) in the `.cpuprofile` files Node wrote with `--cpu-prof`. Node
 * writes one file per thread (tsx adds a loader thread): the main thread is taken to be the file
 * with the most non-idle time.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  /** µs, on the CLOCK_MONOTONIC base of process.hrtime(). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A time window in µs of CLOCK_MONOTONIC (process.hrtime.bigint() / 1000): only samples taken in it count. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

export interface HotFunction {
  /** `functionName (file:line)`; `(garbage collector)`, `(program)` as V8 names them. */
  name: string;
  selfMs: number;
  /** Share of the thread's busy (non-idle) time. */
  share: number;
}

export interface HotSummary {
  file: string;
  /** Sampled wall time and busy (non-idle) time of the main thread. */
  sampledMs: number;
  busyMs: number;
  functions: HotFunction[];
}

function selfTimes(p: Profile, root: string, window?: ProfileWindow): Map<string, number> {
  const names = new Map<number, string>();
  for (const n of p.nodes) {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url ? relative(root, url.replace(/^file:\/\//, '')) : '';
    names.set(n.id, `${functionName || '(anonymous)'}${file ? ` (${file}:${lineNumber + 1})` : ''}`);
  }
  const self = new Map<string, number>();
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const name = names.get(p.samples[i]!) ?? '?';
    self.set(name, (self.get(name) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  return self;
}

/** `window`: only the samples taken within it (e.g. a scenario's measured window) count. */
export function hotFunctions(dir: string, root: string, top = 15, window?: ProfileWindow): HotSummary | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return undefined;
  }
  let best: { file: string; self: Map<string, number>; total: number; busy: number } | undefined;
  for (const file of files) {
    const self = selfTimes(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, root, window);
    let total = 0;
    for (const us of self.values()) total += us;
    const busy = total - (self.get('(idle)') ?? 0);
    if (!best || busy > best.busy) best = { file, self, total, busy };
  }
  if (!best) return undefined;
  const functions = [...best.self.entries()]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), share: best.busy ? us / best.busy : 0 }));
  return { file: best.file, sampledMs: Math.round(best.total / 1000), busyMs: Math.round(best.busy / 1000), functions };
}
