import type { IncomingMessage } from 'node:http';

export const SUBPROTOCOL = 'hubcast.v1';
const BEARER_PROTOCOL = 'hubcast.bearer.';

export type Credentials =
  | { kind: 'token'; token: string; clientId?: string; subprotocol?: true }
  | { kind: 'ticket'; ticket: string }
  | { kind: 'none' }
  | { kind: 'malformed' }
  | { kind: 'bad_request'; message: string };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads the consumer's credentials from the upgrade request, first found wins:
 * `Authorization: Bearer <token>`; headers `client_id` + `token`; subprotocol `hubcast.bearer.<token>`;
 * query `?ticket=`. Only shape is checked here; nothing is looked up.
 */
export function readCredentials(req: IncomingMessage, query: URLSearchParams): Credentials {
  const auth = header(req, 'authorization');
  if (auth !== undefined) {
    const m = /^Bearer +(\S+)$/i.exec(auth.trim());
    return m ? { kind: 'token', token: m[1]! } : { kind: 'malformed' };
  }
  const token = header(req, 'token');
  const clientId = header(req, 'client_id');
  if (token !== undefined || clientId !== undefined) {
    return token && clientId ? { kind: 'token', token, clientId } : { kind: 'malformed' };
  }
  const protocols = header(req, 'sec-websocket-protocol');
  if (protocols) {
    const offered = protocols.split(',').map((p) => p.trim());
    const bearer = offered.find((v) => v.startsWith(BEARER_PROTOCOL));
    if (bearer !== undefined) {
      // Browsers fail a handshake whose answer selects no subprotocol, so hubcast.v1 must be offered too.
      if (!offered.includes(SUBPROTOCOL))
        return { kind: 'bad_request', message: `offer "${SUBPROTOCOL}" together with "${BEARER_PROTOCOL}<token>"` };
      return { kind: 'token', token: bearer.slice(BEARER_PROTOCOL.length), subprotocol: true };
    }
  }
  const ticket = query.get('ticket');
  if (ticket !== null) return { kind: 'ticket', ticket };
  return { kind: 'none' };
}
