import { describe, expect, it } from 'vitest';
import type { Leases } from '../../src/cluster/leases.ts';
import { MemoryLeases } from '../../src/cluster/memory-leases.ts';
import { pgUrl, PG_PORT, testSchema } from '../helpers/postgres.ts';
import { eventually } from '../helpers/server.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const pgUp = await requireService('PostgreSQL', PG_PORT);

/**
 * The Leases conformance suite: every implementation runs it. `place()` makes a new, empty cluster
 * and returns a function that makes the Leases of another node in it.
 */
const implementations: { name: string; up: boolean; place: () => () => Leases }[] = [
  { name: 'memory', up: true, place: () => () => new MemoryLeases() },
  {
    name: 'postgres',
    up: pgUp,
    place: () => {
      const { backend } = testSchema();
      return () => backend().leases;
    },
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const impl of implementations) {
  describe.skipIf(!impl.up)(`Leases conformance: ${impl.name}`, () => {
    it('acquire is exclusive; the holder renews; holder() names it', async () => {
      const l = impl.place()();
      expect(await l.holder('conn')).toBeUndefined();
      expect(await l.acquire('conn', 'a', 10_000)).toBe(true);
      expect(await l.acquire('conn', 'b', 10_000)).toBe(false);
      expect(await l.acquire('conn', 'a', 10_000)).toBe(true);
      expect(await l.holder('conn')).toBe('a');
      expect(await l.acquire('other', 'b', 10_000)).toBe(true);
      expect(await l.holder('other')).toBe('b');
      await l.close();
    });

    it('an expired lease goes to the next acquirer; renewing keeps it', async () => {
      const l = impl.place()();
      expect(await l.acquire('conn', 'a', 300)).toBe(true);
      await sleep(150);
      expect(await l.acquire('conn', 'a', 300)).toBe(true);
      await sleep(200);
      // Renewed 200 ms ago for 300 ms: still a's.
      expect(await l.acquire('conn', 'b', 300)).toBe(false);
      await eventually(async () => (await l.holder('conn')) === undefined, 2000, 'the lease to expire');
      expect(await l.acquire('conn', 'b', 10_000)).toBe(true);
      expect(await l.holder('conn')).toBe('b');
      await l.close();
    });

    it('release frees the lease at once, only for its holder, idempotently', async () => {
      const l = impl.place()();
      await l.acquire('conn', 'a', 10_000);
      await l.release('conn', 'b');
      expect(await l.holder('conn')).toBe('a');
      await l.release('conn', 'a');
      await l.release('conn', 'a');
      await l.release('never', 'a');
      expect(await l.holder('conn')).toBeUndefined();
      expect(await l.acquire('conn', 'b', 10_000)).toBe(true);
      await l.close();
    });

    it('claimOnce: true once per key within the TTL, again after it', async () => {
      const l = impl.place()();
      expect(await l.claimOnce('digest:1', 300)).toBe(true);
      expect(await l.claimOnce('digest:1', 300)).toBe(false);
      expect(await l.claimOnce('digest:2', 300)).toBe(true);
      await sleep(400);
      expect(await l.claimOnce('digest:1', 300)).toBe(true);
      await l.close();
    });

    it('unclaim gives a claim back at once; unclaiming twice or an unknown key is harmless', async () => {
      const l = impl.place()();
      expect(await l.claimOnce('hook:1', 60_000)).toBe(true);
      await l.unclaim('hook:1');
      await l.unclaim('hook:1');
      await l.unclaim('never-claimed');
      expect(await l.claimOnce('hook:1', 60_000)).toBe(true);
      expect(await l.claimOnce('hook:1', 60_000)).toBe(false);
      await l.close();
    });
  });
}

describe.skipIf(!pgUp)('Leases on PostgreSQL: several nodes', () => {
  it('of concurrent acquirers on several nodes exactly one gets a free lease; a claim is once for the cluster', async () => {
    const { backend } = testSchema();
    const nodes = [backend().leases, backend().leases, backend().leases];
    for (let round = 0; round < 10; round++) {
      const got = await Promise.all(nodes.map((l, i) => l.acquire(`conn${round}`, `node${i}`, 10_000)));
      expect(got.filter(Boolean)).toHaveLength(1);
      const holder = await nodes[0]!.holder(`conn${round}`);
      expect(holder).toBe(`node${got.indexOf(true)}`);
      const claims = await Promise.all(
        nodes.flatMap((l) => [l.claimOnce(`digest:${round}`, 10_000), l.claimOnce(`digest:${round}`, 10_000)]),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
    }
    // A lease released on one node is free for another at once.
    const holder = (await nodes[1]!.holder('conn0'))!;
    await nodes[Number(holder.slice(4))]!.release('conn0', holder);
    expect(await nodes[(Number(holder.slice(4)) + 1) % 3]!.acquire('conn0', 'other', 10_000)).toBe(true);
  });

  it('rejects while PostgreSQL is unreachable, and recovers by itself', async () => {
    const proxy = await TcpProxy.start(PG_PORT);
    try {
      const { backend } = testSchema();
      const l = backend({ url: pgUrl(proxy.port) }).leases;
      expect(await l.acquire('conn', 'a', 10_000)).toBe(true);
      proxy.refuse();
      proxy.cut();
      await expect(l.acquire('conn', 'a', 10_000)).rejects.toThrow();
      await expect(l.holder('conn')).rejects.toThrow();
      await expect(l.claimOnce('k', 1000)).rejects.toThrow();
      proxy.accept();
      expect(await l.acquire('conn', 'a', 10_000)).toBe(true);
      expect(await l.holder('conn')).toBe('a');
    } finally {
      await proxy.close();
    }
  });
});
