import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineLine } from './machine.ts';
import type { Figure, Machine, ScenarioResult, VariantResult } from './types.ts';

/** Results as JSON (everything) and Markdown (the tables), under bench/results/. */

export interface RunInfo {
  scenario: string;
  describe: string;
  quick: boolean;
  machine: Machine;
  startedAt: string;
  durationS: number;
  commit: string;
  argv: string[];
}

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function formatValue(v: number | null, unit: string): string {
  if (v === null) return 'n/a';
  const n = formatNumber(v);
  if (unit === '' || unit === '/s' || unit === '%' || unit === '×') return unit === '×' ? `×${n}` : n + unit;
  return `${n} ${unit}`;
}

function ratio(f: Figure): string {
  if (!f.baseline || f.value === null || f.baseline.value === null || f.baseline.value === 0) return '';
  return `×${formatNumber(f.value / f.baseline.value)}`;
}

const mark = (met: boolean | null | undefined) => (met === true ? '✅ met' : met === false ? '❌ not met' : '— not judged');

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join(
    '\n',
  );
}

/** Targets met / missed, and whether that is what the variant was meant to show. */
export function verdict(v: VariantResult): string {
  const judged = v.figures.filter((f) => f.target && f.target.met !== null);
  const missed = judged.filter((f) => f.target!.met === false);
  const base = missed.length === 0 ? `all ${judged.length} judged targets met` : `${missed.length} of ${judged.length} targets not met`;
  if (v.expect === 'fail')
    return base + (missed.length ? ' — as expected: the scenario catches this build' : ' — NOT caught: this build was expected to fail');
  return base;
}

function variantTable(v: VariantResult): string {
  const rows = v.figures.map((f) => [
    f.label,
    formatValue(f.value, f.unit) + (f.note ? ` (${f.note})` : ''),
    f.baseline ? `${ratio(f) || '—'} of ${formatValue(f.baseline.value, f.unit)} (${f.baseline.label})` : '',
    f.target?.text ?? '',
    f.target ? mark(f.target.met) : '',
  ]);
  return table(['figure', 'value', 'vs baseline', 'target', 'met'], rows);
}

/** Every variant side by side, each with its ratio to the first one. */
function comparisonTable(variants: VariantResult[]): string {
  const [first, ...others] = variants;
  const head = ['figure', first!.label, ...others.flatMap((o) => [o.label, `× ${first!.label}`])];
  const rows = first!.figures.map((f) => {
    const row = [f.label, formatValue(f.value, f.unit)];
    for (const o of others) {
      const g = o.figures.find((x) => x.key === f.key);
      row.push(g ? formatValue(g.value, g.unit) : 'n/a');
      row.push(g && g.value !== null && f.value !== null && f.value !== 0 ? `×${formatNumber(g.value / f.value)}` : '');
    }
    return row;
  });
  return table(head, rows);
}

function targetsTable(variants: VariantResult[]): string {
  // Every variant's targets (variants of one scenario may measure different things), in order of first appearance.
  const keys = [...new Set(variants.flatMap((v) => v.figures.filter((f) => f.target).map((f) => f.key)))];
  const rows = keys.map((key) => {
    const f0 = variants.map((v) => v.figures.find((f) => f.key === key && f.target)).find((f) => f)!;
    return [
      `${f0.label}: ${f0.target!.text}`,
      ...variants.map((v) => {
        const f = v.figures.find((x) => x.key === key);
        if (!f?.target) return 'n/a';
        const sym = f.target.met === true ? '✅' : f.target.met === false ? '❌' : '—';
        return `${sym} ${formatValue(f.value, f.unit)}`;
      }),
    ];
  });
  return table(['target', ...variants.map((v) => v.label)], rows);
}

export function renderMarkdown(info: RunInfo, result: ScenarioResult | undefined, error?: string): string {
  const out = [
    `# Bench: ${info.scenario}${info.quick ? ' (quick)' : ''}`,
    '',
    info.describe,
    '',
    `- Machine: ${machineLine(info.machine)}`,
    `- Run: ${info.startedAt}, ${info.durationS} s, commit ${info.commit}, \`npm run bench -- ${info.argv.join(' ')}\``,
    `- Mode: ${info.quick ? 'quick — small sizes; performance targets are shown but not judged' : 'full'}`,
    '',
  ];
  if (error) out.push('## The scenario broke', '', '```', error, '```', '');
  if (!result || result.variants.length === 0) return out.join('\n');
  out.push('## Targets', '', targetsTable(result.variants), '');
  for (const v of result.variants) out.push(`- **${v.label}**: ${verdict(v)}.`);
  out.push('');
  // Side by side: the variants that measure what the first one does (not, e.g., another experiment of the same scenario).
  const keys = new Set(result.variants[0]!.figures.map((f) => f.key));
  const comparable = result.variants.filter((v) => v.figures.some((f) => keys.has(f.key)));
  if (comparable.length > 1) out.push('## Side by side', '', comparisonTable(comparable), '');
  for (const v of result.variants) {
    out.push(`## ${v.label}`, '', v.description, '', variantTable(v), '');
    for (const n of v.notes) out.push(`- ${n}`);
    if (v.notes.length) out.push('');
  }
  if (result.notes.length) {
    out.push('## Notes', '');
    for (const n of result.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

/** Writes `<dir>/<base>.json` and `<dir>/<base>.md`; returns the Markdown. */
export function writeResults(dir: string, base: string, info: RunInfo, result: ScenarioResult | undefined, error?: string): string {
  mkdirSync(dir, { recursive: true });
  const md = renderMarkdown(info, result, error);
  writeFileSync(join(dir, `${base}.json`), JSON.stringify({ ...info, error: error ?? null, ...(result ?? {}) }, null, 2) + '\n');
  writeFileSync(join(dir, `${base}.md`), md);
  return md;
}
