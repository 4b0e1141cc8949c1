import type { Summary } from '../../lib/stats.ts';

/**
 * What the flood scenario's processes tell each other. The orchestrator sends `{type:'config'}`,
 * waits for `{type:'ready'}` from every worker, then sends `{type:'go', t0}`: `t0` is a
 * CLOCK_MONOTONIC time (ns, as a string) shared by every process, from which all phases are timed.
 */

export interface Phases {
  warmMs: number;
  baseMs: number;
  floodMs: number;
  settleMs: number;
}

export type PhaseName = 'warmup' | 'baseline' | 'flood' | 'settle' | 'drain';
export const PHASES: readonly PhaseName[] = ['warmup', 'baseline', 'flood', 'settle', 'drain'];

/** Phase boundaries, ms after t0. */
export function bounds(p: Phases): { baseStart: number; floodStart: number; floodEnd: number; end: number } {
  const baseStart = p.warmMs;
  const floodStart = baseStart + p.baseMs;
  const floodEnd = floodStart + p.floodMs;
  return { baseStart, floodStart, floodEnd, end: floodEnd + p.settleMs };
}

/** The phase a moment `relMs` after t0 falls in. */
export function phaseAt(relMs: number, p: Phases): PhaseName {
  const b = bounds(p);
  if (relMs < b.baseStart) return 'warmup';
  if (relMs < b.floodStart) return 'baseline';
  if (relMs < b.floodEnd) return 'flood';
  if (relMs < b.end) return 'settle';
  return 'drain';
}

export interface LegitConfig {
  port: number;
  clientId: string;
  clientSecret: string;
  ingestKey: string;
  topic: string;
  consumers: number;
  /** Messages per second POSTed to /entity (open loop, fixed schedule). */
  publishRate: number;
  maxPublishInFlight: number;
  /** One consumer closes and reconnects (with `since`) every this many ms. */
  reconnectEveryMs: number;
  /** A connect (handshake + subscribed) slower than this is a failure. */
  connectTimeoutMs: number;
  /** After the last phase: how long consumers may take to catch up with the last accepted message. */
  drainMs: number;
  phases: Phases;
}

export interface LegitResult {
  consumers: number;
  registerMs: number;
  publish: {
    scheduled: number;
    sent: number;
    accepted: number;
    /** Non-202 answers and errors, by `http_<status>` / `error_<code>` / `timeout`. */
    failed: Record<string, number>;
    notSent: number;
    /** Highest offset acknowledged with 202. */
    finalOffset: number;
    /** Time to the 202, by phase of the send. */
    ackMs: Partial<Record<PhaseName, Summary>>;
  };
  /** Publisher-stamped delivery latency (every delivery, replays included), by phase of the publish. */
  deliveryMs: Partial<Record<PhaseName, Summary>>;
  /** The same, live deliveries only (replays after a reconnect excluded). */
  liveDeliveryMs: Partial<Record<PhaseName, Summary>>;
  connects: {
    attempts: number;
    ok: number;
    /** Failed attempts by reason: `http_409`, `timeout`, `error_ECONNRESET`, `subscribe_<code>`… */
    failures: Record<string, number>;
    failuresByPhase: Partial<Record<PhaseName, number>>;
    /** Time from dialling to `subscribed`, by phase of the attempt. */
    timeMs: Partial<Record<PhaseName, Summary>>;
    reconnects: number;
    /** Reconnect ticks skipped because the chosen consumer was still reconnecting. */
    reconnectsSkipped: number;
    /** Closes the consumer did not ask for, by close code. */
    unexpectedCloses: Record<string, number>;
  };
  messages: {
    delivered: number;
    /** Offsets skipped over (gaps) plus offsets never received by the end (tail). */
    lost: number;
    gaps: number;
    tail: number;
    duplicated: number;
    /** `subscribed` with `recovered: false` after a `since`. */
    unrecovered: number;
    caughtUp: boolean;
    drainMs: number;
  };
}

export interface AttackConfig {
  port: number;
  /** Source addresses (127.0.0.x) the attempts are spread over, round robin. */
  sources: string[];
  /** Attempts per second, offered on a fixed schedule. */
  rate: number;
  durationMs: number;
  /** When the flood starts, ms after t0. */
  startMs: number;
  maxInFlight: number;
  /** An attempt without a status line by then counts as a timeout. */
  timeoutMs: number;
}

export interface AttackResult {
  scheduled: number;
  sent: number;
  /** Scheduled attempts not sent before the window closed (the in-flight cap was full). */
  notSent: number;
  windowMs: number;
  /** Answers by HTTP status. */
  byStatus: Record<string, number>;
  timeouts: number;
  /** Socket errors by code. */
  errors: Record<string, number>;
  /** Time from dialling to the status line. */
  answerMs: Summary;
  /** How late each attempt left compared with its slot in the schedule. */
  lagMs: Summary;
  /** When the last answer came, ms after the flood started. */
  lastAnswerMs: number;
}
