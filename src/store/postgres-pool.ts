import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { Logger } from '../logger.ts';
import { migrate } from './postgres-migrations.ts';

export interface PgPoolOptions {
  url: string;
  schema: string;
  poolSize: number;
  log?: Logger | undefined;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** int8 (offsets, ms timestamps, counts) as numbers: every value we store fits in 2^53. */
const INT8_OIDS = new Set([20]);
/** A query that gets no answer for this long fails (a silent network) and its connection is dropped. */
const QUERY_TIMEOUT_MS = 30_000;
const QUERY_TIMEOUT = 'Query read timeout';

/**
 * The one `pg.Pool` of a PostgreSQL backend, shared by the store, presence and leases roles.
 *
 * - `pg` is loaded on first use (the CLI and the SQLite default never pay for it).
 * - Tables are named with the schema (`this.t('tokens')` → `"hubcast".tokens`) instead of a
 *   per-connection `search_path`, which a transaction-pooling proxy would not keep.
 * - The first role that opens runs the migrations (once); the pool ends when the last user that
 *   retained it lets go, whatever the order. A connection that breaks is discarded and the next query
 *   dials again, so the pool recovers by itself when the server comes back.
 */
export class PgPool {
  readonly schema: string;
  readonly #opts: PgPoolOptions;
  #pool: Promise<Pool> | undefined;
  #ready: Promise<void> | undefined;
  #users = 0;
  #ended = false;

  constructor(opts: PgPoolOptions) {
    if (!IDENTIFIER.test(opts.schema))
      throw new TypeError(`store.schema: expected a lower-case SQL identifier, got ${JSON.stringify(opts.schema)}`);
    this.#opts = opts;
    this.schema = opts.schema;
  }

  /** `"schema".name` */
  t(name: string): string {
    return `"${this.schema}".${name}`;
  }

  /**
   * Text naming an advisory lock, namespaced by the schema so that two hubs in one database stay
   * apart; SQL turns it into a key with `hashtextextended(text, 0)` (a collision only serializes).
   */
  lockName(...parts: string[]): string {
    return [this.schema, ...parts].join('\x1f');
  }

  /** Registers a user (a role that opened) and makes sure the schema is migrated. */
  async retain(): Promise<void> {
    await this.#get();
    if (this.#ended) throw new Error('the PostgreSQL store is closed');
    this.#users++;
  }

  /** A user (whose `retain()` succeeded) is done; the last one ends the pool, for good. */
  async release(): Promise<void> {
    if (this.#users === 0) return;
    if (--this.#users > 0) return;
    this.#ended = true;
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool) await (await pool).end();
  }

  async query<R extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const pool = await this.#get();
    return (await pool.query<R>(sql, params)).rows;
  }

  /** Runs `fn` in a transaction; a connection that fails mid-way is discarded, not reused. */
  async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.#tx(await this.#get(), fn);
  }

  async #tx<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await pool.connect();
    // A checked-out client reports a dead socket as an 'error' event too (besides failing the query).
    let broken: Error | undefined;
    const onError = (err: Error) => void (broken ??= err);
    c.on('error', onError);
    const release = (err?: Error) => {
      c.off('error', onError);
      c.release(err);
    };
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      release(broken);
      return out;
    } catch (err) {
      try {
        // A timed-out query may still run: the connection is not reused.
        if (broken || (err as Error).message === QUERY_TIMEOUT) throw broken ?? err;
        await c.query('ROLLBACK');
        release();
      } catch (e) {
        release(e as Error);
      }
      throw err;
    }
  }

  /** The pool, once the schema is migrated (by whichever role asks first; retried after a failure). */
  async #get(): Promise<Pool> {
    if (this.#ended) throw new Error('the PostgreSQL store is closed');
    this.#pool ??= this.#create();
    const pool = await this.#pool;
    this.#ready ??= this.#tx(pool, (c) => migrate(c, this.schema)).catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    await this.#ready;
    return pool;
  }

  async #create(): Promise<Pool> {
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({
      connectionString: this.#opts.url,
      max: this.#opts.poolSize,
      application_name: 'hubcast',
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      query_timeout: QUERY_TIMEOUT_MS,
      allowExitOnIdle: true,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          INT8_OIDS.has(oid) && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as never,
      },
    });
    // An idle connection that breaks is dropped by the pool; the next query dials again.
    pool.on('error', (err) => this.#opts.log?.warn({ err: err.message }, 'postgres store: idle connection lost'));
    return pool;
  }
}
