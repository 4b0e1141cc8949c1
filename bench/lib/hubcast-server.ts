import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_MAIN, envOf } from './hubcast.ts';
import { freePort, waitForHttp, type Child, type Children } from './procs.ts';

/** Starting `hubcast start` as a pinned child, and reading its /metrics (memory, connect, ingest, reconnect scenarios). */

export interface HubcastProc {
  child: Child;
  port: number;
  dataDir: string;
}

export interface HubcastStart {
  name: string;
  dataDir: string;
  logFile: string;
  /** Config keys (`limits.registerConcurrency`) → values, passed as HUBCAST_* variables. */
  config?: Record<string, string | number>;
  /** Write `--cpu-prof` profiles here. */
  cpuProfDir?: string;
  /** RLIMIT_NOFILE to ask for (raised as far as the hard limit allows). */
  nofile?: number;
  /** Pin to this CPU (default 0); null: not pinned (the cluster scenario's nodes share both cores). */
  cpu?: number | null;
  /** Extra Node flags (`--import` of a probe). */
  nodeArgs?: string[];
  /** Open an IPC channel to the server (a probe answering on it). */
  ipc?: boolean;
}

export async function startHubcast(children: Children, s: HubcastStart): Promise<HubcastProc> {
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.config ?? {})) env[envOf(k)] = String(v);
  if (s.cpuProfDir) mkdirSync(s.cpuProfDir, { recursive: true });
  const child = children.start({
    name: s.name,
    script: CLI_MAIN,
    args: ['start', '--host', '127.0.0.1', '--port', String(port), '--data-dir', s.dataDir],
    nodeArgs: [...(s.nodeArgs ?? []), ...(s.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${s.cpuProfDir}`] : [])],
    ...(s.cpu === null ? {} : { cpu: s.cpu ?? 0 }),
    env,
    logFile: s.logFile,
    ...(s.nofile ? { nofile: s.nofile } : {}),
    ...(s.ipc ? { ipc: true } : {}),
  });
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, child);
  return { child, port, dataDir: s.dataDir };
}

/** A fresh folder under the scenario's temp dir. */
export function subdir(base: string, ...parts: string[]): string {
  const dir = join(base, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** GET /metrics: each metric name → the sum of its samples (labels folded). Empty on failure. */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})? ([0-9.eE+-]+|NaN)/.exec(line);
      if (!m) continue;
      const v = Number(m[2]);
      if (Number.isFinite(v)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
    }
  } catch {
    // the caller reports the figure as n/a
  }
  return out;
}
