import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { AlertDigest } from './notifier.ts';

export interface SpooledAlert {
  id: number;
  channel: string;
  digest: AlertDigest;
  /** Failed deliveries so far. */
  attempts: number;
  dueAt: number;
}

interface Row {
  id: number;
  channel: string;
  digest: string;
  attempts: number;
  due_at: number;
}

/**
 * The node-local, durable queue of digests not yet delivered: `<dataDir>/alerts.db`, one row per
 * digest and channel. Deliberately not the `Store`: the store may live on another server one day,
 * while alerts must still get out when that server is the thing that is down.
 *
 * Small synchronous writes (a few per group window), never on a message path. After `close()` every
 * method is a no-op, so a send that outlives shutdown cannot touch a closed database.
 */
export class Spool {
  readonly #db: Database.Database;
  readonly #add: Database.Statement<[string, string, number, number]>;
  readonly #next: Database.Statement<[string, number], Row>;
  readonly #nextDue: Database.Statement<[string], { due_at: number }>;
  readonly #remove: Database.Statement<[number]>;
  readonly #retry: Database.Statement<[number, number, number]>;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.exec(`CREATE TABLE IF NOT EXISTS alerts (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      channel TEXT NOT NULL,
      digest TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      due_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS alerts_due ON alerts (channel, due_at, id);`);
    this.#db = db;
    this.#add = db.prepare('INSERT INTO alerts (channel, digest, due_at, created_at) VALUES (?, ?, ?, ?)');
    this.#next = db.prepare(
      'SELECT id, channel, digest, attempts, due_at FROM alerts WHERE channel = ? AND due_at <= ? ORDER BY due_at, id LIMIT 1',
    );
    this.#nextDue = db.prepare('SELECT min(due_at) AS due_at FROM alerts WHERE channel = ?');
    this.#remove = db.prepare('DELETE FROM alerts WHERE id = ?');
    this.#retry = db.prepare('UPDATE alerts SET attempts = ?, due_at = ? WHERE id = ?');
  }

  /** One row per channel, in one transaction, all due at once. */
  add(digest: AlertDigest, channels: readonly string[], now: number): void {
    if (!this.#db.open) return;
    const json = JSON.stringify(digest);
    this.#db.transaction(() => {
      for (const c of channels) this.#add.run(c, json, now, now);
    })();
  }

  /** The channel's oldest row that is due, if any. A row that is not valid JSON (a damaged file) is deleted. */
  next(channel: string, now: number): SpooledAlert | undefined {
    for (;;) {
      if (!this.#db.open) return undefined;
      const r = this.#next.get(channel, now);
      if (!r) return undefined;
      try {
        return { id: r.id, channel: r.channel, digest: JSON.parse(r.digest) as AlertDigest, attempts: r.attempts, dueAt: r.due_at };
      } catch {
        this.#remove.run(r.id);
      }
    }
  }

  /** When the channel's next row falls due (undefined: nothing spooled). */
  nextDueAt(channel: string): number | undefined {
    if (!this.#db.open) return undefined;
    return this.#nextDue.get(channel)?.due_at ?? undefined;
  }

  remove(id: number): void {
    if (this.#db.open) this.#remove.run(id);
  }

  retryAt(id: number, attempts: number, dueAt: number): void {
    if (this.#db.open) this.#retry.run(attempts, dueAt, id);
  }

  /** Rows waiting per channel. */
  pending(): Record<string, number> {
    if (!this.#db.open) return {};
    const rows = this.#db.prepare('SELECT channel, count(*) AS n FROM alerts GROUP BY channel').all() as { channel: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.channel, r.n]));
  }

  /** Makes every row due now (at start: a restart is a fair moment to try again, e.g. after a config fix). */
  dueNow(now: number): void {
    if (this.#db.open) this.#db.prepare('UPDATE alerts SET due_at = ? WHERE due_at > ?').run(now, now);
  }

  /** Deletes the rows of channels no longer configured (nothing could ever deliver them); returns how many. */
  dropChannelsExcept(channels: readonly string[]): number {
    if (!this.#db.open) return 0;
    const marks = channels.map(() => '?').join(', ');
    const sql = channels.length ? `DELETE FROM alerts WHERE channel NOT IN (${marks})` : 'DELETE FROM alerts';
    return this.#db.prepare(sql).run(...channels).changes;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
