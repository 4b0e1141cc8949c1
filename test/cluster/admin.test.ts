import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesUp, killAll, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.ts';

/**
 * The admin API across two nodes (PostgreSQL store, Redis broker): one node lists and kicks the
 * connections of the other, and a client revoked on one is closed on the other.
 */

const up = await clusterServicesUp('redis');
afterAll(killAll, 30_000);

describe.skipIf(!up)('admin API on two nodes', () => {
  let cluster: Cluster;
  let a: ClusterNode, b: ClusterNode;
  const api = (node: ClusterNode, path: string, method = 'GET', body?: unknown) =>
    cluster.fetchJson(node, path, {
      method,
      headers: { authorization: `Bearer ${cluster.adminKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });

  beforeAll(async () => {
    cluster = await startCluster({ broker: 'redis', nodes: 2, leaseS: 2 });
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
  }, 90_000);
  afterAll(() => cluster?.close(), 30_000);

  it('node a lists node b’s connections (from the presence registry) and kicks one there: 4503', async () => {
    const creds = await cluster.createClient();
    const c = await cluster.connect(b, await cluster.register(b, creds));
    await c.subscribe('cl.admin');
    await expect
      .poll(async () => (await api(a, `/admin/api/connections?client=${creds.client_id}&topic=cl.admin`)).body.connections, {
        timeout: 5000,
      })
      .toEqual([
        {
          id: c.connectionId,
          client_id: creds.client_id,
          node: 'b',
          address: '127.0.0.1',
          connected_at: expect.any(String),
          subscriptions: null,
          queued_bytes: null,
        },
      ]);
    // Node b itself knows its subscriptions.
    expect((await api(b, `/admin/api/connections?client=${creds.client_id}`)).body.connections[0].subscriptions).toEqual(['cl.admin']);
    await expect
      .poll(async () => (await api(a, '/admin/api/overview')).body.nodes, { timeout: 8000 })
      .toEqual([
        { id: 'a', connections: 0 },
        { id: 'b', connections: 1 },
      ]);
    const kick = await api(a, `/admin/api/connections/${c.connectionId}`, 'DELETE');
    expect(kick).toMatchObject({ status: 200, body: { kicked: true, node: 'b', code: 4503 } });
    expect((await c.closed).code).toBe(4503);
  });

  it('a client revoked through node a is closed on node b with 4500', async () => {
    const creds = await cluster.createClient();
    const c = await cluster.connect(b, await cluster.register(b, creds));
    const r = await api(a, `/admin/api/clients/${creds.client_id}`, 'DELETE');
    expect(r).toMatchObject({ status: 200, body: { closed: 0, client: { id: creds.client_id, revoked_at: expect.any(String) } } });
    expect((await c.closed).code).toBe(4500);
  });
});
