import type { AlertDigest, Notifier } from './notifier.ts';

const TIMEOUT_MS = 10_000;

/**
 * POSTs each digest as JSON (the `AlertDigest` fields, as is) to `alerts.webhook.url`. Any 2xx is
 * delivered; anything else, a network error or no answer within 10 s is a failure, retried by the
 * spool. The `Idempotency-Key` header carries the digest id, the same on every retry.
 */
export class WebhookNotifier implements Notifier {
  readonly channel = 'webhook';
  readonly #url: string;

  constructor(url: string) {
    this.#url = url;
  }

  async send(d: AlertDigest, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'hubcast-alerts', 'idempotency-key': d.id },
        body: JSON.stringify(d),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        redirect: 'error',
      });
    } catch (err) {
      // fetch says only "fetch failed"; the reason is in its cause. Never put the URL in the message.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = timeout.aborted ? `no answer within ${TIMEOUT_MS} ms` : (cause?.code ?? cause?.message ?? (err as Error).name);
      throw Object.assign(new Error(`webhook unreachable: ${why}`), { code: 'EWEBHOOK' });
    }
    // Drain the body so the connection can be reused; its content does not matter.
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw Object.assign(new Error(`webhook answered HTTP ${res.status}`), { code: 'EWEBHOOK' });
  }

  async close(): Promise<void> {}
}
