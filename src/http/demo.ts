import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HubcastError } from '../core/errors.ts';
import { loadStaticFile, packageRoot, sendStaticFile, type StaticFile } from './static-file.ts';

/**
 * The live demo (`demo.enabled`, off by default; docs/demo.md): GET /demo, a static page, and its
 * script and style. The page imports the SDK from GET /client.js and reads its token from the URL
 * fragment, so the server never sees the token but through the SDK's own requests.
 *
 * The files are read once, when the server is built; they are revalidated on every load (`no-cache`,
 * answered `304` by ETag). The policy lets the page load only its own files and talk only to this
 * origin (the ticket request and the WebSocket).
 */
const PAGE_FILES: Record<string, { file: string; type: string }> = {
  '/demo': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/demo/demo.js': { file: 'demo.js', type: 'text/javascript; charset=utf-8' },
  '/demo/demo.css': { file: 'demo.css', type: 'text/css; charset=utf-8' },
};

export const DEMO_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function demoRoutes(app: FastifyInstance, dir: string = join(packageRoot(), 'src', 'http', 'demo-page')): void {
  for (const [path, { file, type }] of Object.entries(PAGE_FILES)) {
    const loaded: StaticFile | undefined = loadStaticFile(join(dir, file), type);
    app.get(path, async (req, reply) => {
      if (!loaded) throw new HubcastError('unavailable', `the demo page's file ${file} is missing from this installation`);
      void reply.header('Content-Security-Policy', DEMO_CSP).header('Referrer-Policy', 'no-referrer');
      return sendStaticFile(req, reply, loaded, 'no-cache');
    });
  }
}
