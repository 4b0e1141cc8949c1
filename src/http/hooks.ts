import type { FastifyInstance } from 'fastify';
import type { ConnectorRuntime } from '../connectors/runtime.ts';
import { HubcastError } from '../core/errors.ts';

/** POST /hooks/<name>: deliveries to a `webhook` connector, answered 2xx only after durable acceptance. */
export function hookRoutes(app: FastifyInstance, runtime: ConnectorRuntime, opts: { maxJsonDepth: number }): void {
  app.post<{ Params: { name: string } }>('/hooks/:name', async (req, reply) => {
    const hook = runtime.webhook(req.params.name);
    if (!hook) throw new HubcastError('not_found', 'no webhook connector by that name');
    const receipt = await hook.receive({
      body: (req.body as Buffer | undefined) ?? Buffer.alloc(0),
      contentType: req.headers['content-type'] ?? '',
      headers: req.headers,
      maxJsonDepth: opts.maxJsonDepth,
    });
    return reply.code(202).send(receipt.duplicate ? receipt : { accepted: receipt.accepted });
  });
}
