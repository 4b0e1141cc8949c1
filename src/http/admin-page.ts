import { readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { cidrBlockList } from '../config/schema.ts';
import { HubcastError } from '../core/errors.ts';
import { inList } from './ip.ts';
import { loadStaticFile, packageRoot, sendStaticFile, type StaticFile } from './static-file.ts';

/**
 * The admin dashboard (docs/admin.md): GET /admin, the page, and GET /admin/assets/<file>, its script,
 * style sheet and icon, as `npm run build` writes them (scripts/build-admin.mjs → dist/admin-page).
 *
 * Only for addresses in `admin.allow` (else `403 ip_not_allowed`), like the admin API, but without a
 * key: the page holds no secret, it asks for the admin key and sends it with each API call. With
 * `admin.listen` it is served on the admin listener only (the routes are registered there).
 *
 * The files are read once, when the server is built. The page is revalidated on every load
 * (`no-cache`, 304 by ETag); the assets carry a hash of their content in their names, so they are
 * cached for good. The policy lets the page load only its own files and talk only to this origin,
 * with no inline script or style.
 */
export const ADMIN_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSET_CACHE = 'public, max-age=31536000, immutable';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Where `npm run build` writes the dashboard. */
export function defaultAdminPageDir(): string {
  return join(packageRoot(), 'dist', 'admin-page');
}

function readAssets(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let names: string[];
  try {
    names = readdirSync(join(dir, 'assets'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return files;
    throw err;
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    const file = type && loadStaticFile(join(dir, 'assets', name), type);
    if (file) files.set(name, file);
  }
  return files;
}

export function adminPageRoutes(app: FastifyInstance, opts: { allow: readonly string[]; dir?: string }): void {
  const dir = opts.dir ?? defaultAdminPageDir();
  const page = loadStaticFile(join(dir, 'index.html'), 'text/html; charset=utf-8');
  const assets = readAssets(dir);
  const allow = cidrBlockList(opts.allow);
  const guard = async (req: FastifyRequest) => {
    if (!inList(allow, req.socket.remoteAddress ?? '')) throw new HubcastError('ip_not_allowed');
  };
  const missing = () =>
    new HubcastError('unavailable', 'the admin dashboard is not built: run `npm run build` in the Hubcast folder, then restart Hubcast');

  app.get('/admin', { onRequest: guard }, async (req, reply) => {
    if (!page) throw missing();
    void reply.header('Content-Security-Policy', ADMIN_PAGE_CSP).header('Referrer-Policy', 'no-referrer');
    return sendStaticFile(req, reply, page, 'no-cache');
  });
  app.get<{ Params: { file: string } }>('/admin/assets/:file', { onRequest: guard }, async (req, reply) => {
    const file = assets.get(req.params.file);
    if (!file) {
      if (!page) throw missing();
      throw new HubcastError('not_found', 'no such file of the admin dashboard');
    }
    void reply.header('Content-Security-Policy', ADMIN_PAGE_CSP);
    return sendStaticFile(req, reply, file, ASSET_CACHE);
  });
}
