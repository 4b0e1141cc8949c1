/**
 * (a) Burst fan-out (issue 5): N subscribers on one topic, M messages of ~190 bytes published as fast
 * as the contender takes them, for every contender side by side: deliveries/s, server CPU µs per
 * delivery, and correctness (every subscriber got every message once, all in the same order).
 *
 * Sizes: N = 1,000 and 5,000 with N × M ≈ 2,000,000 deliveries (publishing capped at 20 s); quick:
 * N = 200, M = 200. The publisher keeps at most WINDOW messages per subscriber outstanding (published
 * but not yet delivered), so a burst is measured at the rate the server sustains, never as an
 * unbounded queue (Hubcast would rightly close consumers past limits.maxBufferedBytes).
 *
 * Flags: `--contenders=a,b` (default: hubcast, ws-frame-once, socketio, nats-ws, mosquitto-ws when they
 * can run here), `--sizes=1000,5000`, `--cpu-prof` (Hubcast runs with --cpu-prof; the notes list its
 * busiest functions).
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
  perf,
  skippedNotes,
  type Outcome,
} from '../contenders/session.ts';
import { formatNumber } from '../lib/report.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';

export const name = 'fanout';
export const describe =
  'Burst fan-out: N subscribers on one topic, ~190-byte messages published as fast as each contender takes them — deliveries/s, server CPU per delivery, correctness (issue 5, a).';

const DELIVERIES = 2_000_000;
const MAX_MS = 20_000;
const WINDOW = 64;
const PAYLOAD = 190;
const SOCKETIO_RATIO = 6;

function sizes(ctx: ScenarioContext): number[] {
  const flag = [...ctx.flags].find((f) => f.startsWith('--sizes='));
  if (!flag) return ctx.quick ? [200] : [1000, 5000];
  const ns = flag.slice('--sizes='.length).split(',').map(Number);
  if (ns.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000)) throw new Error('--sizes=N,N takes subscriber counts, 1..20000');
  return ns;
}

function job(ctx: ScenarioContext, n: number): Omit<LoadJob, 'target' | 'serverPid'> {
  const messages = ctx.quick ? 200 : Math.max(1, Math.round(DELIVERIES / n));
  return {
    subscribers: n,
    topicCount: 1,
    perSubscriber: 1,
    seed: 1,
    payloadBytes: PAYLOAD,
    connectConcurrency: 64,
    connectTimeoutMs: 15_000,
    setupTimeoutMs: 120_000,
    plan: {
      mode: 'window',
      warmMessages: ctx.quick ? 10 : Math.max(10, Math.round(messages / 20)),
      messages,
      maxMs: ctx.quick ? 5_000 : MAX_MS,
      windowDeliveries: WINDOW * n,
      maxInFlight: 32,
    },
    drainMs: ctx.quick ? 5_000 : 15_000,
    latency: false,
  };
}

const fmtN = (n: number) => n.toLocaleString('en-US');

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { contenders, skipped } = await pickContenders(ctx.flags);
  const ns = sizes(ctx);
  /** outcomes[contender][size] (undefined: that run failed, see errors). */
  const outcomes = new Map<string, Map<number, Outcome>>();
  const errors = new Map<string, string[]>();
  for (const n of ns) {
    for (const c of contenders) {
      ctx.log(`-- N=${fmtN(n)}: ${c.label}`);
      try {
        const o = await measure(ctx, c, job(ctx, n), `n${n}`);
        if (!outcomes.has(c.name)) outcomes.set(c.name, new Map());
        outcomes.get(c.name)!.set(n, o);
        const d = deliveriesPerS(o.result);
        ctx.log(
          `  ${c.name}: ${d === null ? 'n/a' : formatNumber(d)} deliveries/s, ${cpuPerDeliveryUs(o.result)?.toFixed(2) ?? 'n/a'} µs server CPU each; ${faultNote(o.result.correctness)}`,
        );
      } catch (err) {
        // Hubcast breaking breaks the scenario; another contender failing is reported in its column.
        if (c.name === 'hubcast') throw err;
        ctx.log(`  ${c.name} failed: ${(err as Error).message}`);
        errors.set(c.name, [...(errors.get(c.name) ?? []), `N=${fmtN(n)}: ${(err as Error).message}`]);
      }
    }
  }

  const rate = (c: string, n: number) => {
    const o = outcomes.get(c)?.get(n);
    return o ? deliveriesPerS(o.result) : null;
  };
  const variants: VariantResult[] = contenders.map((c) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const n of ns) {
      const o = outcomes.get(c.name)?.get(n);
      const r = o?.result;
      const d = r ? deliveriesPerS(r) : null;
      const f: Figure = {
        key: `n${n}.deliveries`,
        label: `deliveries/s, N=${fmtN(n)}`,
        value: d,
        unit: '/s',
        ...(r ? { note: `${fmtN(r.measured.published)} messages in ${(r.measured.windowMs / 1000).toFixed(2)} s` } : { note: 'failed' }),
      };
      figures.push(f);
      figures.push({ key: `n${n}.cpu`, label: `server CPU per delivery, N=${fmtN(n)}`, value: r ? cpuPerDeliveryUs(r) : null, unit: 'µs' });
      figures.push({
        key: `n${n}.faults`,
        label: `correctness faults (lost, duplicated, out of order), N=${fmtN(n)}`,
        value: r ? faults(r.correctness) : null,
        unit: '',
        note: r ? faultNote(r.correctness) : 'failed',
        target: { text: '0', met: r ? faults(r.correctness) === 0 : false },
      });
      if (c.name === 'hubcast') {
        const sio = rate('socketio', n);
        const ratio = d !== null && sio ? d / sio : null;
        figures.push({
          key: `n${n}.vs_socketio`,
          label: `Hubcast ÷ Socket.IO deliveries/s, N=${fmtN(n)}`,
          value: ratio,
          unit: '×',
          ...(sio ? { note: `Socket.IO ${formatNumber(sio)}/s` } : { note: 'Socket.IO not measured' }),
          target: perf(ctx, `≥ ${SOCKETIO_RATIO}×`, ratio === null ? null : ratio >= SOCKETIO_RATIO),
        });
        if (n === Math.max(...ns)) {
          const others = contenders.filter((x) => x.name !== 'hubcast').map((x) => ({ c: x, v: rate(x.name, n) }));
          const best = others.filter((x) => x.v !== null).sort((a, b) => b.v! - a.v!)[0];
          const lead = d !== null && best ? d / best.v! : null;
          figures.push({
            key: `n${n}.vs_best`,
            label: `Hubcast ÷ the best other contender, N=${fmtN(n)}`,
            value: lead,
            unit: '×',
            note: best ? `best: ${best.c.label} ${formatNumber(best.v!)}/s` : 'no other contender measured',
            target: perf(ctx, '> 1× (ahead of every contender)', lead === null ? null : lead > 1),
          });
        }
      }
      if (o) notes.push(...outcomeNotes(o, `N=${fmtN(n)}`));
    }
    return contenderVariant(
      c,
      figures,
      notes,
      errors.get(c.name) ?? [],
      Object.fromEntries(
        [...(outcomes.get(c.name) ?? new Map<number, Outcome>()).entries()].map(([n, o]) => [`n${n}`, { ...o, contender: c.name }]),
      ),
    );
  });

  const j = job(ctx, ns[0]!);
  const plan = j.plan as Extract<LoadJob['plan'], { mode: 'window' }>;
  return {
    variants,
    notes: [
      `Workload: N subscribers on the topic \`bench.t0\`, each on its own connection from 127.0.0.1; ${ctx.quick ? `M = ${plan.messages}` : `M = ${fmtN(DELIVERIES)} / N messages`} ` +
        `of ${PAYLOAD} bytes (a JSON object with a fixed-width sequence/time marker), after a warm-up of ~5% of M (not measured). ` +
        `Published as fast as taken: at most ${WINDOW} messages per subscriber outstanding and ${plan.maxInFlight} publishes unanswered; publishing capped at ${plan.maxMs / 1000} s.`,
      'Deliveries/s = deliveries in the window ÷ (last delivery − first publish). Server CPU per delivery = the server’s utime + stime ' +
        '(/proc/<pid>/stat, read by the load generator at the window’s bounds) ÷ deliveries. Ratios in the side-by-side table are to Hubcast.',
      'Load: one load-generator process pinned to CPU 1 holds every subscriber and the publisher, all on the same lean WebSocket client ' +
        '(bench/lib/lean-ws.ts); HTTP publishes (Hubcast, ws, Socket.IO) go over 4 pipelined keep-alive connections; NATS publishes over its own WebSocket. ' +
        'Correctness: each subscriber’s sequence is checked against the order the first subscriber saw at each position; counts against the published count.',
      ...skippedNotes(skipped),
    ],
  };
}
