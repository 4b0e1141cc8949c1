// Builds @hubcast/client into packages/client/dist: the Node ESM build and .d.ts (tsc, one file per
// module, so `@hubcast/client` and `@hubcast/client/node` share one Hubcast class), and the browser
// bundle hubcast.min.js (esbuild: ESM, minified, browser platform). Run by `npm run build:client`.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dir = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(import.meta.url);
rmSync(`${dir}dist`, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', `${dir}tsconfig.json`, '--emitDeclarationOnly', 'false'], {
  stdio: 'inherit',
});
await build({
  entryPoints: [`${dir}src/index.ts`],
  outfile: `${dir}dist/hubcast.min.js`,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
