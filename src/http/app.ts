import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { ERRORS, errorBody, HubcastError, type ErrorCode } from '../core/errors.ts';
import { randomId } from '../core/ids.ts';
import { rejectUpgrade } from '../gateway/reject.ts';
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

/**
 * Node's HTTP parser refused a request (malformed, headers over the size limit, headers too slow):
 * answer with the documented JSON error (instead of Node's or Fastify's own body) and close.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way on this socket (pipelining) cannot be followed by another one.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request';
  const message = code === 'bad_request' ? 'malformed HTTP request' : undefined;
  rejectUpgrade(socket, ERRORS[code].status, code, message);
}

/** A route as registered: its method and its path pattern (`/entity/:topic`). */
export interface HttpRoute {
  method: string;
  url: string;
}

const routeTables = new WeakMap<object, HttpRoute[]>();

/**
 * Every route registered on an app built by `createHttpApp`, in registration order (the `HEAD` route
 * fastify adds for each `GET` included); what test/e2e/openapi.test.ts compares with the OpenAPI document.
 */
export function registeredRoutes(app: FastifyInstance<Server>): readonly HttpRoute[] {
  return routeTables.get(app) ?? [];
}

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
    clientErrorHandler: answerClientError,
  }) as unknown as FastifyInstance<Server>;
  // The answers Node would write itself, with an empty body, are written here as JSON errors instead.
  Object.assign(app.server, { requireHostHeader: false });
  app.server.on('checkExpectation', (_req, res) => {
    const body = errorBody('expectation_failed');
    res
      .writeHead(417, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-store',
        Connection: 'close',
      })
      .end(body);
  });
  app.server.on('connect', (_req, socket: Duplex) => rejectUpgrade(socket, 405, 'method_not_allowed', 'CONNECT is not supported'));
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // Every route's path as a pattern, so that a known path with another method answers 405.
  const routes: { re: RegExp; method: string }[] = [];
  const table: HttpRoute[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) table.push({ method: m, url: r.url });
    // Exact, as the router matches (ignoreTrailingSlash is off): `/consumers/` is no route at all (404).
    const re = new RegExp('^' + r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+') + '$');
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ re, method: m });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))];
    if (allowed.length === 0) return sendError(reply, new HubcastError('not_found'));
    void reply.header('Allow', allowed.join(', '));
    return sendError(reply, new HubcastError('method_not_allowed', `${req.method} is not allowed here; use ${allowed.join(' or ')}`));
  });
  app.addHook('onRequest', (req, _reply, done) => {
    if (opts.isClosing()) return done(new HubcastError('unavailable', 'the server is shutting down', { retryAfterS: 1 }));
    // What Node's requireHostHeader did (RFC 9112 §3.2), with the JSON body.
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined)
      return done(new HubcastError('bad_request', 'an HTTP/1.1 request needs a Host header'));
    done();
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
