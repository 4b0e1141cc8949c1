import type { Leases } from '../cluster/leases.ts';
import type { Logger } from '../logger.ts';
import { sleep } from './connector.ts';

export interface LeasedWorkOptions {
  /** The lease's name, `connector:<connector name>`. */
  name: string;
  leases: Leases;
  /** This node: the lease holder. */
  nodeId: string;
  /** Lease TTL, ms. Acquired and renewed every third of it. */
  ttlMs: number;
  log: Logger;
  /** Starts the work; called when this node has won the lease. */
  start(): void;
  /** Stops the work; resolves once it has stopped (what it had not acknowledged stays with the source). */
  stop(): Promise<void>;
}

const errText = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 200);

/** `p`, or a rejection after `ms`: a store that hangs must hold neither the attempts nor a stop. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms)} ms`)), ms).unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for `p` (its outcome ignored), at most `ms`. */
async function bounded(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p?.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms).unref()))]);
  clearTimeout(timer);
}

/**
 * Runs one piece of work (a connector) only while this node holds its lease (cluster/leases.ts).
 *
 * Every `ttlMs / 3` it acquires the lease — which renews it while held. Won: the work starts, or goes
 * on. Refused, failed, or not renewed within `2/3 · ttlMs` of the last success (a store that hangs):
 * the work stops, so that it has stopped before the lease can expire and another node take it. The
 * last success is timed from when its request was sent, never from its answer; a request unanswered
 * by then counts as failed, so a hanging store holds nothing up. `close()` stops the
 * work and then releases the lease, so another node takes over at its next attempt rather than after
 * the TTL.
 */
export class LeasedWork {
  readonly #o: LeasedWorkOptions;
  readonly #abort = new AbortController();
  #running = false;
  #holder: string | undefined;
  #deadline: NodeJS.Timeout | undefined;
  /** The work is stopping: it must not start again (twice on one node) before it has. */
  #stopping: Promise<void> | undefined;
  #round: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: LeasedWorkOptions) {
    this.#o = options;
  }

  /** The work runs on this node now. */
  get running(): boolean {
    return this.#running;
  }

  /** The node holding the lease, as last seen (this one while it runs here); undefined: nobody, or unknown. */
  get holder(): string | undefined {
    return this.#running ? this.#o.nodeId : this.#holder;
  }

  /** Starts trying; resolves after the first attempt, or after `ttlMs / 3` when the store is slow. */
  async start(): Promise<void> {
    if (this.#loop || this.#abort.signal.aborted) return;
    let firstDone!: () => void;
    const first = new Promise<void>((resolve) => (firstDone = resolve));
    this.#loop = this.#run(firstDone);
    await bounded(first, this.#o.ttlMs / 3);
  }

  async #run(firstDone: () => void): Promise<void> {
    const { signal } = this.#abort;
    while (!signal.aborted) {
      this.#round = this.#attempt();
      await this.#round;
      firstDone();
      try {
        await sleep(this.#o.ttlMs / 3, signal);
      } catch {
        return;
      }
    }
  }

  async #attempt(): Promise<void> {
    const { leases, name, nodeId, ttlMs, log } = this.#o;
    if (this.#stopping) await this.#stopping;
    if (this.#abort.signal.aborted) return;
    const sentAt = Date.now();
    let held = false;
    try {
      held = await within(leases.acquire(name, nodeId, ttlMs), (ttlMs * 2) / 3);
    } catch (err) {
      log.warn({ lease: name, error: errText(err) }, 'connector lease: the store did not answer; treated as not held');
    }
    if (this.#abort.signal.aborted) return;
    // An answer that comes after the deadline it would extend counts for nothing.
    if (held && Date.now() - sentAt >= (ttlMs * 2) / 3) held = false;
    if (held) {
      // A stop is under way (it ends by releasing the lease): the next attempt starts afresh.
      if (this.#stopping) return;
      this.#arm(sentAt);
      if (!this.#running) {
        this.#running = true;
        log.info({ lease: name, node: nodeId }, 'connector lease acquired: the connector runs on this node');
        this.#o.start();
      }
      return;
    }
    if (this.#running) await this.#lose('the lease was refused or could not be renewed');
    try {
      this.#holder = await within(leases.holder(name), ttlMs / 3);
    } catch {
      this.#holder = undefined;
    }
  }

  /** Stops the work `2/3 · ttlMs` after `sentAt` unless a later renewal succeeds first. */
  #arm(sentAt: number): void {
    clearTimeout(this.#deadline);
    const leftMs = sentAt + (this.#o.ttlMs * 2) / 3 - Date.now();
    this.#deadline = setTimeout(() => void this.#lose('the lease was not renewed in time'), Math.max(0, leftMs));
    this.#deadline.unref();
  }

  #lose(reason: string, level: 'warn' | 'info' = 'warn'): Promise<void> {
    if (!this.#running) return this.#stopping ?? Promise.resolve();
    this.#running = false;
    clearTimeout(this.#deadline);
    const { log, name, nodeId, leases } = this.#o;
    log[level]({ lease: name, node: nodeId, reason }, 'connector lease given up: the connector stops on this node');
    this.#stopping = (async () => {
      try {
        await this.#o.stop();
      } finally {
        // Still ours after a failed renewal? Let it go, so that another node need not wait for the TTL.
        await bounded(leases.release(name, nodeId), this.#o.ttlMs / 3);
        this.#stopping = undefined;
      }
    })();
    return this.#stopping;
  }

  /** Stops trying and the work, then releases the lease. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort(new Error('node stopping'));
      clearTimeout(this.#deadline);
      await this.#lose('this node is stopping', 'info');
      await this.#stopping;
      if (!this.#loop) return;
      // A request still in flight could take the lease after our release: wait for it (bounded).
      await bounded(this.#round, this.#o.ttlMs / 3);
      await bounded(this.#o.leases.release(this.#o.name, this.#o.nodeId), this.#o.ttlMs / 3);
    })();
    return this.#closing;
  }
}
