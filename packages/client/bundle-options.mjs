// The esbuild options of the browser bundle, shared by build.mjs and the size-budget test.
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));

/** @type {import('esbuild').BuildOptions} */
export const browserBundle = {
  entryPoints: [`${dir}src/index.ts`],
  outfile: `${dir}dist/hubcast.min.js`,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // ES2022 keeps #private fields native (downlevelled they cost a third of the bundle).
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
};

/** The budget: the minified bundle, gzipped, at most this many bytes. */
export const BUDGET_GZIP_BYTES = 6 * 1024;
