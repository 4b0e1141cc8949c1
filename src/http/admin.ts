import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readBearer } from '../auth/credentials.ts';
import type { AuthFailures } from '../auth/failures.ts';
import { cidrBlockList, type Config } from '../config/schema.ts';
import type { ConnectorRuntime } from '../connectors/runtime.ts';
import { HubcastError } from '../core/errors.ts';
import { isSecretFormat, sha256 } from '../core/ids.ts';
import type { Store } from '../store/store.ts';
import { inList } from './ip.ts';

/** Admin routes: from `admin.allow` addresses, with an admin-scope key. */
export function adminRoutes(
  app: FastifyInstance,
  d: { config: Config; store: Store; failures: AuthFailures; runtime: ConnectorRuntime },
): void {
  const allow = cidrBlockList(d.config.admin.allow);
  const guard = async (req: FastifyRequest) => {
    const ip = req.socket.remoteAddress ?? '';
    if (!inList(allow, ip)) throw new HubcastError('ip_not_allowed');
    const wait = d.failures.retryAfterS(ip);
    if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    const bearer = readBearer(req.headers);
    const key = bearer.kind === 'bearer' && isSecretFormat(bearer.token) ? await d.store.findKey(sha256(bearer.token)) : undefined;
    if (!key || key.scope !== 'admin') {
      d.failures.fail(ip, { reason: 'invalid_key', msg: 'admin request rejected: missing or non-admin key' });
      throw new HubcastError('invalid_key', 'an admin-scope key is required (hubcast keys create --scope admin)');
    }
  };
  app.get('/connectors', { onRequest: guard }, async () => ({ connectors: d.runtime.list() }));
}
