import { describe, expect, it } from 'vitest';
import type { Broker, Publication } from '../../src/broker/broker.ts';
import { MemoryBroker } from '../../src/broker/memory-broker.ts';

/** The Broker conformance suite: every implementation runs it. */
const implementations: { name: string; make: () => Broker }[] = [{ name: 'memory', make: () => new MemoryBroker() }];

const pub = (offset: number): Publication => ({
  topic: 't',
  offset,
  epoch: 'e',
  ts: offset,
  kind: 'json',
  payload: Buffer.from(String(offset)),
});

for (const impl of implementations) {
  describe(`Broker conformance: ${impl.name}`, () => {
    it('delivers every publication of a topic in offset order', async () => {
      const b = impl.make();
      const got: number[] = [];
      await b.start((p) => got.push(p.offset));
      for (let i = 1; i <= 100; i++) b.publish(pub(i));
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      await b.close();
    });

    it('delivers the payload bytes unchanged', async () => {
      const b = impl.make();
      let got: Publication | undefined;
      await b.start((p) => (got = p));
      const p = { ...pub(1), kind: 'binary' as const, payload: Buffer.from([0, 255, 10]) };
      b.publish(p);
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toMatchObject({ topic: 't', offset: 1, kind: 'binary' });
      expect(got!.payload.equals(p.payload)).toBe(true);
      await b.close();
    });

    it('delivers nothing after close, and close is idempotent', async () => {
      const b = impl.make();
      const got: number[] = [];
      await b.start((p) => got.push(p.offset));
      await b.close();
      await b.close();
      b.publish(pub(1));
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]);
    });
  });
}
