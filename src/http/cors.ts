import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HubcastError } from '../core/errors.ts';
import { vary } from './vary.ts';

/**
 * CORS for the routes a browser page calls across origins (docs/http-api.md#cors).
 *
 * The allow-list is the WebSocket one, `ws.allowedOrigins`, so a page that may connect may also fetch
 * its ticket and the SDK, and a page that may not gets neither: empty or `*` allows any origin, else
 * the `Origin` must be listed exactly (the gateway's rule, checked the same way).
 *
 * - An allowed origin gets `Access-Control-Allow-Origin` on every answer of the route, errors included
 *   (the SDK reads their JSON body and `Retry-After`, hence `Access-Control-Expose-Headers`). With
 *   a list, the origin itself (and `Vary: Origin` on every answer); with any origin, `*`. No
 *   credentials mode: Hubcast uses no cookies, the token travels in `Authorization`.
 * - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed origin
 *   is `204` with the route's methods, `Authorization, Content-Type` and `Access-Control-Max-Age`.
 * - A refused origin gets no CORS header at all: its preflight is `403 origin_not_allowed`, and on
 *   routes that change state (`refuse`) so is the request itself, as an upgrade from it would be —
 *   a browser never sends such a request after a failed preflight; a script that forges `Origin`
 *   learns the same answer. Read-only routes (`GET /client.js`) answer it without CORS headers.
 * - A request without `Origin` (curl, servers) is not a CORS request: nothing changes for it.
 */

/** Whether a browser `Origin` may call (and connect); built once from `ws.allowedOrigins`. */
export interface OriginPolicy {
  /** true: any origin (the list is empty or holds `*`). */
  readonly any: boolean;
  allows(origin: string): boolean;
}

export function originPolicy(allowedOrigins: readonly string[]): OriginPolicy {
  const any = allowedOrigins.length === 0 || allowedOrigins.includes('*');
  const set = new Set(allowedOrigins);
  return { any, allows: (origin) => any || set.has(origin) };
}

export interface CorsRoute {
  /** The route's path exactly as registered (`/consumers/tickets`). */
  path: string;
  /** The methods a page may use on it (answered in the preflight). */
  methods: string[];
  /** A request from a refused origin is itself answered `403 origin_not_allowed` (state-changing routes). */
  refuse: boolean;
}

const MAX_AGE_S = 600;

function allowOrigin(reply: FastifyReply, policy: OriginPolicy, origin: string): void {
  if (policy.any) void reply.header('Access-Control-Allow-Origin', '*');
  else {
    void reply.header('Access-Control-Allow-Origin', origin);
    vary(reply, 'Origin');
  }
}

/**
 * Adds CORS to `routes` (register before the routes themselves, so the hook runs first): an `OPTIONS`
 * route per path for preflights, and a hook that adds the headers (or refuses) on the route itself.
 */
export function corsRoutes(app: FastifyInstance, policy: OriginPolicy, routes: CorsRoute[]): void {
  const byPath = new Map(routes.map((r) => [r.path, r]));
  app.addHook('onRequest', (req: FastifyRequest, reply, done) => {
    const route = byPath.get(req.routeOptions.url ?? '');
    if (!route || req.method === 'OPTIONS') return done();
    // With a list, the answer depends on Origin even when there is none (a cache must not hand a
    // copy without CORS headers to a page).
    if (!policy.any) vary(reply, 'Origin');
    const origin = req.headers.origin;
    if (origin === undefined) return done();
    if (policy.allows(origin)) {
      allowOrigin(reply, policy, origin);
      void reply.header('Access-Control-Expose-Headers', 'Retry-After');
    } else if (route.refuse) return done(new HubcastError('origin_not_allowed', 'this browser origin is not in ws.allowedOrigins'));
    done();
  });
  for (const route of routes) {
    app.options(route.path, async (req, reply) => {
      const origin = req.headers.origin;
      const allow = [...route.methods, 'OPTIONS'].join(', ');
      void reply.header('Allow', allow).header('Cache-Control', 'no-store');
      if (origin === undefined) return reply.code(204).send();
      if (!policy.allows(origin)) {
        if (!policy.any) vary(reply, 'Origin');
        throw new HubcastError('origin_not_allowed', 'this browser origin is not in ws.allowedOrigins');
      }
      allowOrigin(reply, policy, origin);
      return reply
        .code(204)
        .header('Access-Control-Allow-Methods', route.methods.join(', '))
        .header('Access-Control-Allow-Headers', 'Authorization, Content-Type')
        .header('Access-Control-Max-Age', String(MAX_AGE_S))
        .send();
    });
  }
}
