import type { Publication } from '../broker/broker.ts';
import { messageFrame } from './frames.ts';
import type { Peer } from './peer.ts';
import { SubscriptionIndex } from './subscription-index.ts';

/** Told when this node starts or stops wanting a topic or pattern (the broker's interest). */
export interface HubInterest {
  interest(topicOrPattern: string): void;
  disinterest(topicOrPattern: string): void;
}

/**
 * This node's subscriptions and fan-out. `deliver()` gets publications in offset order per topic
 * (from `Positions`): it frames each once and writes the same bytes to every matching connection
 * (each connection once, even when several of its subscriptions match).
 */
export class Hub {
  readonly #index = new SubscriptionIndex<Peer>();
  /** Local subscriptions per topic or pattern: the broker's interest follows 0 ↔ 1. */
  readonly #refs = new Map<string, number>();
  readonly #watchers = new Map<string, Set<Peer>>();
  readonly #onDelivered: (count: number) => void;
  readonly #interest: HubInterest | undefined;

  constructor(onDelivered: (count: number) => void, interest?: HubInterest) {
    this.#onDelivered = onDelivered;
    this.#interest = interest;
  }

  add(peer: Peer, topicOrPattern: string): void {
    peer.subs.add(topicOrPattern);
    this.#index.add(topicOrPattern, peer);
    const n = (this.#refs.get(topicOrPattern) ?? 0) + 1;
    this.#refs.set(topicOrPattern, n);
    if (n === 1) this.#interest?.interest(topicOrPattern);
  }

  remove(peer: Peer, topicOrPattern: string): void {
    if (!peer.subs.delete(topicOrPattern)) return;
    peer.dropHold(topicOrPattern);
    this.#index.remove(topicOrPattern, peer);
    const n = (this.#refs.get(topicOrPattern) ?? 1) - 1;
    if (n > 0) this.#refs.set(topicOrPattern, n);
    else {
      this.#refs.delete(topicOrPattern);
      this.#interest?.disinterest(topicOrPattern);
    }
  }

  removeAll(peer: Peer): void {
    for (const t of [...peer.subs]) this.remove(peer, t);
  }

  /** Does any local connection want publications of `topic`? */
  wants(topic: string): boolean {
    return this.#index.match(topic) !== undefined;
  }

  /** Local connections that get publications of `topic` (through the topic itself or a pattern). */
  receivers(topic: string): number {
    return this.#index.match(topic)?.size ?? 0;
  }

  /** Is `topicOrPattern` subscribed as such by a local connection? */
  has(topicOrPattern: string): boolean {
    return this.#refs.has(topicOrPattern);
  }

  /** Every topic and pattern subscribed on this node (a broker re-subscribes them after reconnecting). */
  topics(): IterableIterator<string> {
    return this.#refs.keys();
  }

  deliver(pub: Publication): void {
    const targets = this.#index.match(pub.topic);
    if (!targets) return;
    const frame = messageFrame(pub);
    for (const peer of targets) peer.deliver(pub.topic, pub.offset, frame);
    this.#onDelivered(targets.size);
  }

  /** `peer` wants join / leave events of `topicOrPattern` (it subscribed with `presence: true`). */
  watch(peer: Peer, topicOrPattern: string): void {
    let set = this.#watchers.get(topicOrPattern);
    if (!set) this.#watchers.set(topicOrPattern, (set = new Set()));
    set.add(peer);
  }

  unwatch(peer: Peer, topicOrPattern: string): void {
    const set = this.#watchers.get(topicOrPattern);
    if (set?.delete(peer) && set.size === 0) this.#watchers.delete(topicOrPattern);
  }

  /**
   * Local connections that want join / leave events of `topicOrPattern`: a set of their own, so that
   * an event costs O(watchers), not O(subscribers) — every subscribe in the cluster makes one.
   */
  watchersOf(topicOrPattern: string): ReadonlySet<Peer> | undefined {
    return this.#watchers.get(topicOrPattern);
  }

  /** Topics and patterns subscribed on this node. */
  get topicCount(): number {
    return this.#refs.size;
  }

  get subscriptionCount(): number {
    return this.#index.size;
  }
}
