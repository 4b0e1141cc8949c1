/**
 * (f) Many topics (issue 5): 10,000 topics, 2,000 subscribers each on 5 of them (drawn with a fixed
 * seed, the same for every contender), messages published to topics drawn uniformly from all 10,000
 * (about a third of them have no subscriber: a publish must touch only the sockets that want it), as
 * fast as taken for a bounded time (10 s; quick: 1,000 subscribers, 1.5 s): deliveries/s, publishes/s, server CPU, and
 * correctness per topic. Socket.IO rooms, NATS subjects and MQTT topics stand for topics.
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
  type Outcome,
} from '../contenders/session.ts';
import { formatNumber } from '../lib/report.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';

export const name = 'topics';
export const describe =
  'Many topics: 10,000 topics, 2,000 subscribers on 5 each, publishing spread over every topic as fast as taken — deliveries/s, publishes/s, correctness per topic (issue 5, f).';

const TOPICS = 10_000;
/** Quick: 1,000 (still 10,000 topics, 5 each). */
const subscribers = (ctx: ScenarioContext) => (ctx.quick ? 1000 : 2000);
const PER_SUBSCRIBER = 5;
const PAYLOAD = 190;

function job(ctx: ScenarioContext): Omit<LoadJob, 'target' | 'serverPid'> {
  return {
    subscribers: subscribers(ctx),
    topicCount: TOPICS,
    perSubscriber: PER_SUBSCRIBER,
    seed: 6,
    payloadBytes: PAYLOAD,
    connectConcurrency: 64,
    connectTimeoutMs: 15_000,
    setupTimeoutMs: 120_000,
    plan: {
      mode: 'window',
      warmMessages: ctx.quick ? 500 : 5000,
      messages: 2_000_000,
      maxMs: ctx.quick ? 1500 : 10_000,
      // About 5 messages per subscriber outstanding: each publish is due at ~1 subscriber.
      windowDeliveries: 10_000,
      maxInFlight: 64,
    },
    drainMs: ctx.quick ? 5000 : 15_000,
    latency: false,
  };
}

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { contenders, skipped } = await pickContenders(ctx.flags);
  const n = subscribers(ctx);
  const outcomes = new Map<string, Outcome>();
  const errors = new Map<string, string>();
  const j = job(ctx);
  for (const c of contenders) {
    ctx.log(`-- ${c.label}`);
    try {
      const o = await measure(ctx, c, j, 'topics');
      outcomes.set(c.name, o);
      const r = o.result;
      ctx.log(
        `  ${c.name}: ${formatNumber(deliveriesPerS(r) ?? 0)} deliveries/s, ${formatNumber(r.measured.published / (r.measured.windowMs / 1000))} publishes/s; ${faultNote(r.correctness)}`,
      );
    } catch (err) {
      if (c.name === 'hubcast') throw err;
      ctx.log(`  ${c.name} failed: ${(err as Error).message}`);
      errors.set(c.name, (err as Error).message);
    }
  }

  let subscribed = 0;
  const variants: VariantResult[] = contenders.map((c) => {
    const o = outcomes.get(c.name);
    const r = o?.result;
    if (r) subscribed = r.topicsSubscribed;
    const secs = r ? r.measured.windowMs / 1000 : 0;
    const figures: Figure[] = [
      {
        key: 'deliveries',
        label: 'deliveries/s',
        value: r ? deliveriesPerS(r) : null,
        unit: '/s',
        note: r ? `${r.measured.delivered.toLocaleString('en-US')} in ${secs.toFixed(2)} s` : 'failed',
      },
      { key: 'publishes', label: 'publishes/s (every topic alike)', value: r ? r.measured.published / secs : null, unit: '/s' },
      { key: 'cpu', label: 'server CPU per delivery', value: r ? cpuPerDeliveryUs(r) : null, unit: 'µs' },
      {
        key: 'cpu_publish',
        label: 'server CPU per publish',
        value: r && r.cpu.serverS !== null && r.measured.published ? (r.cpu.serverS / r.measured.published) * 1e6 : null,
        unit: 'µs',
      },
      {
        key: 'faults',
        label: 'correctness faults (lost, duplicated, out of order, wrong topic)',
        value: r ? faults(r.correctness) : null,
        unit: '',
        note: r ? faultNote(r.correctness) : 'failed',
        target: { text: '0', met: r ? faults(r.correctness) === 0 : false },
      },
    ];
    const failure = errors.get(c.name);
    return contenderVariant(
      c,
      figures,
      o ? outcomeNotes(o, 'topics') : [],
      failure ? [failure] : [],
      o ? { ...o, contender: c.name } : { error: failure ?? null },
    );
  });

  const plan = j.plan as Extract<LoadJob['plan'], { mode: 'window' }>;
  return {
    variants,
    notes: [
      `Workload: ${TOPICS.toLocaleString('en-US')} topics \`bench.t0\`…\`bench.t${TOPICS - 1}\` (MQTT: \`bench/t…\`); ${n.toLocaleString('en-US')} subscribers, ` +
        `each on ${PER_SUBSCRIBER} distinct topics drawn with a fixed seed (${(n * PER_SUBSCRIBER).toLocaleString('en-US')} subscriptions; ` +
        `${subscribed ? subscribed.toLocaleString('en-US') : 'n/a'} topics have at least one subscriber). Each message (${PAYLOAD} bytes) goes to a topic drawn uniformly from all ` +
        `${TOPICS.toLocaleString('en-US')}, so a publish is due at ${((n * PER_SUBSCRIBER) / TOPICS).toFixed(1)} subscribers on average, often none.`,
      `Published as fast as taken for ${plan.maxMs / 1000} s after ${plan.warmMessages.toLocaleString('en-US')} warm-up messages: at most ` +
        `${plan.windowDeliveries.toLocaleString('en-US')} deliveries outstanding and ${plan.maxInFlight} publishes unanswered. With ~1 delivery per publish ` +
        'this measures the publish path (Hubcast: POST /entity with a durable append per message) as much as the fan-out.',
      'Correctness per (subscriber, topic): every message of the topic once, in the same order as every other subscriber of it; nothing of a topic it is not on.',
      ...skippedNotes(skipped),
    ],
  };
}
