import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesUp, killAll, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';

/**
 * A webhook runs on every node of a cluster (the balancer picks one per delivery): a signed delivery
 * captured and replayed to another node — with another (unsigned) id header — must be a duplicate
 * there too (the signature is claimed cluster-wide, cluster/leases.ts `claimOnce`), not a new record.
 */
const SECRET = 'webhook-secret-0123456789';
const sign = (body: string, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}`;

const up = await clusterServicesUp('redis');
afterAll(killAll, 30_000);

describe.skipIf(!up)('webhook on two nodes (PostgreSQL store, Redis broker)', () => {
  let cluster: Cluster;
  let a: ClusterNode, b: ClusterNode;
  beforeAll(async () => {
    cluster = await startCluster({
      broker: 'redis',
      nodes: 2,
      extraConfig: { connectors: [{ name: 'shop', type: 'webhook', topic: 'wh.orders', secret: SECRET }] },
    });
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
  }, 90_000);
  afterAll(() => cluster?.close(), 30_000);

  const hook = (node: ClusterNode, body: string, headers: Record<string, string>) =>
    cluster.fetchJson(node, '/hooks/shop', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('a delivery replayed to the other node with a new id header is a duplicate; one message is stored', async () => {
    const creds = await cluster.createClient({ subscribe: ['wh.>'] });
    const c = await cluster.connect(b, await cluster.register(b, creds));
    await c.subscribe('wh.orders');
    const body = JSON.stringify({ id: 1 });
    const signature = sign(body);
    expect(await hook(a, body, { 'x-hubcast-signature': signature, 'idempotency-key': 'r1' })).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    });
    expect(await c.next('message', 5000)).toMatchObject({ topic: 'wh.orders', offset: 1, data: { id: 1 } });
    for (const headers of [{ 'idempotency-key': 'r2' }, {}] as Record<string, string>[])
      expect(await hook(b, body, { 'x-hubcast-signature': signature, ...headers })).toMatchObject({
        status: 202,
        body: { accepted: 0, duplicate: true },
      });
    // A new delivery is accepted on either node, and is the next offset: nothing was stored meanwhile.
    const next = JSON.stringify({ id: 2 });
    expect((await hook(b, next, { 'x-hubcast-signature': sign(next) })).body).toEqual({ accepted: 1 });
    expect(await c.next('message', 5000)).toMatchObject({ offset: 2, data: { id: 2 } });
  });
});
