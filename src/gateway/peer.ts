import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { OutMessage } from './frames.ts';

/** A message held back while a subscription's `subscribed` answer and replay are being prepared. */
interface Held {
  offset: number;
  msg: OutMessage;
}

export interface PeerInit {
  id: string;
  clientId: string;
  tokenHash: string;
  remoteAddress: string;
  subscribeAcl: readonly string[];
  publishAcl: readonly string[];
  ws: WebSocket;
  socket: Socket;
  maxBufferedBytes: number;
  onSlow: (peer: Peer) => void;
}

/**
 * Write coalescing: the first frame for a socket in an event-loop turn is kept back; a second one
 * corks the socket and writes both. Right after the turn (process.nextTick runs after the current
 * microtasks, so a whole group-committed batch of publications lands here first) every such socket
 * gets its kept-back frame as one plain write, or its corked frames as one writev. So a socket gets
 * one write per turn, never a cork for a single frame, with no added delay. Whatever else is written
 * to the socket (control frames, the close frame) first writes the kept-back frame, keeping order.
 */
const corked: Peer[] = [];
const CORK_FLUSH_BYTES = 64 * 1024;
let uncorkScheduled = false;

function uncorkAll(): void {
  uncorkScheduled = false;
  // By index: a peer's uncork never adds to the list (it writes, it does not deliver).
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork();
  corked.length = 0;
}

/**
 * One consumer connection. Kept small: the fan-out path calls `deliver()` with a frame that was built
 * once for all recipients and writes it straight to the socket.
 */
export class Peer {
  readonly id: string;
  readonly clientId: string;
  readonly tokenHash: string;
  readonly remoteAddress: string;
  readonly subscribeAcl: readonly string[];
  readonly publishAcl: readonly string[];
  readonly ws: WebSocket;
  readonly #socket: Socket;
  readonly #maxBuffered: number;
  readonly #onSlow: (peer: Peer) => void;
  readonly #deflate: boolean;
  #corked = false;
  /** This turn's first frame, not written yet (see above). */
  #first: Buffer | undefined;
  /** Topics and patterns this connection is subscribed to. */
  readonly subs = new Set<string>();
  /** Concrete topics whose live messages are held until their `subscribed` answer and replay are sent. */
  #gates: Map<string, Held[]> | undefined;
  alive = true;
  lastPongAt = 0;
  probing = false;
  closed = false;
  /** Settles when the connection has been recorded in the store. */
  recorded: Promise<void> = Promise.resolve();

  constructor(init: PeerInit) {
    this.id = init.id;
    this.clientId = init.clientId;
    this.tokenHash = init.tokenHash;
    this.remoteAddress = init.remoteAddress;
    this.subscribeAcl = init.subscribeAcl;
    this.publishAcl = init.publishAcl;
    this.ws = init.ws;
    this.#socket = init.socket;
    this.#maxBuffered = init.maxBufferedBytes;
    this.#onSlow = init.onSlow;
    this.#deflate = init.ws.extensions.includes('permessage-deflate');
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Writes a prebuilt frame of `topic`, or holds it while that topic's subscription is being set up. */
  deliver(topic: string, offset: number, msg: OutMessage): void {
    const held = this.#gates?.get(topic);
    if (held) held.push({ offset, msg });
    else this.writeMessage(msg);
  }

  /**
   * Writes the prebuilt frame straight to the socket (the same bytes for every recipient). When
   * permessage-deflate was negotiated, goes through ws instead so that order is kept. Past the outbound
   * cap the consumer is closed with 4001.
   */
  writeMessage(msg: OutMessage): void {
    if (!this.open) return;
    let queued = this.ws.bufferedAmount + (this.#first?.length ?? 0);
    // Coalescing is bounded: past a few dozen KiB in one turn the batch goes to the kernel now, so
    // what this turn corked never counts against the slow-consumer cap of a consumer that reads.
    if ((this.#corked || this.#first) && queued + msg.frame.length > Math.min(CORK_FLUSH_BYTES, this.#maxBuffered / 2)) {
      this.uncork();
      queued = this.ws.bufferedAmount;
    }
    // A single message larger than the cap still goes to a consumer that has nothing queued.
    if (queued > 0 && queued + msg.frame.length > this.#maxBuffered) {
      this.#onSlow(this);
      return;
    }
    if (this.#deflate) return this.ws.send(msg.payload, { binary: msg.binary });
    if (this.#corked) {
      this.#socket.write(msg.frame);
      return;
    }
    if (this.#first) {
      this.#corked = true;
      this.#socket.cork();
      this.#socket.write(this.#first);
      this.#first = undefined;
      this.#socket.write(msg.frame);
      return;
    }
    this.#first = msg.frame;
    corked.push(this);
    if (!uncorkScheduled) {
      uncorkScheduled = true;
      process.nextTick(uncorkAll);
    }
  }

  /** Ends this turn's coalescing (see uncorkAll): writes the kept-back frame or the corked ones. */
  uncork(): void {
    const first = this.#first;
    if (first) {
      this.#first = undefined;
      if (!this.#socket.destroyed) this.#socket.write(first);
    }
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  }

  sendText(text: string): void {
    if (!this.open) return;
    if (this.#first) this.uncork();
    this.ws.send(text);
  }

  /** Closes the WebSocket after whatever frames this turn has kept back. */
  close(code: number, reason: string): void {
    if (this.#first) this.uncork();
    this.ws.close(code, reason);
  }

  /** Start holding live messages of `topic`; returns the hold, to be given back to `release`. */
  hold(topic: string): object {
    const held: Held[] = [];
    (this.#gates ??= new Map()).set(topic, held);
    return held;
  }

  /**
   * Stop holding `topic`: write the held messages with an offset above `after`, in order. False when
   * the hold is no longer current (unsubscribed meanwhile): nothing is written then.
   */
  release(topic: string, hold: object, after: number): boolean {
    const held = this.#gates?.get(topic);
    if (!held || held !== hold) return false;
    this.#gates!.delete(topic);
    if (this.#gates!.size === 0) this.#gates = undefined;
    for (const h of held) if (h.offset > after) this.writeMessage(h.msg);
    return true;
  }

  isCurrentHold(topic: string, hold: object): boolean {
    return this.#gates?.get(topic) === hold;
  }

  /** Drop a hold without writing (unsubscribe, close). */
  dropHold(topic: string): void {
    this.#gates?.delete(topic);
    if (this.#gates?.size === 0) this.#gates = undefined;
  }
}
