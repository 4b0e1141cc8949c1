import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ConnectorRuntime } from '../../connectors/runtime.ts';
import { HubcastError } from '../../core/errors.ts';
import type { AuditLog } from './audit.ts';
import { backend, decodeCursor, encodeCursor, intParam, iso, pageQuery, parseQuery } from './common.ts';

export interface ConnectorRouteDeps {
  runtime: ConnectorRuntime;
  audit: AuditLog;
}

const deadLettersQuery = { ...pageQuery, connector: z.string().min(1).max(200).optional() };

/**
 * The connectors running on this node (state, lag, last record, reconnects, dead letters) and their
 * dead-letter store: list, retry now, drop — what `hubcast dlq` does, through the running server.
 */
export function connectorRoutes(app: FastifyInstance, d: ConnectorRouteDeps): void {
  const { runtime } = d;
  app.get('/connectors', async () => ({ connectors: runtime.list() }));

  app.get('/admin/api/connectors', async () => {
    const stored = await backend('dead-letter store', () => runtime.deadLetterCounts());
    return { connectors: runtime.list().map((c) => ({ ...c, dead_letters_stored: stored.get(c.name) ?? 0 })) };
  });

  app.get('/admin/api/dead-letters', async (req) => {
    const q = parseQuery(deadLettersQuery, req.query);
    const after = Number(decodeCursor(q.cursor, (k) => /^\d{1,15}$/.test(k)) ?? 0);
    const db = runtime.db;
    const rows = db
      ? await backend('dead-letter store', () => db.pageDeadLetters({ connector: q.connector, afterId: after, limit: q.limit + 1 }))
      : [];
    const items = rows.slice(0, q.limit);
    return {
      dead_letters: items.map((r) => ({
        id: r.id,
        connector: r.connector,
        key: r.key,
        kind: r.kind,
        reason: r.reason,
        at: iso(r.at),
        size: r.bytes,
      })),
      next_cursor: rows.length > q.limit ? encodeCursor(String(items.at(-1)!.id)) : null,
    };
  });

  // Retried at once (not at the next pass): published → 202 with where it went; failed again → 202
  // with its new dead-letter id and reason.
  app.post<{ Params: { id: string } }>('/admin/api/dead-letters/:id/retry', async (req, reply) => {
    const id = intParam(req.params.id, 'the dead-letter id');
    const out = await d.audit.run(
      req,
      'dead_letters.retry',
      String(id),
      async () => {
        const r = await runtime.retryDeadLetter(id);
        if (r === undefined) throw new HubcastError('not_found', 'no dead letter by that id on this node');
        if (r === 'no_connector')
          throw new HubcastError('not_found', 'the connector of this dead letter is not configured on this node; it stays');
        return r;
      },
      (r) => ({ result: r.dead.length && !r.published.length ? 'dead_lettered' : 'ok' }),
    );
    if (out.dead.length && !out.published.length)
      return reply.code(202).send({ retried: false, dead_letter: { id: out.dead[0]!.id, reason: out.dead[0]!.reason } });
    const first = out.published[0];
    return reply.code(202).send({
      retried: true,
      topic: first?.topic ?? null,
      offset: first?.offset ?? null,
      published: out.published,
      // A pipeline with several outputs: those that failed again.
      ...(out.dead.length ? { dead_letters: out.dead } : {}),
    });
  });

  app.delete<{ Params: { id: string } }>('/admin/api/dead-letters/:id', async (req) => {
    const id = intParam(req.params.id, 'the dead-letter id');
    return d.audit.run(req, 'dead_letters.drop', String(id), async () => {
      const db = runtime.db;
      const n = db ? await backend('dead-letter store', () => db.drop([id])) : 0;
      if (n === 0) throw new HubcastError('not_found', 'no dead letter by that id on this node');
      return { dropped: true };
    });
  });
}
