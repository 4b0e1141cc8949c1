import type { Summary } from '../../lib/stats.ts';

/**
 * What the ingest scenario's orchestrator and its load worker tell each other. The orchestrator
 * sends `{type:'config'}`; the worker answers `{type:'ready'}` once every level's sockets can be
 * opened, then `{type:'result'}` after the last level.
 */

export interface IngestLevel {
  /** Keep-alive connections, each with one request in flight at a time (closed loop). */
  connections: number;
  /** Requests before the measured window (their acknowledgements still count for durability). */
  warmMs: number;
  measureMs: number;
}

export interface IngestLoadConfig {
  port: number;
  /** `Authorization` header value, or '' for none. */
  authorization: string;
  levels: IngestLevel[];
  /** Topic of connection `c` at level `l`: `${topicPrefix}.l${l}.c${c}`. */
  topicPrefix: string;
  /** Size of the `data` value of each message, bytes (JSON). */
  dataBytes: number;
  /** A request unanswered after this long is counted as a timeout and its socket replaced. */
  timeoutMs: number;
  /** Hard bound on requests per level (whatever the duration). */
  maxRequestsPerLevel: number;
}

export interface LevelResult {
  connections: number;
  /** Responses completed within the measured window. */
  completed: number;
  windowMs: number;
  rps: number;
  latencyMs: Summary;
  /** Every answer (warm-up and window) by HTTP status. */
  byStatus: Record<string, number>;
  /** Socket errors, timeouts, unparseable answers. */
  errors: Record<string, number>;
  /** Requests sent at this level (warm-up included). */
  sent: number;
}

export interface IngestLoadResult {
  levels: LevelResult[];
  /** Offsets acknowledged with 202, per topic (every level, warm-up included). */
  acked: Record<string, number[]>;
  /** 202 answers whose body had no numeric offset. */
  ackWithoutOffset: number;
}
