import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isoTime, issueKey, MAX_NAME } from '../../auth/issue.ts';
import type { Clock } from '../../core/clock.ts';
import { HubcastError } from '../../core/errors.ts';
import type { KeyRecord, Store } from '../../store/store.ts';
import type { AuditLog } from './audit.ts';
import { backend, decodeCursor, isTimeKey, page, pageQuery, parseBody, parseQuery, timeKey } from './common.ts';
import { callerOf } from './guard.ts';

export interface KeyRouteDeps {
  store: Store;
  clock: Clock;
  audit: AuditLog;
  maxJsonDepth: number;
}

const createBody = z.object({ name: z.string().min(1).max(MAX_NAME), scope: z.enum(['ingest', 'admin']) }).strict();

/** A key as the admin API shows it: never the key nor its hash. */
const keyView = (k: KeyRecord) => ({
  id: k.id,
  name: k.name,
  scope: k.scope,
  created_at: isoTime(k.createdAt),
  revoked_at: isoTime(k.revokedAt),
});

/** The admin API's ingest and admin keys: list, create (the key shown once), revoke. */
export function keyRoutes(app: FastifyInstance, d: KeyRouteDeps): void {
  app.get('/admin/api/keys', async (req) => {
    const q = parseQuery(pageQuery, req.query);
    const after = decodeCursor(q.cursor, isTimeKey);
    const all = await backend('store', () => d.store.listKeys());
    const p = page(all, (k) => timeKey(k.createdAt, k.id), after, q.limit);
    return { keys: p.items.map(keyView), next_cursor: p.next };
  });

  app.post('/admin/api/keys', async (req, reply) => {
    const body = parseBody(req, createBody, d.maxJsonDepth);
    const created = await d.audit.run(
      req,
      'keys.create',
      body.name,
      () => backend('store', () => issueKey(d.store, body, d.clock.now())),
      (r) => ({ target: r.key.id }),
    );
    return reply
      .code(201)
      .header('Cache-Control', 'no-store')
      .send({ key: keyView(created.key), secret: created.secret });
  });

  // By id only (the CLI also takes a name). The key making the request cannot revoke itself: an
  // operator does not lock themselves out by mistake.
  app.delete<{ Params: { id: string } }>('/admin/api/keys/:id', async (req) => {
    const { id } = req.params;
    const r = await d.audit.run(
      req,
      'keys.revoke',
      id,
      async () => {
        const find = async () => (await backend('store', () => d.store.listKeys())).find((k) => k.id === id);
        const k = await find();
        if (!k) throw new HubcastError('not_found', 'no key by that id');
        if (k.id === callerOf(req).keyId) throw new HubcastError('self_revocation');
        if (k.revokedAt !== null) return { key: k, already: true };
        const at = d.clock.now();
        if (!(await backend('store', () => d.store.revokeKey(k.id, at)))) return { key: (await find()) ?? k, already: true };
        return { key: { ...k, revokedAt: at }, already: false };
      },
      (v) => ({ result: v.already ? 'already_revoked' : 'ok' }),
    );
    return { key: keyView(r.key) };
  });
}
