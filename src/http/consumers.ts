import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifySecret } from '../auth/secrets.ts';
import type { Alerts } from '../alerts/alerts.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { Config } from '../config/schema.ts';
import { HubcastError } from '../core/errors.ts';
import type { FailureBudget } from '../core/rate-limit.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';

export interface ConsumerRouteDeps {
  config: Config;
  store: Store;
  tokens: TokenService;
  metrics: Metrics;
  alerts: Alerts;
  /** Failed authentications per source IP (shared with the gateway). */
  budget: FailureBudget;
  log: Logger;
}

const MAX_CRED = 256;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_CRED ? v : undefined;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Client credentials from the JSON body, the `client_id`/`client_secret` headers, or HTTP Basic. */
function readClientCredentials(req: FastifyRequest): { id: string; secret: string } {
  const bad = (msg: string) => new HubcastError('bad_request', msg);
  const body = req.body as Buffer | undefined;
  if (body && body.length > 0) {
    const ct = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== 'application/json')
      throw bad('send credentials as application/json, as headers client_id and client_secret, or as HTTP Basic');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw bad('the body is not valid JSON');
    }
    const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    if (o.client_id !== undefined || o.client_secret !== undefined) {
      const id = str(o.client_id);
      const secret = str(o.client_secret);
      if (!id || !secret) throw bad('client_id and client_secret must be non-empty strings');
      return { id, secret };
    }
  }
  const hid = header(req, 'client_id');
  const hsecret = header(req, 'client_secret');
  if (hid !== undefined || hsecret !== undefined) {
    const id = str(hid);
    const secret = str(hsecret);
    if (!id || !secret) throw bad('both headers client_id and client_secret are required');
    return { id, secret };
  }
  const auth = header(req, 'authorization');
  if (auth !== undefined) {
    const m = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(auth.trim());
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const i = decoded.indexOf(':');
    const id = i > 0 ? str(decoded.slice(0, i)) : undefined;
    const secret = i > 0 ? str(decoded.slice(i + 1)) : undefined;
    if (!id || !secret) throw bad('malformed HTTP Basic credentials');
    return { id, secret };
  }
  throw bad('client credentials are required: JSON body {"client_id","client_secret"}, headers client_id and client_secret, or HTTP Basic');
}

function storeDown(err: unknown): HubcastError {
  return new HubcastError('unavailable', 'the store is unavailable, try again', { cause: err, retryAfterS: 1 });
}

/** POST /consumers (register → token) and POST /consumers/tickets (token → single-use ticket). */
export function consumerRoutes(app: FastifyInstance, d: ConsumerRouteDeps): void {
  // scrypt runs on libuv's pool; a small cap keeps registration floods from starving it.
  let hashing = 0;
  app.post('/consumers', async (req, reply) => {
    const wait = d.budget.retryAfterS(req.ip);
    if (wait > 0) {
      d.metrics.authFailures.inc({ reason: 'rate_limited' });
      throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    }
    const creds = readClientCredentials(req);
    if (hashing >= d.config.limits.registerConcurrency) {
      throw new HubcastError('unavailable', 'too many registrations in progress, try again', { retryAfterS: 1 });
    }
    hashing++;
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
      d.budget.fail(req.ip);
      d.metrics.authFailures.inc({ reason: 'invalid_client' });
      d.log.info({ client_id: creds.id.slice(0, 64), ip: req.ip }, 'registration rejected: invalid client');
      throw new HubcastError('invalid_client');
    }
    const token = await d.tokens.issue(client.id).catch((err: unknown) => {
      throw storeDown(err);
    });
    d.log.info({ client_id: client.id, ip: req.ip }, 'consumer registered');
    return reply
      .code(201)
      .header('Cache-Control', 'no-store')
      .send({ client_id: client.id, token, token_type: 'Bearer', expires_after_idle_s: d.config.tokens.idleTtl, websocket_url: '/ws' });
  });

  app.post('/consumers/tickets', async (req, reply) => {
    const wait = d.budget.retryAfterS(req.ip);
    if (wait > 0) {
      d.metrics.authFailures.inc({ reason: 'rate_limited' });
      throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
    }
    const m = /^Bearer +(\S+)$/i.exec((header(req, 'authorization') ?? '').trim());
    const check = m
      ? await d.tokens.check(m[1]!).catch((err: unknown) => Promise.reject(storeDown(err)))
      : ({ ok: false, reason: 'missing' } as const);
    if (!check.ok) {
      d.budget.fail(req.ip);
      d.alerts.raise({ kind: 'invalid_token', ip: req.ip, detail: `ticket request: ${check.reason}` });
      d.metrics.authFailures.inc({ reason: check.reason });
      throw new HubcastError('unauthorized');
    }
    const { ticket, expiresInS } = await d.tokens.issueTicket(check.token.hash).catch((err: unknown) => {
      throw storeDown(err);
    });
    return reply.code(201).header('Cache-Control', 'no-store').send({ ticket, expires_in_s: expiresInS });
  });
}
