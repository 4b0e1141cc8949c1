import type { Server } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { ERRORS, HubcastError, type ErrorCode } from '../core/errors.ts';
import { randomId } from '../core/ids.ts';
import type { Logger } from '../logger.ts';

/** Sends `{"error":{"code","message"}}` with the code's status. */
export function sendError(reply: import('fastify').FastifyReply, err: HubcastError): unknown {
  if (err.retryAfterS !== undefined) void reply.header('Retry-After', String(err.retryAfterS));
  return reply.code(err.status).header('Cache-Control', 'no-store').send(err.toJSON());
}

const FASTIFY_CODES: Record<number, ErrorCode> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** TLS for the HTTP server: PEM certificate (chain) and key; HTTPS and WSS share the port. */
export interface HttpsOptions {
  cert: Buffer;
  key: Buffer;
  /** A TLS handshake not finished within this many ms is dropped. */
  handshakeTimeout?: number;
}

/**
 * The HTTP application: every body arrives as a Buffer (routes parse it themselves, so that raw
 * ingest keeps its bytes) and every error is the documented JSON shape. With `https`, the server is
 * a Node `https.Server` (typed as its `http.Server` side; `setSecureContext` reloads the certificate).
 */
export function createHttpApp(
  log: Logger,
  opts: { bodyLimit: number; isClosing: () => boolean; onInternalError: (correlationId: string) => void; https?: HttpsOptions },
): FastifyInstance<Server> {
  const app = Fastify({
    ...(opts.https ? { https: opts.https } : {}),
    logger: false,
    bodyLimit: opts.bodyLimit,
    return503OnClosing: false,
    // Topics travel in the path (POST /entity/<topic>); the topic check itself caps them at 200.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: (err, _req, reply) => {
      const code = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'invalid_topic' : 'bad_request';
      return sendError(reply, new HubcastError(code, code === 'bad_request' ? 'malformed request URL or headers' : undefined));
    },
    forceCloseConnections: false,
  }) as unknown as FastifyInstance<Server>;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // Every route's path as a pattern, so that a known path with another method answers 405.
  const routes: { re: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const re = new RegExp('^' + r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+') + '/?$');
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ re, method: m });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))];
    if (allowed.length === 0) return sendError(reply, new HubcastError('not_found'));
    void reply.header('Allow', allowed.join(', '));
    return sendError(reply, new HubcastError('method_not_allowed', `${req.method} is not allowed here; use ${allowed.join(' or ')}`));
  });
  app.addHook('onRequest', (_req, _reply, done) => {
    done(opts.isClosing() ? new HubcastError('unavailable', 'the server is shutting down', { retryAfterS: 1 }) : undefined);
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof HubcastError) return sendError(reply, err);
    const status = err.statusCode ?? 500;
    const code = FASTIFY_CODES[status];
    if (code) return sendError(reply, new HubcastError(code, code === 'bad_request' ? err.message : ERRORS[code].message));
    const correlationId = randomId('e_', 8);
    log.error({ err, correlation_id: correlationId, method: req.method, path: req.routeOptions.url }, 'unhandled error in an HTTP handler');
    opts.onInternalError(correlationId);
    return sendError(reply, new HubcastError('internal_error', `internal error (ref ${correlationId})`));
  });
  app.addHook('onResponse', (req, reply, done) => {
    if (log.isLevelEnabled('debug'))
      log.debug(
        { method: req.method, path: req.routeOptions.url ?? 'unknown', status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'http',
      );
    done();
  });
  return app;
}
