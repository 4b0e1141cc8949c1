import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readBearer } from '../auth/credentials.ts';
import type { AuthFailures } from '../auth/failures.ts';
import { cidrBlockList, type Config } from '../config/schema.ts';
import type { ConnectorRuntime } from '../connectors/runtime.ts';
import { HubcastError } from '../core/errors.ts';
import { isSecretFormat, sha256 } from '../core/ids.ts';
import type { Presence } from '../cluster/presence.ts';
import { isValidPattern, isValidTopic } from '../core/topics.ts';
import type { Store } from '../store/store.ts';
import { inList } from './ip.ts';

/** Admin routes: from `admin.allow` addresses, with an admin-scope key. */
export function adminRoutes(
  app: FastifyInstance,
  d: { config: Config; store: Store; failures: AuthFailures; runtime: ConnectorRuntime; presence: Presence },
): void {
  const allow = cidrBlockList(d.config.admin.allow);
  const guard = async (req: FastifyRequest) => {
    const ip = req.socket.remoteAddress ?? '';
    if (!inList(allow, ip)) throw new HubcastError('ip_not_allowed');
    const wait = d.failures.retryAfterS(ip);
    if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    const bearer = readBearer(req.headers);
    let key;
    try {
      key = bearer.kind === 'bearer' && isSecretFormat(bearer.token) ? await d.store.findKey(sha256(bearer.token)) : undefined;
    } catch (err) {
      throw new HubcastError('unavailable', 'the key store is unavailable, try again', { cause: err, retryAfterS: 1 });
    }
    if (!key || key.scope !== 'admin') {
      d.failures.fail(ip, { reason: 'invalid_key', msg: 'admin request rejected: missing or non-admin key' });
      throw new HubcastError('invalid_key', 'an admin-scope key is required (hubcast keys create --scope admin)');
    }
  };
  app.get('/connectors', { onRequest: guard }, async () => ({ connectors: d.runtime.list() }));
  // Who is subscribed to a topic (or a pattern, as subscribed), on every node of the cluster.
  app.get<{ Params: { topic: string } }>('/topics/:topic/presence', { onRequest: guard }, async (req) => {
    const { topic } = req.params;
    if (!isValidTopic(topic) && !isValidPattern(topic)) throw new HubcastError('invalid_topic');
    let subs;
    try {
      subs = await d.presence.subscribers(topic);
    } catch (err) {
      throw new HubcastError('unavailable', 'the presence registry is unavailable, try again', { cause: err, retryAfterS: 1 });
    }
    return {
      topic,
      subscribers: subs.map((s) => ({
        connection_id: s.connectionId,
        client_id: s.clientId,
        node: s.nodeId,
        since: new Date(s.since).toISOString(),
      })),
    };
  });
}
