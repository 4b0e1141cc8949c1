import type { PayloadKind } from '../store/store.ts';

/**
 * A message that has been durably appended to its topic's history and is ready to be delivered.
 * `payload` holds the raw bytes (json: UTF-8 JSON text; text: UTF-8; binary: raw).
 */
export interface Publication {
  topic: string;
  offset: number;
  epoch: string;
  ts: number;
  kind: PayloadKind;
  payload: Buffer;
}

/**
 * The `Broker` role: carries publications from the publisher to every node's connections.
 *
 * The embedded default (`memory-broker.ts`) delivers within this process. A cluster broker (Redis,
 * NATS) carries them to every Hubcast node, each of which delivers to its own connections.
 *
 * Contract
 * --------
 * - `publish()` is called only after the publication is durable in the Store, in offset order per
 *   topic; the broker must hand publications of one topic to `onPublication` in the same order on
 *   every node (a broker that cannot order must let the gateway reorder by offset — replay from the
 *   Store closes any gap).
 * - `onPublication` is synchronous and must not throw; it frames the message once and writes it to
 *   local subscribers.
 * - `start()` is the first call and the only one that connects; `close()` is idempotent.
 * - Delivery is at-most-once per node: a node that misses a publication (broker outage) relies on the
 *   consumer's `since` replay from the Store.
 */
export interface Broker {
  start(onPublication: (pub: Publication) => void): Promise<void>;
  publish(pub: Publication): void;
  close(): Promise<void>;
}
