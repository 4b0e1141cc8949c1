import type { Alerts } from '../alerts/alerts.ts';
import { isClientIdFormat, sha256 } from '../core/ids.ts';
import type { FailureBudget } from '../core/rate-limit.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';

/** A rejected credential, as the entrance that rejected it describes it. */
export interface AuthFailure {
  /** Metric label (`hubcast_auth_failures_total{reason}`) and log field. */
  reason: string;
  /** The log line's message. */
  msg: string;
  /** Raise an `invalid_token` alert with this detail (the consumer entrances that alert today). */
  alert?: string;
  /** More log fields; never a credential (see `clientIdField`). */
  fields?: Record<string, unknown>;
}

/**
 * The one failure handler of every entrance: what happens when credentials are refused. It counts
 * the failure in the entrance's budget of failed authentications (consumer entrances and key
 * entrances have separate budgets, see server.ts), in `hubcast_auth_failures_total`, writes one
 * info line and, where asked, raises an alert. Also the budget check done before any lookup.
 */
export class AuthFailures {
  readonly #budget: FailureBudget;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #alerts: Alerts | undefined;

  constructor(opts: { budget: FailureBudget; metrics: Metrics; log: Logger; alerts?: Alerts }) {
    this.#budget = opts.budget;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
    this.#alerts = opts.alerts;
  }

  /**
   * Seconds `ip` must wait because it spent its budget (0: go on and look the credentials up). A
   * refusal is counted as `rate_limited`; `alert` raises an `invalid_token` alert for it.
   */
  retryAfterS(ip: string, opts: { alert?: boolean } = {}): number {
    const wait = this.#budget.retryAfterS(ip);
    if (wait > 0) {
      this.#metrics.authFailures.inc({ reason: 'rate_limited' });
      if (opts.alert) this.#alerts?.raise({ kind: 'invalid_token', ip, detail: 'rate_limited' });
    }
    return wait;
  }

  /** Records a refused credential from `ip`. */
  fail(ip: string, f: AuthFailure): void {
    this.#budget.fail(ip);
    this.#metrics.authFailures.inc({ reason: f.reason });
    this.#log.info({ ...f.fields, reason: f.reason, ip }, f.msg);
    if (f.alert !== undefined) this.#alerts?.raise({ kind: 'invalid_token', ip, detail: f.alert });
  }

  /** Forgets sources whose budget has refilled (memory bound; called from housekeeping). */
  sweep(): void {
    this.#budget.sweep();
  }
}

/**
 * A presented client id as a log field. A value that is not shaped like a client id may be anything
 * — a caller who swapped `client_id` and `client_secret` sends the secret there — so it is never
 * logged: only a 12-hex-digit SHA-256 prefix, enough to correlate repeated attempts.
 */
export function clientIdField(presented: string): { client_id: string } | { client_id_sha256: string } {
  return isClientIdFormat(presented) ? { client_id: presented } : { client_id_sha256: sha256(presented).slice(0, 12) };
}
