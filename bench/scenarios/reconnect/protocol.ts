import type { Summary } from '../../lib/stats.ts';

/**
 * What the reconnect scenario's orchestrator and its storm worker tell each other. After
 * `{type:'config'}` the worker connects and subscribes everyone, checks a few live messages and
 * answers `ready`; on `{type:'close'}` it closes every consumer (`closed`); on `{type:'publish'}` it
 * publishes the backlog (`published`); on `{type:'storm'}` every consumer reconnects at once with
 * `since` and the worker answers `{type:'result'}`.
 */

export interface StormConfig {
  port: number;
  tokens: string[];
  ingestKey: string;
  topic: string;
  /** Set-ups at once for the first connection of everyone (the storm itself is all at once). */
  connectConcurrency: number;
  connectTimeoutMs: number;
  /** Messages published (and checked) while everyone is connected, before the disconnect. */
  warmMessages: number;
  /** Messages published while everyone is disconnected: each consumer must replay them. */
  backlog: number;
  /** Messages published during the storm, one every `liveEveryMs`. */
  live: number;
  liveEveryMs: number;
  dataBytes: number;
  /** Bound on the storm: every consumer caught up by then, or the storm is reported as not caught up. */
  stormMs: number;
  /** Failed reconnects are retried (same `since`) after this, at most `maxAttempts` times per consumer. */
  retryMs: number;
  maxAttempts: number;
}

export interface StormResult {
  consumers: number;
  /** The first connection of everyone. */
  setup: { ms: number; failures: Record<string, number> };
  warmDelivered: number;
  /** Offsets: each consumer's `since`, and the last acknowledged offset (backlog + live). */
  sinceOffset: number;
  finalOffset: number;
  backlogPublishMs: number;
  storm: {
    /** From the first dial to the last consumer holding the final offset (null: not all caught up). */
    caughtUpMs: number | null;
    /** From the first dial to the last `subscribed`. */
    allSubscribedMs: number | null;
    /** Dial to `subscribed`, per consumer (last attempt). */
    subscribedMs: Summary;
    /** Dial to holding the final offset, per consumer. */
    caughtUpEachMs: Summary;
    /** Messages received during the storm (replayed and live). */
    received: number;
    /** Consumers that ended behind the final offset. */
    behind: number;
    gaps: number;
    duplicates: number;
    /** `subscribed` with `recovered: false`. */
    unrecovered: number;
    /** Failed reconnect attempts by reason (retried). */
    failures: Record<string, number>;
    /** Consumers that never got back in. */
    neverConnected: number;
    /** Closes the worker did not ask for, by code. */
    closedByServer: Record<string, number>;
    liveAccepted: number;
    liveFailed: number;
  };
}
