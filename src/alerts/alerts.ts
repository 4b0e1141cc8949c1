/**
 * Alerts to DevOps: what Hubcast raises when something needs a human.
 *
 * Contract
 * --------
 * - `raise()` is synchronous, cheap and never throws: it may be called on hot paths (a flood of bogus
 *   tokens). It never blocks message delivery; sending happens in the background.
 * - Events are grouped into digests by `kind`, and for kinds about one client also by `clientId`
 *   (source IPs are counted inside a digest, never a group key). The first event of a group is sent
 *   within `alerts.groupWaitS`; later ones are folded into at most one message per `alerts.repeatS`.
 * - A digest names the kind, the client_id where one applies, the top source IPs, the count and the
 *   first/last time. It never contains a token, ticket, secret, key or message body: `detail` must be
 *   a short human text free of those (callers pass reasons, never credentials or payloads).
 * - Digests are spooled durably and retried with backoff while a channel (SMTP, webhook) is down.
 */
export type AlertKind =
  /** Upgrade or ticket request with a missing/malformed/unknown/expired/revoked token or ticket. */
  | 'invalid_token'
  /** A consumer sent a frame it may not send (closed with 4501). */
  | 'consumer_sent_message'
  /** An unexpected error in a handler (the connection closed with 1011), or a failing background task. */
  | 'internal_error'
  /** The store could not be read or written (disk full, locked, its PostgreSQL unreachable). */
  | 'store_unavailable'
  /** The cluster broker (Redis, NATS, PostgreSQL) connection was lost; it reconnects by itself. */
  | 'broker_unavailable'
  /** Repeated duplicate connections for one token: a sign of a leaked token. */
  | 'duplicate_connection'
  /** A connector's source stayed unreachable through `retry.attempts` reconnects (retrying goes on). */
  | 'source_unreachable'
  /** A connector's source is reachable again after `source_unreachable`. */
  | 'source_recovered'
  /** A connector stopped on an error retrying cannot fix (bad credentials, missing table). */
  | 'source_failed'
  /** A connector refused something its source offered, for safety (a file connector's symbolic link). */
  | 'source_refused'
  /** Records rejected by a connector's pipeline (bad data, expression error): in the dead-letter store. */
  | 'pipeline_error'
  /** `hubcast connect` could not reach the gateway through `retry.attempts` tries (records stay spooled). */
  | 'gateway_unreachable';

/** Kinds about one client: grouped per client_id as well as per kind. */
export const PER_CLIENT_KINDS: ReadonlySet<AlertKind> = new Set(['consumer_sent_message', 'duplicate_connection']);

/** Kinds about one connector: grouped per connector name as well as per kind. */
export const PER_CONNECTOR_KINDS: ReadonlySet<AlertKind> = new Set([
  'source_unreachable',
  'source_recovered',
  'source_failed',
  'source_refused',
  'pipeline_error',
  'gateway_unreachable',
]);

export interface AlertEvent {
  kind: AlertKind;
  clientId?: string | undefined;
  /** The connector the event is about (connector kinds). */
  connector?: string | undefined;
  ip?: string | undefined;
  /** Short reason for humans; never a credential or a message body. */
  detail?: string | undefined;
}

export interface Alerts {
  raise(event: AlertEvent): void;
  /** Starts background sending (opens the spool). Called by `listen()`. */
  start(): Promise<void>;
  /** Flushes what is due and stops; undelivered digests stay spooled for the next start. Idempotent. */
  close(): Promise<void>;
}
