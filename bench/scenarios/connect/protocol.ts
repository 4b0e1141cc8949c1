import type { Summary } from '../../lib/stats.ts';

/**
 * What the connect scenario's orchestrator and its dial worker tell each other: `{type:'config'}`,
 * `{type:'ready'}`, then `window-start` / `window-end` marks (the orchestrator samples the server's
 * CPU on them) and `{type:'result'}`.
 */

export interface DialConfig {
  port: number;
  /** `/ws` (Hubcast), `/` (bare ws). */
  path: string;
  /** Bearer tokens used round robin (a token is reused only after every other one); none: no Authorization header. */
  tokens: string[];
  /** Source addresses, round robin. */
  sources: string[];
  /** Handshakes in flight (each slot: connect, 101, close, wait for the close, next). */
  concurrency: number;
  warmMs: number;
  measureMs: number;
  timeoutMs: number;
  /** Hard bound on attempts (warm-up included). */
  maxAttempts: number;
}

export interface DialResult {
  attempts: number;
  /** 101s completed within the measured window. */
  completed: number;
  windowMs: number;
  perS: number;
  /** Dial to 101, handshakes completed in the window. */
  handshakeMs: Summary;
  /** Failed attempts (whole run) by reason (`http_409`, `ECONNRESET`, `upgrade timeout`). */
  failures: Record<string, number>;
  /** Connections whose close did not finish within the bound (then destroyed). */
  closeTimeouts: number;
}
