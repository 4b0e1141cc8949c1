import type { FastifyInstance } from 'fastify';
import type { RecentAlerts } from '../../alerts/recent.ts';
import { limitParam, parseQuery } from './common.ts';

/** GET /admin/api/alerts: this node's recent alert digests and what became of them on each channel. */
export function alertRoutes(app: FastifyInstance, recent: RecentAlerts): void {
  app.get('/admin/api/alerts', async (req) => {
    const q = parseQuery({ limit: limitParam }, req.query);
    return { alerts: recent.list(q.limit) };
  });
}
