import type { PoolClient } from 'pg';
import type { PgPool } from './postgres-pool.ts';
import type { Changes, ClientRecord, KeyRecord, Registry, TokenRecord } from './store.ts';

interface ClientRow {
  id: string;
  name: string;
  secret_hash: string;
  subscribe: string[];
  publish: string[];
  presence: string[];
  created_at: number;
  revoked_at: number | null;
}

interface KeyRow {
  id: string;
  name: string;
  scope: 'ingest' | 'admin';
  hash: string;
  created_at: number;
  revoked_at: number | null;
}

const toClient = (r: ClientRow): ClientRecord => ({
  id: r.id,
  name: r.name,
  secretHash: r.secret_hash,
  subscribe: r.subscribe,
  publish: r.publish,
  presence: r.presence,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const toKey = (r: KeyRow): KeyRecord => ({
  id: r.id,
  name: r.name,
  scope: r.scope,
  hash: r.hash,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

/** Token last-use times wait at most this long to be written together. */
const TOUCH_FLUSH_MS = 2000;

/**
 * The Registry role on PostgreSQL (see store.ts), part of `PostgresStore`.
 *
 * - A token is live while a connection of a live node holds it (the Presence tables, same schema):
 *   the token cap and idle expiry never delete one.
 * - `createTokenCapped` takes an advisory transaction lock on the client, so that caps hold across
 *   nodes; calls of this process for one client also queue up locally, in call order.
 * - Revocations append to `changes` under a table lock, so that sequence numbers become visible in
 *   order and a reader's cursor never skips one committed late.
 */
export class PostgresRegistry implements Registry {
  readonly #db: PgPool;
  readonly #touches = new Map<string, number>();
  #touchTimer: NodeJS.Timeout | undefined;
  #changeCursor = 0;
  /** Per client: the last capped creation of this process, so that the next one waits for it. */
  readonly #capQueue = new Map<string, Promise<unknown>>();

  constructor(db: PgPool) {
    this.#db = db;
  }

  /** Live connections count only on nodes whose lease is unexpired (the database's clock). */
  #liveSql(tokenColumn: string): string {
    return `EXISTS (SELECT 1 FROM ${this.#db.t('connections')} c JOIN ${this.#db.t('nodes')} n ON n.node_id = c.node_id
      WHERE c.token_hash = ${tokenColumn} AND n.expires_at > now())`;
  }

  async open(): Promise<void> {
    const [row] = await this.#db.query<{ s: number }>(`SELECT COALESCE(max(seq), 0) AS s FROM ${this.#db.t('changes')}`);
    this.#changeCursor = row!.s;
  }

  async close(): Promise<void> {
    clearTimeout(this.#touchTimer);
    this.#touchTimer = undefined;
    await Promise.allSettled(this.#capQueue.values());
    try {
      await this.#writeTouches();
    } catch {
      // Last-use times are advisory (idle-token expiry); the store is closing either way.
    }
  }

  async createClient(c: ClientRecord): Promise<void> {
    await this.#db.query(
      `INSERT INTO ${this.#db.t('clients')} (id, name, secret_hash, subscribe, publish, presence, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [c.id, c.name, c.secretHash, c.subscribe, c.publish, c.presence ?? [], c.createdAt, c.revokedAt],
    );
  }

  async getClient(id: string): Promise<ClientRecord | undefined> {
    const [row] = await this.#db.query<ClientRow>(`SELECT * FROM ${this.#db.t('clients')} WHERE id = $1`, [id]);
    return row && toClient(row);
  }

  async listClients(): Promise<ClientRecord[]> {
    return (await this.#db.query<ClientRow>(`SELECT * FROM ${this.#db.t('clients')} ORDER BY created_at, id`)).map(toClient);
  }

  async revokeClient(id: string, at: number): Promise<boolean> {
    return this.#db.tx(async (c) => {
      const r = await c.query(`UPDATE ${this.#db.t('clients')} SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, [at, id]);
      if (r.rowCount === 0) return false;
      await c.query(`DELETE FROM ${this.#db.t('tokens')} WHERE client_id = $1`, [id]);
      await this.#change(c, 'client_revoked', id);
      return true;
    });
  }

  async #change(c: PoolClient, kind: string, ref: string): Promise<void> {
    // Held to commit: the next writer's sequence number is drawn only after this one is visible.
    await c.query(`LOCK TABLE ${this.#db.t('changes')} IN EXCLUSIVE MODE`);
    await c.query(`INSERT INTO ${this.#db.t('changes')} (kind, ref) VALUES ($1, $2)`, [kind, ref]);
  }

  async createKey(k: KeyRecord): Promise<void> {
    await this.#db.query(
      `INSERT INTO ${this.#db.t('keys')} (id, name, scope, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [k.id, k.name, k.scope, k.hash, k.createdAt, k.revokedAt],
    );
  }

  async findKey(hash: string): Promise<KeyRecord | undefined> {
    const [row] = await this.#db.query<KeyRow>(`SELECT * FROM ${this.#db.t('keys')} WHERE hash = $1 AND revoked_at IS NULL`, [hash]);
    return row && toKey(row);
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (await this.#db.query<KeyRow>(`SELECT * FROM ${this.#db.t('keys')} ORDER BY created_at, id`)).map(toKey);
  }

  async revokeKey(nameOrId: string, at: number): Promise<boolean> {
    return this.#db.tx(async (c) => {
      const r = await c.query<{ id: string }>(
        `UPDATE ${this.#db.t('keys')} SET revoked_at = $1 WHERE (id = $2 OR name = $2) AND revoked_at IS NULL RETURNING id`,
        [at, nameOrId],
      );
      if (r.rowCount === 0) return false;
      for (const { id } of r.rows) await this.#change(c, 'key_revoked', id);
      return true;
    });
  }

  async createToken(t: TokenRecord): Promise<void> {
    await this.#db.query(`INSERT INTO ${this.#db.t('tokens')} (hash, client_id, created_at, last_used_at) VALUES ($1, $2, $3, $4)`, [
      t.hash,
      t.clientId,
      t.createdAt,
      t.lastUsedAt,
    ]);
  }

  createTokenCapped(t: TokenRecord, max: number): Promise<{ created: boolean; revoked: string[] }> {
    const prev = this.#capQueue.get(t.clientId);
    const run = (prev ? prev.catch(() => undefined) : Promise.resolve()).then(() => this.#createCapped(t, max));
    this.#capQueue.set(t.clientId, run);
    const forget = () => {
      if (this.#capQueue.get(t.clientId) === run) this.#capQueue.delete(t.clientId);
    };
    run.then(forget, forget);
    return run;
  }

  #createCapped(t: TokenRecord, max: number): Promise<{ created: boolean; revoked: string[] }> {
    const tokens = this.#db.t('tokens');
    return this.#db.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [this.#db.lockName('tokens', t.clientId)]);
      const count = await c.query<{ n: number }>(`SELECT count(*) AS n FROM ${tokens} WHERE client_id = $1`, [t.clientId]);
      const need = count.rows[0]!.n + 1 - max;
      const revoked: string[] = [];
      if (need > 0) {
        const rows = (
          await c.query<{ hash: string; created_at: number; last_used_at: number; live: boolean }>(
            `SELECT t.hash, t.created_at, t.last_used_at, ${this.#liveSql('t.hash')} AS live FROM ${tokens} t WHERE t.client_id = $1`,
            [t.clientId],
          )
        ).rows;
        // Least recently used first, by the latest use even when it is not written yet.
        const idle = rows
          .filter((r) => !r.live)
          .map((r) => ({ hash: r.hash, used: Math.max(r.last_used_at, this.#touches.get(r.hash) ?? 0), created: r.created_at }))
          .sort((a, b) => a.used - b.used || a.created - b.created || (a.hash < b.hash ? -1 : 1));
        if (idle.length < need) return { created: false, revoked };
        for (const r of idle.slice(0, need)) revoked.push(r.hash);
        await c.query(`DELETE FROM ${tokens} WHERE hash = ANY($1::text[])`, [revoked]);
      }
      await c.query(`INSERT INTO ${tokens} (hash, client_id, created_at, last_used_at) VALUES ($1, $2, $3, $4)`, [
        t.hash,
        t.clientId,
        t.createdAt,
        t.lastUsedAt,
      ]);
      for (const h of revoked) this.#touches.delete(h);
      return { created: true, revoked };
    });
  }

  async getToken(hash: string): Promise<TokenRecord | undefined> {
    const [r] = await this.#db.query<{ hash: string; client_id: string; created_at: number; last_used_at: number }>(
      `SELECT hash, client_id, created_at, last_used_at FROM ${this.#db.t('tokens')} WHERE hash = $1`,
      [hash],
    );
    return (
      r && {
        hash: r.hash,
        clientId: r.client_id,
        createdAt: r.created_at,
        lastUsedAt: Math.max(r.last_used_at, this.#touches.get(hash) ?? 0),
      }
    );
  }

  async touchToken(hash: string, at: number): Promise<void> {
    if (at > (this.#touches.get(hash) ?? -Infinity)) this.#touches.set(hash, at);
    this.#touchTimer ??= setTimeout(() => {
      this.#touchTimer = undefined;
      // Kept for the next try on failure: a last-use time is advisory (idle-token expiry), never data.
      this.#writeTouches().catch(() => undefined);
    }, TOUCH_FLUSH_MS).unref();
  }

  /** Writes the pending last-use times in one statement. */
  async #writeTouches(): Promise<void> {
    if (this.#touches.size === 0) return;
    const touches = [...this.#touches];
    await this.#db.query(
      `UPDATE ${this.#db.t('tokens')} t SET last_used_at = v.at FROM unnest($1::text[], $2::bigint[]) AS v(hash, at)
       WHERE t.hash = v.hash AND t.last_used_at < v.at`,
      [touches.map(([h]) => h), touches.map(([, at]) => at)],
    );
    for (const [hash, at] of touches) if (this.#touches.get(hash) === at) this.#touches.delete(hash);
  }

  async deleteToken(hash: string): Promise<void> {
    await this.#db.query(`DELETE FROM ${this.#db.t('tokens')} WHERE hash = $1`, [hash]);
    this.#touches.delete(hash);
  }

  async deleteIdleTokens(before: number): Promise<number> {
    await this.#writeTouches();
    const [row] = await this.#db.query<{ n: number }>(
      `WITH d AS (DELETE FROM ${this.#db.t('tokens')} t WHERE t.last_used_at < $1 AND NOT ${this.#liveSql('t.hash')} RETURNING t.hash)
       SELECT count(*) AS n FROM d`,
      [before],
    );
    return row!.n;
  }

  async createTicket(hash: string, tokenHash: string, expiresAt: number): Promise<void> {
    await this.#db.query(`INSERT INTO ${this.#db.t('tickets')} (hash, token_hash, expires_at) VALUES ($1, $2, $3)`, [
      hash,
      tokenHash,
      expiresAt,
    ]);
  }

  async consumeTicket(hash: string, now: number): Promise<string | undefined> {
    const [row] = await this.#db.query<{ token_hash: string; expires_at: number }>(
      `DELETE FROM ${this.#db.t('tickets')} WHERE hash = $1 RETURNING token_hash, expires_at`,
      [hash],
    );
    return row && row.expires_at > now ? row.token_hash : undefined;
  }

  async pollChanges(): Promise<Changes> {
    const rows = await this.#db.query<{ seq: number; kind: string; ref: string }>(
      `SELECT seq, kind, ref FROM ${this.#db.t('changes')} WHERE seq > $1 ORDER BY seq`,
      [this.#changeCursor],
    );
    const out: Changes = { revokedClients: [], revokedKeys: [] };
    for (const r of rows) {
      this.#changeCursor = r.seq;
      if (r.kind === 'client_revoked') out.revokedClients.push(r.ref);
      else if (r.kind === 'key_revoked') out.revokedKeys.push(r.ref);
    }
    return out;
  }

  /** Deletes expired tickets (the store's `trim`). */
  async trim(now: number): Promise<void> {
    await this.#db.query(`DELETE FROM ${this.#db.t('tickets')} WHERE expires_at <= $1`, [now]);
  }
}
