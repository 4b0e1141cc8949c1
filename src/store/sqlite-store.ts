import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock, type Clock } from '../core/clock.ts';
import { randomSecret } from '../core/ids.ts';
import { Checkpointer } from './checkpointer.ts';
import { WalSync } from './wal-sync.ts';
import type {
  AppendRequest,
  AppendResult,
  Changes,
  ClientRecord,
  HistoryLimits,
  KeyRecord,
  Store,
  StoredMessage,
  TokenRecord,
  TopicState,
} from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL,
  subscribe TEXT NOT NULL, publish TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_client ON tokens(client_id);
CREATE TABLE IF NOT EXISTS tickets (hash TEXT PRIMARY KEY, token_hash TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, last_offset INTEGER NOT NULL, epoch TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  topic TEXT NOT NULL, "offset" INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
  PRIMARY KEY (topic, "offset")) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts);
CREATE TABLE IF NOT EXISTS idempotency (
  scope TEXT NOT NULL, key TEXT NOT NULL, topic TEXT NOT NULL, "offset" INTEGER NOT NULL, ts INTEGER NOT NULL,
  request_hash TEXT NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, ref TEXT NOT NULL);
`;

interface ClientRow {
  id: string;
  name: string;
  secret_hash: string;
  subscribe: string;
  publish: string;
  presence: string;
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
  subscribe: JSON.parse(r.subscribe) as string[],
  publish: JSON.parse(r.publish) as string[],
  presence: JSON.parse(r.presence) as string[],
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

/** A write waiting for the next group commit. */
interface Pending {
  run: () => unknown;
  resolve: (r: never) => void;
  reject: (e: unknown) => void;
}

interface TopicRow {
  offset: number;
  epoch: string;
}

/** A topic appended to by the group commit in progress: its new last offset, and the one before. */
interface BatchTopic extends TopicRow {
  before: number;
}

/** Token last-use times wait at most this long for a commit to ride along with. */
const TOUCH_FLUSH_MS = 2000;

export interface SqliteStoreOptions {
  dataDir: string;
  synchronous: 'full' | 'normal';
  history: HistoryLimits;
  clock?: Clock;
  /**
   * The tokens with a live connection (of `clientId`, or all): never deleted by the token cap or idle
   * expiry. The embedded Presence gives it (`MemoryPresence.liveTokensOf`).
   */
  liveTokens?: (clientId?: string) => ReadonlySet<string>;
}

/**
 * The embedded default store: one SQLite file (`<dataDir>/hubcast.db`) in WAL mode, shared with the
 * CLI. Appends made in the same event-loop turn are committed in one transaction (group commit).
 * With `synchronous: 'full'` SQLite commits without fsync and `WalSync` fsyncs the WAL off the event
 * loop, one fsync for every commit made meanwhile; nothing is settled, nor shown by `readHistory` or
 * `topicState`, before it is on disk.
 *
 * This process is the only writer of history (the CLI never appends): topic offsets are kept in
 * memory, read once per topic, and written once per topic per commit — guarded, so that a second
 * writer on the same file fails loudly instead of reusing offsets.
 *
 * Live connections are the Presence role's (in memory for this one node): a connect or disconnect
 * costs no write and no fsync. Token last-use times (`touchToken`) ride along with the next commit, written at the latest
 * `TOUCH_FLUSH_MS` later, before an idle sweep and on close.
 */
export class SqliteStore implements Store {
  #opts: SqliteStoreOptions;
  #db: Database.Database | undefined;
  #epoch = '';
  #queue: Pending[] = [];
  #flushScheduled = false;
  #changeCursor = 0;
  readonly #touches = new Map<string, number>();
  #touchTimer: NodeJS.Timeout | undefined;
  #sync: WalSync | undefined;
  #checkpointer: Checkpointer | undefined;
  readonly #topics = new Map<string, TopicRow>();
  /** Topics with commits not on disk yet: the last offset that is. */
  readonly #syncedTo = new Map<string, number>();
  #batchTopics: Map<string, BatchTopic> | undefined;
  #stmts: ReturnType<SqliteStore['prepare']> | undefined;
  /** A database from before scoped idempotency keys still has unexpired rows in `dedupe`. */
  #legacyDedupe = false;

  constructor(opts: SqliteStoreOptions) {
    this.#opts = opts;
  }

  get path(): string {
    return join(this.#opts.dataDir, 'hubcast.db');
  }

  async open(): Promise<void> {
    if (this.#db) return;
    mkdirSync(this.#opts.dataDir, { recursive: true });
    const db = new Database(this.path);
    db.pragma('journal_mode = WAL');
    // 'full' durability comes from WalSync (see the class comment), not from SQLite's own fsync.
    db.pragma('synchronous = NORMAL');
    // Checkpoints run in a worker thread (Checkpointer); reads map the file instead of read() calls.
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('mmap_size = 268435456');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    db.exec(SCHEMA);
    // Migrations of databases made by earlier versions.
    const keyCols = (db.prepare('PRAGMA table_info(keys)').all() as { name: string }[]).map((c) => c.name);
    if (!keyCols.includes('scope')) db.exec("ALTER TABLE keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'ingest'");
    const clientCols = (db.prepare('PRAGMA table_info(clients)').all() as { name: string }[]).map((c) => c.name);
    if (!clientCols.includes('presence')) db.exec("ALTER TABLE clients ADD COLUMN presence TEXT NOT NULL DEFAULT '[]'");
    // Live connections moved to the Presence role (see the class comment).
    db.exec('DROP TABLE IF EXISTS connections');
    // Idempotency keys were kept per topic in `dedupe` (no scope, no request hash). Its rows are still
    // honoured as plain duplicates until they expire, then the table is dropped (see trim()).
    this.#legacyDedupe = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dedupe'").get() !== undefined;
    db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('epoch', randomSecret(9));
    this.#epoch = (db.prepare('SELECT v FROM meta WHERE k = ?').get('epoch') as { v: string }).v;
    if (this.#opts.synchronous === 'full') this.#sync = new WalSync(`${this.path}-wal`);
    this.#checkpointer = new Checkpointer({ dbPath: this.path, onFailure: () => this.#db?.pragma('wal_autocheckpoint = 1000') });
    this.#db = db;
    this.#stmts = this.prepare(db);
    this.#changeCursor = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM changes').get() as { s: number }).s;
  }

  private prepare(db: Database.Database) {
    return {
      getClient: db.prepare('SELECT * FROM clients WHERE id = ?'),
      getToken: db.prepare('SELECT hash, client_id, created_at, last_used_at FROM tokens WHERE hash = ?'),
      findKey: db.prepare('SELECT * FROM keys WHERE hash = ? AND revoked_at IS NULL'),
      topic: db.prepare('SELECT last_offset, epoch FROM topics WHERE topic = ?'),
      putTopic: db.prepare(
        'INSERT INTO topics (topic, last_offset, epoch) VALUES (?, ?, ?) ON CONFLICT(topic) DO UPDATE SET last_offset = excluded.last_offset WHERE topics.last_offset = ?',
      ),
      insertMessage: db.prepare('INSERT INTO messages (topic, "offset", ts, kind, payload) VALUES (?, ?, ?, ?, ?)'),
      trimTopic: db.prepare('DELETE FROM messages WHERE topic = ? AND "offset" <= ?'),
      findIdem: db.prepare('SELECT topic, "offset", ts, request_hash FROM idempotency WHERE scope = ? AND key = ? AND ts >= ?'),
      putIdem: db.prepare('INSERT OR REPLACE INTO idempotency (scope, key, topic, "offset", ts, request_hash) VALUES (?, ?, ?, ?, ?, ?)'),
      readHistory: db.prepare(
        'SELECT topic, "offset", ts, kind, payload FROM messages WHERE topic = ? AND "offset" > ? AND ts >= ? ORDER BY "offset" LIMIT ?',
      ),
      firstRetained: db.prepare('SELECT MIN("offset") AS o FROM messages WHERE topic = ? AND ts >= ?'),
      touchToken: db.prepare('UPDATE tokens SET last_used_at = ? WHERE hash = ?'),
      changes: db.prepare('SELECT seq, kind, ref FROM changes WHERE seq > ? ORDER BY seq'),
    };
  }

  get #s() {
    if (!this.#stmts) throw new Error('store is not open');
    return this.#stmts;
  }

  get #d(): Database.Database {
    if (!this.#db) throw new Error('store is not open');
    return this.#db;
  }

  async close(): Promise<void> {
    if (!this.#db) return;
    if (this.#queue.length) this.#flush();
    try {
      this.#writeTouches();
    } catch {
      // Last-use times are advisory; the file is closing either way.
    }
    clearTimeout(this.#touchTimer);
    this.#touchTimer = undefined;
    await this.#sync?.close();
    this.#sync = undefined;
    await this.#checkpointer?.close();
    this.#checkpointer = undefined;
    this.#topics.clear();
    this.#syncedTo.clear();
    this.#db.close();
    this.#db = undefined;
    this.#stmts = undefined;
  }

  /** Resolves (with `value`) once every write made so far is on disk. */
  #durable<T>(value?: T): Promise<T> {
    return this.#sync ? this.#sync.durable().then(() => value as T) : Promise.resolve(value as T);
  }

  async createClient(c: ClientRecord): Promise<void> {
    this.#d
      .prepare(
        'INSERT INTO clients (id, name, secret_hash, subscribe, publish, presence, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        c.id,
        c.name,
        c.secretHash,
        JSON.stringify(c.subscribe),
        JSON.stringify(c.publish),
        JSON.stringify(c.presence ?? []),
        c.createdAt,
        c.revokedAt,
      );
    await this.#durable();
  }

  async getClient(id: string): Promise<ClientRecord | undefined> {
    const row = this.#s.getClient.get(id) as ClientRow | undefined;
    return row && toClient(row);
  }

  async listClients(): Promise<ClientRecord[]> {
    return (this.#d.prepare('SELECT * FROM clients ORDER BY created_at, id').all() as ClientRow[]).map(toClient);
  }

  async revokeClient(id: string, at: number): Promise<boolean> {
    const db = this.#d;
    return this.#durable(
      db.transaction(() => {
        const r = db.prepare('UPDATE clients SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
        if (r.changes === 0) return false;
        db.prepare('DELETE FROM tokens WHERE client_id = ?').run(id);
        db.prepare('INSERT INTO changes (kind, ref) VALUES (?, ?)').run('client_revoked', id);
        return true;
      })(),
    );
  }

  async createKey(k: KeyRecord): Promise<void> {
    this.#d
      .prepare('INSERT INTO keys (id, name, scope, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(k.id, k.name, k.scope, k.hash, k.createdAt, k.revokedAt);
    await this.#durable();
  }

  async findKey(hash: string): Promise<KeyRecord | undefined> {
    const row = this.#s.findKey.get(hash) as KeyRow | undefined;
    return row && toKey(row);
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (this.#d.prepare('SELECT * FROM keys ORDER BY created_at, id').all() as KeyRow[]).map(toKey);
  }

  async revokeKey(nameOrId: string, at: number): Promise<boolean> {
    const db = this.#d;
    return this.#durable(
      db.transaction(() => {
        const r = db
          .prepare('UPDATE keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL')
          .run(at, nameOrId, nameOrId);
        if (r.changes === 0) return false;
        db.prepare('INSERT INTO changes (kind, ref) VALUES (?, ?)').run('key_revoked', nameOrId);
        return true;
      })(),
    );
  }

  async createToken(t: TokenRecord): Promise<void> {
    this.#d
      .prepare('INSERT INTO tokens (hash, client_id, created_at, last_used_at) VALUES (?, ?, ?, ?)')
      .run(t.hash, t.clientId, t.createdAt, t.lastUsedAt);
    await this.#durable();
  }

  async createTokenCapped(t: TokenRecord, max: number): Promise<{ created: boolean; revoked: string[] }> {
    const db = this.#d;
    const outcome = db.transaction(() => {
      const count = db.prepare('SELECT COUNT(*) FROM tokens WHERE client_id = ?').pluck().get(t.clientId) as number;
      const need = count + 1 - max;
      const revoked: string[] = [];
      if (need > 0) {
        const live = this.#liveTokens(t.clientId);
        const rows = db.prepare('SELECT hash, created_at, last_used_at FROM tokens WHERE client_id = ?').all(t.clientId) as {
          hash: string;
          created_at: number;
          last_used_at: number;
        }[];
        // Least recently used first, by the latest use even when it is not written yet.
        const idle = rows
          .filter((r) => !live.has(r.hash))
          .map((r) => ({ hash: r.hash, used: Math.max(r.last_used_at, this.#touches.get(r.hash) ?? 0), created: r.created_at }))
          .sort((a, b) => a.used - b.used || a.created - b.created || (a.hash < b.hash ? -1 : 1));
        if (idle.length < need) return { created: false, revoked };
        const del = db.prepare('DELETE FROM tokens WHERE hash = ?');
        for (const r of idle.slice(0, need)) {
          del.run(r.hash);
          this.#touches.delete(r.hash);
          revoked.push(r.hash);
        }
      }
      db.prepare('INSERT INTO tokens (hash, client_id, created_at, last_used_at) VALUES (?, ?, ?, ?)').run(
        t.hash,
        t.clientId,
        t.createdAt,
        t.lastUsedAt,
      );
      return { created: true, revoked };
    })();
    return outcome.created ? this.#durable(outcome) : outcome;
  }

  async getToken(hash: string): Promise<TokenRecord | undefined> {
    const r = this.#s.getToken.get(hash) as { hash: string; client_id: string; created_at: number; last_used_at: number } | undefined;
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
    if (!this.#db) throw new Error('store is not open');
    if (at > (this.#touches.get(hash) ?? -Infinity)) this.#touches.set(hash, at);
    this.#touchTimer ??= setTimeout(() => {
      this.#touchTimer = undefined;
      try {
        this.#writeTouches();
      } catch {
        // Kept for the next commit: a last-use time is advisory (idle-token expiry), never data.
      }
    }, TOUCH_FLUSH_MS).unref();
  }

  /** Writes the pending last-use times (inside the caller's transaction, or in one of its own). */
  #writeTouches(): void {
    if (this.#touches.size === 0 || !this.#db) return;
    const touches = [...this.#touches];
    this.#d.transaction(() => {
      for (const [hash, at] of touches) this.#s.touchToken.run(at, hash);
    })();
    for (const [hash, at] of touches) if (this.#touches.get(hash) === at) this.#touches.delete(hash);
  }

  async deleteToken(hash: string): Promise<void> {
    this.#d.prepare('DELETE FROM tokens WHERE hash = ?').run(hash);
    await this.#durable();
  }

  async deleteIdleTokens(before: number): Promise<number> {
    const db = this.#d;
    this.#writeTouches();
    const live = this.#liveTokens();
    const idle = db.prepare('SELECT hash FROM tokens WHERE last_used_at < ?').pluck().all(before) as string[];
    const del = db.prepare('DELETE FROM tokens WHERE hash = ? AND last_used_at < ?');
    return db.transaction(() => idle.reduce((n, hash) => (live.has(hash) ? n : n + del.run(hash, before).changes), 0))();
  }

  async createTicket(hash: string, tokenHash: string, expiresAt: number): Promise<void> {
    this.#d.prepare('INSERT INTO tickets (hash, token_hash, expires_at) VALUES (?, ?, ?)').run(hash, tokenHash, expiresAt);
    await this.#durable();
  }

  async consumeTicket(hash: string, now: number): Promise<string | undefined> {
    const row = this.#d.prepare('DELETE FROM tickets WHERE hash = ? RETURNING token_hash, expires_at').get(hash) as
      { token_hash: string; expires_at: number } | undefined;
    if (row) await this.#durable();
    return row && row.expires_at > now ? row.token_hash : undefined;
  }

  #liveTokens(clientId?: string): ReadonlySet<string> {
    return this.#opts.liveTokens?.(clientId) ?? new Set();
  }

  append(req: AppendRequest): Promise<AppendResult> {
    return this.#write(() => this.#appendOne(req));
  }

  /**
   * Queues a write for the next group commit: every write queued in the same event-loop turn is
   * committed in one transaction, then settled in call order once on disk.
   */
  #write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.#db) return reject(new Error('store is not open'));
      this.#queue.push({ run, resolve: resolve as (r: never) => void, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        // While an fsync runs, queue up: the commit waits for it (see WalSync) and takes all queued.
        if (this.#sync?.busy) this.#sync.whenIdle(() => this.#flush());
        else setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0 || !this.#db) return;
    const topics = (this.#batchTopics = new Map<string, BatchTopic>());
    let results: unknown[];
    try {
      results = this.#d.transaction(() => {
        const out = batch.map((p) => p.run());
        this.#writeTopics(topics);
        this.#writeTouches();
        return out;
      })();
    } catch (err) {
      for (const t of topics.keys()) this.#topics.delete(t);
      for (const p of batch) p.reject(err);
      return;
    } finally {
      this.#batchTopics = undefined;
    }
    this.#checkpointer?.committed();
    for (const [t, b] of topics) {
      this.#topics.set(t, { offset: b.offset, epoch: b.epoch });
      if (this.#sync && !this.#syncedTo.has(t)) this.#syncedTo.set(t, b.before);
    }
    const settle = () => {
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i] as never);
    };
    if (!this.#sync) return settle();
    this.#sync.afterCommit((err) => {
      for (const [t, b] of topics) {
        if (this.#topics.get(t)?.offset === b.offset) this.#syncedTo.delete(t);
        else if ((this.#syncedTo.get(t) ?? 0) < b.offset) this.#syncedTo.set(t, b.offset);
      }
      if (!err) return settle();
      for (const p of batch) p.reject(err);
    });
  }

  /** A topic's committed last offset and epoch (or, inside a group commit, its latest in the batch). */
  #topic(topic: string): TopicRow {
    const t = this.#batchTopics?.get(topic) ?? this.#topics.get(topic);
    if (t) return t;
    const row = this.#s.topic.get(topic) as { last_offset: number; epoch: string } | undefined;
    const loaded = { offset: row?.last_offset ?? 0, epoch: row?.epoch ?? this.#epoch };
    this.#topics.set(topic, loaded);
    return loaded;
  }

  #appendOne(req: AppendRequest): AppendResult {
    const s = this.#s;
    const { size, dedupeS } = this.#opts.history;
    const scope = req.scope ?? '';
    const hash = req.requestHash ?? '';
    if (req.key !== undefined && dedupeS > 0) {
      const since = req.ts - dedupeS * 1000;
      const seen = s.findIdem.get(scope, req.key, since) as { topic: string; offset: number; ts: number; request_hash: string } | undefined;
      if (seen && (seen.topic !== req.topic || seen.request_hash !== hash))
        return { offset: 0, epoch: this.#topic(req.topic).epoch, ts: req.ts, duplicate: false, conflict: true };
      if (seen) return { offset: seen.offset, epoch: this.#topic(seen.topic).epoch, ts: seen.ts, duplicate: true };
      const old = this.#legacyDedupe
        ? (this.#d.prepare('SELECT "offset", ts FROM dedupe WHERE topic = ? AND key = ? AND ts >= ?').get(req.topic, req.key, since) as
            { offset: number; ts: number } | undefined)
        : undefined;
      if (old) return { offset: old.offset, epoch: this.#topic(req.topic).epoch, ts: old.ts, duplicate: true };
    }
    const t = this.#topic(req.topic);
    const offset = t.offset + 1;
    const b = this.#batchTopics!.get(req.topic);
    if (b) b.offset = offset;
    else this.#batchTopics!.set(req.topic, { offset, epoch: t.epoch, before: t.offset });
    if (size > 0) s.insertMessage.run(req.topic, offset, req.ts, req.kind, req.payload);
    if (req.key !== undefined && dedupeS > 0) s.putIdem.run(scope, req.key, req.topic, offset, req.ts, hash);
    return { offset, epoch: t.epoch, ts: req.ts, duplicate: false };
  }

  /** Once per topic per commit: the new last offset (guarded against a second writer) and the size trim. */
  #writeTopics(topics: Map<string, BatchTopic>): void {
    const s = this.#s;
    const { size } = this.#opts.history;
    for (const [topic, b] of topics) {
      if (s.putTopic.run(topic, b.offset, b.epoch, b.before).changes !== 1)
        throw new Error(`topic ${topic}: its history was appended to by another process; refusing to reuse offsets`);
      if (size > 0 && b.offset > size) s.trimTopic.run(topic, b.offset - size);
    }
  }

  async readHistory(topic: string, after: number, limit: number, maxBytes = Infinity): Promise<StoredMessage[]> {
    const synced = this.#syncedTo.get(topic) ?? Infinity;
    const rows: StoredMessage[] = [];
    let bytes = 0;
    // Stepped row by row so that a byte-bounded page never reads (and copies) more than it returns.
    for (const m of this.#s.readHistory.iterate(topic, after, this.#oldestKept(), limit) as IterableIterator<StoredMessage>) {
      if (m.offset > synced || (rows.length > 0 && bytes + m.payload.length > maxBytes)) break;
      bytes += m.payload.length;
      rows.push(m);
    }
    return rows;
  }

  async topicState(topic: string): Promise<TopicState> {
    const t = this.#s.topic.get(topic) as { last_offset: number; epoch: string } | undefined;
    if (!t) return { offset: 0, epoch: this.#epoch, firstRetained: 1 };
    const last = this.#syncedTo.get(topic) ?? t.last_offset;
    const first = (this.#s.firstRetained.get(topic, this.#oldestKept()) as { o: number | null }).o;
    return { offset: last, epoch: t.epoch, firstRetained: first === null || first > last ? last + 1 : first };
  }

  async latest(topics: readonly string[]): Promise<Map<string, { offset: number; epoch: string }>> {
    const out = new Map<string, { offset: number; epoch: string }>();
    for (const topic of topics) {
      const t = this.#s.topic.get(topic) as { last_offset: number; epoch: string } | undefined;
      if (t) out.set(topic, { offset: this.#syncedTo.get(topic) ?? t.last_offset, epoch: t.epoch });
    }
    return out;
  }

  async listTopics(after: string, limit: number): Promise<{ topic: string; offset: number; epoch: string }[]> {
    const rows = this.#d
      .prepare('SELECT topic, last_offset, epoch FROM topics WHERE topic > ? ORDER BY topic LIMIT ?')
      .all(after, Math.min(limit, 1000)) as { topic: string; last_offset: number; epoch: string }[];
    return rows.map((r) => ({ topic: r.topic, offset: this.#syncedTo.get(r.topic) ?? r.last_offset, epoch: r.epoch }));
  }

  /** Messages older than this (ms) are past the TTL: never replayed, even before trim() deletes them. */
  #oldestKept(): number {
    return (this.#opts.clock ?? systemClock).now() - this.#opts.history.ttlS * 1000;
  }

  async trim(now: number): Promise<void> {
    const { ttlS, dedupeS } = this.#opts.history;
    const db = this.#d;
    db.prepare('DELETE FROM messages WHERE ts < ?').run(now - ttlS * 1000);
    db.prepare('DELETE FROM idempotency WHERE ts < ?').run(now - dedupeS * 1000);
    if (this.#legacyDedupe) {
      db.prepare('DELETE FROM dedupe WHERE ts < ?').run(now - dedupeS * 1000);
      if (db.prepare('SELECT 1 FROM dedupe LIMIT 1').get() === undefined) {
        db.exec('DROP TABLE dedupe');
        this.#legacyDedupe = false;
      }
    }
    db.prepare('DELETE FROM tickets WHERE expires_at <= ?').run(now);
  }

  async pollChanges(): Promise<Changes> {
    const rows = this.#s.changes.all(this.#changeCursor) as { seq: number; kind: string; ref: string }[];
    const out: Changes = { revokedClients: [], revokedKeys: [] };
    for (const r of rows) {
      this.#changeCursor = r.seq;
      if (r.kind === 'client_revoked') out.revokedClients.push(r.ref);
      else if (r.kind === 'key_revoked') out.revokedKeys.push(r.ref);
    }
    return out;
  }
}
