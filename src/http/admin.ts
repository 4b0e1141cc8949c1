import type { FastifyInstance, FastifyRequest } from 'fastify';
import { cidrBlockList, type Config } from '../config/schema.ts';
import type { ConnectorRuntime } from '../connectors/runtime.ts';
import { HubcastError } from '../core/errors.ts';
import { isSecretFormat, sha256 } from '../core/ids.ts';
import type { FailureBudget } from '../core/rate-limit.ts';
import type { Store } from '../store/store.ts';
import { inList } from './ip.ts';

/** Admin routes: from `admin.allow` addresses, with an admin-scope key. */
export function adminRoutes(
  app: FastifyInstance,
  d: { config: Config; store: Store; budget: FailureBudget; runtime: ConnectorRuntime },
): void {
  const allow = cidrBlockList(d.config.admin.allow);
  const guard = async (req: FastifyRequest) => {
    const ip = req.socket.remoteAddress ?? '';
    if (!inList(allow, ip)) throw new HubcastError('ip_not_allowed');
    const wait = d.budget.retryAfterS(ip);
    if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    const m = /^Bearer +(\S+)$/i.exec((req.headers.authorization ?? '').trim());
    const key = m && isSecretFormat(m[1]) ? await d.store.findKey(sha256(m[1])) : undefined;
    if (!key || key.scope !== 'admin') {
      d.budget.fail(ip);
      throw new HubcastError('invalid_key', 'an admin-scope key is required (hubcast keys create --scope admin)');
    }
  };
  app.get('/connectors', { onRequest: guard }, async () => ({ connectors: d.runtime.list() }));
}
