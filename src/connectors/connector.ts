import type { Logger } from '../logger.ts';
import type { PayloadKind } from '../store/store.ts';

/**
 * The `Connector` role: a long-running service that pulls records from one upstream system (file
 * system, PostgreSQL, RabbitMQ, MQTT, NATS, an HTTP API) and hands them to Hubcast.
 *
 * One file per implementation (`file.ts`, `postgres.ts`, `amqp.ts`, `mqtt.ts`, `nats.ts`,
 * `http-poll.ts`); `index.ts` holds the only `switch (config.type)`. Every implementation passes the
 * shared conformance expectations in test/integration (records reach a real WebSocket consumer;
 * a cut connection is retried; nothing is lost or duplicated across a crash).
 *
 * Contract
 * --------
 * - `run(ctx)` connects, calls `ctx.connected()` once the source is reachable (so the supervisor can
 *   reset its retry count and announce recovery), then loops until `ctx.signal` aborts, and then
 *   returns after releasing everything it holds (sockets, consumers, timers). It must not return or
 *   throw for any other reason while the source is healthy.
 * - Losing the source (connection refused/reset, broker restart) → `run` throws (any error). The
 *   supervisor retries with capped, jittered exponential backoff and calls `run` again. Errors that
 *   retrying cannot fix (bad credentials, missing table or queue, invalid settings) are thrown as
 *   `FatalSourceError`: the connector is then marked failed and alerted, not retried forever.
 * - **At-least-once.** A record is acknowledged/committed at the source only after
 *   `await ctx.emit(records)` resolved: then Hubcast has stored it durably (or, for records the
 *   pipeline rejects, put it in the dead-letter store). If `emit` rejects, nothing of that batch may be
 *   acknowledged: nack/requeue, do not advance the cursor, and throw so the supervisor reconnects.
 * - **Idempotency keys.** Every record carries `key`, stable across redeliveries of the same upstream
 *   record (message id, cursor value, file name + line number…). Hubcast deduplicates on it, so a
 *   redelivery after a crash or a reconnect is never delivered twice to consumers.
 * - **Order.** Records are emitted in source order; `emit` preserves it per topic. A connector does not
 *   call `emit` again before the previous call settled.
 * - **Cursors.** Durable positions (a PostgreSQL cursor value, a file offset) live in `ctx.state`,
 *   written after `emit` resolved.
 */
export interface Connector {
  readonly name: string;
  readonly type: string;
  run(ctx: ConnectorContext): Promise<void>;
}

export interface SourceRecord {
  /** Stable idempotency key derived from the source (unique within this connector). */
  key: string;
  /** The record: a JSON value (object, array, scalar), a string (text) or a Buffer (binary). */
  value: unknown;
  /** How to deliver `value` when it reaches consumers unchanged. Default: Buffer → binary, else json. */
  kind?: PayloadKind;
  /**
   * The record's bytes as the source gave them (a message body, a JSON line), when `value` was decoded
   * from them per `kind`. Kept as they are in the dead-letter store (so `hubcast dlq retry` gives the
   * pipeline exactly the same record), and published as they are when no pipeline step can change the
   * value (no `map`, `set` or `module`): a re-serialization would change numbers past 2^53, key order
   * of duplicate keys, escapes and spacing.
   */
  raw?: Buffer;
  /**
   * Facts about the record from the source, for topic templates (`{{$meta.topic}}`) and pipeline
   * expressions (`$meta`): e.g. `{ topic }` for MQTT, `{ routingKey, exchange }` for AMQP,
   * `{ subject }` for NATS, `{ file, line }` for files.
   */
  meta?: Record<string, unknown>;
}

export interface ConnectorContext {
  /**
   * Hands records to Hubcast (pipeline → publish path). Resolves once every record is durably
   * accepted (or dead-lettered); rejects when Hubcast could not accept them (store unavailable): the
   * caller must not acknowledge them.
   */
  emit(records: SourceRecord[]): Promise<void>;
  /** The source is reachable (call after each successful connect). */
  connected(): void;
  /** Aborted when the connector must stop; every wait in `run` honours it. */
  signal: AbortSignal;
  /**
   * Raises the alert `source_refused` for this connector (digested like every alert): the source
   * offered something the connector refused for safety (a file connector's symbolic link). `detail`
   * is a short text, never a payload or credential. Absent in contexts without alerts.
   */
  alert?(detail: string): void;
  /** Durable per-connector key/value state (cursors, file positions). */
  state: ConnectorState;
  /**
   * Cluster mode only (absent on a single node): a claim that is true for one caller in the whole
   * cluster per key within `ttlMs` (cluster/leases.ts `claimOnce`), and its undo when the work it
   * guarded failed. A webhook, which runs on every node, claims each signature with it, so that a
   * delivery replayed to another node is a duplicate there too. Both reject when the store is down.
   */
  claim?: { once(key: string, ttlMs: number): Promise<boolean>; undo(key: string): Promise<void> };
  log: Logger;
}

export interface ConnectorState {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
  /** Deletes the keys starting with `prefix` whose value, a number, is below `before` (expired entries). */
  prune?(prefix: string, before: number): void;
}

/** An error retrying cannot fix (bad credentials, missing table): reported, not retried forever. */
export class FatalSourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FatalSourceError';
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
