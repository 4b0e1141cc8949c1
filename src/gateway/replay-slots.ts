/**
 * The node-wide cap on replay work (`ws.replay.concurrency`). A replay takes a slot for each page it
 * reads and writes, and gives it back right after; a replay waiting for its consumer to read holds
 * none. A slot given back becomes usable only on the next event-loop turn, so however many replays run,
 * one turn does at most `concurrency` pages of work and I/O (`/healthz`, ingest, live fan-out) is served
 * between turns. Waiting replays are served in arrival order.
 */
export class ReplaySlots {
  #free: number;
  readonly #waiting: { resolve: (ok: boolean) => void; signal: AbortSignal }[] = [];

  constructor(concurrency: number) {
    this.#free = concurrency;
  }

  /** Resolves true with a slot, or false if `signal` aborted first (the connection went away). */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#free > 0 && this.#waiting.length === 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const entry = {
        signal,
        resolve: (ok: boolean) => {
          signal.removeEventListener('abort', onAbort);
          resolve(ok);
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(entry);
        if (i !== -1) this.#waiting.splice(i, 1);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(entry);
    });
  }

  release(): void {
    setImmediate(() => {
      const next = this.#waiting.shift();
      if (next) next.resolve(true);
      else this.#free++;
    });
  }

  /** Replays waiting for a slot (for tests and metrics). */
  get waiting(): number {
    return this.#waiting.length;
  }
}
