import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HubcastError } from '../core/errors.ts';
import { loadStaticFile, packageRoot, sendStaticFile } from './static-file.ts';

/** Where `npm run build:client` writes the SDK's browser bundle (ESM, minified). */
export function defaultClientBundlePath(): string {
  return join(packageRoot(), 'packages', 'client', 'dist', 'hubcast.min.js');
}

/**
 * The URL is not versioned, so a browser keeps its copy for five minutes only, then revalidates:
 * the ETag turns that into a `304` until the bundle changes (a Hubcast upgrade).
 */
export const CLIENT_CACHE_CONTROL = 'public, max-age=300';

/**
 * GET /client.js: the SDK's browser bundle, so that a plain page can `import { Hubcast } from
 * 'http://hub:8080/client.js'` with no build step. Read once, here (a bundle built later is served
 * after a restart); when it is missing, every request gets `503 unavailable` saying how to build it.
 * Cross-origin pages may import it when their origin is allowed (see cors.ts).
 */
export function clientBundleRoute(app: FastifyInstance, path: string = defaultClientBundlePath()): void {
  const file = loadStaticFile(path, 'text/javascript; charset=utf-8');
  app.get('/client.js', async (req, reply) => {
    if (!file)
      throw new HubcastError(
        'unavailable',
        'the browser SDK bundle is not built: run `npm run build:client` in the Hubcast folder, then restart Hubcast',
      );
    return sendStaticFile(req, reply, file, CLIENT_CACHE_CONTROL);
  });
}
