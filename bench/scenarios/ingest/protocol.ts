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
  /**
   * Messages per request: absent or 1 = `POST /entity` (one envelope, 202); more = `POST /entities`
   * with that many messages of the connection's topic (200, a result per message).
   */
  batch?: number;
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
  /** Messages acknowledged with an offset by the requests completed within the window. */
  messages: number;
  /** Batch results without an offset (a message refused on its own), every request of the level. */
  itemErrors: number;
  /** Batches whose offsets are not consecutive (not one commit, or out of array order). */
  nonContiguous: number;
}

export interface IngestLoadResult {
  levels: LevelResult[];
  /** Offsets acknowledged (each 202's, each batch result's), per topic (every level, warm-up included). */
  acked: Record<string, number[]>;
  /** Successful answers (202; batch: 200) whose body had no numeric offset (batch: not one result per message). */
  ackWithoutOffset: number;
}
