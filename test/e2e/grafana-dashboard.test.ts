import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsText } from '../helpers/e2e.ts';
import { startServer, type Harness } from '../helpers/server.ts';

/**
 * examples/grafana/hubcast-dashboard.json: a Grafana 10+ dashboard over GET /metrics. Every metric
 * its PromQL queries name must be one a real server serves (with a connector configured, after some
 * traffic); the datasource is the template variable `${DS_PROMETHEUS}`; the panels fit the grid.
 */

type Obj = Record<string, any>;
const dashboard = JSON.parse(readFileSync(new URL('../../examples/grafana/hubcast-dashboard.json', import.meta.url), 'utf8')) as Obj;

/** Every panel, those inside collapsed rows included. */
const panels = (list: Obj[] = dashboard.panels as Obj[]): Obj[] => list.flatMap((p) => [p, ...panels((p.panels ?? []) as Obj[])]);
const targets = (): { panel: string; expr: string; datasource: Obj }[] =>
  panels().flatMap((p) =>
    ((p.targets ?? []) as Obj[]).map((t) => ({ panel: p.title as string, expr: t.expr as string, datasource: t.datasource as Obj })),
  );

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions, keywords, label
 * names (in `{…}` matchers or `by (…)` lists), strings, numbers or durations.
 */
export function metricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
    .replace(/(^|[^A-Za-z0-9_:])(\d+(ms|s|m|h|d|w|y))+(?![A-Za-z0-9_:])/g, '$1 ')
    .replace(/(^|[^A-Za-z0-9_:])\d+(\.\d+)?([eE][+-]?\d+)?/g, '$1 ');
  const names: string[] = [];
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    if (
      e
        .slice(m.index + m[0].length)
        .trimStart()
        .startsWith('(')
    )
      continue;
    if (!KEYWORDS.has(m[0].toLowerCase())) names.push(m[0]);
  }
  return names;
}

describe('the Grafana dashboard', () => {
  let h: Harness;
  let served: Map<string, string>;
  beforeAll(async () => {
    h = await startServer({ connectors: [{ name: 'shop', type: 'webhook', topic: 'orders.eu', secret: 'x'.repeat(32) }] });
    // Some traffic, so that the labelled series have samples too (not only HELP and TYPE lines).
    expect((await h.ingest('orders.eu', { order: 42 })).status).toBe(202);
    expect((await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const text = await metricsText(h);
    // `# TYPE <name> <type>`: every metric, samples or not; histograms and summaries add their series.
    served = new Map();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      served.set(name!, type!);
      const parts = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['_sum', '_count'] : [];
      for (const p of parts) served.set(name + p, `${type} series`);
    }
    expect(text).toMatch(/^hubcast_connector_up\{connector="shop",type="webhook",status="running"\} 1$/m);
    expect(text).toMatch(/^hubcast_ingest_duration_seconds_count 1$/m);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('extracts metric names from PromQL', () => {
    expect(
      metricNames('histogram_quantile(0.99, sum by (le, node) (rate(hubcast_x_bucket{node=~"$node", a="b(c)"}[$__rate_interval]))) / 1e9'),
    ).toEqual(['hubcast_x_bucket']);
    expect(metricNames('count(sum by (connector) (hubcast_up{n="1"}) == 0) or vector(0)')).toEqual(['hubcast_up']);
    expect(metricNames('time() - max by (c) (hubcast_ts) + on (c) group_left hubcast_other offset 5m')).toEqual([
      'hubcast_ts',
      'hubcast_other',
    ]);
  });

  it('queries only metrics that GET /metrics serves', () => {
    const all = targets();
    expect(all.length).toBeGreaterThan(20);
    const unknown: string[] = [];
    for (const { panel, expr } of all) {
      const names = metricNames(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const n of names) if (!served.has(n)) unknown.push(`${panel}: ${n}`);
    }
    expect(unknown).toEqual([]);
    // `_bucket` only of histograms: histogram_quantile over anything else is no quantile.
    for (const { expr } of all)
      for (const n of metricNames(expr)) if (n.endsWith('_bucket')) expect(served.get(n)).toBe('histogram series');
  });

  it('covers what operators watch: connections, deliveries, ingest rate and latency, cuts, auth failures, connector lag, alerts', () => {
    const used = new Set(targets().flatMap((t) => metricNames(t.expr)));
    for (const m of [
      'hubcast_connections',
      'hubcast_messages_out_total',
      'hubcast_messages_in_total',
      'hubcast_ingest_requests_total',
      'hubcast_ingest_duration_seconds_bucket',
      'hubcast_slow_consumers_total',
      'hubcast_auth_failures_total',
      'hubcast_connector_lag_seconds',
      'hubcast_alert_events_total',
    ])
      expect(used, m).toContain(m);
  });

  it('takes its Prometheus datasource from the ${DS_PROMETHEUS} variable; every variable a query uses is defined', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const vars = dashboard.templating.list as Obj[];
    expect(vars.find((v) => v.name === 'DS_PROMETHEUS')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ds = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
    for (const p of panels().filter((p) => p.type !== 'row')) expect(p.datasource, p.title).toEqual(ds);
    for (const t of targets()) expect(t.datasource, t.panel).toEqual(ds);
    const names = new Set(vars.map((v) => v.name as string));
    for (const { panel, expr } of targets())
      for (const [, v] of expr.matchAll(/\$\{?(\w+)/g)) expect(v!.startsWith('__') || names.has(v!), `${panel}: $${v}`).toBe(true);
  });

  it('has unique panel ids, and panels that fit the 24-column grid without overlapping', () => {
    const all = panels();
    const ids = all.map((p) => p.id as number);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of all) {
      const { x, y, w, h: height } = p.gridPos as { x: number; y: number; w: number; h: number };
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + height; j++) {
          const key = `${i},${j}`;
          expect(cells.get(key), `${p.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, p.title as string);
        }
    }
  });
});
