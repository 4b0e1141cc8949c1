import type { CloseAction } from './protocol.ts';

/**
 * Every failure the SDK reports: an `error` frame, a refused request, a close that stops the client,
 * a publish timeout. `code` is an error code from docs/errors.md (`forbidden`, `unauthorized`, …) or one
 * of the SDK's own: `timeout`, `closed` (the client was closed), `connection_closed` (a close code without
 * an error code as its reason), `not_supported`.
 */
export class HubcastError extends Error {
  readonly code: string;
  /** The HTTP status of a refused request, when there was one. */
  readonly status: number | undefined;
  /** The WebSocket close code, when a close caused it. */
  readonly closeCode: number | undefined;
  /** What the client does about it. */
  readonly action: CloseAction | undefined;
  /** `Retry-After` of a refused request, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: string,
    message: string,
    extra: { status?: number; closeCode?: number; action?: CloseAction; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'HubcastError';
    this.code = code;
    this.status = extra.status;
    this.closeCode = extra.closeCode;
    this.action = extra.action;
    this.retryAfterMs = extra.retryAfterMs;
  }
}
