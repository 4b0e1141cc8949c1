import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Broker } from '../../broker/broker.ts';
import type { Presence } from '../../cluster/presence.ts';
import { HubcastError } from '../../core/errors.ts';
import { isValidPattern, isValidTopic } from '../../core/topics.ts';
import { CloseCode, type Gateway } from '../../gateway/gateway.ts';
import type { AuditLog } from './audit.ts';
import { backend, decodeCursor, iso, isTimeKey, page, pageQuery, parseQuery, timeKey } from './common.ts';

export interface ConnectionRouteDeps {
  gateway: Gateway;
  presence: Presence;
  broker: Broker;
  nodeId: string;
  /** A cluster (not the memory broker): other nodes' connections come from the presence registry. */
  cluster: boolean;
  audit: AuditLog;
}

/** A connection as the API lists it. */
export interface ConnectionView {
  id: string;
  client_id: string;
  node: string;
  address: string;
  connected_at: string;
  /** Topics and patterns as subscribed; null for another node's connection (not known here). */
  subscriptions: string[] | null;
  /** Outbound bytes queued; null for another node's connection. */
  queued_bytes: number | null;
}

interface Row extends ConnectionView {
  /** Sort key (not sent). */
  at: number;
}

const listQuery = {
  ...pageQuery,
  client: z.string().min(1).max(256).optional(),
  address: z
    .string()
    .max(64)
    .refine((a) => isIP(a) !== 0, 'address must be an IP address')
    .optional(),
  topic: z.string().max(1024).optional(),
};

const kickQuery = { reconnect: z.enum(['true', 'false']).default('false') };

/**
 * The admin API's live connections: this node's from the gateway (with their subscriptions and
 * queued bytes) and, in a cluster, every other node's from the presence registry; kicking one, on
 * whichever node holds it (the broker's control channel).
 */
export function connectionRoutes(app: FastifyInstance, d: ConnectionRouteDeps): void {
  app.get('/admin/api/connections', async (req) => {
    const q = parseQuery(listQuery, req.query);
    if (q.topic !== undefined && !isValidTopic(q.topic) && !isValidPattern(q.topic)) throw new HubcastError('invalid_topic');
    const after = decodeCursor(q.cursor, isTimeKey);
    const rows: Row[] = d.gateway.liveConnections(q).map((c) => ({
      id: c.id,
      client_id: c.clientId,
      node: d.nodeId,
      address: c.address,
      connected_at: iso(c.connectedAt),
      subscriptions: c.subscriptions,
      queued_bytes: c.queuedBytes,
      at: c.connectedAt,
    }));
    if (d.cluster) {
      const [all, subscribed] = await backend('presence registry', () =>
        Promise.all([d.presence.listConnections(), q.topic === undefined ? undefined : d.presence.subscribers(q.topic)]),
      );
      const withTopic = subscribed && new Set(subscribed.map((s) => s.connectionId));
      for (const c of all) {
        if (c.nodeId === d.nodeId) continue;
        if ((q.client !== undefined && c.clientId !== q.client) || (q.address !== undefined && c.remoteAddress !== q.address)) continue;
        if (withTopic && !withTopic.has(c.id)) continue;
        rows.push({
          id: c.id,
          client_id: c.clientId,
          node: c.nodeId,
          address: c.remoteAddress,
          connected_at: iso(c.connectedAt),
          subscriptions: null,
          queued_bytes: null,
          at: c.connectedAt,
        });
      }
    }
    const p = page(rows, (r) => timeKey(r.at, r.id), after, q.limit);
    return { connections: p.items.map(({ at: _at, ...r }) => r), next_cursor: p.next };
  });

  app.delete<{ Params: { id: string } }>('/admin/api/connections/:id', async (req) => {
    const { id } = req.params;
    const reconnect = parseQuery(kickQuery, req.query).reconnect === 'true';
    const code = reconnect ? CloseCode.kickedReconnect : CloseCode.kicked;
    return d.audit.run(req, 'connections.kick', id, async () => {
      if (d.gateway.kick(id, reconnect)) return { kicked: true, node: d.nodeId, code };
      if (d.cluster) {
        const holder = (await backend('presence registry', () => d.presence.listConnections())).find((c) => c.id === id);
        if (holder && holder.nodeId !== d.nodeId) {
          d.broker.control({ op: 'close', connectionId: id, code, reason: 'disconnected by an operator' }, holder.nodeId);
          return { kicked: true, node: holder.nodeId, code };
        }
      }
      throw new HubcastError('not_found', 'no live connection by that id');
    });
  });
}
