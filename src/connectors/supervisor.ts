import type { Alerts } from '../alerts/alerts.ts';
import type { Logger } from '../logger.ts';
import type { RetryConfig } from './config.ts';
import { FatalSourceError, sleep, type Connector, type ConnectorContext } from './connector.ts';

export type ConnectorStatus = 'starting' | 'running' | 'retrying' | 'failed' | 'stopped';

/** Hides credentials in URLs (`amqp://user:pass@host` → `amqp://user:***@host`) in error texts. */
export function scrubUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*):[^/\s@]*@/gi, '$1:***@');
}

/**
 * Runs one connector for the life of the process: reconnects with capped, jittered exponential
 * backoff; after `retry.attempts` failed reconnects it alerts `source_unreachable` once and keeps
 * retrying at `retry.maxMs`, alerting `source_recovered` when the source is back. A
 * `FatalSourceError` stops it (`failed`, alert `source_failed`).
 */
export class Supervisor {
  status: ConnectorStatus = 'starting';
  lastError: string | undefined;
  attempts = 0;
  readonly #c: Connector;
  readonly #retry: RetryConfig;
  readonly #alerts: Alerts;
  readonly #log: Logger;
  readonly #ctx: Omit<ConnectorContext, 'connected' | 'signal'>;
  readonly #abort = new AbortController();
  #unreachableAlerted = false;
  #done: Promise<void> | undefined;

  constructor(
    connector: Connector,
    opts: { retry: RetryConfig; alerts: Alerts; log: Logger; ctx: Omit<ConnectorContext, 'connected' | 'signal'> },
  ) {
    this.#c = connector;
    this.#retry = opts.retry;
    this.#alerts = opts.alerts;
    this.#log = opts.log;
    this.#ctx = opts.ctx;
  }

  start(): void {
    this.#done ??= this.#loop();
  }

  #connected = (): void => {
    if (this.#unreachableAlerted) {
      this.#alerts.raise({ kind: 'source_recovered', connector: this.#c.name, detail: `after ${this.attempts} reconnects` });
      this.#log.info({ attempts: this.attempts }, 'source reachable again');
    }
    this.#unreachableAlerted = false;
    this.attempts = 0;
    this.status = 'running';
  };

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      this.status = this.attempts === 0 ? 'starting' : 'retrying';
      try {
        await this.#c.run({ ...this.#ctx, signal, connected: this.#connected });
        if (signal.aborted) break;
        throw new Error('the connector stopped on its own');
      } catch (err) {
        if (signal.aborted) break;
        this.lastError = scrubUrls((err as Error)?.message ?? String(err));
        if (err instanceof FatalSourceError) {
          this.status = 'failed';
          this.#log.error({ error: this.lastError }, 'connector failed: an error retrying cannot fix');
          this.#alerts.raise({ kind: 'source_failed', connector: this.#c.name, detail: this.lastError });
          return;
        }
        this.attempts++;
        this.status = 'retrying';
        const { attempts, initialMs, maxMs } = this.#retry;
        if (this.attempts > attempts && !this.#unreachableAlerted) {
          this.#unreachableAlerted = true;
          this.#log.error(
            { error: this.lastError, attempts: this.attempts - 1 },
            'source unreachable: reconnect attempts used up; retrying at retry.maxMs',
          );
          this.#alerts.raise({ kind: 'source_unreachable', connector: this.#c.name, detail: this.lastError });
        } else {
          this.#log.warn({ error: this.lastError, attempt: this.attempts }, 'source lost; reconnecting');
        }
        const base = this.attempts > attempts ? maxMs : Math.min(maxMs, initialMs * 2 ** (this.attempts - 1));
        try {
          await sleep(Math.round(base * (0.5 + Math.random() * 0.5)), signal);
        } catch {
          break;
        }
      }
    }
    this.status = this.status === 'failed' ? 'failed' : 'stopped';
  }

  async stop(): Promise<void> {
    this.#abort.abort(new Error('connector stopping'));
    await this.#done;
    if (this.status !== 'failed') this.status = 'stopped';
  }
}
