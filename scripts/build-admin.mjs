// Builds the admin dashboard (GET /admin, docs/admin.md) from src/http/admin-page into dist/admin-page:
// one script and one style sheet (esbuild: ESM, minified, uPlot and its CSS bundled in, file names
// carrying a hash of their content) and index.html naming them. Run by `npm run build` (and so by
// `npm ci`, through `prepare`); the tests build into a temporary folder of their own.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'src', 'http', 'admin-page');

/** Where `npm run build` writes the dashboard (src/http/admin-page.ts serves it from there). */
export const ADMIN_PAGE_DIR = join(root, 'dist', 'admin-page');

/** The budget: every file of the dashboard, gzipped, at most this many bytes in all (uPlot included). */
export const ADMIN_BUDGET_GZIP_BYTES = 60 * 1024;

/**
 * Builds the dashboard into `outdir` (emptied first): `index.html` and `assets/` (admin-<hash>.js,
 * admin-<hash>.css, icon.svg). Resolves with every file's size, raw and gzipped.
 */
export async function buildAdminPage(outdir = ADMIN_PAGE_DIR) {
  rmSync(outdir, { recursive: true, force: true });
  const assets = join(outdir, 'assets');
  mkdirSync(assets, { recursive: true });
  const result = await build({
    entryPoints: { admin: join(source, 'main.ts') },
    outdir: assets,
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const script = outputs.find((f) => f.endsWith('.js'));
  const style = outputs.find((f) => f.endsWith('.css'));
  if (!script || !style) throw new Error(`build-admin: expected one .js and one .css output, got ${outputs.join(', ')}`);
  copyFileSync(join(source, 'icon.svg'), join(assets, 'icon.svg'));
  const html = readFileSync(join(source, 'index.html'), 'utf8').replaceAll('%ADMIN_JS%', script).replaceAll('%ADMIN_CSS%', style);
  if (html.includes('%ADMIN_')) throw new Error('build-admin: index.html names a placeholder this build does not fill');
  writeFileSync(join(outdir, 'index.html'), html);
  const files = ['index.html', ...readdirSync(assets).map((f) => `assets/${f}`)];
  return files.map((file) => {
    const body = readFileSync(join(outdir, file));
    return { file, bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outdir = process.argv[2] ?? ADMIN_PAGE_DIR;
  const sizes = await buildAdminPage(outdir);
  const total = sizes.reduce((n, s) => n + s.gzip, 0);
  process.stderr.write(`${outdir}: ${sizes.length} files, ${total} bytes gzipped (budget ${ADMIN_BUDGET_GZIP_BYTES})\n`);
  if (total > ADMIN_BUDGET_GZIP_BYTES) {
    process.stderr.write('build-admin: over budget\n');
    process.exit(1);
  }
}
