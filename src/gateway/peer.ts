import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { Coalescer, Flushable } from './coalescer.ts';
import type { OutMessage } from './frames.ts';
import { RequestQueue, type RequestQueueIo } from './request-queue.ts';
import { RequestRate } from './request-rate.ts';

/** A message held back while a subscription's `subscribed` answer and replay are being prepared. */
interface Held {
  offset: number;
  msg: OutMessage;
}

/**
 * The live messages of one topic held during its subscribe. Bounded: past the connection's
 * `maxBufferedBytes` the messages are dropped and only the highest dropped offset is kept — the replay
 * then reads them from history instead (they are all committed there before they are delivered).
 */
export class Hold {
  msgs: Held[] = [];
  bytes = 0;
  /** Highest offset dropped since the hold overflowed; 0 while nothing was dropped. */
  droppedTo = 0;
  /**
   * Set after the subscription's replay when this node's live position lagged behind it (a cluster
   * node catching up on a gap): live messages up to here were already replayed and are skipped; the
   * first one above it ends the hold.
   */
  floor = 0;

  /** Starts holding again, after the replay caught up with what was dropped. */
  rearm(): void {
    this.msgs = [];
    this.bytes = 0;
    this.droppedTo = 0;
  }
}

/** The parts of ws's WebSocket the per-recipient path reads directly (its getters cost more). */
interface WsInternals {
  _sender: { _bufferedBytes: number };
}

const joinOwn = (frames: Buffer[], bytes: number) => Buffer.concat(frames, bytes);

/** How long a consumer being cut (4001, 4002) gets to take its close frame before the socket is destroyed. */
const CUT_GRACE_MS = 10_000;
/** While waiting for a socket to drain: also look again this often (compression queues emit no drain). */
const DRAIN_POLL_MS = 50;

/**
 * What a connection reports to the gateway. One object for all connections: per-connection closures
 * cost memory (under tsx each named closure also gets its own property array).
 */
export interface PeerEvents {
  /** Past its outbound cap (4001); `why` goes to the log. */
  slow(peer: Peer, why?: string): void;
  /** A queued request failed unexpectedly (close 1011). */
  error(peer: Peer, err: unknown): void;
}

export interface PeerInit {
  id: string;
  clientId: string;
  tokenHash: string;
  remoteAddress: string;
  /** When it connected (ms since the epoch, the server's clock). */
  connectedAt: number;
  subscribeAcl: readonly string[];
  publishAcl: readonly string[];
  /** ACL patterns of topics whose presence it may see. */
  presenceAcl: readonly string[];
  ws: WebSocket;
  socket: Socket;
  maxBufferedBytes: number;
  /** `ws.requests`: the request budget of the connection. */
  requests: { perSecond: number; burst: number };
  events: PeerEvents;
  /** The gateway's write coalescer: this connection's frames of a turn go out as one write. */
  coalescer: Coalescer;
}

/** Bytes queued for a connection in one turn past which they are written at once (see writeMessage). */
const CORK_FLUSH_BYTES = 64 * 1024;

/**
 * One consumer connection. Kept small: the fan-out path calls `deliver()` with a frame that was built
 * once for all recipients and writes it straight to the socket.
 */
export class Peer implements RequestQueueIo, Flushable {
  readonly id: string;
  readonly clientId: string;
  readonly tokenHash: string;
  readonly remoteAddress: string;
  readonly connectedAt: number;
  readonly subscribeAcl: readonly string[];
  readonly publishAcl: readonly string[];
  readonly presenceAcl: readonly string[];
  readonly ws: WebSocket;
  readonly #socket: Socket;
  readonly #maxBuffered: number;
  readonly #events: PeerEvents;
  readonly #coalescer: Coalescer;
  readonly #deflate: boolean;
  /**
   * Aborted when the connection closes or is being closed: stops its replay and any wait at once.
   * Made on first use (most connections never replay or wait): an AbortController costs ~0.5 KiB.
   */
  #abort: AbortController | undefined;
  #stopped = false;
  /** This connection's requests, one at a time in arrival order. */
  readonly requests: RequestQueue;
  /** Its request budget (close 4002 past it). */
  readonly rate: RequestRate;
  /** This turn's frames, not written yet (see above). */
  #out: Buffer[] | undefined;
  #outBytes = 0;
  /** Bytes the socket held when last looked at (after each write): see writeMessage. */
  #base = 0;
  /** Queued bytes past which this turn's queue is written at once and the socket read again. */
  readonly #flushAt: number;
  /** Topics and patterns this connection is subscribed to. */
  readonly subs = new Set<string>();
  /** Concrete topics whose live messages are held until their `subscribed` answer and replay are sent. */
  #gates: Map<string, Hold> | undefined;
  alive = true;
  lastPongAt = 0;
  probing = false;
  closed = false;
  /** Its presence claim was released (close, forbid): done once. */
  released = false;

  constructor(init: PeerInit) {
    this.id = init.id;
    this.clientId = init.clientId;
    this.tokenHash = init.tokenHash;
    this.remoteAddress = init.remoteAddress;
    this.connectedAt = init.connectedAt;
    this.subscribeAcl = init.subscribeAcl;
    this.publishAcl = init.publishAcl;
    this.presenceAcl = init.presenceAcl;
    this.ws = init.ws;
    this.#socket = init.socket;
    this.#maxBuffered = init.maxBufferedBytes;
    this.#flushAt = Math.min(CORK_FLUSH_BYTES, init.maxBufferedBytes / 2);
    this.#events = init.events;
    this.#coalescer = init.coalescer;
    this.#deflate = init.ws.extensions.includes('permessage-deflate');
    this.rate = new RequestRate(init.requests.perSecond, init.requests.burst);
    this.requests = new RequestQueue(this);
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  pauseRequests(): void {
    this.ws.pause();
  }

  resumeRequests(): void {
    if (this.open) this.ws.resume();
  }

  requestFailed(err: unknown): void {
    this.#events.error(this, err);
  }

  /** Aborted once the connection is closing or closed. */
  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.#stopped) this.#abort.abort();
    }
    return this.#abort.signal;
  }

  #stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
  }

  /**
   * Bytes queued for this socket and not yet taken by the kernel. ws's `bufferedAmount` is the socket's
   * writable length — which holds what `ws.send` wrote and what we wrote to the raw socket alike — plus
   * what ws's sender still holds (frames waiting for compression); to that, this turn's queued frames.
   */
  get queuedBytes(): number {
    return this.#measure() + this.#outBytes;
  }

  /** The outbound cap: would `len` more bytes fit? (One frame always fits when nothing is queued.) */
  fits(len: number): boolean {
    const queued = this.queuedBytes;
    return queued === 0 || queued + len <= this.#maxBuffered;
  }

  get maxBufferedBytes(): number {
    return this.#maxBuffered;
  }

  /** Writes a prebuilt frame of `topic`, or holds it while that topic's subscription is being set up. */
  deliver(topic: string, offset: number, msg: OutMessage): void {
    const hold = this.#gates?.get(topic);
    if (!hold) return this.writeMessage(msg);
    if (hold.floor) {
      if (offset <= hold.floor) return;
      this.dropHold(topic);
      return this.writeMessage(msg);
    }
    if (hold.droppedTo) {
      hold.droppedTo = offset;
      return;
    }
    hold.msgs.push({ offset, msg });
    hold.bytes += msg.frame.length;
    if (hold.bytes > this.#maxBuffered) {
      hold.msgs = [];
      hold.bytes = 0;
      hold.droppedTo = offset;
    }
  }

  /**
   * Writes the prebuilt frame straight to the socket (the same bytes for every recipient). When
   * permessage-deflate was negotiated, goes through ws instead so that order is kept. Past the outbound
   * cap the consumer is closed with 4001.
   */
  writeMessage(msg: OutMessage): void {
    if (this.closed || this.#stopped) return;
    if (this.#deflate) return this.#sendCompressed(msg);
    const len = msg.frame.length;
    // The per-recipient path reads only this object: what the socket held when this connection was
    // last written to (`#base`; it only shrinks meanwhile, as the kernel takes bytes) plus this turn's
    // queue. Near a bound the socket itself is read again (`#measure`).
    if (this.#base + this.#outBytes + len > this.#flushAt) {
      // Coalescing is bounded: past a few dozen KiB in one turn the batch goes to the kernel now, so
      // what this turn queued never counts against the slow-consumer cap of a consumer that reads.
      this.flush();
      const queued = this.#measure();
      // A single message larger than the cap still goes to a consumer that has nothing queued.
      if (queued > 0 && queued + len > this.#maxBuffered) {
        if (this.open) this.#events.slow(this);
        return;
      }
      if (!this.open) return;
    }
    this.#outBytes += len;
    if (this.#out) {
      this.#out.push(msg.frame);
      return;
    }
    this.#out = [msg.frame];
    this.#coalescer.queue(this);
  }

  /** Bytes the socket and ws's sender hold now (ws's `bufferedAmount` without its getters). */
  #measure(): number {
    const sender = (this.ws as unknown as WsInternals)._sender;
    return (this.#base = this.#socket.writableLength + (sender?._bufferedBytes ?? 0));
  }

  /** permessage-deflate: through ws (which keeps order), under the same cap. */
  #sendCompressed(msg: OutMessage): void {
    const queued = this.#measure();
    if (queued > 0 && queued + msg.frame.length > this.#maxBuffered) {
      if (this.open) this.#events.slow(this);
      return;
    }
    if (this.open) this.ws.send(msg.payload, { binary: msg.binary });
  }

  /** Writes this turn's queued frames with one socket write (see Coalescer). */
  flush(join: (frames: Buffer[], bytes: number) => Buffer = joinOwn): void {
    const out = this.#out;
    if (!out) return;
    const bytes = this.#outBytes;
    this.#out = undefined;
    this.#outBytes = 0;
    if (this.#socket.destroyed) return;
    this.#socket.write(out.length === 1 ? out[0]! : join(out, bytes));
    this.#measure();
  }

  /**
   * Writes a control or error frame. It counts against the same outbound cap as messages: a client that
   * sends requests and does not read the answers is a slow consumer (4001) like any other.
   */
  sendText(text: string): void {
    if (!this.open) return;
    if (!this.fits(Buffer.byteLength(text))) return this.#events.slow(this);
    this.flush();
    this.ws.send(text);
    this.#measure();
  }

  /** Closes the WebSocket after whatever frames this turn has kept back. */
  close(code: number, reason: string): void {
    this.flush();
    this.#stop();
    this.ws.close(code, reason);
  }

  /**
   * Closes a consumer the server gives up on (4001, 4002). Its socket is no longer read — whatever it
   * keeps sending costs nothing — until the close frame has left (a consumer that reads then gets its
   * close handshake); one that does not read is destroyed after CUT_GRACE_MS, freeing what was queued.
   */
  cut(code: number, reason: string): void {
    if (!this.open) return;
    this.ws.pause();
    this.close(code, reason);
    const resume = () => this.ws.resume();
    if (this.#socket.writableLength === 0) resume();
    else this.#socket.once('drain', resume);
    setTimeout(() => this.ws.terminate(), CUT_GRACE_MS).unref();
  }

  /** Gives up on this consumer as a slow consumer (4001); `why` goes to the log. */
  slow(why: string): void {
    if (this.open) this.#events.slow(this, why);
  }

  /** The connection closed: stops whatever waits on it. */
  gone(): void {
    this.#stop();
    this.requests.clear();
  }

  /**
   * Waits until at most `lowWater` bytes are queued for the socket. 'stalled' when that has not
   * happened within `timeoutMs`; 'closed' when the connection closes or is being closed meanwhile.
   */
  async drained(lowWater: number, timeoutMs: number): Promise<'ok' | 'stalled' | 'closed'> {
    const deadline = Date.now() + timeoutMs;
    const signal = this.signal;
    // What this turn queued goes to the socket now: the kernel may well take it at once.
    this.flush();
    while (this.open) {
      if (this.queuedBytes <= lowWater) return 'ok';
      const left = deadline - Date.now();
      if (left <= 0) return 'stalled';
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#socket.off('drain', done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, DRAIN_POLL_MS));
        this.#socket.once('drain', done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return 'closed';
  }

  /** Start holding live messages of `topic`; returns the hold, to be given back to `release`. */
  hold(topic: string): Hold {
    const hold = new Hold();
    (this.#gates ??= new Map()).set(topic, hold);
    return hold;
  }

  /**
   * Stop holding `topic`: write the held messages with an offset above `after`, in order. False when
   * the hold is no longer current (unsubscribed meanwhile): nothing is written then. The caller has
   * made sure nothing was dropped from it (`droppedTo` is 0) — or replayed past what was.
   */
  release(topic: string, hold: Hold, after: number): boolean {
    const gates = this.#gates;
    if (gates?.get(topic) !== hold) return false;
    gates.delete(topic);
    if (gates.size === 0) this.#gates = undefined;
    for (const h of hold.msgs) if (h.offset > after) this.writeMessage(h.msg);
    return true;
  }

  /**
   * After `release`: live messages of `topic` through `offset` were replayed already — skip them when
   * they come (this node's live position is behind the history the replay read).
   */
  skipThrough(topic: string, offset: number): void {
    const hold = new Hold();
    hold.floor = offset;
    (this.#gates ??= new Map()).set(topic, hold);
  }

  isCurrentHold(topic: string, hold: Hold): boolean {
    return this.#gates?.get(topic) === hold;
  }

  /** Drop a hold without writing (unsubscribe, close). */
  dropHold(topic: string): void {
    this.#gates?.delete(topic);
    if (this.#gates?.size === 0) this.#gates = undefined;
  }
}
