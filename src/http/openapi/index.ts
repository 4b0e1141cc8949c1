import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { packageRoot, sendStaticFile, staticFile, type StaticFile } from '../static-file.ts';
import { adminApi } from './admin.ts';
import { batchApi } from './batch.ts';
import type { ApiPart, Obj, PathItem } from './common.ts';
import { coreApi } from './core.ts';
import { dashboardApi } from './dashboard.ts';

/**
 * The OpenAPI 3.1 document of Hubcast's HTTP API, served at GET /openapi.json so that other languages
 * can generate clients. Built from plain objects (core.ts: the routes of docs/http-api.md; admin.ts:
 * /admin/api; batch.ts: POST /entities); test/e2e/openapi.test.ts holds it to the server's real routes
 * and answers. Error codes come from the registry (src/core/errors.ts), never copied.
 */

const PARTS: ApiPart[] = [coreApi, batchApi, adminApi, dashboardApi];

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** Merges the parts; a path, schema or other component defined twice is a programming error. */
function merge<T>(into: Record<string, T>, from: Record<string, T> | undefined, what: string): void {
  for (const [k, v] of Object.entries(from ?? {})) {
    if (k in into) throw new Error(`openapi: ${what} ${k} is defined twice`);
    into[k] = v;
  }
}

/** The whole document, as a fresh plain object. */
export function openApiDocument(): Obj {
  const paths: Record<string, PathItem> = {};
  const schemas: Record<string, Obj> = {};
  const parameters: Record<string, Obj> = {};
  const securitySchemes: Record<string, Obj> = {};
  for (const part of PARTS) {
    merge(paths, part.paths, 'path');
    merge(schemas, part.schemas, 'schema');
    merge(parameters, part.parameters, 'parameter');
    merge(securitySchemes, part.securitySchemes, 'security scheme');
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Hubcast HTTP API',
      version: version(),
      summary: 'Real-time push hub: authenticated WebSocket fan-out with durable history and replay.',
      description:
        'Every route of a Hubcast server (docs/http-api.md). Conventions for every route: errors are `{"error":{"code","message"}}` ' +
        '(`application/json`, `Cache-Control: no-store`; codes in docs/errors.md); a request that arrives while the server shuts down gets ' +
        '503 `unavailable` with `Retry-After: 1`; an unknown path 404 `not_found`; a known path with another method 405 `method_not_allowed` ' +
        'with `Allow`; a body over the route’s limit 413 `payload_too_large`; an unparsable `Content-Type` 415 `unsupported_media_type`. ' +
        'Every `GET` also answers `HEAD`. The WebSocket protocol (frames, close codes) is in docs/websocket.md.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/', description: 'This Hubcast server (HTTPS and WSS when `tls` is set).' }],
    tags: PARTS.flatMap((p) => p.tags ?? []),
    paths,
    components: {
      schemas,
      parameters,
      securitySchemes,
      headers: {
        'Retry-After': {
          description: 'Seconds to wait before trying again (on 429, and on 503 where retrying helps).',
          schema: { type: 'integer', minimum: 0 },
        },
      },
    },
  };
}

/** Same as GET /client.js: a copy may be kept five minutes, then revalidated by ETag (it changes with an upgrade). */
export const OPENAPI_CACHE_CONTROL = 'public, max-age=300';

/** GET /openapi.json: built once, served with an ETag (304) and gzip; public, readable from any origin. */
export function openApiRoute(app: FastifyInstance): void {
  let file: StaticFile | undefined;
  app.get('/openapi.json', async (req, reply) => {
    file ??= staticFile(Buffer.from(JSON.stringify(openApiDocument())), 'application/json; charset=utf-8');
    void reply.header('Access-Control-Allow-Origin', '*');
    return sendStaticFile(req, reply, file, OPENAPI_CACHE_CONTROL);
  });
}
