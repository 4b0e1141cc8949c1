import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isoTime, issueClient, MAX_NAME, normalizePatterns, PATTERN_RULE } from '../../auth/issue.ts';
import type { TokenService } from '../../auth/tokens.ts';
import type { Clock } from '../../core/clock.ts';
import { HubcastError } from '../../core/errors.ts';
import { CloseCode, type Gateway } from '../../gateway/gateway.ts';
import type { Broker } from '../../broker/broker.ts';
import type { Presence } from '../../cluster/presence.ts';
import type { Logger } from '../../logger.ts';
import type { ClientRecord, Store } from '../../store/store.ts';
import type { AuditLog } from './audit.ts';
import { backend, decodeCursor, isTimeKey, page, pageQuery, parseBody, parseQuery, timeKey } from './common.ts';

export interface ClientRouteDeps {
  store: Store;
  tokens: TokenService;
  gateway: Gateway;
  /** In a cluster: the other nodes are told at once to close a revoked client's connections. */
  cluster?: { presence: Presence; broker: Broker; nodeId: string; log: Logger } | undefined;
  clock: Clock;
  audit: AuditLog;
  maxJsonDepth: number;
}

/** Patterns per list a client may be given (the CLI has no cap; a body does). */
const MAX_PATTERNS = 100;
const patterns = z.array(z.string().max(200)).max(MAX_PATTERNS).default([]);
const createBody = z.object({ name: z.string().min(1).max(MAX_NAME), subscribe: patterns, publish: patterns, presence: patterns }).strict();

/** A client as the admin API shows it: never its secret nor the secret's hash. */
export function clientView(c: ClientRecord, connections: number) {
  return {
    id: c.id,
    name: c.name,
    subscribe: c.subscribe,
    publish: c.publish,
    presence: c.presence ?? [],
    created_at: isoTime(c.createdAt),
    revoked_at: isoTime(c.revokedAt),
    connections,
  };
}

/** The admin API's clients: list, create (the secret shown once), show, revoke. */
export function clientRoutes(app: FastifyInstance, d: ClientRouteDeps): void {
  const view = (c: ClientRecord) => clientView(c, d.gateway.clientConnections(c.id));
  const find = async (id: string) => {
    const c = await backend('store', () => d.store.getClient(id));
    if (!c) throw new HubcastError('not_found', 'no client by that id');
    return c;
  };

  app.get('/admin/api/clients', async (req) => {
    const q = parseQuery(pageQuery, req.query);
    const after = decodeCursor(q.cursor, isTimeKey);
    const all = await backend('store', () => d.store.listClients());
    const p = page(all, (c) => timeKey(c.createdAt, c.id), after, q.limit);
    return { clients: p.items.map(view), next_cursor: p.next };
  });

  app.post('/admin/api/clients', async (req, reply) => {
    const body = parseBody(req, createBody, d.maxJsonDepth);
    const lists = { subscribe: body.subscribe, publish: body.publish, presence: body.presence };
    const checked: Record<string, string[]> = {};
    for (const [field, list] of Object.entries(lists)) {
      const r = normalizePatterns(list);
      if (!r.ok) throw new HubcastError('bad_request', `${field}: "${r.bad.slice(0, 200)}" is not a valid topic pattern (${PATTERN_RULE})`);
      checked[field] = r.patterns;
    }
    const created = await d.audit.run(
      req,
      'clients.create',
      body.name,
      () =>
        backend('store', () =>
          issueClient(
            d.store,
            { name: body.name, subscribe: checked.subscribe!, publish: checked.publish!, presence: checked.presence! },
            d.clock.now(),
          ),
        ),
      (r) => ({ target: r.client.id }),
    );
    return reply
      .code(201)
      .header('Cache-Control', 'no-store')
      .send({ client: view(created.client), secret: created.secret });
  });

  app.get<{ Params: { id: string } }>('/admin/api/clients/:id', async (req) => ({ client: view(await find(req.params.id)) }));

  /** Tells the other nodes (the control channel); their revocation poll would within a second anyway. */
  const tellOthers = async (clientId: string) => {
    const c = d.cluster;
    if (!c) return;
    try {
      for (const n of await c.presence.nodes())
        if (n.nodeId !== c.nodeId)
          c.broker.control({ op: 'closeClient', clientId, code: CloseCode.revoked, reason: 'client revoked' }, n.nodeId);
    } catch (err) {
      c.log.warn({ err, client_id: clientId }, 'could not tell the other nodes of a revocation; their poll will');
    }
  };

  // Revoking: its tokens die at once, its connections close with 4500 — on this node now, on the
  // others when the control message or their revocation poll (within a second) reaches them. A
  // second revoke answers the first one's time.
  app.delete<{ Params: { id: string } }>('/admin/api/clients/:id', async (req) => {
    const { id } = req.params;
    return d.audit
      .run(
        req,
        'clients.revoke',
        id,
        async () => {
          const c = await find(id);
          if (c.revokedAt !== null) return { client: view(c), closed: 0, already: true };
          const at = d.clock.now();
          const revoked = await backend('store', () => d.store.revokeClient(id, at));
          if (!revoked) return { client: view(await find(id)), closed: 0, already: true };
          d.tokens.forgetClient(id);
          const closed = d.gateway.closeClient(id);
          void tellOthers(id);
          return { client: view({ ...c, revokedAt: at }), closed, already: false };
        },
        (r) => ({ result: r.already ? 'already_revoked' : 'ok' }),
      )
      .then(({ client, closed }) => ({ client, closed }));
  });
}
