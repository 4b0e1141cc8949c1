import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';

describe('smoke: register, connect, subscribe, ingest', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('delivers an ingested JSON message to a subscriber', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['orders.*'] });
    const token = await h.register(creds);
    const c = await h.connect(token);
    const sub = await c.subscribe('orders.eu');
    expect(sub).toMatchObject({ type: 'subscribed', topic: 'orders.eu', offset: 0, recovered: false });
    const r = await h.ingest('orders.eu', { n: 1 });
    expect(r.status).toBe(202);
    expect(await c.next('message')).toMatchObject({ topic: 'orders.eu', offset: r.body.offset, data: { n: 1 } });
  });
});
