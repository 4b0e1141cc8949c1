import { existsSync } from 'node:fs';
import type { Logger } from '../logger.ts';
import type { DigestSink } from './alert-manager.ts';
import type { AlertDigest, Notifier } from './notifier.ts';
import type { RecentAlerts } from './recent.ts';
import { Spool, type SpooledAlert } from './spool.ts';

export interface DeliveryOptions {
  /** `<dataDir>/alerts.db`; opened only when there is a spooled channel. */
  spoolPath: string;
  /** Told at once, not spooled (the log). */
  immediate: readonly Notifier[];
  /** Spooled and retried until delivered (e-mail, webhook). */
  spooled: readonly Notifier[];
  retry: { initialMs: number; maxMs: number };
  log: Logger;
  /** How long `close()` waits for a send in flight. */
  closeWaitMs?: number;
  /** Told the outcome of every send, per channel (the admin API's recent alerts). */
  recent?: RecentAlerts | undefined;
}

/** While nothing is spooled, a sender still looks again this often (it is woken on every new digest anyway). */
const IDLE_MS = 60_000;

/** Capped exponential backoff with jitter: between half and all of min(maxMs, initialMs·2^(n-1)). */
export function backoffMs(failures: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 40));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** An error as a short log text, without any URL credentials a library may have put in it. */
function describeError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const text = typeof e?.message === 'string' ? e.message : String(err);
  return (typeof e?.code === 'string' ? `${e.code}: ` : '') + text.replace(/\/\/[^/\s@]*@/g, '//***@').slice(0, 300);
}

/**
 * Gets digests out: the immediate notifiers at once, and each spooled channel through the spool
 * (`spool.ts`) with one independent sender loop per channel, so a stalled SMTP server delays
 * neither the webhook nor anything else. A failed send is rescheduled with capped, jittered
 * exponential backoff and the channel pauses for that long; it retries forever. Everything here is
 * asynchronous: nothing waits on the network except the sender loops themselves.
 */
export class Delivery implements DigestSink {
  readonly #o: DeliveryOptions;
  readonly #abort = new AbortController();
  readonly #wakers = new Set<() => void>();
  #spool: Spool | undefined;
  #loops: Promise<void>[] = [];

  constructor(options: DeliveryOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    if (this.#spool || this.#abort.signal.aborted) return;
    const channels = this.#o.spooled.map((n) => n.channel);
    if (channels.length === 0 && !existsSync(this.#o.spoolPath)) return;
    const spool = new Spool(this.#o.spoolPath);
    const dropped = spool.dropChannelsExcept(channels);
    if (dropped) this.#o.log.warn({ dropped }, 'spooled alerts for channels no longer configured were dropped');
    if (channels.length === 0) return spool.close();
    this.#spool = spool;
    spool.dueNow(Date.now());
    const waiting = spool.pending();
    if (Object.keys(waiting).length) this.#o.log.info({ waiting }, 'undelivered alerts from before the restart will be retried');
    this.#loops = this.#o.spooled.map((n) => this.#run(n, spool));
  }

  accept(digest: AlertDigest): void {
    const recent = this.#o.recent;
    for (const n of this.#o.immediate) {
      const failed = (err: unknown) => {
        recent?.outcome(digest, n.channel, 'failed');
        this.#o.log.error({ channel: n.channel, error: describeError(err) }, 'alert notifier failed');
      };
      try {
        n.send(digest).then(() => recent?.outcome(digest, n.channel, 'sent'), failed);
      } catch (err) {
        failed(err);
      }
    }
    if (this.#o.spooled.length === 0) return;
    if (!this.#spool) {
      // Raised before start() or after close(): the log line above is all that can be done.
      this.#o.log.warn({ alert: digest.kind, digest_id: digest.id }, 'alert not spooled: alert delivery is not running');
      return;
    }
    try {
      this.#spool.add(
        digest,
        this.#o.spooled.map((n) => n.channel),
        Date.now(),
      );
    } catch (err) {
      this.#o.log.error({ alert: digest.kind, digest_id: digest.id, error: describeError(err) }, 'could not spool an alert');
      return;
    }
    for (const wake of [...this.#wakers]) wake();
  }

  /** Stops the senders (waiting at most `closeWaitMs` for a send in flight), then closes notifiers and spool. */
  async close(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    const waitMs = this.#o.closeWaitMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(this.#loops), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    await Promise.allSettled([...this.#o.spooled, ...this.#o.immediate].map((n) => n.close()));
    this.#spool?.close();
  }

  async #run(n: Notifier, spool: Spool): Promise<void> {
    const { signal } = this.#abort;
    const { log, retry } = this.#o;
    let failures = 0;
    let pausedUntil = 0;
    while (!signal.aborted) {
      const now = Date.now();
      if (now < pausedUntil) {
        await this.#sleep(pausedUntil - now, false);
        continue;
      }
      let row: SpooledAlert | undefined;
      try {
        row = spool.next(n.channel, now);
      } catch (err) {
        // The spool file itself failed (disk full…): say so, and look again later.
        log.error({ channel: n.channel, error: describeError(err) }, 'alert spool unreadable');
        pausedUntil = now + retry.maxMs;
        continue;
      }
      if (!row) {
        const due = spool.nextDueAt(n.channel);
        await this.#sleep(due === undefined ? IDLE_MS : Math.max(1, due - now), true);
        continue;
      }
      try {
        await n.send(row.digest, signal);
        if (signal.aborted) return; // closing: the row may stay; at-least-once allows a resend
        try {
          spool.remove(row.id);
        } catch (err) {
          log.error({ channel: n.channel, error: describeError(err) }, 'could not remove a delivered alert from the spool');
        }
        failures = 0;
        this.#o.recent?.outcome(row.digest, n.channel, 'sent');
        log.info({ channel: n.channel, alert: row.digest.kind, digest_id: row.digest.id, attempts: row.attempts + 1 }, 'alert delivered');
      } catch (err) {
        if (signal.aborted) return;
        this.#o.recent?.outcome(row.digest, n.channel, 'failed');
        failures++;
        const delay = backoffMs(failures, retry.initialMs, retry.maxMs);
        pausedUntil = Date.now() + delay;
        try {
          spool.retryAt(row.id, row.attempts + 1, pausedUntil);
        } catch {
          /* the pause still applies; the row keeps its old schedule */
        }
        log.warn(
          {
            channel: n.channel,
            alert: row.digest.kind,
            digest_id: row.digest.id,
            attempt: row.attempts + 1,
            retry_in_ms: delay,
            error: describeError(err),
          },
          'alert delivery failed; will retry',
        );
      }
    }
  }

  /** Sleeps up to `ms`; aborted by close(), and by a new digest when `wakeable`. */
  #sleep(ms: number, wakeable: boolean): Promise<void> {
    const { signal } = this.#abort;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      if (wakeable) this.#wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
