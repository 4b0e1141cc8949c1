import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Probes for the resource tests: `/healthz` latency measured from a process of its own (so that the
 * test process's own work — attacking, reading replays — never shows up as server latency), and the
 * resident memory of a server child process.
 */

const SAMPLER = `
const [url, gapMs] = process.argv.slice(1);
const out = [];
let stop = false;
process.stdin.on('data', () => (stop = true));
(async () => {
  while (!stop) {
    const t0 = performance.now();
    try {
      const res = await fetch(url);
      await res.text();
      out.push(performance.now() - t0);
    } catch {
      out.push(-1);
    }
    await new Promise((r) => setTimeout(r, Number(gapMs)));
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})();
`;

export interface LatencyStats {
  count: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
}

export function stats(samples: number[]): LatencyStats {
  const ok = samples.filter((s) => s >= 0).sort((a, b) => a - b);
  const at = (q: number) => ok[Math.min(ok.length - 1, Math.floor(q * ok.length))] ?? 0;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { count: ok.length, failed: samples.length - ok.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(ok.at(-1) ?? 0) };
}

/** Starts sampling GET `url` every `gapMs` in a separate process; `stop()` returns the latencies (ms). */
export function sampleLatency(url: string, gapMs = 20): { stop(): Promise<LatencyStats> } {
  const child = spawn(process.execPath, ['-e', SAMPLER, url, String(gapMs)], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      child.stdin.write('stop\n');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      return stats(JSON.parse(out || '[]') as number[]);
    },
  };
}

/** Resident set size of process `pid`, bytes (Linux). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples `rssOf(pid)` every `everyMs` until `stop()`, which returns the highest value seen. */
export function watchRss(pid: number, everyMs = 50): { stop(): number } {
  let max = rssOf(pid);
  const timer = setInterval(() => {
    try {
      max = Math.max(max, rssOf(pid));
    } catch {
      /* exited */
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      try {
        max = Math.max(max, rssOf(pid));
      } catch {
        /* exited */
      }
      return max;
    },
  };
}
