/**
 * The load generator of the comparison scenarios (a worker process, pinned to CPU 1): connects N
 * subscribers to one contender over the lean WebSocket client, subscribes them, publishes per the
 * plan, and counts every delivery — correctness (each message once, the same order at every
 * subscriber of a topic), throughput, server CPU from /proc at the window's exact bounds, and, with a
 * rate plan, publisher-stamped latency.
 */
import { machineCpu } from '../lib/machine.ts';
import { sampleProc } from '../lib/procs.ts';
import { Samples } from '../lib/stats.ts';
import { monoMs, sleep } from '../lib/time.ts';
import { runWorker, send } from '../lib/worker.ts';
import type { Correctness, LoadJob, LoadResult } from './job.ts';
import { findMark, nsAt, seqAt, stamp, template, topicAt } from './payload.ts';
import { adapterFor, registerHubcast, type Sink, type SubscriberConn } from './protocol.ts';

/** Deterministic PRNG (mulberry32): the same subscriptions and topic mix for every contender. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const topicName = (i: number) => `bench.t${i}`;

async function main(job: LoadJob, next: (type: string) => Promise<{ type: string; [k: string]: unknown }>): Promise<void> {
  const adapter = adapterFor(job.target);
  const rand = prng(job.seed);
  const per = Math.min(job.perSubscriber, job.topicCount);

  // ---- subscriptions: slot s = sub * per + j holds topic slotTopic[s] ----
  const slots = job.subscribers * per;
  const slotTopic = new Int32Array(slots);
  const subsOf = new Uint32Array(job.topicCount);
  for (let sub = 0; sub < job.subscribers; sub++) {
    const chosen = new Set<number>();
    if (per === job.topicCount) for (let k = 0; k < per; k++) chosen.add(k);
    else for (let guard = 0; chosen.size < per && guard < 1000 * per; guard++) chosen.add(Math.floor(rand() * job.topicCount));
    let j = 0;
    for (const k of chosen) {
      slotTopic[sub * per + j++] = k;
      subsOf[k]!++;
    }
  }
  let topicsSubscribed = 0;
  for (const n of subsOf) if (n > 0) topicsSubscribed++;

  // ---- delivery accounting ----
  const pos = new Uint32Array(slots);
  /** The order in which each topic's messages were first seen at each position. */
  const order: number[][] = Array.from({ length: job.topicCount }, () => []);
  let delivered = 0;
  let stray = 0;
  let outOfOrder = 0;
  const unexpectedCloses: Record<string, number> = {};
  /** Set once the last publish is out: the delivery that reaches it closes the window. */
  let target = Infinity;
  let onAllDelivered: (() => void) | null = null;
  let wake: (() => void) | null = null;
  // Latency (rate plan): deliveries of messages stamped at or after measureFromNs.
  let measureFromNs = Infinity;
  let measuredDelivered = 0;
  const latency = new Samples(64 * 1024, 10_000_000);

  const sink: Sink = {
    deliver(sub, buf, start, end) {
      const m = findMark(buf, start, end);
      if (m === -1) return void stray++;
      const topic = topicAt(buf, m);
      let s = sub * per;
      const last = s + per;
      while (s < last && slotTopic[s] !== topic) s++;
      if (s === last) return void stray++;
      const seq = seqAt(buf, m);
      const p = pos[s]!++;
      const seen = order[topic]!;
      if (p < seen.length) {
        if (seen[p] !== seq) outOfOrder++;
      } else seen.push(seq);
      delivered++;
      if (job.latency) {
        const ns = nsAt(buf, m);
        if (ns >= measureFromNs) {
          measuredDelivered++;
          latency.push((Number(process.hrtime.bigint()) - ns) / 1e6);
        }
      }
      if (delivered >= target && onAllDelivered) onAllDelivered();
      if (wake) {
        const w = wake;
        wake = null;
        w();
      }
    },
    closed(_sub, code) {
      unexpectedCloses[String(code)] = (unexpectedCloses[String(code)] ?? 0) + 1;
    },
  };

  // ---- connect and subscribe ----
  const connStart = monoMs();
  let registerMs = 0;
  if (job.target.kind === 'hubcast') {
    const t = job.target;
    for (let i = 0; i < t.register; i++) t.tokens[i] = await registerHubcast(t.port, t.clientId, t.clientSecret);
    registerMs = Math.round(monoMs() - connStart);
  }
  const conns: SubscriberConn[] = new Array(job.subscribers);
  const setupDeadline = connStart + job.setupTimeoutMs;
  let nextSub = 0;
  let connectRetries = 0;
  await Promise.all(
    Array.from({ length: Math.min(job.connectConcurrency, job.subscribers) }, async () => {
      while (nextSub < job.subscribers) {
        if (monoMs() > setupDeadline) throw new Error(`not every subscriber was subscribed within ${job.setupTimeoutMs} ms`);
        const sub = nextSub++;
        const topics = Array.from(slotTopic.subarray(sub * per, sub * per + per), (k) => adapter.topicName(topicName(k)));
        // A failed connect is retried (bounded): a run is not lost to one refused handshake.
        for (let attempt = 1; ; attempt++) {
          try {
            conns[sub] = await adapter.subscribe(sub, topics, sink, job.connectTimeoutMs);
            break;
          } catch (err) {
            if (attempt >= 3 || monoMs() > setupDeadline) throw err;
            connectRetries++;
            await sleep(200 * attempt);
          }
        }
      }
    }),
  );
  const connectMs = Math.round(monoMs() - connStart);
  const pub = await adapter.publisher();
  await send({ type: 'ready', connectMs, registerMs, connectRetries });
  await next('go');

  // ---- publishing ----
  const tpl = template(job.payloadBytes);
  const seqs = new Uint32Array(job.topicCount);
  const names = Array.from({ length: job.topicCount }, (_, k) => adapter.topicName(topicName(k)));
  let expected = 0;
  const failed: Record<string, number> = {};
  // Mixed publishing: every topic alike, whether anyone is subscribed to it or not.
  const pickTopic = job.topicCount === 1 ? () => 0 : () => Math.floor(rand() * job.topicCount);
  const publishOne = () => {
    const k = pickTopic();
    const seq = ++seqs[k]!;
    expected += subsOf[k]!;
    pub.publish(names[k]!, stamp(tpl, seq, k, process.hrtime.bigint()), (ok, why) => {
      if (!ok) failed[why ?? 'failed'] = (failed[why ?? 'failed'] ?? 0) + 1;
      if (wake) {
        const w = wake;
        wake = null;
        w();
      }
    });
  };
  /** Waits for a delivery or an answer (or `ms`). */
  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  /** Until every delivery due so far has arrived, or `ms`: the time the last one came, or null. */
  const drain = (ms: number) =>
    new Promise<number | null>((resolve) => {
      if (delivered >= expected) return resolve(monoMs());
      const timer = setTimeout(() => {
        onAllDelivered = null;
        target = Infinity;
        resolve(null);
      }, ms);
      target = expected;
      onAllDelivered = () => {
        clearTimeout(timer);
        onAllDelivered = null;
        target = Infinity;
        resolve(monoMs());
      };
    });

  const plan = job.plan;
  let warm = { published: 0, ms: 0 };
  let measuredPublished = 0;
  let notSent = 0;
  let firstAt = 0;
  let lastPublishAt = 0;
  let start: { server: number | null; self: NodeJS.CpuUsage; machine: number | null; delivered: number; expected: number } | undefined;
  const open = () => {
    const s = sampleProc(job.serverPid);
    start = { server: s?.cpuS ?? null, self: process.cpuUsage(), machine: machineCpu()?.busyS ?? null, delivered, expected };
  };
  const sendLag = new Samples(4096);
  let endAt: number | null;

  if (plan.mode === 'window') {
    const windowed = async (count: number, maxMs: number) => {
      const deadline = monoMs() + maxMs;
      let n = 0;
      for (let turns = 0; n < count && turns < 50_000_000; turns++) {
        if (monoMs() >= deadline) break;
        while (n < count && pub.inFlight < plan.maxInFlight && expected - delivered < plan.windowDeliveries) {
          publishOne();
          n++;
        }
        if (n < count) await idle(5);
      }
      return n;
    };
    const w0 = monoMs();
    warm.published = await windowed(plan.warmMessages, plan.maxMs);
    if ((await drain(job.drainMs)) === null) throw new Error(`warm-up: ${expected - delivered} deliveries missing after ${job.drainMs} ms`);
    warm.ms = Math.round(monoMs() - w0);
    open();
    firstAt = monoMs();
    measuredPublished = await windowed(plan.messages, plan.maxMs);
    lastPublishAt = monoMs();
    endAt = await drain(job.drainMs);
  } else {
    const total = Math.floor(((plan.warmMs + plan.durationMs) * plan.perS) / 1000);
    const warmCount = Math.floor((plan.warmMs * plan.perS) / 1000);
    const t0 = monoMs() + 20;
    const dueAt = (i: number) => t0 + (i * 1000) / plan.perS;
    let sent = 0;
    for (let turns = 0; sent < total && turns < 10_000_000; turns++) {
      const now = monoMs();
      if (now > dueAt(total - 1) + 2000) break;
      const due = Math.min(total, Math.floor(((now - t0) * plan.perS) / 1000) + 1);
      while (sent < due) {
        if (sent === warmCount) {
          open();
          firstAt = monoMs();
          measureFromNs = Number(process.hrtime.bigint());
        }
        if (pub.inFlight >= plan.maxInFlight) {
          notSent += due - sent;
          sent = due;
          break;
        }
        sendLag.push(monoMs() - dueAt(sent));
        publishOne();
        sent++;
        if (sent > warmCount) measuredPublished++;
      }
      if (sent < total) await sleep(Math.max(0, Math.min(50, dueAt(sent) - monoMs())));
    }
    warm = { published: warmCount, ms: plan.warmMs };
    lastPublishAt = monoMs();
    endAt = await drain(job.drainMs);
  }
  const end = { server: sampleProc(job.serverPid)?.cpuS ?? null, self: process.cpuUsage(), machine: machineCpu()?.busyS ?? null };
  const windowEnd = endAt ?? monoMs();
  const s0 = start!;
  const loadS = (end.self.user + end.self.system - s0.self.user - s0.self.system) / 1e6;

  // ---- correctness ----
  // A short grace: a duplicate makes the count reach its due before the last delivery is in, and late
  // duplicates should be counted too.
  await sleep(250);
  let missing = 0;
  let extra = 0;
  for (let s = 0; s < slots; s++) {
    const due = seqs[slotTopic[s]!]!;
    const got = pos[s]!;
    if (got < due) missing += due - got;
    else extra += got - due;
  }
  let sequencesComplete = true;
  for (let k = 0; k < job.topicCount && sequencesComplete; k++) {
    if (subsOf[k] === 0) continue;
    const seen = order[k]!;
    const n = seqs[k]!;
    const hit = new Uint8Array(n + 1);
    for (const q of seen) {
      if (q < 1 || q > n || hit[q]) sequencesComplete = false;
      else hit[q] = 1;
    }
    if (seen.length !== n) sequencesComplete = false;
  }
  const correctness: Correctness = {
    expected,
    delivered,
    missing,
    extra,
    outOfOrder,
    stray,
    sequencesComplete,
    unexpectedCloses,
  };

  const measuredDue = expected - s0.expected;
  const result: LoadResult = {
    subscribers: job.subscribers,
    subscriptions: slots,
    topicsSubscribed,
    connectMs,
    connectRetries,
    registerMs,
    warm,
    measured: {
      published: measuredPublished,
      publishFailed: failed,
      notSent,
      expected: measuredDue,
      delivered: plan.mode === 'rate' && job.latency ? measuredDelivered : delivered - s0.delivered,
      publishMs: Math.round(lastPublishAt - firstAt),
      windowMs: windowEnd - firstAt,
      fromMs: firstAt,
      toMs: windowEnd,
      drained: endAt !== null,
    },
    cpu: {
      serverS: end.server !== null && s0.server !== null ? end.server - s0.server : null,
      loadS,
      machineBusyS: end.machine !== null && s0.machine !== null ? end.machine - s0.machine : null,
    },
    correctness,
    ...(job.latency ? { latencyMs: latency.summary(Math.max(0, measuredDue - measuredDelivered)) } : {}),
    ...(plan.mode === 'rate' ? { sendLagMs: sendLag.summary() } : {}),
  };
  await send({ type: 'result', result });
  pub.close();
  for (const c of conns) c?.destroy();
}

runWorker<LoadJob>(main, 15 * 60_000);
