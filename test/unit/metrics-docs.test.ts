import { readFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { DOC, render, serverMetrics } from '../../scripts/metrics-docs.ts';

/** docs/metrics.md must list exactly the metrics a server registers (`npm run docs:metrics`). */

/** The metric names in the table of docs/metrics.md (first column). */
function documented(): string[] {
  return [...readFileSync(DOC, 'utf8').matchAll(/^\| `(hubcast_[a-z0-9_]+)` +\|/gm)].map((m) => m[1]!);
}

// prom-client registers the file-descriptor metrics on Linux only; the table is generated there.
describe.skipIf(process.platform !== 'linux')('docs/metrics.md', () => {
  it('every metric name starts with hubcast_ once (no doubled prefix)', () => {
    const names = serverMetrics().map((m) => m.name);
    expect(names.filter((n) => !n.startsWith('hubcast_') || /^hubcast_(process_process|hubcast)_/.test(n))).toEqual([]);
    expect(names).toContain('hubcast_process_cpu_seconds_total');
    expect(names).toContain('hubcast_nodejs_eventloop_lag_seconds');
  });

  it('lists every registered metric, and no metric that no longer exists', () => {
    const names = serverMetrics().map((m) => m.name);
    expect(
      names.filter((n) => !documented().includes(n)),
      'missing from docs/metrics.md: run `npm run docs:metrics`',
    ).toEqual([]);
    expect(
      documented().filter((n) => !names.includes(n)),
      'documented but not registered: run `npm run docs:metrics`',
    ).toEqual([]);
  });

  it('the table is what `npm run docs:metrics` generates (types, labels, meanings)', async () => {
    const current = readFileSync(DOC, 'utf8');
    const options = { ...(await resolveConfig(DOC)), filepath: DOC };
    expect(await format(render(current), options), 'run `npm run docs:metrics`').toBe(current);
  });
});
