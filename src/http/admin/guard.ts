import type { FastifyRequest } from 'fastify';
import { readBearer } from '../../auth/credentials.ts';
import type { AuthFailures } from '../../auth/failures.ts';
import { cidrBlockList } from '../../config/schema.ts';
import { HubcastError } from '../../core/errors.ts';
import { isSecretFormat, sha256 } from '../../core/ids.ts';
import type { KeyRecord, Store } from '../../store/store.ts';
import { inList } from '../ip.ts';

/** Who makes an admin request: the admin key (never its secret) and the source address. */
export interface AdminCaller {
  keyId: string;
  keyName: string;
  /** SHA-256 of the key, to check later that it is still valid (a long event stream). */
  keyHash: string;
  ip: string;
}

const callers = new WeakMap<FastifyRequest, AdminCaller>();

/** The caller the guard let through (every admin route runs behind it). */
export function callerOf(req: FastifyRequest): AdminCaller {
  const c = callers.get(req);
  if (!c) throw new HubcastError('internal_error', 'admin route without its guard');
  return c;
}

/**
 * The guard of every admin route (an `onRequest` hook), cheapest check first: the source address in
 * `admin.allow` (else `403 ip_not_allowed`), the admin failure budget (`429 rate_limited` with
 * Retry-After), then `Authorization: Bearer <admin-scope key>` (else `401 invalid_key`, which spends
 * the budget). A key store that cannot be read is `503 unavailable`, never taken for a bad key.
 */
export function adminGuard(d: { allow: readonly string[]; store: Store; failures: AuthFailures }): (req: FastifyRequest) => Promise<void> {
  const allow = cidrBlockList(d.allow);
  return async (req) => {
    const ip = req.socket.remoteAddress ?? '';
    if (!inList(allow, ip)) throw new HubcastError('ip_not_allowed');
    const wait = d.failures.retryAfterS(ip);
    if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    const bearer = readBearer(req.headers);
    const hash = bearer.kind === 'bearer' && isSecretFormat(bearer.token) ? sha256(bearer.token) : undefined;
    let key: KeyRecord | undefined;
    try {
      key = hash ? await d.store.findKey(hash) : undefined;
    } catch (err) {
      throw new HubcastError('unavailable', 'the key store is unavailable, try again', { cause: err, retryAfterS: 1 });
    }
    if (!key || key.scope !== 'admin' || !hash) {
      d.failures.fail(ip, { reason: 'invalid_key', msg: 'admin request rejected: missing or non-admin key' });
      throw new HubcastError('invalid_key', 'an admin-scope key is required (hubcast keys create --scope admin)');
    }
    callers.set(req, { keyId: key.id, keyName: key.name, keyHash: hash, ip });
  };
}
