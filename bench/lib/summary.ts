import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChartSvg, type BarGroup } from './chart.ts';
import { machineLine } from './machine.ts';
import { formatNumber, formatValue } from './report.ts';
import type { Figure, Machine, VariantResult } from './types.ts';

/**
 * The one-page view of every scenario's latest results: `summary.md` (one line per target: figure,
 * ratio, met or not) and `chart.svg` (each contender's headline figure relative to Hubcast's, one
 * group per scenario). Assembled from whatever `<scenario>.json` files exist (`.quick.json` for a
 * quick run, written to `summary.quick.md` / `chart.quick.svg`); missing ones are listed as such.
 */

/** The scenarios of issues 3 and 5, in the order the summary lists them. Others found are appended. */
export const SCENARIO_ORDER = ['fanout', 'latency', 'memory', 'ingest', 'connect', 'topics', 'reconnect', 'flood'];

interface ResultFile {
  scenario: string;
  describe: string;
  quick: boolean;
  machine: Machine;
  startedAt: string;
  durationS: number;
  commit: string;
  error: string | null;
  variants?: VariantResult[];
}

/** Which figure of a scenario the chart shows, and which way is better. */
interface Headline {
  scenario: string;
  match: RegExp;
  better: 'higher' | 'lower';
  label: (m: RegExpExecArray) => string;
  sublabel: string;
}

const n = (s: string) => Number(s).toLocaleString('en-US');

const HEADLINES: Headline[] = [
  {
    scenario: 'fanout',
    // `n1000.c8.deliveries` (publisher-concurrency sweep, issue 12); `n1000.deliveries` in results from before it.
    match: /^n(\d+)(?:\.c(\d+))?\.deliveries$/,
    better: 'higher',
    label: (m) => `fan-out N=${n(m[1]!)}${m[2] ? `, ${m[2]} in flight` : ''}`,
    sublabel: 'deliveries/s',
  },
  { scenario: 'latency', match: /^latency\.p99$/, better: 'lower', label: () => 'fixed rate', sublabel: 'latency p99' },
  { scenario: 'memory', match: /^rss\.per_conn$/, better: 'lower', label: () => 'idle memory', sublabel: 'RSS per connection' },
  { scenario: 'ingest', match: /^rps\.c(\d+)$/, better: 'higher', label: (m) => `ingest, ${m[1]} conn`, sublabel: 'requests/s' },
  { scenario: 'connect', match: /^handshakes$/, better: 'higher', label: () => 'connect', sublabel: 'handshakes/s' },
  { scenario: 'topics', match: /^deliveries$/, better: 'higher', label: () => 'many topics', sublabel: 'deliveries/s' },
];

function read(dir: string, name: string, quick: boolean): ResultFile | undefined {
  const file = join(dir, `${name}${quick ? '.quick' : ''}.json`);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ResultFile;
  } catch {
    return undefined;
  }
}

const isHubcast = (v: VariantResult) => v.name === 'hubcast' || v.name.startsWith('hubcast-');

function ratioText(f: Figure): string {
  if (f.unit === '×') return '';
  if (!f.baseline || f.value === null || f.baseline.value === null || f.baseline.value === 0) return '';
  return `×${formatNumber(f.value / f.baseline.value)} of ${f.baseline.label} (${formatValue(f.baseline.value, f.unit)})`;
}

const mark = (met: boolean | null) => (met === true ? '✅ met' : met === false ? '❌ not met' : '— not judged');
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function summaryMarkdown(results: Map<string, ResultFile | undefined>, quick: boolean): string {
  const found = [...results.values()].filter((r): r is ResultFile => r !== undefined);
  const out: string[] = [`# Bench summary${quick ? ' (quick)' : ''}`, ''];
  if (found[0]) out.push(`Machine: ${machineLine(found[0].machine)}.`, '');
  out.push(
    quick
      ? 'Quick runs: small sizes, correctness only; performance targets are shown but not judged.'
      : 'Full runs. Each line is one target of Hubcast (or of a build variant of it); the tables of each scenario are in `bench/results/<scenario>.md`.',
    '',
    '![Hubcast vs the alternatives](chart' + (quick ? '.quick' : '') + '.svg)',
    '',
    '| scenario | run | system | target | figure | ratio | met |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  let met = 0;
  let missed = 0;
  let unjudged = 0;
  for (const [name, r] of results) {
    if (!r) {
      out.push(`| ${name} | not run | | | | | |`);
      continue;
    }
    const run = `${r.startedAt.slice(0, 16).replace('T', ' ')}${r.commit ? `, ${r.commit.split(' ')[0]}` : ''}`;
    if (r.error) out.push(`| ${name} | ${run} | | the scenario broke: ${cell(r.error.split('\n')[0]!.slice(0, 160))} | | | ❌ broke |`);
    for (const v of r.variants ?? []) {
      if (v.expect === 'fail') {
        const caught = v.figures.some((f) => f.target?.met === false);
        out.push(
          `| ${name} | ${run} | ${cell(v.label)} | a build expected to fail is caught | | | ${caught ? '✅ caught' : '❌ not caught'} |`,
        );
        if (caught) met++;
        else missed++;
        continue;
      }
      if (!isHubcast(v)) continue;
      for (const f of v.figures) {
        if (!f.target) continue;
        if (f.target.met === true) met++;
        else if (f.target.met === false) missed++;
        else unjudged++;
        out.push(
          `| ${name} | ${run} | ${cell(v.label)} | ${cell(`${f.label}: ${f.target.text}`)} | ${cell(formatValue(f.value, f.unit))} | ${cell(ratioText(f))} | ${mark(f.target.met)} |`,
        );
      }
    }
  }
  out.push('', `${met} met, ${missed} not met, ${unjudged} not judged.`, '');
  return out.join('\n');
}

function chartGroups(results: Map<string, ResultFile | undefined>): { groups: BarGroup[]; series: string[] } {
  const series: string[] = [];
  const groups: BarGroup[] = [];
  for (const h of HEADLINES) {
    const r = results.get(h.scenario);
    const variants = (r?.variants ?? []).filter((v) => v.expect === 'pass' && !v.name.endsWith('-scale'));
    const hub = variants.find((v) => v.name === 'hubcast');
    if (!hub || variants.length < 2) continue;
    for (const f of hub.figures) {
      const m = h.match.exec(f.key);
      if (!m || f.value === null) continue;
      const bars = variants.map((v) => {
        if (!series.includes(v.label)) series.push(v.label);
        const g = v.figures.find((x) => x.key === f.key);
        const value = g?.value ?? null;
        const rel = value === null || value <= 0 || f.value! <= 0 ? null : h.better === 'higher' ? value / f.value! : f.value! / value;
        return { series: v.label, value: rel };
      });
      groups.push({ label: h.label(m), sublabels: [h.sublabel, `${h.better} is better`], bars });
    }
  }
  return { groups, series };
}

/** Writes `summary[.quick].md` and `chart[.quick].svg` into `dir`; returns their paths. */
export function writeSummary(dir: string, quick: boolean, extra: string[] = []): { md: string; svg: string } {
  const names = [...SCENARIO_ORDER, ...extra.filter((e) => !SCENARIO_ORDER.includes(e))];
  const results = new Map<string, ResultFile | undefined>();
  for (const name of names) results.set(name, read(dir, name, quick));
  const md = join(dir, `summary${quick ? '.quick' : ''}.md`);
  const svg = join(dir, `chart${quick ? '.quick' : ''}.svg`);
  writeFileSync(md, summaryMarkdown(results, quick));
  const { groups, series } = chartGroups(results);
  const machine = [...results.values()].find((r) => r)?.machine;
  writeFileSync(
    svg,
    barChartSvg({
      title: `Hubcast vs the alternatives${quick ? ' (quick run: small sizes)' : ''}`,
      subtitle: machine
        ? `Each system's figure relative to Hubcast's (Hubcast = 1). ${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}; server pinned to one core.`
        : "Each system's figure relative to Hubcast's (Hubcast = 1).",
      series,
      groups,
      axisLabel: 'relative to Hubcast (log scale); above 1 = better than Hubcast',
    }),
  );
  return { md, svg };
}
