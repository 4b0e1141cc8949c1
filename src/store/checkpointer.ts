import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Moves SQLite's WAL checkpoints off the event loop. The writing connection runs with
 * `wal_autocheckpoint = 0`; every `everyCommits` commits (or `everyMs` after the last commit, when
 * writes stop) a worker thread with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)`, which
 * copies WAL frames into the database and fsyncs it without taking the write lock: appends go on
 * meanwhile, and the next writer restarts the WAL once it is fully copied.
 *
 * If the worker fails, `onFailure` runs once (the store then turns SQLite's own auto-checkpoint back
 * on, so the WAL cannot grow without bound).
 */
export class Checkpointer {
  readonly #dbPath: string;
  readonly #everyCommits: number;
  readonly #everyMs: number;
  readonly #onFailure: (err: unknown) => void;
  #worker: Worker | undefined;
  #busy = false;
  #commits = 0;
  #timer: NodeJS.Timeout | undefined;
  #failed = false;

  constructor(opts: { dbPath: string; everyCommits?: number; everyMs?: number; onFailure: (err: unknown) => void }) {
    this.#dbPath = opts.dbPath;
    this.#everyCommits = opts.everyCommits ?? 200;
    this.#everyMs = opts.everyMs ?? 1000;
    this.#onFailure = opts.onFailure;
  }

  /** Called after every commit of the writing connection. */
  committed(): void {
    if (this.#failed) return;
    if (++this.#commits >= this.#everyCommits) return this.#run();
    if (!this.#timer) this.#timer = setTimeout(() => this.#run(), this.#everyMs).unref();
  }

  #run(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#busy || this.#failed || this.#commits === 0) return;
    this.#commits = 0;
    this.#busy = true;
    (this.#worker ??= this.#start()).postMessage('checkpoint');
  }

  #start(): Worker {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sqlite, dbPath: this.#dbPath } });
    worker.unref();
    worker.on('message', () => {
      this.#busy = false;
      if (this.#commits >= this.#everyCommits) this.#run();
      else if (this.#commits > 0 && !this.#timer) this.#timer = setTimeout(() => this.#run(), this.#everyMs).unref();
    });
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => {
      if (this.#worker === worker && code !== 0) this.#fail(new Error(`checkpoint worker exited with code ${code}`));
    });
    return worker;
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    clearTimeout(this.#timer);
    this.#onFailure(err);
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#failed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }
}

/** The worker: CommonJS, plain JavaScript (it runs the same under tsx, vitest and the built dist/). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.dbPath);
db.pragma('busy_timeout = 5000');
parentPort.on('message', () => {
  parentPort.postMessage(db.pragma('wal_checkpoint(PASSIVE)'));
});
`;
