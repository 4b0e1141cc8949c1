import { describe, expect, it } from 'vitest';
import { MemoryPresence } from '../../src/cluster/memory-presence.ts';
import type { Presence } from '../../src/cluster/presence.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { pgUrl, PG_PORT, testSchema } from '../helpers/postgres.ts';
import { ManualClock, tempDir } from '../helpers/server.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const pgUp = await requireService('PostgreSQL', PG_PORT);

/** A store (Registry role) and the Presence that says which tokens are live, as createBackend wires them. */
interface Node {
  store: Store;
  presence: Presence;
}

/**
 * The Registry conformance suite: every implementation runs it. `place()` makes a new, empty store
 * location and returns a function that opens another process (node) on it.
 */
const implementations: { name: string; up: boolean; place: () => () => Node }[] = [
  ...(['normal', 'full'] as const).map((synchronous) => ({
    name: `sqlite, synchronous ${synchronous}`,
    up: true,
    place: () => {
      const dir = tempDir();
      return () => {
        const presence = new MemoryPresence();
        const history = { size: 1000, ttlS: 86400, dedupeS: 300 };
        const store = new SqliteStore({
          dataDir: dir,
          synchronous,
          history,
          clock: new ManualClock(0),
          liveTokens: (c) => presence.liveTokensOf(c),
        });
        return { store, presence };
      };
    },
  })),
  {
    name: 'postgres',
    up: pgUp,
    place: () => {
      const { backend } = testSchema();
      return () => backend({ clock: new ManualClock(0) });
    },
  },
];

const client = (id: string) => ({ id, name: id, secretHash: 'scrypt$x', subscribe: ['a.>'], publish: [], createdAt: 1, revokedAt: null });
const tok = (hash: string, clientId: string, at: number) => ({ hash, clientId, createdAt: at, lastUsedAt: at });
let instances = 0;
const node = (nodeId = 'n') => ({ nodeId, instanceId: `i${instances++}`, address: '127.0.0.1:0', leaseMs: 10_000 });
/** Makes `tokenHash` live: a connection holds it (on the node's presence). */
const connect = async (n: Node, id: string, clientId: string, tokenHash: string) => {
  const r = await n.presence.claim(
    { id, clientId, tokenHash, nodeId: 'n', connectedAt: 1, remoteAddress: '::1' },
    { replace: false, maxPerClient: 0 },
  );
  expect(r.ok).toBe(true);
};

for (const impl of implementations) {
  describe.skipIf(!impl.up)(`Registry conformance: ${impl.name}`, () => {
    const open = async (at = impl.place(), withPresence = false) => {
      const n = at();
      await n.store.open();
      if (withPresence) await n.presence.start(node());
      return n;
    };
    const close = async (n: Node) => {
      await n.presence.close();
      await n.store.close();
    };

    it('clients: create, get, list, revoke (deletes tokens, reported as a change to every process)', async () => {
      const at = impl.place();
      const { store: s } = await open(at);
      const { store: other } = await open(at);
      await s.createClient(client('c1'));
      await s.createToken(tok('h1', 'c1', 1));
      expect(await s.getClient('c1')).toMatchObject({ id: 'c1', subscribe: ['a.>'], publish: [], createdAt: 1, revokedAt: null });
      // Presence rights are kept (absent = none).
      await s.createClient({ ...client('c2'), presence: ['room.>'] });
      expect((await other.getClient('c2'))?.presence).toEqual(['room.>']);
      expect((await other.getClient('c1'))?.presence ?? []).toEqual([]);
      expect(await s.getClient('nope')).toBeUndefined();
      expect(await other.revokeClient('c1', 5)).toBe(true);
      expect(await other.revokeClient('c1', 6)).toBe(false);
      expect((await s.getClient('c1'))?.revokedAt).toBe(5);
      expect(await s.getToken('h1')).toBeUndefined();
      expect((await s.pollChanges()).revokedClients).toEqual(['c1']);
      expect((await s.pollChanges()).revokedClients).toEqual([]);
      expect(await s.listClients()).toHaveLength(2);
      await s.close();
      await other.close();
    });

    it('changes: a process opened later starts after the changes made before it', async () => {
      const at = impl.place();
      const { store: s } = await open(at);
      await s.createClient(client('c1'));
      await s.createClient(client('c2'));
      await s.revokeClient('c1', 2);
      const { store: later } = await open(at);
      await s.revokeClient('c2', 3);
      expect(await later.pollChanges()).toEqual({ revokedClients: ['c2'], revokedKeys: [] });
      await s.close();
      await later.close();
    });

    it('keys: only unrevoked keys are found; a revocation is reported as a change', async () => {
      const { store: s } = await open();
      await s.createKey({ id: 'k1', name: 'erp', scope: 'admin', hash: 'kh', createdAt: 1, revokedAt: null });
      await s.createKey({ id: 'k2', name: 'shop', scope: 'ingest', hash: 'kh2', createdAt: 2, revokedAt: null });
      expect(await s.findKey('kh')).toMatchObject({ id: 'k1', name: 'erp', scope: 'admin', createdAt: 1, revokedAt: null });
      expect(await s.revokeKey('erp', 2)).toBe(true);
      expect(await s.revokeKey('k1', 3)).toBe(false);
      expect(await s.findKey('kh')).toBeUndefined();
      expect(await s.findKey('kh2')).toMatchObject({ scope: 'ingest' });
      expect((await s.listKeys()).map((k) => [k.id, k.revokedAt])).toEqual([
        ['k1', 2],
        ['k2', null],
      ]);
      expect((await s.pollChanges()).revokedKeys).toHaveLength(1);
      await s.close();
    });

    it('tokens: touch, idle deletion spares live ones', async () => {
      const n = await open(undefined, true);
      const s = n.store;
      await s.createToken(tok('old', 'c', 0));
      await s.createToken(tok('live', 'c', 0));
      await s.createToken(tok('fresh', 'c', 0));
      await s.touchToken('fresh', 100);
      await connect(n, 'x', 'c', 'live');
      expect(await s.deleteIdleTokens(50)).toBe(1);
      expect(await s.getToken('old')).toBeUndefined();
      expect(await s.getToken('live')).toBeDefined();
      expect(await s.getToken('fresh')).toEqual({ hash: 'fresh', clientId: 'c', createdAt: 0, lastUsedAt: 100 });
      await s.deleteToken('fresh');
      expect(await s.getToken('fresh')).toBeUndefined();
      await close(n);
    });

    it('tokens: capped creation revokes the least recently used idle tokens first, never a live one, never another client’s', async () => {
      const n = await open(undefined, true);
      const s = n.store;
      await s.createToken(tok('a', 'c', 1)); // oldest, but live
      await s.createToken(tok('b', 'c', 2));
      await s.createToken(tok('c', 'c', 3));
      await s.createToken(tok('other', 'd', 0));
      await s.touchToken('b', 10); // used recently (not written yet): now newer than c
      await connect(n, 'x', 'c', 'a');
      expect(await s.createTokenCapped(tok('n1', 'c', 20), 3)).toEqual({ created: true, revoked: ['c'] });
      expect(await s.getToken('c')).toBeUndefined();
      for (const h of ['a', 'b', 'n1', 'other']) expect(await s.getToken(h)).toBeDefined();
      // Under the cap nothing is revoked.
      expect(await s.createTokenCapped(tok('d1', 'd', 20), 3)).toEqual({ created: true, revoked: [] });
      // A lower cap than the client already holds: as many as needed go, oldest first.
      expect(await s.createTokenCapped(tok('n2', 'c', 21), 2)).toEqual({ created: true, revoked: ['b', 'n1'] });
      expect(await s.getToken('a')).toBeDefined();
      expect((await s.getToken('n2'))?.clientId).toBe('c');
      await close(n);
    });

    it('tokens: capped creation changes nothing when every token of the client is live', async () => {
      const n = await open(undefined, true);
      const s = n.store;
      await s.createToken(tok('a', 'c', 1));
      await s.createToken(tok('b', 'c', 2));
      await connect(n, 'x', 'c', 'a');
      await connect(n, 'y', 'c', 'b');
      expect(await s.createTokenCapped(tok('n', 'c', 3), 2)).toEqual({ created: false, revoked: [] });
      expect(await s.getToken('n')).toBeUndefined();
      expect(await s.getToken('a')).toBeDefined();
      expect(await s.getToken('b')).toBeDefined();
      // Once a connection ends, its token can make room.
      await n.presence.release('y');
      expect(await s.createTokenCapped(tok('n', 'c', 3), 2)).toEqual({ created: true, revoked: ['b'] });
      await close(n);
    });

    it('tokens: concurrent capped creations never leave a client over the cap, and are durable', async () => {
      const at = impl.place();
      const { store: s } = await open(at);
      const hashes = Array.from({ length: 20 }, (_, i) => `t${i}`);
      const results = await Promise.all(hashes.map((hash, i) => s.createTokenCapped(tok(hash, 'c', i), 3)));
      expect(results.every((r) => r.created)).toBe(true);
      await s.close();
      const { store: again } = await open(at);
      const kept = [];
      for (const h of hashes) if (await again.getToken(h)) kept.push(h);
      expect(kept).toEqual(['t17', 't18', 't19']);
      await again.close();
    });

    it('tickets are single use and expire', async () => {
      const { store: s } = await open();
      await s.createTicket('t1', 'tok', 1000);
      await s.createTicket('t2', 'tok', 1000);
      await s.createTicket('t3', 'tok', 1000);
      expect(await s.consumeTicket('t1', 999)).toBe('tok');
      expect(await s.consumeTicket('t1', 999)).toBeUndefined();
      expect(await s.consumeTicket('t2', 1000)).toBeUndefined();
      // trim() deletes expired tickets.
      await s.trim(1000);
      expect(await s.consumeTicket('t3', 0)).toBeUndefined();
      await s.close();
    });

    it('close is idempotent', async () => {
      const { store: s } = await open();
      await s.close();
      await s.close();
    });
  });
}

describe.skipIf(!pgUp)('Registry on PostgreSQL: several nodes', () => {
  it('the token cap holds across nodes, and a token live on one node is never revoked by another', async () => {
    const { backend } = testSchema();
    const [a, b] = [backend(), backend()];
    await a.store.open();
    await b.store.open();
    await b.presence.start(node('b'));
    await a.store.createToken(tok('held', 'c', 0));
    const held = await b.presence.claim(
      { id: 'x', clientId: 'c', tokenHash: 'held', nodeId: 'b', connectedAt: 1, remoteAddress: '::1' },
      { replace: false, maxPerClient: 0 },
    );
    expect(held.ok).toBe(true);
    const hashes = Array.from({ length: 60 }, (_, i) => `t${i}`);
    const results = await Promise.all(hashes.map((h, i) => (i % 2 ? a : b).store.createTokenCapped(tok(h, 'c', i + 1), 4)));
    expect(results.every((r) => r.created)).toBe(true);
    const kept: string[] = [];
    for (const h of ['held', ...hashes]) if (await a.store.getToken(h)) kept.push(h);
    expect(kept).toHaveLength(4);
    expect(kept).toContain('held');
    // Each token was revoked once, by one node: never two nodes making room with the same token.
    const revoked = results.flatMap((r) => r.revoked);
    expect(new Set(revoked).size).toBe(revoked.length);
    expect(revoked.length + kept.length).toBe(61);
    expect(await a.store.deleteIdleTokens(1e9)).toBe(3);
    expect(await a.store.getToken('held')).toBeDefined();
  });

  it('rejects while PostgreSQL is unreachable, and recovers by itself when it is back', async () => {
    const proxy = await TcpProxy.start(PG_PORT);
    try {
      const { backend } = testSchema();
      const { store } = backend({ url: pgUrl(proxy.port) });
      await store.open();
      await store.createClient(client('c1'));
      proxy.refuse();
      proxy.cut();
      await expect(store.getClient('c1')).rejects.toThrow();
      await expect(store.createToken(tok('t', 'c1', 1))).rejects.toThrow();
      await expect(store.createTokenCapped(tok('t', 'c1', 1), 3)).rejects.toThrow();
      await expect(store.pollChanges()).rejects.toThrow();
      proxy.accept();
      expect((await store.getClient('c1'))?.id).toBe('c1');
      expect(await store.createTokenCapped(tok('t', 'c1', 1), 3)).toEqual({ created: true, revoked: [] });
      await store.close();
    } finally {
      await proxy.close();
    }
  });
});
