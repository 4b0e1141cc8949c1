import type { Leases } from '../cluster/leases.ts';
import type { Presence } from '../cluster/presence.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../logger.ts';
import { PostgresLeases } from './postgres-leases.ts';
import { PgPool } from './postgres-pool.ts';
import { PostgresPresence } from './postgres-presence.ts';
import { PostgresStore } from './postgres-store.ts';
import type { HistoryLimits, Store } from './store.ts';

export interface PostgresBackendOptions {
  url: string;
  /** A lower-case SQL identifier (validated): every table lives in this schema, created if missing. */
  schema: string;
  poolSize: number;
  history: HistoryLimits;
  clock?: Clock | undefined;
  /** Where lost idle connections are reported (warn). */
  log?: Logger | undefined;
}

/**
 * `store.type: postgres`: the store (Registry + History), Presence and Leases roles on one PostgreSQL
 * schema, sharing one pool of `poolSize` connections. Nothing connects before `store.open()` or
 * `presence.start()` (either runs the migrations first). The pool ends when both the store and the
 * presence that were opened have closed, in either order; closing twice is harmless.
 *
 * Clocks: registry and history times come from the application (`ts`, `now` arguments, the store's
 * clock for the history TTL), exactly as with SQLite; lease expiry (nodes, connector leases, claims)
 * uses the database's clock only.
 */
export class PostgresBackend {
  readonly store: Store;
  readonly presence: Presence;
  readonly leases: Leases;

  constructor(opts: PostgresBackendOptions) {
    const pool = new PgPool({ url: opts.url, schema: opts.schema, poolSize: opts.poolSize, log: opts.log });
    this.store = new PostgresStore(pool, opts.history, opts.clock);
    this.presence = new PostgresPresence(pool);
    this.leases = new PostgresLeases(pool);
  }
}
