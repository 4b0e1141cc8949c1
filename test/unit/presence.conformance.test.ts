import { describe, expect, it } from 'vitest';
import { MemoryPresence } from '../../src/cluster/memory-presence.ts';
import { PresenceConflict, type ConnectionRecord, type Presence, type PresenceNode, type Subscriber } from '../../src/cluster/presence.ts';
import { pgUrl, PG_PORT, testSchema } from '../helpers/postgres.ts';
import { eventually } from '../helpers/server.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const pgUp = await requireService('PostgreSQL', PG_PORT);

/**
 * The Presence conformance suite: every implementation runs it. `place()` makes a new, empty cluster
 * and returns a function that makes the Presence of another node in it.
 */
const implementations: { name: string; up: boolean; place: () => () => Presence }[] = [
  { name: 'memory', up: true, place: () => () => new MemoryPresence() },
  {
    name: 'postgres',
    up: pgUp,
    place: () => {
      const { backend } = testSchema();
      return () => backend().presence;
    },
  },
];

let instances = 0;
const node = (nodeId: string, extra: Partial<PresenceNode> = {}): PresenceNode => ({
  nodeId,
  instanceId: `i${instances++}`,
  address: `127.0.0.1:${8000 + instances}`,
  leaseMs: 10_000,
  ...extra,
});
const conn = (id: string, tokenHash: string, nodeId = 'n1', clientId = 'c', connectedAt = 1): ConnectionRecord => ({
  id,
  clientId,
  tokenHash,
  nodeId,
  connectedAt,
  remoteAddress: '127.0.0.1',
});
const plain = { replace: false, maxPerClient: 0 };
const ids = (subs: Subscriber[]) => subs.map((s) => s.connectionId).sort();

for (const impl of implementations) {
  describe.skipIf(!impl.up)(`Presence conformance: ${impl.name}`, () => {
    const start = async (nodeId = 'n1', at = impl.place()) => {
      const p = at();
      await p.start(node(nodeId));
      return p;
    };

    it('claim: one live connection per token; a second claim is a duplicate that names the holder', async () => {
      const p = await start();
      expect(await p.claim(conn('a', 't'), plain)).toEqual({ ok: true });
      expect(await p.claim(conn('b', 't', 'n1', 'c', 2), plain)).toEqual({ ok: false, reason: 'duplicate', holder: conn('a', 't') });
      expect(await p.claim(conn('c', 'u'), plain)).toEqual({ ok: true });
      expect((await p.connectionsOfToken('t')).map((c) => c.id)).toEqual(['a']);
      await p.close();
    });

    it('replace: the claim takes the token over and returns the previous holder, whose subscriptions go', async () => {
      const p = await start();
      await p.claim(conn('a', 't'), plain);
      p.join('a', 'news', 5);
      await p.flush();
      expect(await p.claim(conn('b', 't', 'n1', 'c', 2), { replace: true, maxPerClient: 0 })).toEqual({
        ok: true,
        replaced: conn('a', 't'),
      });
      expect(await p.connectionsOfToken('t')).toEqual([conn('b', 't', 'n1', 'c', 2)]);
      expect(await p.subscribers('news')).toEqual([]);
      // Replacing with nothing to replace is a plain claim.
      expect(await p.claim(conn('c', 'u'), { replace: true, maxPerClient: 0 })).toEqual({ ok: true });
      await p.close();
    });

    it('client_limit: live connections of the client count, a replaced one does not, other clients do not', async () => {
      const p = await start();
      const limit = (replace: boolean) => ({ replace, maxPerClient: 2 });
      expect((await p.claim(conn('a', 't1'), limit(false))).ok).toBe(true);
      expect((await p.claim(conn('b', 't2'), limit(false))).ok).toBe(true);
      expect(await p.claim(conn('c', 't3'), limit(false))).toEqual({ ok: false, reason: 'client_limit' });
      expect((await p.claim(conn('d', 'o1', 'n1', 'other'), limit(false))).ok).toBe(true);
      expect(await p.claim(conn('e', 't2'), limit(true))).toMatchObject({ ok: true, replaced: { id: 'b' } });
      // A failed claim holds nothing.
      expect(await p.connectionsOfToken('t3')).toEqual([]);
      await p.release('a');
      expect((await p.claim(conn('c', 't3'), limit(false))).ok).toBe(true);
      await p.close();
    });

    it('release forgets a connection and its subscriptions, and is idempotent', async () => {
      const p = await start();
      await p.claim(conn('a', 't'), plain);
      p.join('a', 'news', 5);
      await p.flush();
      await p.release('a');
      await p.release('a');
      await p.release('never');
      expect(await p.connectionsOfToken('t')).toEqual([]);
      expect(await p.subscribers('news')).toEqual([]);
      expect((await p.claim(conn('b', 't'), plain)).ok).toBe(true);
      await p.close();
    });

    it('connections: listed oldest first; liveTokens picks the held ones', async () => {
      const p = await start();
      await p.claim(conn('early', 't2', 'n1', 'd', 10), plain);
      await p.claim(conn('mid', 't3', 'n1', 'c', 20), plain);
      await p.claim(conn('late', 't1', 'n1', 'c', 30), plain);
      expect((await p.listConnections()).map((c) => c.id)).toEqual(['early', 'mid', 'late']);
      expect((await p.listConnections())[0]).toEqual(conn('early', 't2', 'n1', 'd', 10));
      expect(await p.liveTokens(['t1', 't3', 'nope'])).toEqual(new Set(['t1', 't3']));
      expect(await p.liveTokens([])).toEqual(new Set());
      await p.close();
    });

    it('subscriptions: join and leave by exact topic or pattern string; re-joining updates since; unknown connections are ignored', async () => {
      const p = await start();
      await p.claim(conn('a', 't1'), plain);
      await p.claim(conn('b', 't2', 'n1', 'd'), plain);
      p.join('a', 'news.eu', 5);
      p.join('b', 'news.eu', 6);
      p.join('a', 'news.*', 7);
      p.join('ghost', 'news.eu', 8);
      await p.flush();
      expect(await p.subscribers('news.eu')).toEqual([
        { connectionId: 'a', clientId: 'c', nodeId: 'n1', topic: 'news.eu', since: 5 },
        { connectionId: 'b', clientId: 'd', nodeId: 'n1', topic: 'news.eu', since: 6 },
      ]);
      expect(ids(await p.subscribers('news.*'))).toEqual(['a']);
      expect(await p.subscribers('news')).toEqual([]);
      p.leave('a', 'news.eu');
      p.join('b', 'news.eu', 9);
      p.leave('b', 'never-joined');
      await p.flush();
      expect(await p.subscribers('news.eu')).toEqual([{ connectionId: 'b', clientId: 'd', nodeId: 'n1', topic: 'news.eu', since: 9 }]);
      // Joins are written without flush() too (batched, within ~100 ms).
      p.join('a', 'later', 10);
      await eventually(async () => (await p.subscribers('later')).length === 1, 1000, 'a batched join');
      await p.close();
    });

    it('nodes: this node is live; close is idempotent', async () => {
      const p = impl.place()();
      const me = node('n1', { address: '10.0.0.1:8080' });
      const before = Date.now();
      await p.start(me);
      const [n] = await p.nodes();
      expect(n).toMatchObject({ nodeId: 'n1', instanceId: me.instanceId, address: '10.0.0.1:8080' });
      expect(n!.startedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(n!.expiresAt).toBeGreaterThan(Date.now());
      await p.close();
      await p.close();
    });
  });
}

describe.skipIf(!pgUp)('Presence on PostgreSQL: several nodes', () => {
  it('a token held on one node cannot be claimed on another; of concurrent claims exactly one wins', async () => {
    const { backend } = testSchema();
    const [a, b] = [backend().presence, backend().presence];
    await a.start(node('a'));
    await b.start(node('b'));
    expect((await a.claim(conn('x', 't', 'a'), plain)).ok).toBe(true);
    expect(await b.claim(conn('y', 't', 'b'), plain)).toEqual({ ok: false, reason: 'duplicate', holder: conn('x', 't', 'a') });
    expect(await b.connectionsOfToken('t')).toEqual([conn('x', 't', 'a')]);
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all([
        a.claim(conn(`a${round}`, `r${round}`, 'a'), plain),
        b.claim(conn(`b${round}`, `r${round}`, 'b'), plain),
      ]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    }
    expect(await a.nodes()).toEqual([expect.objectContaining({ nodeId: 'a' }), expect.objectContaining({ nodeId: 'b' })]);
    expect(await a.listConnections()).toHaveLength(11);
  });

  it('replace takes a token over from another node; client_limit counts every node', async () => {
    const { backend } = testSchema();
    const [a, b] = [backend().presence, backend().presence];
    await a.start(node('a'));
    await b.start(node('b'));
    await a.claim(conn('x', 't', 'a'), plain);
    a.join('x', 'news', 1);
    await a.flush();
    expect(await b.claim(conn('y', 't', 'b'), { replace: true, maxPerClient: 0 })).toEqual({ ok: true, replaced: conn('x', 't', 'a') });
    expect(await a.connectionsOfToken('t')).toEqual([conn('y', 't', 'b')]);
    expect(await b.subscribers('news')).toEqual([]);
    // The limit is cluster-wide, also when two nodes claim at once.
    const limit = { replace: false, maxPerClient: 2 };
    expect(await a.claim(conn('z', 't2', 'a'), limit)).toEqual({ ok: true });
    expect(await a.claim(conn('w', 't3', 'a'), limit)).toEqual({ ok: false, reason: 'client_limit' });
    for (let round = 0; round < 5; round++) {
      const claims = [a, b, a, b].map((p, i) => {
        const on = p === a ? 'a' : 'b';
        return p.claim(conn(`k${round}-${i}`, `k${round}-${i}`, on, `k${round}`), { replace: false, maxPerClient: 1 });
      });
      expect((await Promise.all(claims)).filter((r) => r.ok)).toHaveLength(1);
    }
  });

  it('start fails with PresenceConflict while another live process holds the nodeId', async () => {
    const { backend } = testSchema();
    const [a, twin] = [backend().presence, backend().presence];
    await a.start(node('a'));
    await a.claim(conn('x', 't', 'a'), plain);
    await expect(twin.start(node('a'))).rejects.toBeInstanceOf(PresenceConflict);
    await a.close();
    // A clean close frees the node id and the tokens at once.
    const next = backend().presence;
    await next.start(node('a'));
    expect(await next.listConnections()).toEqual([]);
    expect((await next.claim(conn('y', 't', 'a'), plain)).ok).toBe(true);
  });

  it('a node that stops renewing frees its tokens and subscribers within its lease; one node reaps it; it comes back', async () => {
    const proxy = await TcpProxy.start(PG_PORT);
    try {
      const { backend } = testSchema();
      const leaseMs = 600;
      const events: string[] = [];
      const reaped: { by: string; nodeId: string; subscriptions: Subscriber[] }[] = [];
      const a = backend({ url: pgUrl(proxy.port) }).presence;
      const [b, c] = [backend().presence, backend().presence];
      await a.start(
        node('a', {
          leaseMs,
          onLeaseLost: () => events.push('lost'),
          onLeaseRegained: () => events.push('regained'),
          onReaped: () => events.push('a reaped'),
        }),
      );
      for (const [p, id] of [
        [b, 'b'],
        [c, 'c'],
      ] as const)
        await p.start(node(id, { leaseMs, onReaped: (gone) => reaped.push({ by: id, ...gone }) }));
      await a.claim(conn('x', 't', 'a'), plain);
      a.join('x', 'news', 3);
      await a.flush();
      expect(ids(await b.subscribers('news'))).toEqual(['x']);

      proxy.refuse();
      proxy.cut();
      const cutAt = Date.now();
      expect(await b.claim(conn('y', 't', 'b'), plain)).toMatchObject({ ok: false, reason: 'duplicate' });
      await eventually(async () => (await b.claim(conn('y', 't', 'b'), plain)).ok, 3000, 'the dead node’s token to be free');
      const freedAfter = Date.now() - cutAt;
      // The last renewal was at most a third of the lease before the cut.
      expect(freedAfter).toBeLessThanOrEqual(leaseMs + 400);
      expect(await b.subscribers('news')).toEqual([]);
      expect((await c.nodes()).map((n) => n.nodeId)).toEqual(['b', 'c']);
      await eventually(() => events.includes('lost'), 2000, 'onLeaseLost');
      await eventually(() => reaped.length > 0, 3000, 'the dead node to be reaped');
      await new Promise((r) => setTimeout(r, leaseMs));
      expect(reaped).toEqual([
        {
          by: expect.any(String),
          nodeId: 'a',
          subscriptions: [{ connectionId: 'x', clientId: 'c', nodeId: 'a', topic: 'news', since: 3 }],
        },
      ]);

      proxy.accept();
      await eventually(() => events.includes('regained'), 3000, 'onLeaseRegained');
      expect(events).toEqual(['lost', 'regained']);
      await eventually(async () => (await c.nodes()).some((n) => n.nodeId === 'a'), 2000, 'the node row back');
      expect(await a.connectionsOfToken('t')).toEqual([conn('y', 't', 'b')]);
      expect((await a.claim(conn('z', 'u', 'a'), plain)).ok).toBe(true);
      await a.close();
    } finally {
      await proxy.close();
    }
  });

  it('a restarted node clears what its crashed process left and reports those subscriptions', async () => {
    const proxy = await TcpProxy.start(PG_PORT);
    try {
      const { backend } = testSchema();
      const crashed = backend({ url: pgUrl(proxy.port) }).presence;
      await crashed.start(node('a', { leaseMs: 300 }));
      await crashed.claim(conn('x', 't', 'a'), plain);
      crashed.join('x', 'news', 3);
      await crashed.flush();
      proxy.refuse();
      proxy.cut();
      await new Promise((r) => setTimeout(r, 400));
      const gone: { nodeId: string; subscriptions: Subscriber[] }[] = [];
      const again = backend().presence;
      await again.start(node('a', { onReaped: (g) => gone.push(g) }));
      expect(gone).toEqual([{ nodeId: 'a', subscriptions: [{ connectionId: 'x', clientId: 'c', nodeId: 'a', topic: 'news', since: 3 }] }]);
      expect(await again.listConnections()).toEqual([]);
      expect((await again.claim(conn('y', 't', 'a'), plain)).ok).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('rejects while PostgreSQL is unreachable (a failed claim holds nothing), and recovers by itself', async () => {
    const proxy = await TcpProxy.start(PG_PORT);
    try {
      const { backend } = testSchema();
      const p = backend({ url: pgUrl(proxy.port) }).presence;
      await p.start(node('a'));
      expect((await p.claim(conn('x', 't', 'a'), plain)).ok).toBe(true);
      proxy.refuse();
      proxy.cut();
      await expect(p.claim(conn('y', 'u', 'a'), plain)).rejects.toThrow();
      await expect(p.subscribers('news')).rejects.toThrow();
      await expect(p.nodes()).rejects.toThrow();
      p.join('x', 'news', 1);
      await expect(p.flush()).rejects.toThrow();
      proxy.accept();
      expect(await p.connectionsOfToken('u')).toEqual([]);
      expect((await p.claim(conn('y', 'u', 'a'), plain)).ok).toBe(true);
      // The join that could not be written was kept, and is written once the database is back.
      await p.flush();
      expect(ids(await p.subscribers('news'))).toEqual(['x']);
    } finally {
      await proxy.close();
    }
  });
});
