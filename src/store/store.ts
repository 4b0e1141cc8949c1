/**
 * The store: what Hubcast must remember across restarts, in two roles.
 *
 * - **Registry** — identity and credentials: clients, ingest/admin keys, tokens, tickets, and the
 *   change feed of revocations.
 * - **History** — per-topic message history: append → offset, read, topic state, idempotency keys.
 *
 * (Who is connected where — live connections, subscriptions, node leases — is the `Presence` role in
 * `cluster/presence.ts`; run-once work is `Leases` in `cluster/leases.ts`.)
 *
 * One backend provides both roles: the embedded default is SQLite (`sqlite-store.ts`, one node); the
 * cluster store is PostgreSQL (`postgres-store.ts`, any number of nodes). Both pass
 * `test/unit/registry.conformance.test.ts` and `test/unit/history.conformance.test.ts`.
 *
 * Contract (both roles)
 * ---------------------
 * - Secrets are never given to the store: only hashes (scrypt for client secrets, SHA-256 for
 *   tokens, tickets and ingest keys).
 * - `open()` is the first call and the only one that touches the disk or network; `close()` is
 *   idempotent and waits for pending appends to settle.
 * - Changes made by another process on the same store (the `hubcast` CLI, another node) are visible
 *   to the next read. `pollChanges()` reports clients and keys revoked since the last call (by any
 *   process), so that every node closes the live connections of a revoked client.
 *
 * Where offsets are assigned (the one place)
 * ------------------------------------------
 * By History's `append`, inside the transaction that stores the message: exactly once per topic, in
 * order, cluster-wide. SQLite: one writer process, offsets kept in memory and guarded by the topic
 * row. PostgreSQL: a per-topic row (`topics.last_offset`) updated in the append transaction — its
 * row lock orders concurrent appends from every node; the appends of one event-loop turn share one
 * transaction. A 202 or an `ack` means the append committed: durably stored, offset final.
 *
 * History and ordering guarantees (what replay relies on)
 * ------------------------------------------------------
 * - Every topic has offsets 1, 2, 3… without gaps, and an epoch: an opaque string that changes only
 *   when the topic's history was lost (for the SQLite store, when the database is new). A topic that
 *   has never had a message has offset 0 and the store's epoch.
 * - `append()` resolves only once the message is durable (committed). Implementations may group
 *   commits across concurrent calls. On one node, **promises of `append()` settle in call order**
 *   and offsets of a topic are assigned in call order. Across nodes, offsets interleave: receiving
 *   nodes order by offset (gateway/positions.ts).
 * - Idempotency (Stripe semantics). An idempotency key belongs to a publisher: it is remembered per
 *   (`scope`, `key`) for `dedupeS` seconds together with the first request's topic and `requestHash`.
 *   Within that window an append with the same scope and key
 *     - and the same topic and request hash (a retry) resolves with the first message's offset, ts
 *       and its topic's epoch, `duplicate: true`, and stores nothing;
 *     - and another topic or another request hash (a different request reusing the key) resolves with
 *       `conflict: true` (offset 0: the first message's position is not disclosed), and stores
 *       nothing.
 *   The same key in another scope is unrelated (two ingest keys cannot suppress each other's
 *   messages). After the window the key is free again. Both checks happen inside the append's
 *   transaction, so two concurrent appends with one key give one message and one duplicate (or
 *   conflict), never two messages.
 * - At most `history.size` messages per topic are retained, none older than `history.ttlS` (a message
 *   past the TTL is never returned by `readHistory` nor counted by `topicState`, even before `trim()`
 *   deletes it); trimming never changes a topic's last offset.
 */

export type PayloadKind = 'json' | 'text' | 'binary';

export interface ClientRecord {
  id: string;
  name: string;
  /** scrypt hash string of the client secret. */
  secretHash: string;
  /** ACL patterns the client may subscribe to. */
  subscribe: string[];
  /** ACL patterns the client may publish to over its WebSocket. */
  publish: string[];
  /**
   * ACL patterns of topics whose presence the client may see (the `presence` request, and `join` /
   * `leave` events with `subscribe … presence: true`). Absent = none.
   */
  presence?: string[];
  createdAt: number;
  revokedAt: number | null;
}

export interface KeyRecord {
  id: string;
  name: string;
  /** ingest: POST /entity; admin: also the admin routes (GET /connectors). */
  scope: 'ingest' | 'admin';
  /** SHA-256 (hex) of the key. */
  hash: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface TokenRecord {
  /** SHA-256 (hex) of the token. */
  hash: string;
  clientId: string;
  createdAt: number;
  /** Issue time, or when its last connection started or ended. */
  lastUsedAt: number;
}

export interface AppendRequest {
  topic: string;
  kind: PayloadKind;
  /** json: UTF-8 JSON text; text: UTF-8 text; binary: raw bytes. */
  payload: Buffer;
  /** Idempotency key, remembered per `scope` within `dedupeS` (see the contract above). */
  key?: string | undefined;
  /**
   * Who the idempotency key belongs to: `key:<ingest key id>` for HTTP ingest, `client:<client id>`
   * for WebSocket publishes, `connector:<name>` for in-process connectors, `api` for the programmatic
   * API. Opaque to the store; compared for equality only. Absent = the empty scope.
   */
  scope?: string | undefined;
  /**
   * A digest of the request (the publisher uses SHA-256 of topic, kind and payload). With `key`: a
   * repeat whose hash differs is a conflict, not a duplicate. Opaque; compared for equality only
   * (absent matches only absent).
   */
  requestHash?: string | undefined;
  ts: number;
}

export interface AppendResult {
  /** The message's offset; for a duplicate the first message's; 0 for a conflict. */
  offset: number;
  epoch: string;
  ts: number;
  /** The key was seen in this scope with the same request: nothing was stored. */
  duplicate: boolean;
  /** The key was seen in this scope with another topic or payload: nothing was stored. */
  conflict?: boolean;
}

export interface StoredMessage {
  topic: string;
  offset: number;
  ts: number;
  kind: PayloadKind;
  payload: Buffer;
}

export interface TopicState {
  /** Latest offset (0 if the topic has no message yet). */
  offset: number;
  epoch: string;
  /** Oldest retained offset (offset + 1 when nothing is retained). */
  firstRetained: number;
}

export interface Changes {
  revokedClients: string[];
  revokedKeys: string[];
}

export interface HistoryLimits {
  size: number;
  ttlS: number;
  dedupeS: number;
}

/** Identity and credentials (see the contract above). */
export interface Registry {
  createClient(client: ClientRecord): Promise<void>;
  getClient(id: string): Promise<ClientRecord | undefined>;
  listClients(): Promise<ClientRecord[]>;
  /** Marks the client revoked and deletes its tokens; false if unknown or already revoked. */
  revokeClient(id: string, at: number): Promise<boolean>;

  createKey(key: KeyRecord): Promise<void>;
  /** A key that is not revoked, by hash. */
  findKey(hash: string): Promise<KeyRecord | undefined>;
  listKeys(): Promise<KeyRecord[]>;
  /** Revokes by name or id; false if unknown or already revoked. */
  revokeKey(nameOrId: string, at: number): Promise<boolean>;

  createToken(token: TokenRecord): Promise<void>;
  /**
   * Creates `token` while keeping its client at most `max` tokens — the cap on live tokens per
   * client (`tokens.maxPerClient`), so that one client looping `POST /consumers` cannot grow the
   * token table without bound.
   *
   * Contract:
   * - Atomic: counting the client's tokens, revoking and inserting happen in one transaction, so
   *   concurrent calls (on this node or, for a cluster store, on others) never leave the client
   *   with more than `max` tokens created through this method.
   * - When the client already holds `max` (or more) tokens, the fewest tokens needed to make room
   *   are deleted first: least recently used first (by `lastUsedAt`, including `touchToken` times
   *   not yet written; ties by `createdAt`) — what OAuth servers do when a client exceeds its grant
   *   limit.
   * - A token with a live connection (held in the Presence role, on any node) is never
   *   deleted. If there are not enough tokens without one, nothing changes and `created` is false
   *   (the caller answers 429 token_limit).
   * - `revoked` lists the hashes of the deleted tokens. Tickets of a deleted token are left to
   *   expire: redeeming one finds no token and fails.
   * - Resolves once the change is durable (like `createToken`).
   */
  createTokenCapped(token: TokenRecord, max: number): Promise<{ created: boolean; revoked: string[] }>;
  /** The token, with the latest `touchToken` time even when that is not written yet. */
  getToken(hash: string): Promise<TokenRecord | undefined>;
  /**
   * Records a use of the token (a connection started or ended). Advisory — it only drives idle-token
   * expiry — so an implementation may defer the write by a few seconds and batch it with others;
   * it must be written before `deleteIdleTokens` decides and on `close()`.
   */
  touchToken(hash: string, at: number): Promise<void>;
  deleteToken(hash: string): Promise<void>;
  /** Deletes tokens unused since `before` that have no live connection; returns how many. */
  deleteIdleTokens(before: number): Promise<number>;

  createTicket(hash: string, tokenHash: string, expiresAt: number): Promise<void>;
  /** Deletes the ticket and returns its token hash if it existed and had not expired (single use). */
  consumeTicket(hash: string, now: number): Promise<string | undefined>;

  /** Reports clients and keys revoked since the last call (by any process). */
  pollChanges(): Promise<Changes>;
}

/** Per-topic message history (see the contract above). */
export interface History {
  append(req: AppendRequest): Promise<AppendResult>;
  /**
   * Messages with offset > `after`, in order, at most `limit`; with `maxBytes`, also no more payload
   * bytes than that in total — but always the first message, however large.
   */
  readHistory(topic: string, after: number, limit: number, maxBytes?: number): Promise<StoredMessage[]>;
  topicState(topic: string): Promise<TopicState>;
  /**
   * The latest offset and epoch of each of `topics` that has had a message (others are absent), in one
   * round trip: a node compares the topics it delivers with it every few seconds, so that a
   * publication the broker lost is recovered even when nothing follows it. At most 1,000 topics.
   */
  latest(topics: readonly string[]): Promise<Map<string, { offset: number; epoch: string }>>;
  /**
   * Topics that have had a message, by name (code-unit order), those after `after` (exclusive; '' for
   * the first page), at most `limit` (≤ 1,000), with their latest offset and epoch: the admin API's
   * topic list, paged.
   */
  listTopics(after: string, limit: number): Promise<{ topic: string; offset: number; epoch: string }[]>;
}

/** One backend providing both roles. */
export interface Store extends Registry, History {
  open(): Promise<void>;
  close(): Promise<void>;
  /** Drops messages past the TTL and expired idempotency keys and tickets. */
  trim(now: number): Promise<void>;
}
