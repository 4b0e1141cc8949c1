import { scrubUrls } from '../connectors/supervisor.ts';
import type { Logger } from '../logger.ts';
import type { BrokerHandler } from './broker.ts';

/** How long `start()` may take to reach the server before it rejects. */
export const BOOT_TIMEOUT_MS = 5000;
/** Reconnect backoff of the cluster brokers: first delay and cap (jittered, see `backoffMs`). */
export const RETRY_INITIAL_MS = 100;
export const RETRY_MAX_MS = 5000;
/** A connection that does not answer a ping within this long is dropped and reconnected. */
export const HEARTBEAT_MS = 10_000;
export const HEARTBEAT_TIMEOUT_MS = 5000;

/** An error as a short text without URL credentials. */
export function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const text = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
  return scrubUrls((typeof e?.code === 'string' && !text.includes(e.code) ? `${e.code}: ` : '') + text).slice(0, 300);
}

/** The error `start()` rejects with: names the server (password scrubbed) and the cause. */
export function unreachable(what: string, url: string, err: unknown): Error {
  return new Error(`cannot reach the ${what} broker at ${scrubUrls(url)}: ${describe(err)}`, { cause: err });
}

/** `p`, or a rejection after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * The up/down state a broker reports: each transition once, logged. Nothing is reported before
 * `arm()` (the end of a successful `start()`) or after `disarm()` (`close()`).
 */
export class LinkState {
  readonly #what: string;
  readonly #url: string;
  readonly #log: Logger | undefined;
  #handler: BrokerHandler | undefined;
  #up = false;

  constructor(what: string, url: string, log: Logger | undefined) {
    this.#what = what;
    this.#url = scrubUrls(url);
    this.#log = log;
  }

  get up(): boolean {
    return this.#up;
  }

  /** Start reporting (the connection is up). */
  arm(handler: BrokerHandler): void {
    this.#handler = handler;
    this.#up = true;
  }

  disarm(): void {
    this.#handler = undefined;
    this.#up = false;
  }

  set(up: boolean, err?: unknown): void {
    const h = this.#handler;
    if (!h || up === this.#up) return;
    this.#up = up;
    if (up) {
      this.#log?.info({ broker: this.#what, url: this.#url }, 'broker connection restored');
      h.state('up');
    } else {
      this.#log?.warn(
        { broker: this.#what, url: this.#url, error: err === undefined ? undefined : describe(err) },
        'broker connection lost',
      );
      h.state('down', err);
    }
  }
}
