import type { Logger } from '../logger.ts';
import { summarize, type AlertDigest, type Notifier } from './notifier.ts';

/** Every digest as one warn line: always on, so the log tells what the mailbox was told. */
export class LogNotifier implements Notifier {
  readonly channel = 'log';
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  async send(d: AlertDigest): Promise<void> {
    this.#log.warn(
      {
        alert: d.kind,
        digest_id: d.id,
        client_id: d.clientId,
        connector: d.connector,
        count: d.count,
        first_at: d.firstAt,
        last_at: d.lastAt,
        sources: d.sources,
        top_ips: d.topIps,
        details: d.details,
        seq: d.seq,
        total: d.total,
      },
      `alert: ${summarize(d)}`,
    );
  }

  async close(): Promise<void> {}
}
