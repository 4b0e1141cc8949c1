import type { FastifyInstance } from 'fastify';
import { readBearer, readClientCredentials } from '../auth/credentials.ts';
import { clientIdField, type AuthFailures } from '../auth/failures.ts';
import { verifySecret } from '../auth/secrets.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { Config } from '../config/schema.ts';
import { HubcastError } from '../core/errors.ts';
import type { RateBuckets } from '../core/rate-limit.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';

export interface ConsumerRouteDeps {
  config: Config;
  store: Store;
  tokens: TokenService;
  /** The consumer entrances' failure handler (its budget is shared with the gateway, not with ingest). */
  failures: AuthFailures;
  /** Successful registrations per client_id and per source address (`limits.registrations`). */
  registrations: { perClient: RateBuckets; perIp: RateBuckets };
  log: Logger;
}

function storeDown(err: unknown): HubcastError {
  return new HubcastError('unavailable', 'the store is unavailable, try again', { cause: err, retryAfterS: 1 });
}

/** POST /consumers (register → token) and POST /consumers/tickets (token → single-use ticket). */
export function consumerRoutes(app: FastifyInstance, d: ConsumerRouteDeps): void {
  const { failures, registrations } = d;
  // Requests past this many secret checks in progress get 503 at once rather than queue; the checks
  // themselves never take more than half of libuv's pool (auth/secrets.ts).
  let hashing = 0;
  app.post('/consumers', async (req, reply) => {
    const wait = failures.retryAfterS(req.ip);
    if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    const creds = readClientCredentials(req.headers, req.body as Buffer | undefined);
    if (!creds.ok) throw new HubcastError('bad_request', creds.message);
    // Checked before the (slow) secret check, so a client past its allowance costs no hashing. The
    // allowance is reserved now (concurrent requests cannot all slip through on the last token) and
    // given back unless the registration succeeds: callers without the secret cannot use it up.
    if (hashing >= d.config.limits.registerConcurrency) {
      throw new HubcastError('unavailable', 'too many registrations in progress, try again', { retryAfterS: 1 });
    }
    const slowDown = Math.max(registrations.perIp.retryAfterS(req.ip), registrations.perClient.retryAfterS(creds.id));
    if (slowDown > 0) {
      d.log.info({ ...clientIdField(creds.id), ip: req.ip }, 'registration refused: registration rate limit');
      throw new HubcastError('registration_rate_limited', undefined, { retryAfterS: slowDown });
    }
    registrations.perIp.take(req.ip);
    registrations.perClient.take(creds.id);
    let registered = false;
    hashing++;
    try {
      let client, ok;
      try {
        client = await d.store.getClient(creds.id).catch((err: unknown) => {
          throw storeDown(err);
        });
        ok = await verifySecret(creds.secret, client?.secretHash);
      } finally {
        hashing--;
      }
      if (!ok || !client || client.revokedAt !== null) {
        failures.fail(req.ip, { reason: 'invalid_client', msg: 'registration rejected: invalid client', fields: clientIdField(creds.id) });
        throw new HubcastError('invalid_client');
      }
      const issued = await d.tokens.issue(client.id).catch((err: unknown) => {
        throw storeDown(err);
      });
      if (issued.token === undefined) {
        d.log.warn({ client_id: client.id, ip: req.ip }, 'registration refused: every token of the client has a live connection');
        throw new HubcastError('token_limit', undefined, { retryAfterS: 5 });
      }
      registered = true;
      d.log.info(
        { client_id: client.id, ip: req.ip, ...(issued.revoked ? { revoked_tokens: issued.revoked } : {}) },
        'consumer registered',
      );
      return reply.code(201).header('Cache-Control', 'no-store').send({
        client_id: client.id,
        token: issued.token,
        token_type: 'Bearer',
        expires_after_idle_s: d.config.tokens.idleTtl,
        websocket_url: '/ws',
      });
    } finally {
      if (!registered) {
        registrations.perIp.refund(req.ip);
        registrations.perClient.refund(creds.id);
      }
    }
  });

  app.post('/consumers/tickets', async (req, reply) => {
    const wait = failures.retryAfterS(req.ip);
    if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    const bearer = readBearer(req.headers);
    const check =
      bearer.kind === 'bearer'
        ? await d.tokens.check(bearer.token).catch((err: unknown) => Promise.reject(storeDown(err)))
        : ({ ok: false, reason: bearer.kind === 'none' ? 'missing' : 'malformed' } as const);
    if (!check.ok) {
      failures.fail(req.ip, { reason: check.reason, msg: 'ticket refused: invalid token', alert: `ticket request: ${check.reason}` });
      throw new HubcastError('unauthorized');
    }
    const { ticket, expiresInS } = await d.tokens.issueTicket(check.token.hash).catch((err: unknown) => {
      throw storeDown(err);
    });
    return reply.code(201).header('Cache-Control', 'no-store').send({ ticket, expires_in_s: expiresInS });
  });
}
