/**
 * `npm run bench [-- [--quick] [--keep] [SCENARIO...] [--scenario-flags]]`
 *
 * Runs the scenarios of bench/scenarios/<name>.ts (all of them when none is named), writes
 * bench/results/<name>.json and .md (`<name>.quick.*` with --quick, so a quick run never replaces
 * full figures) and prints the tables. Exit code 0 when every scenario ran, whether or not its
 * targets were met (the tables say); 1 when a scenario broke or, with --quick, a correctness check
 * failed; 2 on a usage error.
 *
 * --quick   small sizes, correctness only (under two minutes); exit 1 when a correctness check fails
 * Afterwards: bench/results/summary.md and chart.svg (summary.quick.md, chart.quick.svg with --quick).
 * --keep    keep the temporary folders (server logs, data dirs, CPU profiles)
 * Other --flags are passed to the scenarios (flood: --slow-hash, --variants=a,b, --cpu-prof).
 * fanout, latency, topics: --contenders=a,b, --sizes=N,N and --publisher-concurrency=N,N (fanout), --cpu-prof[=all] (see bench/README.md).
 * cluster: --brokers=redis,nats,postgres, --cluster-n=N, --cross-n/m/rate, --store=sqlite (see bench/README.md).
 * Scenarios are found, not listed: every bench/scenarios/<name>.ts is one (`cluster` included).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeMachine, machineLine } from './lib/machine.ts';
import { killEveryChild } from './lib/procs.ts';
import { writeResults, type RunInfo } from './lib/report.ts';
import { writeSummary } from './lib/summary.ts';
import type { Scenario, ScenarioResult } from './lib/types.ts';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const SCENARIOS = join(BENCH, 'scenarios');
const RESULTS = join(BENCH, 'results');

const log = (msg: string) => void process.stderr.write(msg + '\n');

function available(): string[] {
  return readdirSync(SCENARIOS)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => basename(f, '.ts'))
    .sort();
}

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH, encoding: 'utf8', timeout: 5000 }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: BENCH, encoding: 'utf8', timeout: 5000 }).trim() !== '';
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return 'unknown';
  }
}

async function load(name: string): Promise<Scenario> {
  const mod = (await import(pathToFileURL(join(SCENARIOS, `${name}.ts`)).href)) as Partial<Scenario>;
  if (typeof mod.run !== 'function' || typeof mod.name !== 'string' || typeof mod.describe !== 'string')
    throw new Error(`bench/scenarios/${name}.ts must export name, describe and run(ctx)`);
  return mod as Scenario;
}

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const keep = argv.includes('--keep');
  const flags = new Set(argv.filter((a) => a.startsWith('--') && a !== '--quick' && a !== '--keep'));
  const names = argv.filter((a) => !a.startsWith('--'));
  const known = available();
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    log(`unknown scenario ${unknown.join(', ')}; available: ${known.join(', ')}`);
    return 2;
  }
  const machine = describeMachine();
  log(`bench: ${machineLine(machine)}`);
  let broken = 0;
  /** Judged targets missed by a variant meant to pass (in quick mode: correctness checks), and builds meant to fail that were not caught. */
  const failedChecks: string[] = [];
  for (const name of names.length ? names : known) {
    const scenario = await load(name);
    const tmpDir = mkdtempSync(join(tmpdir(), `hubcast-bench-${name}-`));
    const started = Date.now();
    log(`\n== ${name}${quick ? ' (quick)' : ''}: ${scenario.describe}\n   temp: ${tmpDir}`);
    let result: ScenarioResult | undefined;
    let error: string | undefined;
    try {
      result = await scenario.run({ quick, machine, tmpDir, log, flags });
    } catch (err) {
      error = (err as Error)?.stack ?? String(err);
      broken++;
      log(`!! ${name} broke: ${error}`);
    } finally {
      killEveryChild();
    }
    const info: RunInfo = {
      scenario: name,
      describe: scenario.describe,
      quick,
      machine,
      startedAt: new Date(started).toISOString(),
      durationS: Math.round((Date.now() - started) / 1000),
      commit: commit(),
      argv,
    };
    for (const v of result?.variants ?? []) {
      const missed = v.figures.filter((f) => f.target?.met === false);
      if (v.expect === 'pass') for (const f of missed) failedChecks.push(`${name} / ${v.label}: ${f.label} (${f.target!.text})`);
      else if (missed.length === 0 && v.figures.some((f) => f.target && f.target.met !== null))
        failedChecks.push(`${name} / ${v.label}: not caught`);
    }
    const base = quick ? `${name}.quick` : name;
    const md = writeResults(RESULTS, base, info, result, error);
    process.stdout.write('\n' + md + '\n');
    log(`results: bench/results/${base}.md, bench/results/${base}.json`);
    if (keep || error) log(`kept: ${tmpDir}`);
    else rmSync(tmpDir, { recursive: true, force: true, maxRetries: 3 });
  }
  try {
    const summary = writeSummary(RESULTS, quick, known);
    log(`\nsummary: ${relative(process.cwd(), summary.md)}, chart: ${relative(process.cwd(), summary.svg)}`);
  } catch (err) {
    log(`summary and chart not written: ${(err as Error)?.stack ?? String(err)}`);
  }
  if (failedChecks.length) log(`${quick ? 'correctness checks failed' : 'targets not met'}:\n  ${failedChecks.join('\n  ')}`);
  // Quick runs are correctness runs: a failed check fails the run. Full runs report targets in the tables.
  return broken || (quick && failedChecks.length) ? 1 : 0;
}

// No child outlives the bench, however it ends.
process.on('exit', killEveryChild);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`\n${sig}: stopping every child`);
    killEveryChild();
    process.exit(130);
  });
}

main(process.argv.slice(2)).then(
  // Exit now: nothing the scenarios started may keep the bench alive (stdout is synchronous on pipes and files).
  (code) => process.exit(code),
  (err: unknown) => {
    log(`bench: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
