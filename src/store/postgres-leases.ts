import type { Leases } from '../cluster/leases.ts';
import type { PgPool } from './postgres-pool.ts';

/** Expired once-claims are deleted at most this often (by whichever call comes next). */
const SWEEP_MS = 60_000;

/**
 * The Leases role on PostgreSQL (see cluster/leases.ts): tables `leases` and `claims` in the store's
 * schema. Expiry uses the database's clock only (`now()`), so that clock skew between nodes never
 * lets two of them hold one lease; each method is one statement.
 */
export class PostgresLeases implements Leases {
  readonly #db: PgPool;
  #closed = false;
  #retained: Promise<void> | undefined;
  #sweptAt = 0;

  constructor(db: PgPool) {
    this.#db = db;
  }

  /** The first call holds on to the shared pool until close() (see PgPool). */
  async #open(): Promise<void> {
    if (this.#closed) throw new Error('leases are closed');
    this.#retained ??= this.#db.retain().catch((err: unknown) => {
      this.#retained = undefined;
      throw err;
    });
    await this.#retained;
  }

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    await this.#open();
    const rows = await this.#db.query(
      `INSERT INTO ${this.#db.t('leases')} AS l (name, holder, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE l.holder = excluded.holder OR l.expires_at <= now()
       RETURNING 1`,
      [name, holder, ttlMs],
    );
    return rows.length === 1;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.#open();
    await this.#db.query(`DELETE FROM ${this.#db.t('leases')} WHERE name = $1 AND holder = $2`, [name, holder]);
  }

  async holder(name: string): Promise<string | undefined> {
    await this.#open();
    const [row] = await this.#db.query<{ holder: string }>(
      `SELECT holder FROM ${this.#db.t('leases')} WHERE name = $1 AND expires_at > now()`,
      [name],
    );
    return row?.holder;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    await this.#open();
    if (Date.now() - this.#sweptAt > SWEEP_MS) {
      this.#sweptAt = Date.now();
      await this.#db.query(`DELETE FROM ${this.#db.t('claims')} WHERE expires_at <= now()`);
    }
    const rows = await this.#db.query(
      `INSERT INTO ${this.#db.t('claims')} AS c (key, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE c.expires_at <= now()
       RETURNING 1`,
      [key, ttlMs],
    );
    return rows.length === 1;
  }

  async unclaim(key: string): Promise<void> {
    await this.#open();
    await this.#db.query(`DELETE FROM ${this.#db.t('claims')} WHERE key = $1`, [key]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (
      this.#retained &&
      (await this.#retained.then(
        () => true,
        () => false,
      ))
    )
      await this.#db.release();
  }
}
