import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
import { rawRefusal } from '../helpers/refusal.ts';

/**
 * Property-based fuzzing of real upgrade requests' credentials (Authorization, client_id/token,
 * the bearer subprotocol, ?ticket=): the answer is always a documented refusal (400, 401, or 429
 * once the source's failure budget is spent; for the browser forms a 101 closed at once with 4511 or
 * 4011, while ws.closeRefusals lasts), never a 5xx, and the server keeps serving.
 */

/** What a header value may hold on the wire: visible ASCII, space and tab. */
const headerText = fc.string({ unit: fc.constantFrom(...' \t!"#$%&\'()*+,-./0123456789:;<=>?@ABCXYZabcxyz[\\]^_`{|}~'), maxLength: 60 });
const credentialValue = fc.oneof(
  headerText,
  headerText.map((s) => `Bearer ${s}`),
  fc.constantFrom('Bearer', 'Bearer ', 'hcs_' + 'A'.repeat(43), 'Bearer hcs_' + 'A'.repeat(43), 'Basic Zm9vOmJhcg=='),
);
const requestArb = fc.record(
  {
    authorization: credentialValue,
    token: credentialValue,
    client_id: credentialValue,
    protocols: fc
      .array(
        fc.oneof(
          fc.constant('hubcast.v1'),
          credentialValue.map((v) => `hubcast.bearer.${v.replace(/[\s,]/g, '')}`),
          headerText,
        ),
        {
          minLength: 1,
          maxLength: 3,
        },
      )
      .map((l) =>
        l
          .map((p) => p.trim())
          .filter(Boolean)
          .join(', '),
      ),
    ticket: fc.string({ maxLength: 60 }),
  },
  { requiredKeys: [] },
);

let h: Harness;

beforeAll(async () => {
  // A budget large enough that most runs reach the token lookup; the rest must get 429.
  h = await startServer({ limits: { authFailures: { perMinute: 60, burst: 40 } } });
});

afterAll(async () => {
  await h.close();
});

describe('upgrade credentials (fast-check, live server)', () => {
  it('every arbitrary credential gets 400, 401 or 429 with the JSON error body; the server keeps serving', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const headers: Record<string, string> = {};
        if (r.authorization !== undefined) headers.Authorization = r.authorization;
        if (r.token !== undefined) headers.token = r.token;
        if (r.client_id !== undefined) headers.client_id = r.client_id;
        if (r.protocols) headers['Sec-WebSocket-Protocol'] = r.protocols;
        const path = r.ticket !== undefined ? `/ws?ticket=${encodeURIComponent(r.ticket)}` : '/ws';
        const res = await rawRefusal(h.port, path, headers);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 101) {
          // A browser form (ticket, bearer subprotocol): the refusal is a close code right after the handshake.
          expect(res.close, res.raw.slice(0, 300)).toMatchObject({
            code: expect.any(Number),
            reason: expect.stringMatching(/^(unauthorized|rate_limited)$/),
          });
          expect(res.close!.code).toBe(res.close!.reason === 'unauthorized' ? 4511 : 4011);
          return;
        }
        expect([400, 401, 429], res.raw.slice(0, 300)).toContain(res.status);
        expect(res.json!.error.code).toMatch(/^(bad_request|unauthorized|rate_limited)$/);
      }),
      { numRuns: 150, endOnFailure: true },
    );
    expect(statuses.get(401) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(429) ?? 0).toBeGreaterThan(0);
    expect((await h.fetchJson('/healthz')).status).toBe(200);
    expect(h.logs.filter((l) => (l.level as number) >= 50).map((l) => l.msg)).toEqual([]);
  });
});
