/**
 * (b) Fixed rate (issue 5): 20,000 deliveries/s offered — N = 1,000 subscribers on one topic, 20
 * messages/s published on a fixed schedule (open loop) for 10 s after a 2 s warm-up (quick: 500 × 40/s
 * for 1.5 s after 0.5 s) — for every contender side by side: end-to-end latency p50/p99/p999 from the publisher's
 * process.hrtime.bigint() stamp in the payload to the subscriber's receipt (CLOCK_MONOTONIC: the same
 * clock in every process), server CPU per delivery, correctness.
 *
 * Targets (Hubcast vs the frame-once `ws` server): p99 ≤ 1.1× and server CPU per delivery ≤ 1.1×.
 *
 * Flags: `--contenders=a,b`, `--cpu-prof`.
 */
import { pickContenders } from '../contenders/index.ts';
import type { LoadJob } from '../contenders/job.ts';
import {
  cpuPerDeliveryUs,
  deliveriesPerS,
  faultNote,
  faults,
  measure,
  contenderVariant,
  outcomeNotes,
  skippedNotes,
  perf,
  type Outcome,
} from '../contenders/session.ts';
import { formatNumber } from '../lib/report.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';

export const name = 'latency';
export const describe =
  'Fixed rate: 20,000 deliveries/s offered (1,000 subscribers × 20 msg/s) — publisher-stamped end-to-end latency p50/p99/p999 and server CPU per delivery (issue 5, b).';

/** Full: 1,000 × 20/s; quick: 500 × 40/s (the same 20,000 deliveries/s, fewer connections to set up). */
const sizes = (ctx: ScenarioContext) => (ctx.quick ? { subscribers: 500, perS: 40 } : { subscribers: 1000, perS: 20 });
const PAYLOAD = 190;
const MAX_RATIO = 1.1;

function job(ctx: ScenarioContext): Omit<LoadJob, 'target' | 'serverPid'> {
  const { subscribers, perS } = sizes(ctx);
  return {
    subscribers,
    topicCount: 1,
    perSubscriber: 1,
    seed: 2,
    payloadBytes: PAYLOAD,
    connectConcurrency: 64,
    connectTimeoutMs: 15_000,
    setupTimeoutMs: 120_000,
    plan: { mode: 'rate', perS, warmMs: ctx.quick ? 500 : 2000, durationMs: ctx.quick ? 1500 : 10_000, maxInFlight: 1000 },
    drainMs: 5000,
    latency: true,
  };
}

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { contenders, skipped } = await pickContenders(ctx.flags);
  const { subscribers, perS } = sizes(ctx);
  const outcomes = new Map<string, Outcome>();
  const errors = new Map<string, string>();
  const j = job(ctx);
  for (const c of contenders) {
    ctx.log(`-- ${c.label}`);
    try {
      const o = await measure(ctx, c, j, 'rate');
      outcomes.set(c.name, o);
      const l = o.result.latencyMs!;
      ctx.log(
        `  ${c.name}: p50 ${l.p50?.toFixed(2) ?? 'n/a'} ms, p99 ${l.p99?.toFixed(2) ?? 'n/a'} ms, p999 ${l.p999?.toFixed(2) ?? 'n/a'} ms, ` +
          `${cpuPerDeliveryUs(o.result)?.toFixed(2) ?? 'n/a'} µs server CPU per delivery; ${faultNote(o.result.correctness)}`,
      );
    } catch (err) {
      if (c.name === 'hubcast') throw err;
      ctx.log(`  ${c.name} failed: ${(err as Error).message}`);
      errors.set(c.name, (err as Error).message);
    }
  }

  const ws = outcomes.get('ws-frame-once')?.result;
  const variants: VariantResult[] = contenders.map((c) => {
    const o = outcomes.get(c.name);
    const r = o?.result;
    const l = r?.latencyMs;
    const ms = (k: 'p50' | 'p99' | 'p999') => l?.[k] ?? null;
    const missing = l?.missing ? `${l.missing.toLocaleString('en-US')} deliveries never arrived (counted as infinitely late)` : undefined;
    const figures: Figure[] = [
      { key: 'latency.p50', label: 'latency p50', value: ms('p50'), unit: 'ms' },
      {
        key: 'latency.p99',
        label: 'latency p99',
        value: ms('p99'),
        unit: 'ms',
        ...(missing ? { note: missing } : l?.max != null ? { note: `max ${l.max.toFixed(2)} ms` } : {}),
      },
      { key: 'latency.p999', label: 'latency p99.9', value: ms('p999'), unit: 'ms' },
      { key: 'cpu', label: 'server CPU per delivery', value: r ? cpuPerDeliveryUs(r) : null, unit: 'µs' },
      {
        key: 'deliveries',
        label: 'deliveries/s achieved',
        value: r ? deliveriesPerS(r) : null,
        unit: '/s',
        note: r
          ? `offered ${formatNumber(subscribers * perS)}/s; ${r.measured.published} messages measured; publish send lag p99 ${r.sendLagMs?.p99?.toFixed(2) ?? 'n/a'} ms` +
            (r.measured.notSent ? `; ${r.measured.notSent} not sent (in-flight cap)` : '')
          : 'failed',
      },
      {
        key: 'faults',
        label: 'correctness faults (lost, duplicated, out of order)',
        value: r ? faults(r.correctness) : null,
        unit: '',
        note: r ? faultNote(r.correctness) : 'failed',
        target: { text: '0', met: r ? faults(r.correctness) === 0 : false },
      },
    ];
    if (c.name === 'hubcast') {
      const p99 = ms('p99');
      const wsP99 = ws?.latencyMs?.p99 ?? null;
      const pr = p99 !== null && wsP99 ? p99 / wsP99 : null;
      figures.push({
        key: 'p99_vs_ws',
        label: 'Hubcast p99 ÷ ws frame-once p99',
        value: pr,
        unit: '×',
        note: wsP99 !== null ? `ws frame-once p99 ${wsP99.toFixed(2)} ms` : 'ws frame-once not measured',
        target: perf(ctx, `≤ ${MAX_RATIO}×`, pr === null ? false : pr <= MAX_RATIO),
      });
      const cpu = r ? cpuPerDeliveryUs(r) : null;
      const wsCpu = ws ? cpuPerDeliveryUs(ws) : null;
      const cr = cpu !== null && wsCpu ? cpu / wsCpu : null;
      figures.push({
        key: 'cpu_vs_ws',
        label: 'Hubcast CPU per delivery ÷ ws frame-once',
        value: cr,
        unit: '×',
        note: wsCpu !== null ? `ws frame-once ${wsCpu.toFixed(2)} µs` : 'ws frame-once not measured',
        target: perf(ctx, `≤ ${MAX_RATIO}×`, cr === null ? false : cr <= MAX_RATIO),
      });
    }
    const failure = errors.get(c.name);
    return contenderVariant(
      c,
      figures,
      o ? outcomeNotes(o, `${subscribers.toLocaleString('en-US')} × ${perS}/s`) : [],
      failure ? [failure] : [],
      o ? { ...o, contender: c.name } : { error: failure ?? null },
    );
  });

  const plan = j.plan as Extract<LoadJob['plan'], { mode: 'rate' }>;
  return {
    variants,
    notes: [
      `Workload: ${subscribers.toLocaleString('en-US')} subscribers on \`bench.t0\`; ${perS} messages/s of ${PAYLOAD} bytes on a fixed schedule ` +
        `(the i-th due at t0 + i/${perS} s, open loop) for ${plan.warmMs / 1000} s of warm-up (not measured) and ${plan.durationMs / 1000} s measured: ` +
        `${(subscribers * perS).toLocaleString('en-US')} deliveries/s offered.`,
      'Latency = the subscriber’s process.hrtime.bigint() at receipt − the publisher’s, written into the payload just before the publish ' +
        '(HTTP POST for Hubcast, ws and Socket.IO; PUB over WebSocket for NATS): it includes the publish request, the server’s work ' +
        '(for Hubcast the durable history append) and the load generator’s own queueing. Every measured delivery is a sample; one ' +
        'that never arrived counts as infinitely late. Server CPU per delivery: /proc/<pid>/stat over the window ÷ deliveries.',
      'Publisher and subscribers share one load-generator process on CPU 1 (the same lean WebSocket client for every contender); the server is alone on CPU 0.',
      ...skippedNotes(skipped),
    ],
  };
}
