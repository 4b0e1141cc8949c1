import { closeSync, fdatasync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Durability for a SQLite database in WAL mode that runs with `synchronous = NORMAL`: SQLite then
 * commits without an fsync, and this class makes the commits durable by `fdatasync`ing the WAL file
 * on libuv's thread pool — off the event loop — before anyone is told "committed".
 *
 * Grouping: one fdatasync is in flight at a time. Commits made while it runs wait for the next one,
 * which covers them all, so under load there is one fsync per fsync-duration however many commits
 * and event-loop turns there were. Settle callbacks run in the order they were queued. A writer may
 * also hold its commit until the fsync in flight is done (`busy`, `whenIdle`): the commit would wait
 * for the next fsync anyway, and one commit of everything queued meanwhile costs far less than many.
 *
 * Why this is as durable as `synchronous = FULL`: a WAL commit is durable once the WAL's frames up
 * to its commit frame are on disk; fdatasync of the WAL's inode, started after the commit returned,
 * puts every byte written before it on disk. The WAL's directory entry is synced once at start.
 */
export class WalSync {
  readonly #fd: number;
  #inFlight = false;
  #waiting: ((err: Error | null) => void)[] = [];
  #idle: (() => void)[] = [];
  #closed = false;

  /** `walPath`: the open database's `-wal` file (it exists once the database is in WAL mode and written). */
  constructor(walPath: string) {
    this.#fd = openSync(walPath, 'r+');
    fsyncSync(this.#fd);
    const dir = openSync(dirname(walPath), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** Calls `settle` once everything committed so far is on disk (or with the error of the sync). */
  afterCommit(settle: (err: Error | null) => void): void {
    if (this.#closed) return settle(new Error('store is closed'));
    this.#waiting.push(settle);
    this.#start();
  }

  /** Is an fdatasync running? */
  get busy(): boolean {
    return this.#inFlight;
  }

  /** Runs `fn` once no fdatasync is running (at once if none is), before the next one starts. */
  whenIdle(fn: () => void): void {
    if (!this.#inFlight) return fn();
    this.#idle.push(fn);
  }

  /** Resolves once everything committed so far is on disk. */
  durable(): Promise<void> {
    return new Promise((resolve, reject) => this.afterCommit((err) => (err ? reject(err) : resolve())));
  }

  #start(): void {
    if (this.#inFlight || this.#waiting.length === 0) return;
    const batch = this.#waiting;
    this.#waiting = [];
    this.#inFlight = true;
    fdatasync(this.#fd, (err) => {
      this.#inFlight = false;
      for (const settle of batch) settle(err);
      const idle = this.#idle;
      this.#idle = [];
      for (const fn of idle) fn();
      if (this.#closed && this.#waiting.length === 0 && !this.#inFlight) closeSync(this.#fd);
      else this.#start();
    });
  }

  /** Waits for the syncs in flight, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const last = this.#waiting.length || this.#inFlight ? this.durable() : undefined;
    this.#closed = true;
    if (last) await last.catch(() => undefined);
    else closeSync(this.#fd);
  }
}
