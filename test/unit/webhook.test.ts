import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryLeases } from '../../src/cluster/memory-leases.ts';
import { settings, WebhookConnector } from '../../src/connectors/webhook.ts';
import { commonFields, recordingContext, runInBackground } from '../helpers/connector-context.ts';

const SECRET = 'webhook-secret-0123456789';
const cfg = () => ({ ...commonFields('hook', 'webhook', 'hooks'), ...settings.parse({ secret: SECRET, toleranceS: 60 }) });
const delivery = (body: string, t: number) => ({
  body: Buffer.from(body),
  contentType: 'application/json',
  headers: { 'x-hubcast-signature': `t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}` },
});

describe('webhook connector: seen signatures', () => {
  it('are kept in the durable state across a restart, and swept once the timestamp alone would refuse a replay', async () => {
    let now = 1_700_000_000_000;
    const rc = recordingContext();
    const first = new WebhookConnector(cfg(), () => now);
    const run1 = runInBackground(first, rc);
    const d = delivery('{"n":1}', now / 1000);
    expect(await first.receive(d)).toEqual({ accepted: 1, duplicate: false });
    expect(await first.receive(d)).toEqual({ accepted: 0, duplicate: true });
    expect([...rc.state.keys()].filter((k) => k.startsWith('seen-signature:'))).toHaveLength(1);
    await run1.stop();

    // A restart within the window: still a duplicate.
    rc.renew();
    const second = new WebhookConnector(cfg(), () => now);
    const run2 = runInBackground(second, rc);
    expect(await second.receive(d)).toEqual({ accepted: 0, duplicate: true });
    await run2.stop();

    // Past twice the tolerance: swept at start; the replay is refused by its timestamp anyway.
    now += 121_000;
    rc.renew();
    const third = new WebhookConnector(cfg(), () => now);
    const run3 = runInBackground(third, rc);
    await rc.waitFor(() => rc.connectedCount === 3, 2000, 'third run');
    expect([...rc.state.keys()].filter((k) => k.startsWith('seen-signature:'))).toEqual([]);
    await expect(third.receive(d)).rejects.toMatchObject({ code: 'invalid_signature' });
    expect(rc.records).toHaveLength(1);
    await run3.stop();
  });
});

describe('webhook connector in a cluster: one claim per signature for every node', () => {
  it('a delivery replayed to another node (other id header) is a duplicate there; a failed store gives the claim back', async () => {
    const now = 1_700_000_000_000;
    const leases = new MemoryLeases(); // the cluster's Leases, shared by both "nodes"
    const claim = {
      once: (k: string, ttl: number) => leases.claimOnce('connector:hook:' + k, ttl),
      undo: (k: string) => leases.unclaim('connector:hook:' + k),
    };
    const rcA = recordingContext({ claim });
    const rcB = recordingContext({ claim }); // each node its own connector state
    const [a, b] = [new WebhookConnector(cfg(), () => now), new WebhookConnector(cfg(), () => now)];
    const runs = [runInBackground(a, rcA), runInBackground(b, rcB)];

    const d = delivery('{"n":1}', now / 1000);
    expect(await a.receive({ ...d, headers: { ...d.headers, 'idempotency-key': 'r1' } })).toEqual({ accepted: 1, duplicate: false });
    expect(await b.receive({ ...d, headers: { ...d.headers, 'idempotency-key': 'r2' } })).toEqual({ accepted: 0, duplicate: true });
    expect(rcA.records.length + rcB.records.length).toBe(1);

    // The store fails on A after the claim: the claim is given back, and the sender's retry (same
    // signed request) is accepted on B.
    const e = delivery('{"n":2}', now / 1000);
    rcA.failNextEmit(new Error('store unavailable'));
    await expect(a.receive(e)).rejects.toThrow('store unavailable');
    expect(await b.receive(e)).toEqual({ accepted: 1, duplicate: false });
    expect(await a.receive(e)).toEqual({ accepted: 0, duplicate: true });
    expect(rcB.records.map((r) => r.value)).toEqual([{ n: 2 }]);
    for (const r of runs) await r.stop();
  });
});
