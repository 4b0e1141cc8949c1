import type { Summary } from '../lib/stats.ts';
import type { Target } from './types.ts';

/**
 * What the orchestrator (bench/contenders/session.ts) and the load generator (bench/contenders/load.ts)
 * tell each other. The orchestrator sends `{type:'config', config: LoadJob}`; the load generator
 * connects and subscribes everyone and answers `{type:'ready'}`; on `{type:'go'}` it runs the plan and
 * answers `{type:'result', result: LoadResult}`, then closes everything and exits.
 */

export interface LoadJob {
  target: Target;
  /** The server's pid: the load generator reads its CPU time from /proc at the exact window bounds. */
  serverPid: number;
  subscribers: number;
  /** Topics are `bench.t<i>`, i < topicCount. */
  topicCount: number;
  /** Topics per subscriber: all of them when ≥ topicCount, else that many distinct ones drawn with `seed`. */
  perSubscriber: number;
  seed: number;
  payloadBytes: number;
  /** Subscribers connecting at once. */
  connectConcurrency: number;
  /** One subscriber's connect + subscribe must finish within this. */
  connectTimeoutMs: number;
  /** Every subscriber connected and subscribed within this. */
  setupTimeoutMs: number;
  plan: Plan;
  /** After the last publish: how long every delivery may take to arrive. */
  drainMs: number;
  /** Record publisher-stamped latency of each measured delivery. */
  latency: boolean;
}

export type Plan =
  | {
      /**
       * As fast as the system takes it: publish while fewer than `windowDeliveries` deliveries are
       * outstanding (published × subscribers of the topic − delivered) and fewer than `maxInFlight`
       * publishes are unanswered. `warmMessages` first (not measured, all delivered before the window
       * opens), then `messages` or until `maxMs`, whichever comes first.
       */
      mode: 'window';
      warmMessages: number;
      messages: number;
      maxMs: number;
      windowDeliveries: number;
      maxInFlight: number;
    }
  | {
      /** Open loop: the i-th message is due at t0 + i / perS; the first `warmMs` are not measured. */
      mode: 'rate';
      perS: number;
      warmMs: number;
      durationMs: number;
      maxInFlight: number;
    };

export interface Correctness {
  /** Deliveries due: every message published (warm-up included) × the subscribers of its topic. */
  expected: number;
  delivered: number;
  /** Due but never delivered (by the end of the drain). */
  missing: number;
  /** Delivered more often than published (duplicates). */
  extra: number;
  /**
   * Deliveries out of step with the order in which the first subscriber to see each position saw it:
   * 0 means every subscriber of a topic got the same sequence (the server's order).
   */
  outOfOrder: number;
  /** Deliveries without a readable marker, or of a topic the subscriber is not on. */
  stray: number;
  /** Every topic's observed order holds each published sequence number exactly once. */
  sequencesComplete: boolean;
  /** Closes the subscribers did not ask for, by close code. */
  unexpectedCloses: Record<string, number>;
}

export interface LoadResult {
  subscribers: number;
  subscriptions: number;
  /** Topics with at least one subscriber. */
  topicsSubscribed: number;
  connectMs: number;
  /** Subscriber connects that failed and were tried again (at most 3 tries each). */
  connectRetries: number;
  registerMs: number;
  warm: { published: number; ms: number };
  /** The measured window: from its first publish to the last of its deliveries (or the end of the drain). */
  measured: {
    published: number;
    publishFailed: Record<string, number>;
    /** Rate plan: messages not sent because `maxInFlight` were unanswered. */
    notSent: number;
    expected: number;
    delivered: number;
    publishMs: number;
    windowMs: number;
    /** The window's bounds, CLOCK_MONOTONIC ms (to pick the window out of a CPU profile). */
    fromMs: number;
    toMs: number;
    drained: boolean;
  };
  /** CPU seconds over the window: the server (null if /proc was unreadable), this load generator, the whole machine. */
  cpu: { serverS: number | null; loadS: number; machineBusyS: number | null };
  correctness: Correctness;
  /** Rate plan with `latency`: publisher-stamped delivery latency of measured messages, ms (missing deliveries count as infinite). */
  latencyMs?: Summary;
  /** Rate plan: how late each publish left compared with its slot, ms. */
  sendLagMs?: Summary;
}
