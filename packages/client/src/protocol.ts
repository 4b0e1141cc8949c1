/**
 * The Hubcast wire protocol in one place — frames, close codes, error codes, subprotocols and the
 * binary message codec — as docs/websocket.md describes it. Shared by the server (imported by
 * relative path) and the SDK; it imports nothing, so it runs unchanged in browsers and Node.
 *
 * Every table here is checked against docs/websocket.md by test/sdk/protocol-docs.test.ts: change
 * one, change the other.
 *
 * @module
 */

/** The subprotocol a server selects; a browser must offer it (docs/websocket.md#connecting). */
export const SUBPROTOCOL = 'hubcast.v1';
/** A browser carries its token as the offered subprotocol `hubcast.bearer.<token>`. */
export const BEARER_PROTOCOL = 'hubcast.bearer.';

/** What a client should do after a close code or a refused upgrade. */
export type CloseAction =
  /** Reconnect with backoff (and `since`). */
  | 'reconnect'
  /** Get new credentials (a ticket, or a token: `getToken()` or `POST /consumers` again), then connect. */
  | 'register'
  /** Do not reconnect automatically: surface the problem. */
  | 'stop';

/** Every WebSocket close code a Hubcast client may see, with its meaning (docs/websocket.md#close-codes). */
export const CLOSE_CODES = {
  1000: { name: 'normal closure', action: 'reconnect' },
  1001: { name: 'going away', action: 'reconnect' },
  1002: { name: 'protocol error', action: 'stop' },
  1006: { name: '(abnormal; never sent)', action: 'reconnect' },
  1007: { name: 'invalid payload data', action: 'stop' },
  1009: { name: 'message too big', action: 'stop' },
  1011: { name: 'internal error', action: 'reconnect' },
  1013: { name: 'try again later', action: 'reconnect' },
  4001: { name: 'slow consumer', action: 'reconnect' },
  4002: { name: 'request rate exceeded', action: 'reconnect' },
  4003: { name: 'reconnect requested', action: 'reconnect' },
  4010: { name: 'duplicate connection (refusal)', action: 'reconnect' },
  4011: { name: 'rate limited (refusal)', action: 'reconnect' },
  4012: { name: 'connection limit (refusal)', action: 'reconnect' },
  4013: { name: 'unavailable (refusal)', action: 'reconnect' },
  4500: { name: 'revoked', action: 'stop' },
  4501: { name: 'not allowed', action: 'stop' },
  4502: { name: 'replaced', action: 'stop' },
  4503: { name: 'disconnected by an operator', action: 'stop' },
  4511: { name: 'unauthorized (refusal)', action: 'register' },
  4513: { name: 'origin not allowed (refusal)', action: 'stop' },
} as const satisfies Record<number, { name: string; action: CloseAction }>;

/** Close codes by name, for code that sends them. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  slowConsumer: 4001,
  requestRate: 4002,
  /** An operator closed the connection and lets it reconnect (`DELETE /admin/api/connections/<id>?reconnect=true`). */
  kickedReconnect: 4003,
  revoked: 4500,
  notAllowed: 4501,
  replaced: 4502,
  /** An operator closed the connection (`DELETE /admin/api/connections/<id>`): do not reconnect automatically. */
  kicked: 4503,
} as const;

/**
 * The close code that tells a browser-form upgrade (subprotocol or ticket) why it was refused; the
 * close reason is the error code (docs/websocket.md#refusals-for-browsers).
 */
export const REFUSAL_CLOSE = {
  duplicate_connection: 4010,
  rate_limited: 4011,
  connection_limit: 4012,
  unavailable: 4013,
  unauthorized: 4511,
  origin_not_allowed: 4513,
} as const;

/**
 * The action for a close code: documented codes by the table; other 4500–4999 codes stop; anything
 * else reconnects.
 */
export function closeAction(code: number): CloseAction {
  const known = (CLOSE_CODES as Record<number, { action: CloseAction }>)[code];
  if (known) return known.action;
  return code >= 4500 && code <= 4999 ? 'stop' : 'reconnect';
}

/**
 * The action for the HTTP status of a refused upgrade or of `POST /consumers` and
 * `POST /consumers/tickets` (the header forms see statuses, not close codes).
 */
export function statusAction(status: number): CloseAction {
  if (status === 401) return 'register';
  if (status === 409 || status === 429 || status >= 500) return 'reconnect';
  return 'stop';
}

/** The stable error codes of `error` frames and HTTP error bodies (docs/errors.md). */
export const ERROR_CODES = [
  'bad_request',
  'invalid_client',
  'unauthorized',
  'invalid_key',
  'invalid_signature',
  'ip_not_allowed',
  'not_found',
  'method_not_allowed',
  'duplicate_connection',
  'idempotency_key_conflict',
  'origin_not_allowed',
  'rate_limited',
  'connection_limit',
  'registration_rate_limited',
  'token_limit',
  'payload_too_large',
  'unsupported_media_type',
  'invalid_topic',
  'invalid_json',
  'invalid_text',
  'forbidden',
  'publish_not_allowed',
  'not_subscribed',
  'already_subscribed',
  'too_many_subscriptions',
  'unavailable',
  'internal_error',
  'headers_too_large',
  'request_timeout',
  'expectation_failed',
  'self_revocation',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Longest string a request `id` may be (docs/websocket.md#request-ids). */
export const MAX_ID_LENGTH = 64;

/** A request `id`: absent, a string of at most 64 characters, or a safe integer. */
export function isValidId(id: unknown): boolean {
  if (id === undefined) return true;
  if (typeof id === 'string') return id.length <= MAX_ID_LENGTH;
  return typeof id === 'number' && Number.isSafeInteger(id);
}

/** A request id. */
export type RequestId = string | number;

/** A position in a topic's history: the offset of the last message processed, and the topic's epoch. */
export interface Position {
  offset: number;
  epoch?: string;
}

// ---- client → server ----

export interface SubscribeRequest {
  type: 'subscribe';
  /** A topic or a pattern. */
  topic: string;
  /** Concrete topics only: replay what came after this position. */
  since?: Position;
  /** Also send `join`/`leave` events for the topic (needs presence rights). */
  presence?: boolean;
  id?: RequestId;
}
export interface UnsubscribeRequest {
  type: 'unsubscribe';
  topic: string;
  id?: RequestId;
}
export interface PingRequest {
  type: 'ping';
  id?: RequestId;
}
export interface PresenceRequest {
  type: 'presence';
  topic: string;
  id?: RequestId;
}
export interface PublishRequest {
  type: 'publish';
  topic: string;
  /** Any JSON value (subscribers get a JSON message) — or, instead, `data_base64`. */
  data?: unknown;
  /** Bytes, as standard padded base64: subscribers get a binary message frame. */
  data_base64?: string;
  /** Idempotency key, 1–200 characters, scoped to the client. */
  key?: string;
  id?: RequestId;
}
/** Every frame a client may send; anything else closes the connection with 4501. */
export type ClientFrame = SubscribeRequest | UnsubscribeRequest | PingRequest | PresenceRequest | PublishRequest;

// ---- server → client ----

export interface WelcomeFrame {
  type: 'welcome';
  connection_id: string;
  client_id: string;
  heartbeat_s: number;
}
export interface SubscribedFrame {
  type: 'subscribed';
  topic: string;
  /** Concrete topics: the topic's latest offset when the subscription was made. */
  offset?: number;
  epoch?: string;
  /** Concrete topics: whether the replay after `since` fills the gap exactly. */
  recovered?: boolean;
  /** Set on a pattern subscription (no offset, epoch or recovered). */
  pattern?: true;
  id?: RequestId;
}
export interface UnsubscribedFrame {
  type: 'unsubscribed';
  topic: string;
  id?: RequestId;
}
export interface MessageFrame {
  type: 'message';
  topic: string;
  offset: number;
  /** Accepted at, ms since the Unix epoch. */
  ts: number;
  /** JSON payloads: the value; text payloads: a string; binary payloads: absent. */
  data?: unknown;
}
export interface AckFrame {
  type: 'ack';
  topic: string;
  offset: number;
  id?: RequestId;
}
export interface PongFrame {
  type: 'pong';
  id?: RequestId;
}
export interface PresenceMember {
  client_id: string;
  connection_id: string;
}
export interface PresenceFrame {
  type: 'presence';
  topic: string;
  subscribers: PresenceMember[];
  total: number;
  truncated: boolean;
  id?: RequestId;
}
export interface JoinLeaveFrame extends PresenceMember {
  type: 'join' | 'leave';
  topic: string;
}
export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  /** Set when answering a request with a valid id. */
  id?: RequestId;
  /** Set when a `?topics=` entry failed. */
  topic?: string;
}
/** Every JSON frame a server sends. */
export type ServerFrame =
  WelcomeFrame | SubscribedFrame | UnsubscribedFrame | MessageFrame | AckFrame | PongFrame | PresenceFrame | JoinLeaveFrame | ErrorFrame;

// ---- binary message frames ----

/**
 * Encodes a binary message frame: 4-byte big-endian length N of the header, N bytes of UTF-8 JSON
 * header (`{"type":"message","topic",…}`), then the payload bytes (docs/websocket.md#binary-message-frames).
 */
export function encodeBinaryMessage(header: string | Omit<MessageFrame, 'data'>, payload: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + payload.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(payload, 4 + head.length);
  return out;
}

/** Decodes a binary message frame into its header and its payload (a view, not a copy). */
export function decodeBinaryMessage(buf: ArrayBuffer | Uint8Array): { header: MessageFrame; payload: Uint8Array } {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n))) as MessageFrame;
  return { header, payload: bytes.subarray(4 + n) };
}
