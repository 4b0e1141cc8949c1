// Builds @hubcast/client into packages/client/dist: the Node ESM build and .d.ts (tsc, one file per
// module, so `@hubcast/client` and `@hubcast/client/node` share one Hubcast class), and the browser
// bundle hubcast.min.js (esbuild: ESM, minified, browser platform). Run by `npm run build:client`.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { BUDGET_GZIP_BYTES, browserBundle } from './bundle-options.mjs';

const dir = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(import.meta.url);
rmSync(`${dir}dist`, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', `${dir}tsconfig.json`, '--emitDeclarationOnly', 'false'], {
  stdio: 'inherit',
});
await build(browserBundle);
const size = gzipSync(readFileSync(browserBundle.outfile), { level: 9 }).length;
process.stderr.write(`packages/client/dist/hubcast.min.js: ${size} bytes min+gzip (budget ${BUDGET_GZIP_BYTES})\n`);
