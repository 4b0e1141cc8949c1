import type { PoolClient } from 'pg';
import { systemClock, type Clock } from '../core/clock.ts';
import type { PgPool } from './postgres-pool.ts';
import type { AppendRequest, AppendResult, History, HistoryLimits, PayloadKind, StoredMessage, TopicState } from './store.ts';

interface Pending {
  req: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface IdemRow {
  topic: string;
  offset: number;
  ts: number;
  request_hash: string;
}

/** An idempotency key first seen in this batch: its message is the batch's request `index`. */
interface FreshKey extends IdemRow {
  index: number;
}

const idemId = (scope: string, key: string) => `${scope}\x1f${key}`;
/** Rows deleted per statement by the TTL sweep, so that no transaction grows without bound. */
const SWEEP_CHUNK = 10_000;

/**
 * The History role on PostgreSQL (see store.ts), part of `PostgresStore`.
 *
 * Group commit: the appends of one event-loop turn share one transaction, which
 * 1. takes advisory locks on their idempotency keys (sorted, so two nodes never deadlock) and reads
 *    the keys already seen — inside the transaction, so one key appended on two nodes at once gives
 *    one message;
 * 2. upserts each topic's row once, adding the number of new messages (sorted by topic: the row lock
 *    orders the appends of every node and gives this batch a block of offsets);
 * 3. inserts the messages, the new keys, and trims each topic to `history.size`, with one statement
 *    each (arrays through `unnest`).
 * One batch commits at a time; appends made meanwhile form the next batch. Promises settle in call
 * order once the transaction committed.
 *
 * Times are the application's (message `ts`, the store's clock for the TTL), as for SQLite. A topic's
 * epoch is the store's epoch, chosen once when the schema was created.
 */
export class PostgresHistory implements History {
  readonly #db: PgPool;
  readonly #limits: HistoryLimits;
  readonly #clock: Clock;
  #epoch = '';
  #queue: Pending[] = [];
  #scheduled = false;
  #committing: Promise<void> | undefined;

  constructor(db: PgPool, limits: HistoryLimits, clock: Clock = systemClock) {
    this.#db = db;
    this.#limits = limits;
    this.#clock = clock;
  }

  async open(): Promise<void> {
    const [row] = await this.#db.query<{ v: string }>(`SELECT v FROM ${this.#db.t('meta')} WHERE k = 'epoch'`);
    this.#epoch = row!.v;
  }

  /** Waits until every append made so far has settled. */
  async close(): Promise<void> {
    while (this.#committing || this.#queue.length) {
      if (!this.#committing) this.#commitNext();
      await this.#committing;
    }
  }

  append(req: AppendRequest): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ req, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#committing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#committing) this.#commitNext();
    });
  }

  #commitNext(): void {
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    this.#committing = this.#db
      .tx((c) => this.#commit(c, batch))
      .then(
        (results) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      )
      .finally(() => {
        this.#committing = undefined;
        if (this.#queue.length) this.#schedule();
      });
  }

  async #commit(c: PoolClient, batch: Pending[]): Promise<AppendResult[]> {
    const { size, dedupeS } = this.#limits;
    const t = (name: string) => this.#db.t(name);
    const results: AppendResult[] = new Array<AppendResult>(batch.length);
    const keyed = dedupeS > 0 ? batch.filter((p) => p.req.key !== undefined) : [];

    // 1. Idempotency keys: locked, then read (a key committed by another node meanwhile is seen).
    const seen = new Map<string, IdemRow | FreshKey>();
    if (keyed.length) {
      const scopes = keyed.map((p) => p.req.scope ?? '');
      const keys = keyed.map((p) => p.req.key!);
      await c.query(
        `SELECT pg_advisory_xact_lock(h) FROM (
           SELECT DISTINCT hashtextextended($3 || chr(31) || s || chr(31) || k, 0) AS h FROM unnest($1::text[], $2::text[]) AS u(s, k) ORDER BY 1) x`,
        [scopes, keys, this.#db.lockName('idempotency')],
      );
      const rows = await c.query<IdemRow & { scope: string; key: string }>(
        `SELECT i.scope, i.key, i.topic, i."offset", i.ts, i.request_hash FROM ${t('idempotency')} i
         JOIN unnest($1::text[], $2::text[]) AS u(s, k) ON i.scope = u.s AND i.key = u.k`,
        [scopes, keys],
      );
      for (const r of rows.rows) seen.set(idemId(r.scope, r.key), r);
    }

    // 2. Each request, in call order: a duplicate, a conflict, or a new message of its topic.
    const counts = new Map<string, number>();
    const appended: number[] = [];
    const fresh = new Map<string, FreshKey>();
    const echoes: { index: number; of: IdemRow | FreshKey }[] = [];
    for (let i = 0; i < batch.length; i++) {
      const req = batch[i]!.req;
      if (req.key !== undefined && dedupeS > 0) {
        const id = idemId(req.scope ?? '', req.key);
        const hash = req.requestHash ?? '';
        const prior = seen.get(id);
        if (prior && prior.ts >= req.ts - dedupeS * 1000) {
          if (prior.topic !== req.topic || prior.request_hash !== hash)
            results[i] = { offset: 0, epoch: '', ts: req.ts, duplicate: false, conflict: true };
          else echoes.push({ index: i, of: prior });
          continue;
        }
        const key: FreshKey = { topic: req.topic, offset: 0, ts: req.ts, request_hash: hash, index: i };
        seen.set(id, key);
        fresh.set(id, key);
      }
      appended.push(i);
      counts.set(req.topic, (counts.get(req.topic) ?? 0) + 1);
    }

    // 3. One row update per topic gives each a block of offsets: (last - n, last].
    const epochs = new Map<string, string>();
    const lasts = new Map<string, number>();
    if (counts.size) {
      const topics = [...counts.keys()];
      const rows = await c.query<{ topic: string; last_offset: number; epoch: string }>(
        `INSERT INTO ${t('topics')} AS t (topic, last_offset, epoch)
         SELECT u.topic, u.n, $3 FROM unnest($1::text[], $2::bigint[]) AS u(topic, n) ORDER BY u.topic
         ON CONFLICT (topic) DO UPDATE SET last_offset = t.last_offset + excluded.last_offset
         RETURNING topic, last_offset, epoch`,
        [topics, topics.map((tp) => counts.get(tp)!), this.#epoch],
      );
      for (const r of rows.rows) {
        epochs.set(r.topic, r.epoch);
        lasts.set(r.topic, r.last_offset);
      }
    }
    const next = new Map<string, number>();
    for (const [topic, n] of counts) next.set(topic, lasts.get(topic)! - n + 1);
    const msg = { topic: [] as string[], offset: [] as number[], ts: [] as number[], kind: [] as string[], payload: [] as Buffer[] };
    for (const i of appended) {
      const req = batch[i]!.req;
      const offset = next.get(req.topic)!;
      next.set(req.topic, offset + 1);
      results[i] = { offset, epoch: epochs.get(req.topic)!, ts: req.ts, duplicate: false };
      // A message that the size trim would delete in this same transaction is not written at all.
      if (size > 0 && offset > lasts.get(req.topic)! - size) {
        msg.topic.push(req.topic);
        msg.offset.push(offset);
        msg.ts.push(req.ts);
        msg.kind.push(req.kind);
        msg.payload.push(req.payload);
      }
    }
    for (const k of fresh.values()) k.offset = results[k.index]!.offset;

    // 4. Messages, new keys, size trim: one statement each.
    if (msg.topic.length)
      await c.query(
        `INSERT INTO ${t('messages')} (topic, "offset", ts, kind, payload)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[])`,
        [msg.topic, msg.offset, msg.ts, msg.kind, msg.payload],
      );
    if (fresh.size) {
      const rows = [...fresh].map(([id, k]) => ({ ...k, scope: id.slice(0, id.indexOf('\x1f')), key: id.slice(id.indexOf('\x1f') + 1) }));
      await c.query(
        `INSERT INTO ${t('idempotency')} AS i (scope, key, topic, "offset", ts, request_hash)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
         ON CONFLICT (scope, key) DO UPDATE SET topic = excluded.topic, "offset" = excluded."offset", ts = excluded.ts,
           request_hash = excluded.request_hash`,
        [
          rows.map((r) => r.scope),
          rows.map((r) => r.key),
          rows.map((r) => r.topic),
          rows.map((r) => r.offset),
          rows.map((r) => r.ts),
          rows.map((r) => r.request_hash),
        ],
      );
    }
    const trims = size > 0 ? [...lasts].filter(([, last]) => last > size) : [];
    if (trims.length)
      await c.query(
        `DELETE FROM ${t('messages')} m USING unnest($1::text[], $2::bigint[]) AS u(topic, upto) WHERE m.topic = u.topic AND m."offset" <= u.upto`,
        [trims.map(([topic]) => topic), trims.map(([, last]) => last - size)],
      );

    // 5. Duplicates and conflicts carry the epoch of their topic (of the first message for a duplicate).
    const later = [...echoes.map((e) => e.of.topic), ...results.flatMap((r, i) => (r?.conflict ? [batch[i]!.req.topic] : []))];
    for (const [topic, epoch] of await this.#epochs(
      c,
      later.filter((tp) => !epochs.has(tp)),
    ))
      epochs.set(topic, epoch);
    for (const { index, of } of echoes) results[index] = { offset: of.offset, epoch: epochs.get(of.topic)!, ts: of.ts, duplicate: true };
    for (let i = 0; i < results.length; i++) if (results[i]!.conflict) results[i]!.epoch = epochs.get(batch[i]!.req.topic)!;
    return results;
  }

  /** Epochs of `topics`; a topic without a row has the store's. */
  async #epochs(c: PoolClient, topics: string[]): Promise<Map<string, string>> {
    const out = new Map(topics.map((tp) => [tp, this.#epoch]));
    if (topics.length === 0) return out;
    const rows = await c.query<{ topic: string; epoch: string }>(
      `SELECT topic, epoch FROM ${this.#db.t('topics')} WHERE topic = ANY($1::text[])`,
      [[...out.keys()]],
    );
    for (const r of rows.rows) out.set(r.topic, r.epoch);
    return out;
  }

  async readHistory(topic: string, after: number, limit: number, maxBytes = Infinity): Promise<StoredMessage[]> {
    const messages = this.#db.t('messages');
    const page = `SELECT topic, "offset", ts, kind, payload FROM ${messages} WHERE topic = $1 AND "offset" > $2 AND ts >= $3 ORDER BY "offset" LIMIT $4`;
    const params: unknown[] = [topic, after, this.#oldestKept(), limit];
    // With a byte budget, the page stops before the first message that would exceed it (never the first one).
    const sql =
      maxBytes === Infinity
        ? page
        : `SELECT topic, "offset", ts, kind, payload FROM (
             SELECT *, row_number() OVER w AS n, sum(octet_length(payload)) OVER w AS upto FROM (${page}) p WINDOW w AS (ORDER BY "offset")) x
           WHERE n = 1 OR upto <= $5 ORDER BY "offset"`;
    if (maxBytes !== Infinity) params.push(maxBytes);
    const rows = await this.#db.query<{ topic: string; offset: number; ts: number; kind: PayloadKind; payload: Buffer }>(sql, params);
    return rows.map((r) => ({ topic: r.topic, offset: r.offset, ts: r.ts, kind: r.kind, payload: r.payload }));
  }

  async topicState(topic: string): Promise<TopicState> {
    const [row] = await this.#db.query<{ last_offset: number; epoch: string; first: number | null }>(
      `SELECT last_offset, epoch, (SELECT min("offset") FROM ${this.#db.t('messages')} WHERE topic = $1 AND ts >= $2) AS first
       FROM ${this.#db.t('topics')} WHERE topic = $1`,
      [topic, this.#oldestKept()],
    );
    if (!row) return { offset: 0, epoch: this.#epoch, firstRetained: 1 };
    const last = row.last_offset;
    return { offset: last, epoch: row.epoch, firstRetained: row.first === null || row.first > last ? last + 1 : row.first };
  }

  async latest(topics: readonly string[]): Promise<Map<string, { offset: number; epoch: string }>> {
    const out = new Map<string, { offset: number; epoch: string }>();
    if (topics.length === 0) return out;
    const rows = await this.#db.query<{ topic: string; last_offset: number; epoch: string }>(
      `SELECT topic, last_offset, epoch FROM ${this.#db.t('topics')} WHERE topic = ANY($1::text[])`,
      [topics],
    );
    for (const r of rows) out.set(r.topic, { offset: Number(r.last_offset), epoch: r.epoch });
    return out;
  }

  async listTopics(after: string, limit: number): Promise<{ topic: string; offset: number; epoch: string }[]> {
    // COLLATE "C": code-unit order, as the cursor compares (the database's collation may not).
    const rows = await this.#db.query<{ topic: string; last_offset: number; epoch: string }>(
      `SELECT topic, last_offset, epoch FROM ${this.#db.t('topics')} WHERE topic COLLATE "C" > $1 ORDER BY topic COLLATE "C" LIMIT $2`,
      [after, Math.min(limit, 1000)],
    );
    return rows.map((r) => ({ topic: r.topic, offset: Number(r.last_offset), epoch: r.epoch }));
  }

  /** Messages older than this (ms) are past the TTL: never replayed, even before trim() deletes them. */
  #oldestKept(): number {
    return this.#clock.now() - this.#limits.ttlS * 1000;
  }

  /** Deletes messages past the TTL (in chunks) and expired idempotency keys. */
  async trim(now: number): Promise<void> {
    const { ttlS, dedupeS } = this.#limits;
    const messages = this.#db.t('messages');
    for (;;) {
      const [row] = await this.#db.query<{ n: number }>(
        `WITH d AS (DELETE FROM ${messages} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${messages} WHERE ts < $1 LIMIT ${SWEEP_CHUNK})) RETURNING 1)
         SELECT count(*) AS n FROM d`,
        [now - ttlS * 1000],
      );
      if (row!.n < SWEEP_CHUNK) break;
    }
    await this.#db.query(`DELETE FROM ${this.#db.t('idempotency')} WHERE ts < $1`, [now - dedupeS * 1000]);
  }
}
