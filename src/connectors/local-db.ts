import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { PayloadKind } from '../store/store.ts';
import type { ConnectorState } from './connector.ts';

export interface DeadLetter {
  id: number;
  connector: string;
  key: string;
  kind: PayloadKind;
  /**
   * The record: its bytes as received (`SourceRecord.raw`) or, for a value built without bytes, its
   * encoding per `kind`; with `format: 'v8'`, a v8 serialization of a value JSON cannot hold (a BigInt,
   * a cycle), so that a retry gets the very same value.
   */
  value: Buffer;
  format?: 'bytes' | 'v8';
  meta: Record<string, unknown>;
  reason: string;
  at: number;
}

/** A dead letter as listed: everything but the record itself. */
export interface DeadLetterSummary {
  id: number;
  connector: string;
  key: string;
  kind: PayloadKind;
  reason: string;
  at: number;
  bytes: number;
}

interface DlqRow {
  id: number;
  connector: string;
  record_key: string;
  kind: PayloadKind;
  value: Buffer;
  format: 'bytes' | 'v8';
  meta: string;
  reason: string;
  at: number;
}

const toDeadLetter = (r: DlqRow): DeadLetter => ({
  id: r.id,
  connector: r.connector,
  key: r.record_key,
  kind: r.kind,
  value: r.value,
  format: r.format,
  meta: JSON.parse(r.meta) as Record<string, unknown>,
  reason: r.reason,
  at: r.at,
});

export interface SpooledRecord {
  seq: number;
  topic: string;
  kind: PayloadKind;
  payload: Buffer;
  key: string;
}

/**
 * The connectors' node-local SQLite file (`<dataDir>/connectors.db`): durable cursors and positions
 * (`state`), the dead-letter store (`dlq`) and, for `hubcast connect`, the outbound spool. Node-local
 * on purpose: it belongs to the process that runs the connectors, whatever the Store is. Shared with
 * the CLI (`hubcast dlq …`) in WAL mode.
 */
export class ConnectorDb {
  readonly #db: Database.Database;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    const db = new Database(join(dataDir, 'connectors.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(`
      CREATE TABLE IF NOT EXISTS state (connector TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (connector, k)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS dlq (
        id INTEGER PRIMARY KEY AUTOINCREMENT, connector TEXT NOT NULL, record_key TEXT NOT NULL, kind TEXT NOT NULL,
        value BLOB NOT NULL, meta TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL, retry INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS spool (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL, key TEXT NOT NULL);
    `);
    // Files made before dead letters could hold a v8-serialized value.
    const cols = (db.prepare('PRAGMA table_info(dlq)').all() as { name: string }[]).map((c) => c.name);
    if (!cols.includes('format')) db.exec("ALTER TABLE dlq ADD COLUMN format TEXT NOT NULL DEFAULT 'bytes'");
    this.#db = db;
  }

  state(connector: string): ConnectorState {
    const get = this.#db.prepare('SELECT v FROM state WHERE connector = ? AND k = ?');
    const set = this.#db.prepare('INSERT OR REPLACE INTO state (connector, k, v) VALUES (?, ?, ?)');
    const del = this.#db.prepare('DELETE FROM state WHERE connector = ? AND k = ?');
    const prune = this.#db.prepare('DELETE FROM state WHERE connector = ? AND substr(k, 1, ?) = ? AND CAST(v AS REAL) < ?');
    return {
      get: (k) => (get.get(connector, k) as { v: string } | undefined)?.v,
      set: (k, v) => void set.run(connector, k, v),
      delete: (k) => void del.run(connector, k),
      prune: (prefix, before) => void prune.run(connector, prefix.length, prefix, before),
    };
  }

  deadLetter(d: Omit<DeadLetter, 'id'>): number {
    return Number(
      this.#db
        .prepare('INSERT INTO dlq (connector, record_key, kind, value, format, meta, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(d.connector, d.key, d.kind, d.value, d.format ?? 'bytes', JSON.stringify(d.meta), d.reason, d.at).lastInsertRowid,
    );
  }

  listDeadLetters(connector?: string): DeadLetter[] {
    const rows = (
      connector === undefined
        ? this.#db.prepare('SELECT * FROM dlq ORDER BY id').all()
        : this.#db.prepare('SELECT * FROM dlq WHERE connector = ? ORDER BY id').all(connector)
    ) as DlqRow[];
    return rows.map(toDeadLetter);
  }

  /**
   * One page of dead letters (`id` > `afterId`, by id), without their values: what an operator
   * browses. `bytes` is the stored record's size.
   */
  pageDeadLetters(o: { connector?: string | undefined; afterId: number; limit: number }): DeadLetterSummary[] {
    const where = o.connector === undefined ? 'id > ?' : 'id > ? AND connector = ?';
    const args: unknown[] = o.connector === undefined ? [o.afterId] : [o.afterId, o.connector];
    return (
      this.#db
        .prepare(`SELECT id, connector, record_key, kind, reason, at, length(value) AS bytes FROM dlq WHERE ${where} ORDER BY id LIMIT ?`)
        .all(...args, o.limit) as {
        id: number;
        connector: string;
        record_key: string;
        kind: PayloadKind;
        reason: string;
        at: number;
        bytes: number;
      }[]
    ).map((r) => ({ id: r.id, connector: r.connector, key: r.record_key, kind: r.kind, reason: r.reason, at: r.at, bytes: r.bytes }));
  }

  /** Dead letters stored now, per connector. */
  countDeadLetters(): Map<string, number> {
    const rows = this.#db.prepare('SELECT connector, count(*) AS n FROM dlq GROUP BY connector').all() as {
      connector: string;
      n: number;
    }[];
    return new Map(rows.map((r) => [r.connector, r.n]));
  }

  /** Takes (removes) one dead letter, for an immediate retry; undefined when there is none by that id. */
  takeDeadLetter(id: number): DeadLetter | undefined {
    return this.#db.transaction(() => {
      const d = this.findDeadLetter(id);
      if (d) this.#db.prepare('DELETE FROM dlq WHERE id = ?').run(id);
      return d;
    })();
  }

  findDeadLetter(id: number): DeadLetter | undefined {
    const r = this.#db.prepare('SELECT * FROM dlq WHERE id = ?').get(id) as DlqRow | undefined;
    return r && toDeadLetter(r);
  }

  /** Marks dead letters for another pass through their pipeline (the running connectors pick them up). */
  requestRetry(ids: number[] | 'all'): number {
    if (ids === 'all') return this.#db.prepare('UPDATE dlq SET retry = 1').run().changes;
    const stmt = this.#db.prepare('UPDATE dlq SET retry = 1 WHERE id = ?');
    return this.#db.transaction(() => ids.reduce((n, id) => n + stmt.run(id).changes, 0))();
  }

  /** Takes (removes) the dead letters marked for retry. */
  takeRetries(): DeadLetter[] {
    return this.#db.transaction(() => {
      const rows = this.listDeadLetters().filter(
        (d) => (this.#db.prepare('SELECT retry FROM dlq WHERE id = ?').get(d.id) as { retry: number }).retry === 1,
      );
      const del = this.#db.prepare('DELETE FROM dlq WHERE id = ?');
      for (const r of rows) del.run(r.id);
      return rows;
    })();
  }

  drop(ids: number[] | 'all'): number {
    if (ids === 'all') return this.#db.prepare('DELETE FROM dlq').run().changes;
    const stmt = this.#db.prepare('DELETE FROM dlq WHERE id = ?');
    return this.#db.transaction(() => ids.reduce((n, id) => n + stmt.run(id).changes, 0))();
  }

  spool(r: Omit<SpooledRecord, 'seq'>): void {
    this.#db.prepare('INSERT INTO spool (topic, kind, payload, key) VALUES (?, ?, ?, ?)').run(r.topic, r.kind, r.payload, r.key);
  }

  peekSpool(limit: number): SpooledRecord[] {
    return this.#db.prepare('SELECT seq, topic, kind, payload, key FROM spool ORDER BY seq LIMIT ?').all(limit) as SpooledRecord[];
  }

  unspool(seq: number): void {
    this.#db.prepare('DELETE FROM spool WHERE seq = ?').run(seq);
  }

  get spooled(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM spool').get() as { n: number }).n;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
