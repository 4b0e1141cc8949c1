import type { ErrorCode } from '../../packages/client/src/protocol.ts';

/**
 * The one registry of stable error codes. Codes are API: clients switch on them, so a code is never
 * renamed or reused. Every code here is documented in docs/errors.md (a test enforces it).
 *
 * HTTP errors are sent as `{"error":{"code","message"}}` with `status`; WebSocket errors as
 * `{"type":"error","code","message"}` frames (status is then informational).
 */
export const ERRORS = {
  bad_request: { status: 400, message: 'the request is malformed' },
  invalid_client: { status: 401, message: 'unknown client, wrong secret or revoked client' },
  unauthorized: { status: 401, message: 'missing, invalid or expired credentials' },
  invalid_key: { status: 401, message: 'missing or invalid ingest key' },
  invalid_signature: { status: 401, message: 'missing or invalid webhook signature' },
  ip_not_allowed: { status: 403, message: 'this source address may not use this endpoint' },
  not_found: { status: 404, message: 'no such route' },
  method_not_allowed: { status: 405, message: 'method not allowed on this route' },
  duplicate_connection: { status: 409, message: 'this token already has a live connection' },
  idempotency_key_conflict: {
    status: 409,
    message: 'this idempotency key was already used for a different request (topic or payload) within history.dedupeS',
  },
  origin_not_allowed: { status: 403, message: 'this browser origin may not connect' },
  rate_limited: { status: 429, message: 'too many failed attempts from this address; try again later' },
  connection_limit: { status: 429, message: 'too many connections from this address or client' },
  registration_rate_limited: { status: 429, message: 'too many registrations for this client or from this address; try again later' },
  token_limit: { status: 429, message: 'this client holds its maximum of tokens, each with a live connection' },
  payload_too_large: { status: 413, message: 'the payload exceeds the size limit' },
  unsupported_media_type: { status: 415, message: 'this content type cannot be taken here' },
  invalid_topic: { status: 400, message: 'invalid topic or pattern' },
  invalid_json: { status: 400, message: 'the body is not valid JSON' },
  invalid_text: { status: 400, message: 'the text body is not valid UTF-8' },
  forbidden: { status: 403, message: 'not allowed by this client’s access rules' },
  publish_not_allowed: { status: 403, message: 'consumers are not allowed to send messages' },
  not_subscribed: { status: 400, message: 'not subscribed to this topic' },
  already_subscribed: { status: 400, message: 'already subscribed to this topic' },
  too_many_subscriptions: { status: 400, message: 'the subscription limit of this connection is reached' },
  unavailable: { status: 503, message: 'temporarily unavailable, try again later' },
  internal_error: { status: 500, message: 'internal error' },
  headers_too_large: { status: 431, message: 'the request headers are too large' },
  request_timeout: { status: 408, message: 'the request headers did not arrive in time' },
  expectation_failed: { status: 417, message: 'only "Expect: 100-continue" is supported' },
  self_revocation: { status: 409, message: 'an admin key may not revoke itself; use another admin key or the CLI' },
} as const satisfies Record<ErrorCode, { status: number; message: string }>;

/** The codes themselves live in the shared protocol module (packages/client/src/protocol.ts). */
export type { ErrorCode };

/** An error that carries a registry code; safe to serialize (never carries internals). */
export class HubcastError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message?: string, opts: { cause?: unknown; retryAfterS?: number } = {}) {
    super(message ?? ERRORS[code].message, { cause: opts.cause });
    this.name = 'HubcastError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retryAfterS = opts.retryAfterS;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function errorBody(code: ErrorCode, message?: string): string {
  return JSON.stringify({ error: { code, message: message ?? ERRORS[code].message } });
}

/** Thrown for invalid configuration; the message names the key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
