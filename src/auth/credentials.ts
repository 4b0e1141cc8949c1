import type { IncomingHttpHeaders } from 'node:http';
import { BEARER_PROTOCOL, SUBPROTOCOL } from '../../packages/client/src/protocol.ts';

/**
 * The one place where credentials are read from a request, for every entrance: `POST /consumers`
 * (client credentials), `POST /consumers/tickets`, `POST /entity` and the admin routes (Bearer), and
 * WebSocket upgrades (Bearer, the `client_id`/`token` header pair, the bearer subprotocol, a
 * ticket). Only shape is checked here; nothing is looked up, nothing is logged.
 */

/** The subprotocol a server selects, and the prefix of the bearer subprotocol browsers offer (docs/websocket.md). */
export { BEARER_PROTOCOL, SUBPROTOCOL };
/** Longest client id or client secret taken. */
export const MAX_CLIENT_CREDENTIAL = 256;

const BEARER = /^Bearer +(\S+)$/i;
const BASIC = /^Basic +([A-Za-z0-9+/=]+)$/i;

/** A request header's value (the first one when it was sent more than once). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export type BearerCredential = { kind: 'bearer'; token: string } | { kind: 'none' } | { kind: 'malformed' };

/** `Authorization: Bearer <token>`: `none` without the header, `malformed` for any other shape. */
export function readBearer(headers: IncomingHttpHeaders): BearerCredential {
  const auth = header(headers, 'authorization');
  if (auth === undefined) return { kind: 'none' };
  const m = BEARER.exec(auth.trim());
  return m ? { kind: 'bearer', token: m[1]! } : { kind: 'malformed' };
}

function clientValue(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_CLIENT_CREDENTIAL ? v : undefined;
}

/** `Basic base64(id:secret)` → the pair, or undefined when it is not that shape. */
export function parseBasic(value: string): { id: string; secret: string } | undefined {
  const m = BASIC.exec(value.trim());
  const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
  const i = decoded.indexOf(':');
  const id = i > 0 ? clientValue(decoded.slice(0, i)) : undefined;
  const secret = i > 0 ? clientValue(decoded.slice(i + 1)) : undefined;
  return id && secret ? { id, secret } : undefined;
}

export type ClientCredentials = { ok: true; id: string; secret: string } | { ok: false; message: string };

/**
 * Client credentials for `POST /consumers`, first form present wins: JSON body
 * `{"client_id","client_secret"}` (a JSON body with neither field falls through), headers
 * `client_id` + `client_secret`, HTTP Basic. Each value 1–256 characters.
 */
export function readClientCredentials(headers: IncomingHttpHeaders, body: Buffer | undefined): ClientCredentials {
  const bad = (message: string) => ({ ok: false, message }) as const;
  if (body && body.length > 0) {
    const ct = (header(headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== 'application/json')
      return bad('send credentials as application/json, as headers client_id and client_secret, or as HTTP Basic');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return bad('the body is not valid JSON');
    }
    const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    if (o.client_id !== undefined || o.client_secret !== undefined) {
      const id = clientValue(o.client_id);
      const secret = clientValue(o.client_secret);
      return id && secret ? { ok: true, id, secret } : bad('client_id and client_secret must be non-empty strings');
    }
  }
  const hid = header(headers, 'client_id');
  const hsecret = header(headers, 'client_secret');
  if (hid !== undefined || hsecret !== undefined) {
    const id = clientValue(hid);
    const secret = clientValue(hsecret);
    return id && secret ? { ok: true, id, secret } : bad('both headers client_id and client_secret are required');
  }
  const auth = header(headers, 'authorization');
  if (auth !== undefined) {
    const pair = parseBasic(auth);
    return pair ? { ok: true, ...pair } : bad('malformed HTTP Basic credentials');
  }
  return bad(
    'client credentials are required: JSON body {"client_id","client_secret"}, headers client_id and client_secret, or HTTP Basic',
  );
}

export type UpgradeCredentials =
  /** `subprotocol`: carried as `hubcast.bearer.<token>` (a browser's form). */
  | { kind: 'token'; token: string; clientId?: string; subprotocol?: true }
  | { kind: 'ticket'; ticket: string }
  | { kind: 'none' }
  | { kind: 'malformed' }
  | { kind: 'bad_request'; message: string };

/**
 * A consumer's credentials on a WebSocket upgrade, first form present wins:
 * `Authorization: Bearer <token>`; headers `client_id` + `token`; subprotocol
 * `hubcast.bearer.<token>` (with `hubcast.v1` offered too); query `?ticket=`.
 */
export function readUpgradeCredentials(headers: IncomingHttpHeaders, query: URLSearchParams): UpgradeCredentials {
  const bearer = readBearer(headers);
  if (bearer.kind === 'bearer') return { kind: 'token', token: bearer.token };
  if (bearer.kind === 'malformed') return { kind: 'malformed' };
  const token = header(headers, 'token');
  const clientId = header(headers, 'client_id');
  if (token !== undefined || clientId !== undefined) {
    return token && clientId ? { kind: 'token', token, clientId } : { kind: 'malformed' };
  }
  const protocols = header(headers, 'sec-websocket-protocol');
  if (protocols) {
    const offered = protocols.split(',').map((p) => p.trim());
    const carried = offered.find((v) => v.startsWith(BEARER_PROTOCOL));
    if (carried !== undefined) {
      // Browsers fail a handshake whose answer selects no subprotocol, so hubcast.v1 must be offered too.
      if (!offered.includes(SUBPROTOCOL))
        return { kind: 'bad_request', message: `offer "${SUBPROTOCOL}" together with "${BEARER_PROTOCOL}<token>"` };
      return { kind: 'token', token: carried.slice(BEARER_PROTOCOL.length), subprotocol: true };
    }
  }
  const ticket = query.get('ticket');
  if (ticket !== null) return { kind: 'ticket', ticket };
  return { kind: 'none' };
}
