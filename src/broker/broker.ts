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
 * Node-to-node messages over the broker's control channel, addressed to one node or to all.
 * - `close`: close connection `connectionId` (on the node that holds it) with `code` (4500 revoked,
 *   4502 replaced, 1013…).
 * - `probe`: a duplicate connect was refused elsewhere; the holder pings `connectionId` and
 *   terminates it when no pong comes within `duplicates.probeMs`.
 * - `closeClient`: close every connection of `clientId` with `code` (a revoked client).
 * - `keysChanged`: an ingest or admin key was revoked; forget cached key lookups.
 * - `presence`: a connection joined or left `topic` (for `join` / `leave` frames).
 */
export type ControlMessage =
  | { op: 'close'; connectionId: string; code: number; reason: string }
  | { op: 'probe'; connectionId: string }
  | { op: 'closeClient'; clientId: string; code: number; reason: string }
  | { op: 'keysChanged' }
  | { op: 'presence'; event: 'join' | 'leave'; topic: string; clientId: string; connectionId: string; nodeId: string };

/** A control message as received: who sent it. */
export interface ControlEnvelope {
  from: string;
  msg: ControlMessage;
}

/** What a broker hands to its node. Every callback is synchronous and must not throw. */
export interface BrokerHandler {
  /** A publication of a topic this node has interest in (or, for a broker without interest, any). */
  publication(pub: Publication): void;
  /**
   * A publication exists at `offset` of `topic` but its bytes did not travel (a broker with a small
   * payload limit, PostgreSQL NOTIFY): the node reads it from History.
   */
  position(topic: string, offset: number, epoch: string): void;
  control(env: ControlEnvelope): void;
  /**
   * The broker connection went down ('down') or came (back) up ('up'). After 'up' following a 'down'
   * the node re-reads every topic it delivers from History: what was published meanwhile is
   * recovered, not lost.
   */
  state(state: 'up' | 'down', err?: unknown): void;
}

/**
 * The `Broker` role: carries publications from the node that committed them to every node that has
 * subscribers for their topic, and control messages between nodes.
 *
 * The embedded default (`memory-broker.ts`) delivers within this process. The cluster brokers
 * (`redis-broker.ts`, `nats-broker.ts`, `postgres-broker.ts`) carry them between Hubcast nodes. Every
 * implementation passes `test/unit/broker.conformance.test.ts` against its real server.
 *
 * Contract
 * --------
 * - `start(nodeId, handler)` is the first call and the only one that connects. It resolves once the
 *   node receives its control messages and the interests given so far. It rejects when the server
 *   cannot be reached at boot (the caller reports it precisely); after that, losses are reported
 *   through `handler.state('down')` and the broker reconnects by itself (capped, jittered backoff),
 *   then reports 'up' and restores every interest.
 * - `publish()` is called only after the publication is durable in History. It never throws and
 *   never blocks: a publication that cannot be sent now is dropped (the receiving nodes recover it
 *   from History, see below), counted, and the failure is reported through `state('down')`.
 * - Ordering: publications of one topic published by one node arrive in the order published. Across
 *   publishing nodes there is no order: the receiving node orders by offset (gateway/positions.ts),
 *   holding an early one back and filling a gap from History. Delivery is at-most-once per node;
 *   positions make it exactly-once, in order, toward consumers.
 * - Interest: `interest(topicOrPattern)` / `disinterest(…)` (reference-counted by the caller: one
 *   call each per change) say which topics this node wants. A broker may deliver more than asked (the
 *   node filters), never less. The publishing node gets its own publications back only when it has
 *   interest (it also delivers them locally at once; positions drop the echo).
 * - `control(msg, to)` sends to node `to`, or to every node (itself included) when `to` is undefined.
 *   At-most-once, small (≤ 4 KiB), unordered with respect to publications.
 * - `close()` is idempotent; nothing is delivered after it resolves.
 */
export interface Broker {
  start(nodeId: string, handler: BrokerHandler): Promise<void>;
  publish(pub: Publication): void;
  interest(topicOrPattern: string): void;
  disinterest(topicOrPattern: string): void;
  control(msg: ControlMessage, to?: string): void;
  /** Is the connection up now (for /healthz)? */
  readonly connected: boolean;
  /** Publications dropped so far because the connection was down or a send failed (metrics). */
  readonly dropped: number;
  close(): Promise<void>;
}
