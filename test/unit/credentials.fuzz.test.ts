import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCredentials, SUBPROTOCOL, type Credentials } from '../../src/gateway/credentials.ts';

/**
 * Property-based fuzzing of the handshake's credential parsing: whatever the headers and query
 * string hold, `readCredentials` never throws, returns one of the documented kinds, takes the first
 * form present (Authorization, then client_id/token headers, then the bearer subprotocol, then
 * ?ticket=), and never invents a credential that was not in the request.
 */

const KINDS = new Set(['token', 'ticket', 'none', 'malformed', 'bad_request']);

/** Strings that look like credentials as well as arbitrary ones (any code point). */
const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', 'Bearer', 'Bearer ', 'bearer abc', 'Bearer  a b', 'Basic Zm9vOmJhcg==', 'hcs_' + 'A'.repeat(43)),
  fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`),
);
const headerValue = fc.option(fc.oneof(value, fc.array(value, { maxLength: 3 })), { nil: undefined });
const protocols = fc.option(
  fc.oneof(
    value,
    fc
      .tuple(
        fc.array(
          fc.oneof(
            value,
            fc.constant(SUBPROTOCOL),
            value.map((v) => `hubcast.bearer.${v}`),
          ),
          { maxLength: 4 },
        ),
        fc.constantFrom(',', ', ', ' , '),
      )
      .map(([list, sep]) => list.join(sep)),
  ),
  { nil: undefined },
);
const query = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  value.map((v) => `ticket=${encodeURIComponent(v)}`),
  fc.tuple(value, value).map(([a, b]) => `ticket=${a}&ticket=${b}&topics=${a}`),
);

function request(headers: Record<string, string | string[] | undefined>): IncomingMessage {
  const clean: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) clean[k] = v;
  return { headers: clean } as unknown as IncomingMessage;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

describe('readCredentials (fast-check)', () => {
  it('never throws, returns a documented kind, honours the order of forms, invents nothing', () => {
    fc.assert(
      fc.property(
        fc.record({
          authorization: headerValue,
          token: headerValue,
          client_id: headerValue,
          'sec-websocket-protocol': protocols,
        }),
        query,
        (headers, qs) => {
          let params: URLSearchParams;
          try {
            params = new URLSearchParams(qs);
          } catch {
            return; // not a query string the URL parser would hand over
          }
          let c: Credentials;
          expect(() => (c = readCredentials(request(headers), params))).not.toThrow();
          c = c!;
          expect(KINDS.has(c.kind)).toBe(true);
          const auth = first(headers.authorization);
          const everything = [auth, first(headers.token), first(headers.client_id), headers['sec-websocket-protocol'], params.get('ticket')]
            .filter((v): v is string => typeof v === 'string')
            .join('\n');
          if (auth !== undefined) {
            // Authorization wins, whatever else is there: a token without whitespace, or malformed.
            expect(['token', 'malformed']).toContain(c.kind);
            if (c.kind === 'token') {
              expect(c.token).toMatch(/^\S+$/);
              expect(auth).toContain(c.token);
              expect(c.clientId).toBeUndefined();
            }
            return;
          }
          if (first(headers.token) !== undefined || first(headers.client_id) !== undefined) {
            expect(['token', 'malformed']).toContain(c.kind);
            if (c.kind === 'token') {
              expect(c.token).toBe(first(headers.token));
              expect(c.clientId).toBe(first(headers.client_id));
              expect(c.token.length).toBeGreaterThan(0);
              expect(c.clientId!.length).toBeGreaterThan(0);
            }
            return;
          }
          if (c.kind === 'token') {
            expect(headers['sec-websocket-protocol']).toContain(`hubcast.bearer.${c.token}`);
            expect(c.clientId).toBeUndefined();
          }
          if (c.kind === 'bad_request') expect(headers['sec-websocket-protocol']).toContain('hubcast.bearer.');
          if (c.kind === 'ticket') {
            expect(c.ticket).toBe(params.get('ticket'));
            expect(everything).toContain(c.ticket);
          }
          if (c.kind === 'none') expect(params.get('ticket')).toBeNull();
        },
      ),
      { numRuns: 2000 },
    );
  });
});
