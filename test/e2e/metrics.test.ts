import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { metricsText } from '../helpers/e2e.ts';
import { startServer, type Harness } from '../helpers/server.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it.skipIf(process.platform !== 'linux')(
  'GET /metrics serves exactly the metrics of docs/metrics.md, each named hubcast_ once',
  async () => {
    h = await startServer();
    const served = [...(await metricsText(h)).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(served).toContain('hubcast_process_cpu_seconds_total');
    expect(served.filter((n) => !n.startsWith('hubcast_') || n.startsWith('hubcast_process_process_'))).toEqual([]);
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `(hubcast_[a-z0-9_]+)` +\|/gm)].map((m) => m[1]!);
    expect(served.filter((n) => !documented.includes(n))).toEqual([]);
    expect(documented.filter((n) => !served.includes(n))).toEqual([]);
  },
);

it('times ingest requests in hubcast_ingest_duration_seconds and counts alert events by kind', async () => {
  h = await startServer();
  const before = await metricsText(h);
  expect(before).toMatch(/^hubcast_ingest_duration_seconds_count 0$/m);
  expect(before).not.toMatch(/^hubcast_alert_events_total\{/m);
  expect((await h.ingest('orders.eu', { order: 42 })).status).toBe(202);
  expect((await h.ingest('orders.*', 1)).status).toBe(400);
  const bad = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: 'Bearer nope' } });
  expect(bad.status).toBe(401);
  const after = await metricsText(h);
  // Every answer is timed, whatever its status; each lands in a bucket no larger than +Inf.
  expect(after).toMatch(/^hubcast_ingest_duration_seconds_count 2$/m);
  expect(after).toMatch(/^hubcast_ingest_duration_seconds_bucket\{le="\+Inf"\} 2$/m);
  expect(Number(/^hubcast_ingest_duration_seconds_sum (\S+)$/m.exec(after)![1])).toBeGreaterThan(0);
  expect(after).toMatch(/^hubcast_alert_events_total\{kind="invalid_token"\} 1$/m);
});
