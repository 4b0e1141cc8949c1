import type { AlertKind } from './alerts.ts';

/**
 * A digest: what DevOps receive about one alert group (a kind, plus the client_id for per-client
 * kinds) over one window.
 *
 * - The first digest of a group covers the events of its first `alerts.groupWaitS`; each later one
 *   folds everything since the group's previous digest (at most one per `alerts.repeatS`).
 * - Source IPs are counted inside the digest, never a group key: a flood from 20 addresses is one
 *   digest listing the top addresses, not 20 digests.
 * - Everything in it is safe to mail to a shared mailbox: kinds, client ids, addresses, counts,
 *   times and short reasons. It never holds a token, ticket, secret, key or message body (details
 *   are reasons chosen by Hubcast's code, and long credential-like runs are masked on the way in).
 * - It is plain JSON data (the webhook posts it as is; the spool stores it as JSON).
 */
export interface AlertDigest {
  /** Unique per digest and stable across retries: a receiver may de-duplicate on it. */
  id: string;
  kind: AlertKind;
  /** The client the group is about, for per-client kinds (`PER_CLIENT_KINDS`). */
  clientId?: string;
  /** The connector the group is about, for connector kinds (`PER_CONNECTOR_KINDS`). */
  connector?: string;
  /** Events folded into this digest. */
  count: number;
  /** ISO 8601 times of the first and the last of those events. */
  firstAt: string;
  lastAt: string;
  /**
   * Distinct source addresses among those events. Counting stops at a bound per group (1,000 by
   * default) so memory stays bounded during a flood: at the bound it means "at least".
   */
  sources: number;
  /** True when `sources` reached that bound (more addresses were seen than were counted). */
  sourcesCapped: boolean;
  /** The busiest source addresses, most events first (at most 5). */
  topIps: { ip: string; count: number }[];
  /** Up to 5 distinct short reasons, in the order first seen. */
  details: string[];
  /** 1 for the group's first digest, 2 for its first repeat, … */
  seq: number;
  /** Events of the whole group so far, this digest's included. */
  total: number;
  /** `nodeId` of the Hubcast node that raised it, and its host name. */
  nodeId: string;
  host: string;
}

/**
 * A channel that tells DevOps: e-mail, webhook, the log. Implementations are named after the
 * channel (`email-notifier.ts`, …); `index.ts` picks them from config.
 *
 * Contract
 * --------
 * - `send()` delivers one digest and resolves once the channel has accepted it (the SMTP server
 *   queued the mail, the webhook answered 2xx). It rejects on any failure — connection refused,
 *   timeout, a non-2xx answer, a rejected recipient — so that the spool keeps the digest and retries
 *   it later with backoff. It never retries on its own and never throws synchronously.
 * - `send()` bounds its own time (a stalled server must not hold the sender forever) and gives up
 *   promptly when `signal` aborts (shutdown).
 * - It receives only the digest: never a token, ticket, secret, key or message body, and it must
 *   not log its channel's own credentials (an SMTP URL may carry a password, a webhook URL a key).
 * - Delivery is at least once: after a crash or a timeout the same digest (same `id`) may be sent
 *   again.
 * - `close()` releases connections; idempotent.
 */
export interface Notifier {
  /** The channel's stable name; rows of the spool are keyed by it. */
  readonly channel: 'email' | 'webhook' | 'log';
  send(digest: AlertDigest, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** `invalid_token: 10000 in 31 s (20 sources)` — the one-line summary used in subjects and logs. */
export function summarize(d: AlertDigest): string {
  const spanS = Math.round((Date.parse(d.lastAt) - Date.parse(d.firstAt)) / 1000);
  const who = d.clientId ? ` client ${d.clientId}:` : d.connector ? ` connector ${d.connector}:` : '';
  const sources = d.sources ? ` (${d.sources}${d.sourcesCapped ? '+' : ''} source${d.sources === 1 ? '' : 's'})` : '';
  return `${d.kind}:${who} ${d.count} in ${spanS} s${sources}`;
}

/** The subject of an alert e-mail. */
export function subjectOf(d: AlertDigest): string {
  return `[hubcast] ${summarize(d)}`;
}
