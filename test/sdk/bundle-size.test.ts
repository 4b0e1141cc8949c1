import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript module without types
import { BUDGET_GZIP_BYTES, browserBundle } from '../../packages/client/bundle-options.mjs';

/**
 * The browser bundle (`npm run build:client` → packages/client/dist/hubcast.min.js), built here from the
 * current source with the same options: within the 6 KB min+gzip budget, free of Node APIs, and a
 * working ES module.
 */
describe('the browser bundle', () => {
  it('is at most 6 KB min+gzip, imports nothing, and exports the public API', async () => {
    const out = await build({ ...browserBundle, write: false, outfile: 'hubcast.min.js', logLevel: 'silent' });
    const code = out.outputFiles![0]!.text;
    const gz = gzipSync(code, { level: 9 }).length;
    expect(gz, `min+gzip bytes (min ${code.length})`).toBeLessThanOrEqual(BUDGET_GZIP_BYTES);
    expect(code).not.toMatch(/from\s*["']node:|require\(/);
    // The only import left is the `ws` fallback, by a computed name, reached only where there is no global WebSocket.
    expect(code.match(/import\(/g)?.length ?? 0).toBeLessThanOrEqual(1);

    const dir = mkdtempSync(join(tmpdir(), 'hubcast-bundle-'));
    try {
      const file = join(dir, 'hubcast.min.mjs');
      writeFileSync(file, code);
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      for (const name of ['Hubcast', 'Subscription', 'HubcastError', 'memoryStorage', 'localStorageStorage', 'closeAction'])
        expect(typeof mod[name], name).toBe('function');
      const hub = new (mod.Hubcast as new (o: object) => { state: string })({ url: 'https://example.test/base' });
      expect(hub.state).toBe('idle');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
