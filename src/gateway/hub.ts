import type { Publication } from '../broker/broker.ts';
import { messageFrame } from './frames.ts';
import type { Peer } from './peer.ts';
import { SubscriptionIndex } from './subscription-index.ts';

/**
 * This node's subscriptions and fan-out. `deliver()` is the broker's callback: it frames the
 * publication once and writes the same bytes to every matching connection (each connection once, even
 * when several of its subscriptions match).
 */
export class Hub {
  readonly #index = new SubscriptionIndex<Peer>();
  readonly #onDelivered: (count: number) => void;

  constructor(onDelivered: (count: number) => void) {
    this.#onDelivered = onDelivered;
  }

  add(peer: Peer, topicOrPattern: string): void {
    peer.subs.add(topicOrPattern);
    this.#index.add(topicOrPattern, peer);
  }

  remove(peer: Peer, topicOrPattern: string): void {
    peer.subs.delete(topicOrPattern);
    peer.dropHold(topicOrPattern);
    this.#index.remove(topicOrPattern, peer);
  }

  removeAll(peer: Peer): void {
    for (const t of [...peer.subs]) this.remove(peer, t);
  }

  deliver(pub: Publication): void {
    const targets = this.#index.match(pub.topic);
    if (!targets) return;
    const frame = messageFrame(pub);
    for (const peer of targets) peer.deliver(pub.topic, pub.offset, frame);
    this.#onDelivered(targets.size);
  }

  get subscriptionCount(): number {
    return this.#index.size;
  }
}
