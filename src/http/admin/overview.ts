import type { FastifyInstance } from 'fastify';
import type { RecentAlerts } from '../../alerts/recent.ts';
import type { Broker } from '../../broker/broker.ts';
import type { Presence } from '../../cluster/presence.ts';
import type { Config } from '../../config/schema.ts';
import type { Clock } from '../../core/clock.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import type { RateMeter } from '../../metrics.ts';
import { cachedProbe, type ProbeResult } from '../health.ts';
import { packageRoot } from '../static-file.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iso } from './common.ts';

export interface Overview {
  node: { id: string; version: string; started_at: string | null; uptime_s: number };
  nodes: { id: string; connections: number }[];
  connections: number;
  subscriptions: number;
  topics: number;
  rates: { published_per_s: number; delivered_per_s: number; connects_per_s: number };
  store: { type: string; ok: boolean };
  broker: { type: string; ok: boolean };
  alerts: { recent: number; open: number };
}

export interface OverviewDeps {
  config: Config;
  nodeId: string;
  clock: Clock;
  gateway: Gateway;
  presence: Presence;
  broker: Broker;
  rates: RateMeter;
  recentAlerts: RecentAlerts;
  /** Open alert groups (events waiting for, or within the repeat window of, a digest). */
  openAlertGroups: () => number;
  /** The store's cached health probe (the one /healthz uses). */
  storeProbe: () => Promise<ProbeResult<unknown>>;
  /** When this node started listening (ms), undefined before. */
  startedAt: () => number | undefined;
}

/** How long the cluster's per-node connection counts are reused (they take one presence query). */
const NODES_TTL_MS = 5000;

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The node's overview, as `GET /admin/api/overview` and the event stream send it. Cheap enough for
 * every second: counts this node keeps anyway, the store probe /healthz uses, and — in a cluster —
 * the live nodes with their connection counts from the presence registry, reused for 5 s.
 */
export function overviewSource(d: OverviewDeps): () => Promise<Overview> {
  const ver = version();
  const cluster = d.config.broker.type !== 'memory';
  const nodesProbe = cachedProbe(
    async () => {
      const [nodes, conns] = await Promise.all([d.presence.nodes(), d.presence.listConnections()]);
      const per = new Map<string, number>();
      for (const c of conns) per.set(c.nodeId, (per.get(c.nodeId) ?? 0) + 1);
      return nodes.map((n) => ({ id: n.nodeId, connections: per.get(n.nodeId) ?? 0 })).sort((a, b) => (a.id < b.id ? -1 : 1));
    },
    { ttlMs: NODES_TTL_MS, timeoutMs: 2000 },
  );
  return async () => {
    const gw = d.gateway;
    const here = { id: d.nodeId, connections: gw.connectionCount };
    const [store, nodes] = await Promise.all([d.storeProbe(), cluster ? nodesProbe() : undefined]);
    const now = d.clock.now();
    const started = d.startedAt();
    return {
      node: {
        id: d.nodeId,
        version: ver,
        started_at: started === undefined ? null : iso(started),
        uptime_s: started === undefined ? 0 : Math.max(0, Math.floor((now - started) / 1000)),
      },
      // This node's count is always its own, current one; others' as the registry last said.
      nodes: nodes?.ok && nodes.value ? nodes.value.map((n) => (n.id === d.nodeId ? here : n)) : [here],
      connections: gw.connectionCount,
      subscriptions: gw.hub.subscriptionCount,
      topics: gw.hub.topicCount,
      rates: {
        published_per_s: d.rates.rate('published'),
        delivered_per_s: d.rates.rate('delivered'),
        connects_per_s: d.rates.rate('connects'),
      },
      store: { type: d.config.store.type, ok: store.ok },
      broker: { type: d.config.broker.type, ok: d.broker.connected },
      alerts: { recent: d.recentAlerts.countSince(now - 3600_000), open: d.openAlertGroups() },
    };
  };
}

/** GET /admin/api/overview */
export function overviewRoutes(app: FastifyInstance, overview: () => Promise<Overview>): void {
  app.get('/admin/api/overview', async () => overview());
}
