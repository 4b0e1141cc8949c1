/**
 * (a) Burst fan-out (issue 5; publisher-concurrency sweep, issue 12): N subscribers on one topic, M
 * messages of ~190 bytes published as fast as the contender takes them, for every contender side by
 * side: deliveries/s, server CPU µs per delivery, and correctness (every subscriber got every message
 * once, all in the same order).
 *
 * Sizes: N = 1,000 and 5,000 with N × M ≈ 2,000,000 deliveries (publishing capped at 20 s); quick:
 * N = 200, M = 200. The publisher keeps at most WINDOW messages per subscriber outstanding (published
 * but not yet delivered), so a burst is measured at the rate the server sustains, never as an
 * unbounded queue (Hubcast would rightly close consumers past limits.maxBufferedBytes).
 *
 * Publisher concurrency (issue 12): how many publishes the publisher keeps unanswered (HTTP requests in
 * flight: `POST /entity`, `POST /publish`) — a backend that publishes a few messages at a time is the
 * common case, and a server's throughput must not depend on it. Each N is measured at each level
 * (default 1, 8 and 32; quick: 8). NATS and MQTT publishes are not answered (the publisher only
 * writes them), so the level does not bound them: they run once per N and that run stands for every
 * level.
 *
 * Flags: `--contenders=a,b` (default: hubcast, ws-frame-once, ws-coalesce, socketio, nats-ws,
 * mosquitto-ws when they can run here), `--sizes=1000,5000`, `--publisher-concurrency=1,8,32`,
 * `--cpu-prof` (Hubcast runs with --cpu-prof; the notes list its busiest functions; `=all`: every
 * Node server).
 */
import { DEFAULT_CONTENDERS, pickContenders } from '../contenders/index.ts';
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
/** Issue 12: Hubcast's server CPU per delivery at most this × the coalescing ws server's. */
const COALESCE_CPU_RATIO = 1.2;
/** Publishes unanswered, by default (full runs; quick runs: QUICK_LEVEL). */
const LEVELS = [1, 8, 32];
const QUICK_LEVEL = 8;
/** Contenders whose publisher does not wait for answers: one run per N stands for every level. */
const UNANSWERED = new Set(['nats-ws', 'mosquitto-ws', 'mosquitto-tcp']);
/** The fan-out scenario's default contenders: the shared default plus the coalescing ws server. */
const FANOUT_DEFAULT = DEFAULT_CONTENDERS.flatMap((c) =>
  c === 'ws-frame-once' ? [c, 'ws-coalesce'] : c === 'hubcast' ? [c, 'hubcast-write-delay'] : [c],
);

function sizes(ctx: ScenarioContext): number[] {
  const flag = [...ctx.flags].find((f) => f.startsWith('--sizes='));
  if (!flag) return ctx.quick ? [200] : [1000, 5000];
  const ns = flag.slice('--sizes='.length).split(',').map(Number);
  if (ns.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000)) throw new Error('--sizes=N,N takes subscriber counts, 1..20000');
  return ns;
}

function levels(ctx: ScenarioContext): number[] {
  const flag = [...ctx.flags].find((f) => f.startsWith('--publisher-concurrency='));
  if (!flag) return ctx.quick ? [QUICK_LEVEL] : LEVELS;
  const cs = flag.slice('--publisher-concurrency='.length).split(',').map(Number);
  if (cs.length === 0 || cs.some((c) => !Number.isInteger(c) || c < 1 || c > 256))
    throw new Error('--publisher-concurrency=N,N takes publishes in flight, 1..256');
  return [...new Set(cs)];
}

function job(ctx: ScenarioContext, n: number, inFlight: number): Omit<LoadJob, 'target' | 'serverPid'> {
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
      maxInFlight: inFlight,
    },
    drainMs: ctx.quick ? 5_000 : 15_000,
    latency: false,
  };
}

const fmtN = (n: number) => n.toLocaleString('en-US');

/** Figure keys and labels of one (N, level). */
const tagOf = (n: number, c: number) => `n${n}.c${c}`;
const labelOf = (n: number, c: number) => `N=${fmtN(n)}, ${c} in flight`;

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { contenders, skipped } = await pickContenders(ctx.flags, FANOUT_DEFAULT);
  const ns = sizes(ctx);
  const cs = levels(ctx);
  /** outcomes[contender][`n1000.c8`] (undefined: that run failed, see errors); unanswered contenders: under every level. */
  const outcomes = new Map<string, Map<string, Outcome>>();
  const errors = new Map<string, string[]>();
  for (const n of ns) {
    for (const c of cs) {
      for (const x of contenders) {
        const unanswered = UNANSWERED.has(x.name);
        // One run per N stands for every level: copy it.
        if (unanswered && c !== cs[0]) {
          const o = outcomes.get(x.name)?.get(tagOf(n, cs[0]!));
          if (o) outcomes.get(x.name)!.set(tagOf(n, c), o);
          continue;
        }
        ctx.log(`-- ${labelOf(n, c)}${unanswered ? ' (publishes unanswered: every level)' : ''}: ${x.label}`);
        try {
          const o = await measure(ctx, x, job(ctx, n, c), tagOf(n, c));
          if (!outcomes.has(x.name)) outcomes.set(x.name, new Map());
          outcomes.get(x.name)!.set(tagOf(n, c), o);
          const d = deliveriesPerS(o.result);
          ctx.log(
            `  ${x.name}: ${d === null ? 'n/a' : formatNumber(d)} deliveries/s, ${cpuPerDeliveryUs(o.result)?.toFixed(2) ?? 'n/a'} µs server CPU each; ${faultNote(o.result.correctness)}`,
          );
        } catch (err) {
          // Hubcast breaking breaks the scenario; another contender failing is reported in its column.
          if (x.name === 'hubcast') throw err;
          ctx.log(`  ${x.name} failed: ${(err as Error).message}`);
          errors.set(x.name, [...(errors.get(x.name) ?? []), `${labelOf(n, c)}: ${(err as Error).message}`]);
        }
      }
    }
  }

  const result = (x: string, n: number, c: number) => outcomes.get(x)?.get(tagOf(n, c))?.result;
  const rate = (x: string, n: number, c: number) => {
    const r = result(x, n, c);
    return r ? deliveriesPerS(r) : null;
  };
  const cpu = (x: string, n: number, c: number) => {
    const r = result(x, n, c);
    return r ? cpuPerDeliveryUs(r) : null;
  };
  const has = (x: string) => contenders.some((y) => y.name === x);
  const variants: VariantResult[] = contenders.map((x) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    const unanswered = UNANSWERED.has(x.name);
    for (const n of ns) {
      for (const c of cs) {
        const tag = tagOf(n, c);
        const label = labelOf(n, c);
        const burst = c === Math.max(...cs);
        const o = outcomes.get(x.name)?.get(tag);
        const r = o?.result;
        const d = r ? deliveriesPerS(r) : null;
        const mine = cpu(x.name, n, c);
        figures.push({
          key: `${tag}.deliveries`,
          label: `deliveries/s, ${label}`,
          value: d,
          unit: '/s',
          ...(r
            ? {
                note: `${fmtN(r.measured.published)} messages in ${(r.measured.windowMs / 1000).toFixed(2)} s${unanswered && cs.length > 1 ? '; one run for every level' : ''}`,
              }
            : { note: 'failed' }),
        });
        figures.push({ key: `${tag}.cpu`, label: `server CPU per delivery, ${label}`, value: mine, unit: 'µs' });
        figures.push({
          key: `${tag}.faults`,
          label: `correctness faults (lost, duplicated, out of order), ${label}`,
          value: r ? faults(r.correctness) : null,
          unit: '',
          note: r ? faultNote(r.correctness) : 'failed',
          target: { text: '0', met: r ? faults(r.correctness) === 0 : false },
        });
        if (x.name.startsWith('hubcast')) {
          // The opt-in write-delay variant gets the same ratios, shown, not judged: the default is.
          const judged = x.name === 'hubcast';
          const who = judged ? 'Hubcast' : x.label;
          // Issue 12: CPU per delivery against the coalescing ws server, deliveries/s against NATS-ws.
          if (has('ws-coalesce')) {
            const theirs = cpu('ws-coalesce', n, c);
            const ratio = mine !== null && theirs ? mine / theirs : null;
            figures.push({
              key: `${tag}.cpu_vs_coalesce`,
              label: `${who} ÷ ws coalescing server CPU per delivery, ${label}`,
              value: ratio,
              unit: '×',
              note: theirs ? `ws coalescing ${theirs.toFixed(2)} µs` : 'ws coalescing not measured',
              ...(judged ? { target: perf(ctx, `≤ ${COALESCE_CPU_RATIO}×`, ratio === null ? null : ratio <= COALESCE_CPU_RATIO) } : {}),
            });
          }
          if (has('nats-ws')) {
            const nats = rate('nats-ws', n, c);
            const ratio = d !== null && nats ? d / nats : null;
            figures.push({
              key: `${tag}.vs_nats`,
              label: `${who} ÷ NATS-ws deliveries/s, ${label}`,
              value: ratio,
              unit: '×',
              note: nats ? `NATS-ws ${formatNumber(nats)}/s (its publishes are not answered)` : 'NATS-ws not measured',
              ...(judged ? { target: perf(ctx, '> 1× (ahead of NATS-ws)', ratio === null ? null : ratio > 1) } : {}),
            });
          }
          if (judged) {
            const sio = rate('socketio', n, c);
            const sioRatio = d !== null && sio ? d / sio : null;
            figures.push({
              key: `${tag}.vs_socketio`,
              label: `Hubcast ÷ Socket.IO deliveries/s, ${label}`,
              value: sioRatio,
              unit: '×',
              ...(sio ? { note: `Socket.IO ${formatNumber(sio)}/s` } : { note: 'Socket.IO not measured' }),
              // Issue 5's burst targets are judged at the highest level (publishing as fast as taken).
              ...(burst ? { target: perf(ctx, `≥ ${SOCKETIO_RATIO}×`, sioRatio === null ? null : sioRatio >= SOCKETIO_RATIO) } : {}),
            });
            if (n === Math.max(...ns)) {
              const others = contenders.filter((y) => !y.name.startsWith('hubcast')).map((y) => ({ c: y, v: rate(y.name, n, c) }));
              const best = others.filter((y) => y.v !== null).sort((a, b) => b.v! - a.v!)[0];
              const lead = d !== null && best ? d / best.v! : null;
              figures.push({
                key: `${tag}.vs_best`,
                label: `Hubcast ÷ the best other contender, ${label}`,
                value: lead,
                unit: '×',
                note: best ? `best: ${best.c.label} ${formatNumber(best.v!)}/s` : 'no other contender measured',
                ...(burst ? { target: perf(ctx, '> 1× (ahead of every contender)', lead === null ? null : lead > 1) } : {}),
              });
            }
          }
        }
        // An unanswered contender's one run is noted once, under the first level.
        if (o && !(unanswered && c !== cs[0]))
          notes.push(...outcomeNotes(o, unanswered && cs.length > 1 ? `N=${fmtN(n)}, every level` : label));
      }
    }
    return contenderVariant(
      x,
      figures,
      notes,
      errors.get(x.name) ?? [],
      Object.fromEntries(
        [...(outcomes.get(x.name) ?? new Map<string, Outcome>()).entries()]
          .filter(([tag]) => !unanswered || tag.endsWith(`.c${cs[0]}`))
          .map(([tag, o]) => [tag, { ...o, contender: x.name }]),
      ),
    );
  });

  const j = job(ctx, ns[0]!, cs[0]!);
  const plan = j.plan as Extract<LoadJob['plan'], { mode: 'window' }>;
  return {
    variants,
    notes: [
      `Workload: N subscribers on the topic \`bench.t0\`, each on its own connection from 127.0.0.1; ${ctx.quick ? `M = ${plan.messages}` : `M = ${fmtN(DELIVERIES)} / N messages`} ` +
        `of ${PAYLOAD} bytes (a JSON object with a fixed-width sequence/time marker), after a warm-up of ~5% of M (not measured). ` +
        `Published as fast as taken: at most ${WINDOW} messages per subscriber outstanding; publishing capped at ${plan.maxMs / 1000} s.`,
      `Publisher concurrency (issue 12): the publishes the publisher keeps unanswered — ${cs.join(', ')} (figures labelled “c in flight”), each level a fresh run of every contender. ` +
        'HTTP-published contenders (Hubcast’s POST /entity, the bare servers’ POST /publish) count a publish in flight until its answer; ' +
        'NATS and MQTT publishes are only written, never answered, so no level bounds them: one run per N stands for every level (the strongest figure they have). ' +
        `Issue 12's targets (CPU per delivery against the coalescing server, deliveries/s against NATS-ws) are judged at every level; issue 5's burst targets (≥ ${SOCKETIO_RATIO}× Socket.IO, ahead of every contender) at the highest level (${Math.max(...cs)} in flight), the burst they were set for, and shown at the others.`,
      'Deliveries/s = deliveries in the window ÷ (last delivery − first publish). Server CPU per delivery = the server’s utime + stime ' +
        '(/proc/<pid>/stat, read by the load generator at the window’s bounds) ÷ deliveries. Ratios in the side-by-side table are to Hubcast.',
      'Load: one load-generator process pinned to CPU 1 holds every subscriber and the publisher, all on the same lean WebSocket client ' +
        '(bench/lib/lean-ws.ts); HTTP publishes (Hubcast, ws, Socket.IO) go over 4 pipelined keep-alive connections; NATS publishes over its own WebSocket. ' +
        'Correctness: each subscriber’s sequence is checked against the order the first subscriber saw at each position; counts against the published count.',
      ...skippedNotes(skipped),
    ],
  };
}
