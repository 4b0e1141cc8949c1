/**
 * Write coalescing for one gateway's connections (after the per-turn batching of Centrifugo's client
 * writer). The frames a connection gets in one event-loop turn are queued on it (`Peer.writeMessage`)
 * and written as ONE socket write when this coalescer flushes:
 *
 * - By default right after the turn: `process.nextTick` runs after the current microtasks, so a whole
 *   group-committed batch of publications lands first. No delay is added.
 * - With `ws.writeDelayMs` > 0 the delay adapts to load: when the last flush is older than the delay
 *   (an idle or lightly loaded hub) the flush still runs right after the turn; when the hub flushed
 *   less than `writeDelayMs` ago, the next flush waits until `writeDelayMs` after that one. So flushes
 *   are at most one per `writeDelayMs` under load, each write carries every message gathered
 *   meanwhile, and no message waits longer than `writeDelayMs` for its write (Centrifugo's
 *   `client.write_delay`, but only when there is load to batch).
 *
 * One frame goes as it is (the same bytes for every recipient). Several are joined into one buffer,
 * and connections that got the same frames in the same order (the subscribers of one topic) share
 * that buffer: the batch is joined once, not once per socket.
 */
export interface Flushable {
  /** Writes the connection's queued frames; `join` joins several into one buffer. */
  flush(join: (frames: Buffer[], bytes: number) => Buffer): void;
}

export class Coalescer {
  readonly #delayMs: number;
  readonly #pending: Flushable[] = [];
  #scheduled = false;
  #lastFlushAt = 0;
  /** The last joined batch of the flush in progress: peers with the same frames reuse it. */
  #lastFrames: Buffer[] | undefined;
  #lastJoined: Buffer | undefined;
  readonly #join = (frames: Buffer[], bytes: number) => this.#joined(frames, bytes);
  readonly #flushAll = () => this.flushAll();

  constructor(writeDelayMs = 0) {
    this.#delayMs = writeDelayMs;
  }

  /** `peer` queued its first frame of this turn: flush it with the others (see above). */
  queue(peer: Flushable): void {
    this.#pending.push(peer);
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#delayMs > 0) {
      const wait = this.#lastFlushAt + this.#delayMs - performance.now();
      if (wait >= 1) return void setTimeout(this.#flushAll, wait);
    }
    process.nextTick(this.#flushAll);
  }

  /** Writes every queued connection's frames. */
  flushAll(): void {
    this.#scheduled = false;
    if (this.#delayMs > 0) this.#lastFlushAt = performance.now();
    const pending = this.#pending;
    // By index: a flush never queues another (it writes, it does not deliver).
    for (let i = 0; i < pending.length; i++) pending[i]!.flush(this.#join);
    pending.length = 0;
    this.#lastFrames = undefined;
    this.#lastJoined = undefined;
  }

  #joined(frames: Buffer[], bytes: number): Buffer {
    const last = this.#lastFrames;
    if (last && last.length === frames.length && this.#lastJoined!.length === bytes) {
      let same = true;
      for (let i = 0; i < frames.length; i++) {
        if (last[i] !== frames[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#lastJoined!;
    }
    this.#lastFrames = frames;
    return (this.#lastJoined = Buffer.concat(frames, bytes));
  }
}
