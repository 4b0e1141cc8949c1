import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
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
