import { Emitter } from './emitter.ts';
import type { HubcastError } from './errors.ts';
import type { JoinLeaveFrame, Position, SubscribedFrame } from './protocol.ts';
import type { PositionStorage } from './storage.ts';

/** A message as the application sees it. */
export interface Message {
  topic: string;
  /** Its position in `topic` (1, 2, 3…). */
  offset: number;
  /** Accepted at, ms since the Unix epoch. */
  ts: number;
  /** JSON payloads: the value; text payloads: the string; binary payloads: undefined. */
  data: unknown;
  /** Binary payloads: the bytes. */
  binary?: Uint8Array;
}

/** A `subscribed` answer, and whether this subscription resumed from a position (`since`). */
export interface SubscribedInfo extends SubscribedFrame {
  /** The position the subscription asked to resume from, if any. */
  since?: Position;
}

/**
 * Messages may have been missed: the topic's history was trimmed past the position, the topic's epoch
 * changed (history lost), or a pattern was resubscribed (patterns cannot resume). Reload the state
 * from your source of truth; the messages that follow continue from `position`.
 */
export interface GapInfo {
  topic: string;
  /** The position asked for (absent for a pattern). */
  since?: Position;
  /** Where delivery goes on from (absent for a pattern). */
  position?: Position;
  reason: 'trimmed' | 'epoch' | 'pattern';
}

export interface SubscriptionEvents {
  message: (m: Message) => void;
  subscribed: (info: SubscribedInfo) => void;
  gap: (info: GapInfo) => void;
  /** A refused subscribe (`forbidden`, `invalid_topic`…) ends the subscription; so does a stopped client. */
  error: (err: HubcastError) => void;
  /** Presence events, with `presence: true`. */
  join: (ev: JoinLeaveFrame) => void;
  leave: (ev: JoinLeaveFrame) => void;
}

export interface SubscribeOptions {
  /** Resume after this position (else the stored one, else live from now). Concrete topics only. */
  since?: Position;
  /** Also receive `join`/`leave` events (needs presence rights). */
  presence?: boolean;
}

/** Whether `topic` matches `pattern` (`*` one segment, a last `>` one or more). */
export function matches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return i < t.length;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

/**
 * One subscription to a topic or a pattern, kept across reconnects. For a concrete topic it keeps the
 * position (offset and epoch) of the last message delivered and resubscribes with `since` after every
 * reconnect, so each message is delivered once and in offset order; when that cannot be promised it
 * says so with a `gap` event. Iterate it with `for await`.
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  readonly topic: string;
  readonly pattern: boolean;
  /** @internal */
  readonly options: SubscribeOptions;
  /** @internal Resolved once the stored position was read. */
  readonly ready: Promise<void>;
  #pos: Position | undefined;
  #sent: Position | undefined;
  #seen = new Map<string, number>();
  #subscribedOnce = false;
  #storage: PositionStorage;
  #end: ((err?: HubcastError) => void)[] = [];
  #ended: { err?: HubcastError } | undefined;
  #leave: (s: Subscription) => void;

  /** @internal Made by `Hubcast.subscribe`. */
  constructor(topic: string, options: SubscribeOptions, storage: PositionStorage, leave: (s: Subscription) => void) {
    super();
    this.topic = topic;
    this.pattern = /(^|\.)[*>](\.|$)/.test(topic);
    this.options = options;
    this.#storage = storage;
    this.#leave = leave;
    this.#pos = options.since;
    this.ready =
      this.pattern || this.#pos
        ? Promise.resolve()
        : Promise.resolve(storage.get(topic)).then(
            (p) => void (this.#pos ??= p),
            () => undefined,
          );
  }

  /** The position of the last message delivered (concrete topics), or undefined. */
  get position(): Position | undefined {
    return this.#pos && { ...this.#pos };
  }

  /** Whether the subscription has ended (unsubscribed, refused, or the client closed). */
  get closed(): boolean {
    return !!this.#ended;
  }

  /** Stops the subscription (the server is told when connected). */
  unsubscribe(): void {
    if (this.#ended) return;
    this.#leave(this);
    this._end();
  }

  /** @internal The `subscribe` request for a (re)connect. */
  _request(): { topic: string; since?: Position; presence?: boolean } {
    this.#sent = this.pattern ? undefined : this.#pos && { ...this.#pos };
    const r: { topic: string; since?: Position; presence?: boolean } = { topic: this.topic };
    if (this.#sent) r.since = this.#sent;
    if (this.options.presence) r.presence = true;
    return r;
  }

  /** @internal The answer to `_request`. */
  _subscribed(f: SubscribedFrame): void {
    const sent = this.#sent;
    if (this.pattern) {
      this.#seen.clear();
      if (this.#subscribedOnce) this.emit('gap', { topic: this.topic, reason: 'pattern' });
    } else {
      const latest = { offset: f.offset ?? 0, epoch: f.epoch };
      if (!sent) this.#pos = latest;
      else {
        const newEpoch = sent.epoch !== undefined && sent.epoch !== f.epoch;
        this.#pos = newEpoch || sent.offset > latest.offset ? latest : { offset: sent.offset, epoch: f.epoch };
        if (!f.recovered)
          this.emit('gap', { topic: this.topic, since: sent, position: { ...this.#pos }, reason: newEpoch ? 'epoch' : 'trimmed' });
      }
      this.#save();
    }
    this.#subscribedOnce = true;
    const info: SubscribedInfo = { ...f };
    if (sent) info.since = sent;
    this.emit('subscribed', info);
  }

  /** @internal A message for this subscription: delivered unless already seen. */
  _message(m: Message): void {
    if (this.pattern) {
      if ((this.#seen.get(m.topic) ?? 0) >= m.offset) return;
      this.#seen.set(m.topic, m.offset);
    } else {
      if (this.#pos && m.offset <= this.#pos.offset) return;
      this.#pos = { offset: m.offset, epoch: this.#pos?.epoch };
    }
    this.emit('message', m);
    if (!this.pattern) this.#save();
  }

  #save(): void {
    const p = this.#pos;
    if (!p) return;
    const pos: Position = p.epoch === undefined ? { offset: p.offset } : { offset: p.offset, epoch: p.epoch };
    void Promise.resolve()
      .then(() => this.#storage.set(this.topic, pos))
      .catch(() => undefined);
  }

  /** @internal Ends the subscription (and its iterators), with an error when it failed. */
  _end(err?: HubcastError): void {
    if (this.#ended) return;
    this.#ended = err ? { err } : {};
    if (err) this.emit('error', err);
    for (const f of this.#end.splice(0)) f(err);
  }

  /**
   * The messages from now on, in order. Ends when the subscription ends; throws when it failed.
   * Messages are buffered (without bound) until taken.
   */
  [Symbol.asyncIterator](): AsyncIterator<Message> {
    const queue: Message[] = [];
    let wake: (() => void) | undefined;
    let done = this.#ended;
    const off = this.on('message', (m) => {
      queue.push(m);
      wake?.();
    });
    this.#end.push((err) => {
      done = err ? { err } : {};
      off();
      wake?.();
    });
    return {
      next: async () => {
        for (;;) {
          if (queue.length) return { value: queue.shift()!, done: false };
          if (done) {
            if (done.err) throw done.err;
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
      return: async () => {
        off();
        done = {};
        return { value: undefined, done: true };
      },
    };
  }
}
