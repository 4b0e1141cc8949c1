/**
 * The `Presence` role: who is connected where, and to which topics — the cluster's answer to "may
 * this token connect?" and "who is subscribed to this topic?".
 *
 * The embedded default (`memory-presence.ts`) keeps everything in this process: one node, nothing to
 * share. The shared implementation (`postgres-presence.ts`, with `store.type: postgres`) keeps it in
 * the cluster's PostgreSQL so that every node gets the same answer. Both pass
 * `test/unit/presence.conformance.test.ts`.
 *
 * Contract
 * --------
 * Nodes and leases
 * - `start(node)` registers this node (`nodeId`, a random `instanceId` per process) and keeps its
 *   lease alive, renewing every `leaseMs / 3`. A node's connections and subscriptions are live only
 *   while its lease is: a node that dies (kill -9) stops renewing, and after at most `leaseMs` its
 *   tokens may connect elsewhere and its subscribers disappear from `subscribers()` — the bound is
 *   documented as "two heartbeats" (`cluster.leaseS`).
 * - `start()` fails with a `PresenceConflict` when another live process holds the same `nodeId`
 *   (two nodes configured with one name), and — for a shared implementation — reports through
 *   `peers()` which other nodes are live, so that the server can refuse a cluster on the memory broker.
 * - Any live node reaps the rows of nodes whose lease expired; `onReaped` receives the subscriptions
 *   removed so (the server sends `leave` events for them).
 * - When this node cannot renew its own lease for `leaseMs` (its store connection is lost),
 *   `onLeaseLost` fires: its connections may already have been taken over elsewhere, so the server
 *   closes them (1013, reconnect) rather than risk two live connections for one token. Renewal goes
 *   on; `onLeaseRegained` fires when it succeeds again.
 *
 * Connections (one per token, cluster-wide)
 * - `claim(conn, opts)` is atomic across the cluster: of two concurrent claims for one token exactly
 *   one succeeds. With a live holder it fails with `reason: 'duplicate'` and the holder (its node,
 *   to probe it) — unless `opts.replace`, when the claim takes the token over and returns the
 *   previous holder in `replaced` (the server closes it with 4502 on its node).
 * - With `opts.maxPerClient > 0` a claim that would give the client more live connections than that,
 *   cluster-wide, fails with `reason: 'client_limit'` (a replaced connection does not count).
 * - `release(id)` forgets a connection and its subscriptions; idempotent.
 * - Claims of a node whose lease has expired are not live (a dead node's tokens are free).
 *
 * Subscriptions (for `GET /topics/<topic>/presence` and the `presence` frame)
 * - `join` / `leave` record that a connection subscribed to a concrete topic or a pattern. They may
 *   be batched (written within ~100 ms); `flush()` writes what is pending. `subscribers(topic)` lists
 *   the live connections subscribed to exactly that topic or pattern string, across nodes.
 *
 * Failures: every method may reject when the backing store is unreachable; the caller answers
 * 503 / 1013 and nothing is half-recorded (a failed claim holds nothing).
 */
export interface ConnectionRecord {
  id: string;
  clientId: string;
  tokenHash: string;
  nodeId: string;
  connectedAt: number;
  remoteAddress: string;
}

export interface Subscriber {
  connectionId: string;
  clientId: string;
  nodeId: string;
  /** The topic or pattern as subscribed. */
  topic: string;
  since: number;
}

export interface NodeRecord {
  nodeId: string;
  instanceId: string;
  /** Where the node listens, for operators (`host:port`). */
  address: string;
  startedAt: number;
  /** When its lease runs out unless renewed (ms since the epoch). */
  expiresAt: number;
}

export type ClaimResult =
  | { ok: true; replaced?: ConnectionRecord | undefined }
  | { ok: false; reason: 'duplicate'; holder: ConnectionRecord }
  | { ok: false; reason: 'client_limit' };

export interface PresenceNode {
  nodeId: string;
  instanceId: string;
  address: string;
  leaseMs: number;
  onReaped?: (gone: { nodeId: string; subscriptions: Subscriber[] }) => void;
  onLeaseLost?: () => void;
  onLeaseRegained?: () => void;
}

export class PresenceConflict extends Error {
  override readonly name = 'PresenceConflict';
}

export interface Presence {
  /** Registers this node and starts renewing its lease. The first call; the only one that connects. */
  start(node: PresenceNode): Promise<void>;
  /** Stops renewing, releases this node's connections and its lease (a clean drain). Idempotent. */
  close(): Promise<void>;

  claim(conn: ConnectionRecord, opts: { replace: boolean; maxPerClient: number }): Promise<ClaimResult>;
  release(connectionId: string): Promise<void>;
  /** Live connections of a token, any node. */
  connectionsOfToken(tokenHash: string): Promise<ConnectionRecord[]>;
  /** Every live connection, any node, oldest first. */
  listConnections(): Promise<ConnectionRecord[]>;
  /** Hashes among `hashes` that have a live connection on some node. */
  liveTokens(hashes: readonly string[]): Promise<Set<string>>;

  join(connectionId: string, topic: string, at: number): void;
  leave(connectionId: string, topic: string): void;
  flush(): Promise<void>;
  subscribers(topic: string): Promise<Subscriber[]>;

  /** Live nodes, this one included. */
  nodes(): Promise<NodeRecord[]>;
}
