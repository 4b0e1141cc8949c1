/** One request of a connection, handled when its turn comes; a promise means "answered when it settles". */
export type Request = () => void | Promise<void>;

/**
 * Waiting requests past which the connection's socket is no longer read, and below which it is again.
 * Above what a client resubscribing every topic at once sends (ws.maxSubscriptions, 256 by default):
 * while the socket is not read, neither are the pongs the heartbeat waits for. Bounded memory: at most
 * this many parsed frames of at most ws.maxPayload bytes each.
 */
const PAUSE_AT = 512;
const RESUME_AT = 128;

/** What the queue needs of its connection (the Peer itself: no closures per connection). */
export interface RequestQueueIo {
  /** Stop reading from the socket (TCP backpressure on a client that sends faster than it is answered). */
  pauseRequests(): void;
  resumeRequests(): void;
  /** A request threw or rejected: a bug; the connection is closed with 1011 by the caller. */
  requestFailed(err: unknown): void;
}

/**
 * The requests of one connection, handled one at a time in arrival order: a request is looked at only
 * once the previous one has been answered (a `subscribe`: its `subscribed` and its replay written). So
 * every request gets its own answer whatever arrives after it, and answers come in request order
 * (docs/websocket.md#order-of-answers). Requests answered at once (ping, unsubscribe, most errors) take
 * the fast path: no queueing when nothing is waiting.
 */
export class RequestQueue {
  readonly #io: RequestQueueIo;
  readonly #waiting: Request[] = [];
  #busy = false;
  #paused = false;

  constructor(io: RequestQueueIo) {
    this.#io = io;
  }

  push(req: Request): void {
    if (!this.#busy) return this.#run(req);
    this.#waiting.push(req);
    if (!this.#paused && this.#waiting.length >= PAUSE_AT) {
      this.#paused = true;
      this.#io.pauseRequests();
    }
  }

  /** Forgets the waiting requests (the connection is gone). */
  clear(): void {
    this.#waiting.length = 0;
  }

  #run(first: Request): void {
    this.#busy = true;
    let req: Request | undefined = first;
    while (req) {
      let pending: void | Promise<void> = undefined;
      try {
        pending = req();
      } catch (err) {
        this.#io.requestFailed(err);
      }
      if (pending instanceof Promise) {
        pending.then(
          () => this.#continue(),
          (err: unknown) => {
            this.#io.requestFailed(err);
            this.#continue();
          },
        );
        return;
      }
      req = this.#next();
    }
    this.#busy = false;
  }

  #continue(): void {
    const req = this.#next();
    if (req) this.#run(req);
    else this.#busy = false;
  }

  #next(): Request | undefined {
    const req = this.#waiting.shift();
    if (this.#paused && this.#waiting.length <= RESUME_AT) {
      this.#paused = false;
      this.#io.resumeRequests();
    }
    return req;
  }
}
