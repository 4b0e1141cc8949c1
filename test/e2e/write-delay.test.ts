import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
import { takeN } from '../helpers/e2e.ts';

/** ws.writeDelayMs: an adaptive write delay changes when bytes leave, never what or in which order. */
describe('ws.writeDelayMs', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  for (const perMessageDeflate of [false, true]) {
    it(`delivers every message once, in order, within the delay${perMessageDeflate ? ' (permessage-deflate)' : ''}`, async () => {
      h = await startServer({ ws: { writeDelayMs: 40, perMessageDeflate } });
      const creds = await h.createClient({ subscribe: ['wd.*'] });
      const consumers = [];
      for (let i = 0; i < 3; i++) {
        const c = await h.connect(await h.register(creds));
        if (perMessageDeflate) expect(c.ws.extensions).toContain('permessage-deflate');
        await c.subscribe('wd.t');
        consumers.push(c);
      }
      // Idle: the first message goes at once (well under the delay plus the commit).
      const t0 = performance.now();
      expect((await h.ingest('wd.t', { n: 0 })).status).toBe(202);
      await takeN(consumers[0]!, 1);
      const idleMs = performance.now() - t0;
      // Load: 30 publishes, 6 at a time; all arrive, in offset order, to every consumer.
      const sent: number[] = [];
      for (let i = 1; i <= 30; i += 6) {
        const rs = await Promise.all([0, 1, 2, 3, 4, 5].map((k) => h.ingest('wd.t', { n: i + k })));
        for (const r of rs) expect(r.status).toBe(202);
        sent.push(...rs.map((r) => r.body.offset as number));
      }
      for (const [i, c] of consumers.entries()) {
        const got = i === 0 ? await takeN(c, 30) : (await takeN(c, 31)).slice(1);
        const offsets = got.map((m) => m.offset as number);
        expect(offsets).toEqual([...sent].sort((a, b) => a - b));
        expect(new Set(got.map((m) => (m.data as { n: number }).n)).size).toBe(30);
      }
      expect(idleMs).toBeLessThan(1000);
    });
  }
});
