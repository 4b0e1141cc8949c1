import type { Alerts } from '../alerts/alerts.ts';
import type { PublishInput } from '../core/publisher.ts';
import type { Logger } from '../logger.ts';
import type { RetryConfig } from './config.ts';
import { sleep } from './connector.ts';
import type { ConnectorDb } from './local-db.ts';
import type { RecordSink } from './runtime.ts';

export interface GatewaySinkOptions {
  gateway: string;
  key: string;
  db: ConnectorDb;
  retry: RetryConfig;
  alerts: Alerts;
  log: Logger;
}

const CONTENT_TYPE = { json: 'application/json', text: 'text/plain; charset=utf-8', binary: 'application/octet-stream' } as const;

/**
 * The sink of `hubcast connect` (standalone mode): a record is accepted once it is in the local
 * spool (SQLite, fsync'd), so the source may acknowledge it; a drain loop then POSTs spooled records
 * in order to the gateway's `POST /entity/<topic>` with their idempotency key, and forgets each only
 * after a 202. While the gateway is unreachable it retries with backoff; after `retry.attempts` it
 * alerts `gateway_unreachable` (once per outage) and goes on retrying at `retry.maxMs`.
 */
export class GatewaySink implements RecordSink {
  readonly #o: GatewaySinkOptions;
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  delivered = 0;
  failures = 0;

  constructor(opts: GatewaySinkOptions) {
    this.#o = { ...opts, gateway: opts.gateway.replace(/\/+$/, '') };
  }

  async publish(input: PublishInput): Promise<void> {
    this.#o.db.spool({ topic: input.topic, kind: input.kind, payload: input.payload, key: input.key ?? '' });
    this.#wake?.();
  }

  start(): void {
    this.#loop ??= this.#drain();
  }

  async stop(): Promise<void> {
    this.#abort.abort(new Error('stopping'));
    this.#wake?.();
    await this.#loop;
  }

  async #drain(): Promise<void> {
    const { db, retry, alerts, log } = this.#o;
    const signal = this.#abort.signal;
    let alerted = false;
    while (!signal.aborted) {
      const batch = db.peekSpool(100);
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        this.#wake = undefined;
        continue;
      }
      for (const r of batch) {
        if (signal.aborted) return;
        let status: number;
        try {
          status = await this.#post(r.topic, r.kind, r.payload, r.key, signal);
        } catch (err) {
          if (signal.aborted) return;
          status = 0;
          log.warn({ error: (err as Error).message, attempt: this.failures + 1 }, 'gateway unreachable');
        }
        if (status === 409) {
          // idempotency_key_conflict: this record's key was published before with another payload (a
          // pipeline whose output differs per run); the first publication stands.
          log.warn({ topic: r.topic, key: r.key }, 'redelivered record differs from the first publication, which stands');
          db.unspool(r.seq);
          continue;
        }
        if (status === 202 || status === 200) {
          db.unspool(r.seq);
          this.delivered++;
          if (alerted) log.info({ after: this.failures }, 'gateway reachable again; draining the spool');
          this.failures = 0;
          alerted = false;
          continue;
        }
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          // The gateway refused this record for good (bad topic, too large): keep it, out of the way.
          db.deadLetter({
            connector: 'gateway',
            key: r.key,
            kind: r.kind,
            value: r.payload,
            meta: { topic: r.topic },
            reason: `gateway answered ${status}`,
            at: Date.now(),
          });
          db.unspool(r.seq);
          log.warn({ status, topic: r.topic }, 'the gateway refused a record: dead-lettered');
          alerts.raise({ kind: 'pipeline_error', connector: 'gateway', detail: `gateway answered ${status}` });
          continue;
        }
        this.failures++;
        if (this.failures > retry.attempts && !alerted) {
          alerted = true;
          log.error({ attempts: this.failures - 1, spooled: db.spooled }, 'gateway unreachable: attempts used up; records stay spooled');
          alerts.raise({
            kind: 'gateway_unreachable',
            connector: 'gateway',
            detail: `status ${status || 'no answer'}; ${db.spooled} records spooled`,
          });
        }
        const base = this.failures > retry.attempts ? retry.maxMs : Math.min(retry.maxMs, retry.initialMs * 2 ** (this.failures - 1));
        try {
          await sleep(Math.round(base * (0.5 + Math.random() * 0.5)), signal);
        } catch {
          return;
        }
        break; // re-read the spool head: order is kept
      }
    }
  }

  async #post(topic: string, kind: keyof typeof CONTENT_TYPE, payload: Buffer, key: string, signal: AbortSignal): Promise<number> {
    // An explicit timer (not AbortSignal.timeout/any) so that a request that never gets an answer is
    // always given up; retries are safe (idempotency key). Bounded by the retry pace: 1–10 s.
    const abort = new AbortController();
    const onStop = () => abort.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    const timer = setTimeout(
      () => abort.abort(new Error('gateway request timed out')),
      Math.min(10_000, Math.max(1000, this.#o.retry.maxMs * 5)),
    );
    try {
      const res = await fetch(`${this.#o.gateway}/entity/${encodeURIComponent(topic)}`, {
        method: 'POST',
        headers: { 'content-type': CONTENT_TYPE[kind], authorization: `Bearer ${this.#o.key}`, ...(key ? { 'idempotency-key': key } : {}) },
        body: new Blob([new Uint8Array(payload)]),
        signal: abort.signal,
      });
      await res.arrayBuffer();
      return res.status;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onStop);
    }
  }
}
