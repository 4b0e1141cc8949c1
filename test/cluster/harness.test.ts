import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { barrier } from '../helpers/e2e.ts';
import { CONTRACT, killAll, startCluster, takeMessages, type Cluster } from '../helpers/cluster.ts';

/**
 * The harness itself, on three independent single nodes (SQLite, memory broker: no server needed):
 * nodes start on their own ports and data dirs, a round trip works, kill -9 and restart keep the
 * port, SIGTERM closes consumers with 1001. The three-node behaviour is in cluster.test.ts.
 */

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ broker: 'memory', nodes: 3 });
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  await killAll();
}, 30_000);

describe('cluster harness (three SQLite nodes, memory broker)', () => {
  it('starts every node on its own port and data dir', async () => {
    const ports = new Set(cluster.nodes.map((n) => n.port));
    expect(ports.size).toBe(3);
    expect(new Set(cluster.nodes.map((n) => n.dataDir)).size).toBe(3);
    for (const n of cluster.nodes) {
      const r = await cluster.fetchJson(n, CONTRACT.healthPath);
      expect(r.status).toBe(200);
      expect(n.logs().find((l) => l.msg === CONTRACT.listeningLog)).toMatchObject({ port: n.port, store: 'sqlite', broker: 'memory' });
    }
  });

  it('registers, connects, ingests and delivers on one node', async () => {
    const a = cluster.node('a');
    const token = await cluster.register(a, await cluster.createClient({ subscribe: ['h.>'] }));
    const c = await cluster.connect(a, token);
    expect((await c.subscribe('h.one')).offset).toBe(0);
    for (let i = 1; i <= 3; i++) expect((await cluster.ingest(a, 'h.one', { i }, `h-${i}`)).status).toBe(202);
    // A retry with the same idempotency key is answered with the first offset and not delivered again.
    expect((await cluster.ingest(a, 'h.one', { i: 3 }, 'h-3')).body.offset).toBe(3);
    expect((await takeMessages(c, 3)).map((f) => f.offset)).toEqual([1, 2, 3]);
    await barrier(c);
    expect(c.all().filter((f) => !Buffer.isBuffer(f) && f.type === 'message')).toEqual([]);
    // A second connection with the same token: 409.
    expect((await cluster.tryConnect(a, token)).status).toBe(CONTRACT.duplicateStatus);
  });

  it('kill -9 and restart keep the node on its port', async () => {
    const b = cluster.node('b');
    const port = b.port;
    expect((await b.kill())?.signal).toBe('SIGKILL');
    expect(b.running).toBe(false);
    await expect(fetch(b.url + CONTRACT.healthPath)).rejects.toThrow();
    await b.restart();
    expect(b.port).toBe(port);
    expect(b.starts).toBe(2);
    expect((await cluster.fetchJson(b, CONTRACT.healthPath)).status).toBe(200);
  });

  it('SIGTERM closes consumers with 1001; the node restarts on its port', async () => {
    const a = cluster.node('a');
    const token = await cluster.register(a, await cluster.createClient());
    const c = await cluster.connect(a, token);
    const [exit, closed] = await Promise.all([a.stop(), c.closed]);
    expect(exit?.code).toBe(0);
    expect(closed.code).toBe(CONTRACT.close.goingAway);
    await a.restart();
    const again = await cluster.connect(a, token);
    expect((await again.subscribe('h.one')).offset).toBe(3);
  });

  it('cutting a link needs a proxy (none on SQLite with the memory broker)', async () => {
    await expect(cluster.node('c').cut('broker', 10)).rejects.toThrow(/no broker proxy/);
  });
});
