import { performance } from 'node:perf_hooks';
import type { PoolClient } from 'pg';
import {
  PresenceConflict,
  type ClaimResult,
  type ConnectionRecord,
  type NodeRecord,
  type Presence,
  type PresenceNode,
  type Subscriber,
} from '../cluster/presence.ts';
import type { PgPool } from './postgres-pool.ts';

interface ConnRow {
  id: string;
  client_id: string;
  token_hash: string;
  node_id: string;
  connected_at: number;
  remote_address: string;
}

const toConn = (r: ConnRow): ConnectionRecord => ({
  id: r.id,
  clientId: r.client_id,
  tokenHash: r.token_hash,
  nodeId: r.node_id,
  connectedAt: r.connected_at,
  remoteAddress: r.remote_address,
});

/** Joins and leaves are written at most this long after they happen (the contract allows ~100 ms). */
const FLUSH_MS = 50;

/**
 * The Presence role on PostgreSQL (see cluster/presence.ts): tables `nodes`, `connections` and
 * `subscriptions` in the store's schema.
 *
 * Time: lease expiry uses the database's clock only (`now()`, `expires_at timestamptz`), so clock
 * skew between nodes never makes a lease look live or dead. This node's own view of its lease (when
 * to report it lost) is a local monotonic timer started when a successful renewal was sent, which
 * therefore runs out no later than the row does.
 *
 * - Live = the connection's node row is unexpired. Every read joins `nodes` on that; rows of a dead
 *   node stop counting the moment its lease runs out, before anyone reaps them.
 * - `claim` takes advisory transaction locks on the token (and, with a per-client limit, on the client
 *   first: always in that order), then checks and inserts; the insert also requires this node's own
 *   lease to be live, so a node that lost its lease cannot claim.
 * - Reaping: each renewal deletes the nodes expired for more than a renewal period, with their
 *   connections and subscriptions, in one statement (`DELETE … RETURNING`: of several reapers only
 *   one gets a given node) and hands the subscriptions to `onReaped`.
 */
export class PostgresPresence implements Presence {
  readonly #db: PgPool;
  #node: PresenceNode | undefined;
  #startedAt = 0;
  #closed = false;
  #interval: NodeJS.Timeout | undefined;
  readonly #lane: PgPool;
  #lostTimer: NodeJS.Timeout | undefined;
  #lost = false;
  #renewal: Promise<void> | undefined;
  /** Pending subscription changes: connection → topic → `since` (join) or null (leave). */
  #ops = new Map<string, Map<string, number | null>>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  /**
   * `lane`: a pool of its own (one connection) for the lease renewals, so that they never queue behind
   * a storm of claims and joins on the shared pool — a node under load must not lose its lease.
   */
  constructor(db: PgPool, lane?: PgPool) {
    this.#db = db;
    this.#lane = lane ?? db;
  }

  #t(name: string): string {
    return this.#db.t(name);
  }

  /** `JOIN nodes n` on the connection alias `c`, keeping live nodes only. */
  get #live(): string {
    return `JOIN ${this.#t('nodes')} n ON n.node_id = c.node_id AND n.expires_at > now()`;
  }

  async start(node: PresenceNode): Promise<void> {
    if (this.#closed) throw new Error('presence is closed');
    if (this.#node) throw new Error('presence is already started');
    await this.#db.retain();
    if (this.#lane !== this.#db) {
      try {
        await this.#lane.retain();
      } catch (err) {
        await this.#db.release();
        throw err;
      }
    }
    this.#startedAt = Date.now();
    let left: Subscriber[];
    try {
      const sentAt = performance.now();
      left = await this.#db.tx(async (c) => {
        if (!(await this.#register(async (sql, params) => (await c.query(sql, params)).rows, node))) throw this.#conflict(node);
        // What an earlier process of this node left behind (it crashed): not this process's.
        return this.#deleteNodeRows(c, node.nodeId);
      });
      this.#node = node;
      this.#renewed(sentAt);
    } catch (err) {
      await this.#db.release();
      if (this.#lane !== this.#db) await this.#lane.release();
      throw err;
    }
    this.#interval = setInterval(() => void this.#renew(), Math.max(1, Math.floor(node.leaseMs / 3))).unref();
    if (left.length) this.#report(node.nodeId, left);
  }

  #conflict(node: PresenceNode): PresenceConflict {
    return new PresenceConflict(`another live process holds nodeId ${JSON.stringify(node.nodeId)}: give each node its own nodeId`);
  }

  /** Inserts or renews this node's row; false when another live process holds the node id. */
  async #register(query: (sql: string, params: unknown[]) => Promise<unknown[]>, node: PresenceNode): Promise<boolean> {
    const sql = `INSERT INTO ${this.#t('nodes')} AS x (node_id, instance_id, address, started_at, expires_at)
      VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
      ON CONFLICT (node_id) DO UPDATE SET instance_id = excluded.instance_id, address = excluded.address,
        started_at = excluded.started_at, expires_at = excluded.expires_at
      WHERE x.instance_id = excluded.instance_id OR x.expires_at <= now()
      RETURNING 1`;
    const params = [node.nodeId, node.instanceId, node.address, this.#startedAt, node.leaseMs];
    return (await query(sql, params)).length === 1;
  }

  /** Deletes the connections and subscriptions of a node; returns the subscriptions. */
  async #deleteNodeRows(c: PoolClient, nodeId: string): Promise<Subscriber[]> {
    const r = await c.query<{ connection_id: string; client_id: string; topic: string; since: number }>(
      `WITH conns AS (DELETE FROM ${this.#t('connections')} WHERE node_id = $1 RETURNING id, client_id)
       DELETE FROM ${this.#t('subscriptions')} s USING conns WHERE s.connection_id = conns.id
       RETURNING s.connection_id, conns.client_id, s.topic, s.since`,
      [nodeId],
    );
    return r.rows.map((s) => ({ connectionId: s.connection_id, clientId: s.client_id, nodeId, topic: s.topic, since: s.since }));
  }

  #report(nodeId: string, subscriptions: Subscriber[]): void {
    try {
      this.#node?.onReaped?.({ nodeId, subscriptions });
    } catch {
      // The listener's failure is its own; reaping is done.
    }
  }

  /** A renewal sent at `sentAt` succeeded: the lease holds until `sentAt + leaseMs` at least. */
  #renewed(sentAt: number): void {
    const node = this.#node!;
    clearTimeout(this.#lostTimer);
    this.#lostTimer = setTimeout(
      () => {
        if (this.#lost || this.#closed) return;
        this.#lost = true;
        node.onLeaseLost?.();
      },
      Math.max(0, node.leaseMs - (performance.now() - sentAt)),
    ).unref();
    if (this.#lost) {
      this.#lost = false;
      node.onLeaseRegained?.();
    }
  }

  #renew(): Promise<void> {
    this.#renewal ??= this.#renewOnce().finally(() => (this.#renewal = undefined));
    return this.#renewal;
  }

  async #renewOnce(): Promise<void> {
    const node = this.#node;
    if (!node || this.#closed) return;
    const sentAt = performance.now();
    try {
      // Also re-inserts the row if it was reaped while this node could not reach the database.
      if (!(await this.#register((sql, params) => this.#lane.query(sql, params), node))) return;
    } catch {
      return; // the lost timer reports it if this goes on for a lease
    }
    if (this.#closed) return;
    this.#renewed(sentAt);
    await this.#reap(node.leaseMs / 3).catch(() => undefined);
    if (this.#ops.size) await this.flush().catch(() => undefined);
  }

  async #reap(graceMs: number): Promise<void> {
    const rows = await this.#db.query<{ node_id: string; connection_id: string | null; client_id: string; topic: string; since: number }>(
      `WITH dead AS (DELETE FROM ${this.#t('nodes')} WHERE expires_at < now() - $1 * interval '1 millisecond' RETURNING node_id),
         conns AS (DELETE FROM ${this.#t('connections')} c USING dead WHERE c.node_id = dead.node_id RETURNING c.id, c.client_id, c.node_id),
         subs AS (DELETE FROM ${this.#t('subscriptions')} s USING conns WHERE s.connection_id = conns.id
           RETURNING s.connection_id, conns.client_id, conns.node_id, s.topic, s.since)
       SELECT d.node_id, s.connection_id, s.client_id, s.topic, s.since FROM dead d LEFT JOIN subs s ON s.node_id = d.node_id`,
      [graceMs],
    );
    const gone = new Map<string, Subscriber[]>();
    for (const r of rows) {
      let subs = gone.get(r.node_id);
      if (!subs) gone.set(r.node_id, (subs = []));
      if (r.connection_id !== null)
        subs.push({ connectionId: r.connection_id, clientId: r.client_id, nodeId: r.node_id, topic: r.topic, since: r.since });
    }
    for (const [nodeId, subs] of gone) this.#report(nodeId, subs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#interval);
    clearTimeout(this.#lostTimer);
    clearTimeout(this.#flushTimer);
    this.#ops.clear();
    const node = this.#node;
    if (!node) return;
    await this.#renewal;
    await this.#flushing.catch(() => undefined);
    try {
      await this.#db.query(
        `WITH me AS (DELETE FROM ${this.#t('nodes')} WHERE node_id = $1 AND instance_id = $2 RETURNING node_id),
           conns AS (DELETE FROM ${this.#t('connections')} WHERE node_id IN (SELECT node_id FROM me) RETURNING id)
         DELETE FROM ${this.#t('subscriptions')} WHERE connection_id IN (SELECT id FROM conns)`,
        [node.nodeId, node.instanceId],
      );
    } catch {
      // Unreachable: the lease runs out by itself and another node reaps the rows.
    } finally {
      await this.#db.release();
      if (this.#lane !== this.#db) await this.#lane.release();
    }
  }

  #started(): PresenceNode {
    if (this.#closed) throw new Error('presence is closed');
    if (!this.#node) throw new Error('presence is not started');
    return this.#node;
  }

  async claim(conn: ConnectionRecord, opts: { replace: boolean; maxPerClient: number }): Promise<ClaimResult> {
    this.#started();
    const limit = opts.maxPerClient > 0;
    const locks = [...(limit ? [this.#db.lockName('client', conn.clientId)] : []), this.#db.lockName('token', conn.tokenHash)];
    // One round trip (migration 3): lock, check, replace and insert in the function's transaction.
    const [row] = await this.#db.query<{ r: { ok: boolean; reason?: 'duplicate' | 'client_limit'; holders: ConnRow[] | null } }>(
      `SELECT ${this.#t('claim_connection')}($1, $2, $3, $4, $5, $6, $7, $8, $9) AS r`,
      [
        conn.id,
        conn.clientId,
        conn.tokenHash,
        conn.nodeId,
        conn.connectedAt,
        conn.remoteAddress,
        opts.replace,
        limit ? opts.maxPerClient : 0,
        locks,
      ],
    );
    const r = row!.r;
    const holder = r.holders?.length ? toConn(r.holders[0]!) : undefined;
    if (!r.ok)
      return r.reason === 'duplicate' ? { ok: false, reason: 'duplicate', holder: holder! } : { ok: false, reason: 'client_limit' };
    return holder ? { ok: true, replaced: holder } : { ok: true };
  }

  async release(connectionId: string): Promise<void> {
    this.#started();
    this.#ops.delete(connectionId);
    // A write in progress may still add its subscriptions: delete after it.
    await this.#flushing.catch(() => undefined);
    await this.#db.query(
      `WITH s AS (DELETE FROM ${this.#t('subscriptions')} WHERE connection_id = $1) DELETE FROM ${this.#t('connections')} WHERE id = $1`,
      [connectionId],
    );
  }

  async connectionsOfToken(tokenHash: string): Promise<ConnectionRecord[]> {
    this.#started();
    const rows = await this.#db.query<ConnRow>(`SELECT c.* FROM ${this.#t('connections')} c ${this.#live} WHERE c.token_hash = $1`, [
      tokenHash,
    ]);
    return rows.map(toConn);
  }

  async listConnections(): Promise<ConnectionRecord[]> {
    this.#started();
    const rows = await this.#db.query<ConnRow>(`SELECT c.* FROM ${this.#t('connections')} c ${this.#live} ORDER BY c.connected_at, c.id`);
    return rows.map(toConn);
  }

  async liveTokens(hashes: readonly string[]): Promise<Set<string>> {
    this.#started();
    if (hashes.length === 0) return new Set();
    const rows = await this.#db.query<{ token_hash: string }>(
      `SELECT DISTINCT c.token_hash FROM ${this.#t('connections')} c ${this.#live} WHERE c.token_hash = ANY($1::text[])`,
      [hashes],
    );
    return new Set(rows.map((r) => r.token_hash));
  }

  join(connectionId: string, topic: string, at: number): void {
    this.#op(connectionId, topic, at);
  }

  leave(connectionId: string, topic: string): void {
    this.#op(connectionId, topic, null);
  }

  #op(connectionId: string, topic: string, since: number | null): void {
    if (this.#closed || !this.#node) return;
    let m = this.#ops.get(connectionId);
    if (!m) this.#ops.set(connectionId, (m = new Map()));
    m.set(topic, since);
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      // On failure the changes are kept; the next renewal (or join) tries again.
      this.flush().catch(() => undefined);
    }, FLUSH_MS).unref();
  }

  /** Writes pending joins and leaves (one statement); one write at a time, in order. */
  flush(): Promise<void> {
    const run = this.#flushing.catch(() => undefined).then(() => this.#write());
    this.#flushing = run;
    return run;
  }

  async #write(): Promise<void> {
    if (this.#ops.size === 0 || this.#closed) return;
    const ops = this.#ops;
    this.#ops = new Map();
    const joins = { conn: [] as string[], topic: [] as string[], since: [] as number[] };
    const leaves = { conn: [] as string[], topic: [] as string[] };
    for (const [conn, topics] of ops)
      for (const [topic, since] of topics) {
        if (since === null) {
          leaves.conn.push(conn);
          leaves.topic.push(topic);
        } else {
          joins.conn.push(conn);
          joins.topic.push(topic);
          joins.since.push(since);
        }
      }
    try {
      await this.#db.query(
        `WITH l AS (DELETE FROM ${this.#t('subscriptions')} s USING unnest($1::text[], $2::text[]) AS u(c, t)
            WHERE s.connection_id = u.c AND s.topic = u.t)
         INSERT INTO ${this.#t('subscriptions')} (connection_id, topic, since)
         SELECT u.c, u.t, u.s FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u(c, t, s)
         WHERE EXISTS (SELECT 1 FROM ${this.#t('connections')} WHERE id = u.c)
         ON CONFLICT (connection_id, topic) DO UPDATE SET since = excluded.since`,
        [leaves.conn, leaves.topic, joins.conn, joins.topic, joins.since],
      );
    } catch (err) {
      // Put back what was not superseded meanwhile.
      for (const [conn, topics] of ops) {
        let m = this.#ops.get(conn);
        if (!m) this.#ops.set(conn, (m = new Map()));
        for (const [topic, since] of topics) if (!m.has(topic)) m.set(topic, since);
      }
      throw err;
    }
  }

  async subscribers(topic: string): Promise<Subscriber[]> {
    this.#started();
    if (this.#ops.size) await this.flush();
    const rows = await this.#db.query<{ connection_id: string; client_id: string; node_id: string; topic: string; since: number }>(
      `SELECT s.connection_id, c.client_id, c.node_id, s.topic, s.since FROM ${this.#t('subscriptions')} s
       JOIN ${this.#t('connections')} c ON c.id = s.connection_id ${this.#live} WHERE s.topic = $1 ORDER BY s.since, s.connection_id`,
      [topic],
    );
    return rows.map((r) => ({ connectionId: r.connection_id, clientId: r.client_id, nodeId: r.node_id, topic: r.topic, since: r.since }));
  }

  async nodes(): Promise<NodeRecord[]> {
    this.#started();
    const rows = await this.#db.query<{ node_id: string; instance_id: string; address: string; started_at: number; expires_ms: number }>(
      `SELECT node_id, instance_id, address, started_at, (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms
       FROM ${this.#t('nodes')} WHERE expires_at > now() ORDER BY node_id`,
    );
    return rows.map((r) => ({
      nodeId: r.node_id,
      instanceId: r.instance_id,
      address: r.address,
      startedAt: r.started_at,
      expiresAt: r.expires_ms,
    }));
  }
}
