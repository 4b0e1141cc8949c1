import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics.ts';

/** GET /healthz and GET /metrics (Prometheus text format). */
export function healthRoutes(app: FastifyInstance, metrics: Metrics): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_req, reply) =>
    reply.header('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
