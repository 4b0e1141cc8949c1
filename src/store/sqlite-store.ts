import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock, type Clock } from '../core/clock.ts';
import { randomSecret } from '../core/ids.ts';
import type {
  AppendRequest,
  AppendResult,
  Changes,
  ClientRecord,
  ConnectionRecord,
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
CREATE TABLE IF NOT EXISTS connections (
  id TEXT PRIMARY KEY, client_id TEXT NOT NULL, token_hash TEXT NOT NULL, node_id TEXT NOT NULL,
  connected_at INTEGER NOT NULL, remote_address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connections_token ON connections(token_hash);
CREATE INDEX IF NOT EXISTS connections_node ON connections(node_id);
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, last_offset INTEGER NOT NULL, epoch TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  topic TEXT NOT NULL, "offset" INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
  PRIMARY KEY (topic, "offset")) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts);
CREATE TABLE IF NOT EXISTS dedupe (
  topic TEXT NOT NULL, key TEXT NOT NULL, "offset" INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (topic, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, ref TEXT NOT NULL);
`;

interface ClientRow {
  id: string;
  name: string;
  secret_hash: string;
  subscribe: string;
  publish: string;
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

export interface SqliteStoreOptions {
  dataDir: string;
  synchronous: 'full' | 'normal';
  history: HistoryLimits;
  clock?: Clock;
}

/**
 * The embedded default store: one SQLite file (`<dataDir>/hubcast.db`) in WAL mode, shared with the
 * CLI. Appends made in the same event-loop turn are committed in one transaction (group commit).
 */
export class SqliteStore implements Store {
  #opts: SqliteStoreOptions;
  #db: Database.Database | undefined;
  #epoch = '';
  #queue: Pending[] = [];
  #flushScheduled = false;
  #changeCursor = 0;
  #stmts: ReturnType<SqliteStore['prepare']> | undefined;

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
    db.pragma(`synchronous = ${this.#opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    db.exec(SCHEMA);
    // Migrations of databases made by earlier versions.
    const keyCols = (db.prepare('PRAGMA table_info(keys)').all() as { name: string }[]).map((c) => c.name);
    if (!keyCols.includes('scope')) db.exec("ALTER TABLE keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'ingest'");
    db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('epoch', randomSecret(9));
    this.#epoch = (db.prepare('SELECT v FROM meta WHERE k = ?').get('epoch') as { v: string }).v;
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
        'INSERT INTO topics (topic, last_offset, epoch) VALUES (?, ?, ?) ON CONFLICT(topic) DO UPDATE SET last_offset = excluded.last_offset',
      ),
      insertMessage: db.prepare('INSERT INTO messages (topic, "offset", ts, kind, payload) VALUES (?, ?, ?, ?, ?)'),
      trimTopic: db.prepare('DELETE FROM messages WHERE topic = ? AND "offset" <= ?'),
      findDedupe: db.prepare('SELECT "offset", ts FROM dedupe WHERE topic = ? AND key = ? AND ts >= ?'),
      putDedupe: db.prepare('INSERT OR REPLACE INTO dedupe (topic, key, "offset", ts) VALUES (?, ?, ?, ?)'),
      readHistory: db.prepare(
        'SELECT topic, "offset", ts, kind, payload FROM messages WHERE topic = ? AND "offset" > ? AND ts >= ? ORDER BY "offset" LIMIT ?',
      ),
      firstRetained: db.prepare('SELECT MIN("offset") AS o FROM messages WHERE topic = ? AND ts >= ?'),
      addConnection: db.prepare(
        'INSERT OR REPLACE INTO connections (id, client_id, token_hash, node_id, connected_at, remote_address) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      removeConnection: db.prepare('DELETE FROM connections WHERE id = ?'),
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
    this.#db.close();
    this.#db = undefined;
    this.#stmts = undefined;
  }

  async createClient(c: ClientRecord): Promise<void> {
    this.#d
      .prepare('INSERT INTO clients (id, name, secret_hash, subscribe, publish, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(c.id, c.name, c.secretHash, JSON.stringify(c.subscribe), JSON.stringify(c.publish), c.createdAt, c.revokedAt);
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
    return db.transaction(() => {
      const r = db.prepare('UPDATE clients SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
      if (r.changes === 0) return false;
      db.prepare('DELETE FROM tokens WHERE client_id = ?').run(id);
      db.prepare('INSERT INTO changes (kind, ref) VALUES (?, ?)').run('client_revoked', id);
      return true;
    })();
  }

  async createKey(k: KeyRecord): Promise<void> {
    this.#d
      .prepare('INSERT INTO keys (id, name, scope, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(k.id, k.name, k.scope, k.hash, k.createdAt, k.revokedAt);
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
    return db.transaction(() => {
      const r = db.prepare('UPDATE keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL').run(at, nameOrId, nameOrId);
      if (r.changes === 0) return false;
      db.prepare('INSERT INTO changes (kind, ref) VALUES (?, ?)').run('key_revoked', nameOrId);
      return true;
    })();
  }

  async createToken(t: TokenRecord): Promise<void> {
    this.#d
      .prepare('INSERT INTO tokens (hash, client_id, created_at, last_used_at) VALUES (?, ?, ?, ?)')
      .run(t.hash, t.clientId, t.createdAt, t.lastUsedAt);
  }

  async getToken(hash: string): Promise<TokenRecord | undefined> {
    const r = this.#s.getToken.get(hash) as { hash: string; client_id: string; created_at: number; last_used_at: number } | undefined;
    return r && { hash: r.hash, clientId: r.client_id, createdAt: r.created_at, lastUsedAt: r.last_used_at };
  }

  touchToken(hash: string, at: number): Promise<void> {
    return this.#write(() => void this.#s.touchToken.run(at, hash));
  }

  async deleteToken(hash: string): Promise<void> {
    this.#d.prepare('DELETE FROM tokens WHERE hash = ?').run(hash);
  }

  async deleteIdleTokens(before: number): Promise<number> {
    return this.#d
      .prepare('DELETE FROM tokens WHERE last_used_at < ? AND NOT EXISTS (SELECT 1 FROM connections c WHERE c.token_hash = tokens.hash)')
      .run(before).changes;
  }

  async createTicket(hash: string, tokenHash: string, expiresAt: number): Promise<void> {
    this.#d.prepare('INSERT INTO tickets (hash, token_hash, expires_at) VALUES (?, ?, ?)').run(hash, tokenHash, expiresAt);
  }

  async consumeTicket(hash: string, now: number): Promise<string | undefined> {
    const row = this.#d.prepare('DELETE FROM tickets WHERE hash = ? RETURNING token_hash, expires_at').get(hash) as
      { token_hash: string; expires_at: number } | undefined;
    return row && row.expires_at > now ? row.token_hash : undefined;
  }

  addConnection(c: ConnectionRecord): Promise<void> {
    return this.#write(() => void this.#s.addConnection.run(c.id, c.clientId, c.tokenHash, c.nodeId, c.connectedAt, c.remoteAddress));
  }

  removeConnection(id: string): Promise<void> {
    return this.#write(() => void this.#s.removeConnection.run(id));
  }

  async hasConnection(id: string): Promise<boolean> {
    return this.#d.prepare('SELECT 1 FROM connections WHERE id = ?').get(id) !== undefined;
  }

  async connectionsOfToken(tokenHash: string): Promise<ConnectionRecord[]> {
    const rows = this.#d.prepare('SELECT * FROM connections WHERE token_hash = ?').all(tokenHash) as {
      id: string;
      client_id: string;
      token_hash: string;
      node_id: string;
      connected_at: number;
      remote_address: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      clientId: r.client_id,
      tokenHash: r.token_hash,
      nodeId: r.node_id,
      connectedAt: r.connected_at,
      remoteAddress: r.remote_address,
    }));
  }

  async clearConnections(nodeId: string): Promise<void> {
    this.#d.prepare('DELETE FROM connections WHERE node_id = ?').run(nodeId);
  }

  append(req: AppendRequest): Promise<AppendResult> {
    return this.#write(() => this.#appendOne(req));
  }

  /**
   * Queues a write for the next group commit: every write queued in the same event-loop turn —
   * appends and connection bookkeeping alike — is committed in one transaction (one fsync), then
   * settled in call order.
   */
  #write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.#db) return reject(new Error('store is not open'));
      this.#queue.push({ run, resolve: resolve as (r: never) => void, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0 || !this.#db) return;
    let results: unknown[];
    try {
      results = this.#d.transaction(() => batch.map((p) => p.run()))();
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i] as never);
  }

  #appendOne(req: AppendRequest): AppendResult {
    const s = this.#s;
    const { size, dedupeS } = this.#opts.history;
    if (req.key !== undefined && dedupeS > 0) {
      const seen = s.findDedupe.get(req.topic, req.key, req.ts - dedupeS * 1000) as { offset: number; ts: number } | undefined;
      if (seen) return { offset: seen.offset, epoch: this.#topicEpoch(req.topic), ts: seen.ts, duplicate: true };
    }
    const t = s.topic.get(req.topic) as { last_offset: number; epoch: string } | undefined;
    const offset = (t?.last_offset ?? 0) + 1;
    const epoch = t?.epoch ?? this.#epoch;
    s.putTopic.run(req.topic, offset, epoch);
    if (size > 0) {
      s.insertMessage.run(req.topic, offset, req.ts, req.kind, req.payload);
      if (offset > size) s.trimTopic.run(req.topic, offset - size);
    }
    if (req.key !== undefined && dedupeS > 0) s.putDedupe.run(req.topic, req.key, offset, req.ts);
    return { offset, epoch, ts: req.ts, duplicate: false };
  }

  #topicEpoch(topic: string): string {
    const t = this.#s.topic.get(topic) as { epoch: string } | undefined;
    return t?.epoch ?? this.#epoch;
  }

  async readHistory(topic: string, after: number, limit: number): Promise<StoredMessage[]> {
    const rows = this.#s.readHistory.all(topic, after, this.#oldestKept(), limit) as {
      topic: string;
      offset: number;
      ts: number;
      kind: string;
      payload: Buffer;
    }[];
    return rows as StoredMessage[];
  }

  async topicState(topic: string): Promise<TopicState> {
    const t = this.#s.topic.get(topic) as { last_offset: number; epoch: string } | undefined;
    if (!t) return { offset: 0, epoch: this.#epoch, firstRetained: 1 };
    const first = (this.#s.firstRetained.get(topic, this.#oldestKept()) as { o: number | null }).o;
    return { offset: t.last_offset, epoch: t.epoch, firstRetained: first ?? t.last_offset + 1 };
  }

  /** Messages older than this (ms) are past the TTL: never replayed, even before trim() deletes them. */
  #oldestKept(): number {
    return (this.#opts.clock ?? systemClock).now() - this.#opts.history.ttlS * 1000;
  }

  async trim(now: number): Promise<void> {
    const { ttlS, dedupeS } = this.#opts.history;
    const db = this.#d;
    db.prepare('DELETE FROM messages WHERE ts < ?').run(now - ttlS * 1000);
    db.prepare('DELETE FROM dedupe WHERE ts < ?').run(now - dedupeS * 1000);
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
