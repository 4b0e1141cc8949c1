import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import type { Machine } from './types.ts';

export const TASKSET = '/usr/bin/taskset';

/**
 * Moves a running process (all its threads) to `cpus` (e.g. "0", "0-1"); false where taskset is
 * missing or refuses. For a phase that places processes differently from how they started.
 */
export function setAffinity(pid: number, cpus: string): boolean {
  if (!existsSync(TASKSET) || pid <= 0) return false;
  try {
    execFileSync(TASKSET, ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

function cpuModel(): string {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(text) ?? /^Hardware\s*:\s*(.+)$/m.exec(text);
    return m ? m[1]!.trim() : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What the figures were measured on; recorded with every result. */
export function describeMachine(): Machine {
  return {
    cores: availableParallelism(),
    cpuModel: cpuModel(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: release(),
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    taskset: existsSync(TASKSET),
  };
}

export function machineLine(m: Machine): string {
  return (
    `${m.cores} cores, ${m.cpuModel}, ${m.memoryMiB} MiB, Node ${m.node}, ${m.platform} ${m.kernel}, ` +
    (m.taskset ? 'server pinned to CPU 0 and load to CPU 1 (taskset)' : 'no taskset: processes not pinned')
  );
}

/** CPU time of the whole machine so far (seconds of all cores), from /proc/stat; null where unreadable. */
export function machineCpu(): { busyS: number; totalS: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busyS: (total - idle) / 100, totalS: total / 100 };
  } catch {
    return null;
  }
}

/**
 * Waits (at most `maxMs`) until the machine is quiet — under `threshold` of all cores busy over one
 * second — so that other work on the machine does not colour the figures. Resolves with the last
 * busy share measured (0..1), or null where /proc/stat is unreadable.
 */
export async function waitForQuiet(maxMs: number, threshold = 0.15, log?: (msg: string) => void): Promise<number | null> {
  const deadline = Date.now() + maxMs;
  let share: number | null = null;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const a = machineCpu();
    await new Promise((r) => setTimeout(r, 1000));
    const b = machineCpu();
    if (!a || !b || b.totalS === a.totalS) return null;
    share = (b.busyS - a.busyS) / (b.totalS - a.totalS);
    if (share < threshold) return share;
    if (i === 0)
      log?.(
        `  the machine is busy (${Math.round(share * 100)}% of all cores); waiting up to ${Math.round(maxMs / 1000)} s for it to calm down`,
      );
  }
  return share;
}
