/**
 * The shapes shared by the bench runner and its scenarios.
 *
 * A scenario module in `bench/scenarios/<name>.ts` exports `name`, `describe` and `run(ctx)`. `run`
 * resolves with figures (a target missed is a result, not an error) and rejects only when the
 * scenario itself broke (a child crashed, the server never came up): then `npm run bench` exits
 * non-zero.
 */

export interface Machine {
  cores: number;
  cpuModel: string;
  node: string;
  platform: string;
  kernel: string;
  memoryMiB: number;
  /** /usr/bin/taskset exists: the server is pinned to CPU 0, load generators to CPU 1. */
  taskset: boolean;
}

export interface ScenarioContext {
  /** Small sizes, correctness only (`--quick`). */
  quick: boolean;
  machine: Machine;
  /** A fresh folder for this scenario; removed after the run unless `--keep`. */
  tmpDir: string;
  /** Progress lines to stderr. */
  log: (msg: string) => void;
  /** Flags the runner did not consume (`--slow-hash`, `--cpu-prof`, `--variants=a,b`). */
  flags: ReadonlySet<string>;
}

export interface Target {
  /** `≤ 5× baseline`, `0`, `≥ 1,500/s for 15 s`. */
  text: string;
  /** null: not judged in this run (e.g. a performance target under --quick). */
  met: boolean | null;
}

export interface Figure {
  /** Stable key for JSON readers. */
  key: string;
  label: string;
  /** null: not measured (shown as n/a with `note`). */
  value: number | null;
  /** `/s`, `ms`, `MiB`, `%`, or '' for counts. */
  unit: string;
  /** Extra words shown next to the value (a breakdown, why n/a). */
  note?: string;
  /** What this figure is compared with (e.g. the no-flood p99): the table shows the ratio. */
  baseline?: { label: string; value: number | null };
  target?: Target;
}

export interface VariantResult {
  /** Short id (`hubcast`, `slow-hash`). */
  name: string;
  label: string;
  description: string;
  /** Whether this variant is meant to meet its targets (a deliberately broken build is not). */
  expect: 'pass' | 'fail';
  figures: Figure[];
  notes: string[];
  /** Everything measured, for the JSON file. */
  raw: unknown;
}

export interface ScenarioResult {
  variants: VariantResult[];
  notes: string[];
}

export interface Scenario {
  name: string;
  describe: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
