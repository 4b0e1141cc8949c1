import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type HubcastServer } from '../../src/server.ts';
import { tempDir } from '../helpers/server.ts';

/** GET /client.js over real HTTP: the SDK's browser bundle, read once, with ETag and Cache-Control. */

const BUNDLE = 'export class Hubcast {}\n';

describe('GET /client.js', () => {
  let server: HubcastServer | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    server = dir = undefined;
  });

  async function start(bundle: string | undefined): Promise<string> {
    dir = tempDir();
    const path = join(dir, 'hubcast.min.js');
    if (bundle !== undefined) writeFileSync(path, bundle);
    server = createServer(
      { host: '127.0.0.1', port: 0, dataDir: join(dir, 'data') },
      { logger: pino({ level: 'silent' }), clientBundlePath: path },
    );
    const { port } = await server.listen();
    return `http://127.0.0.1:${port}/client.js`;
  }

  it('serves the bundle as JavaScript with an ETag and Cache-Control; If-None-Match gets 304 with no body', async () => {
    const url = await start(BUNDLE);
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('public, max-age=300');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    const etag = r.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(await r.text()).toBe(BUNDLE);

    const again = await fetch(url, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    // A weak form of the same tag and a list that contains it match too; another tag does not.
    expect((await fetch(url, { headers: { 'if-none-match': `"other", W/${etag}` } })).status).toBe(304);
    const stale = await fetch(url, { headers: { 'if-none-match': '"other"' } });
    expect(stale.status).toBe(200);
    expect(await stale.text()).toBe(BUNDLE);
  });

  it('sends it gzipped to clients that accept gzip, as another representation (own ETag, Vary: Accept-Encoding)', async () => {
    const big = 'export const words = ' + JSON.stringify(Array.from({ length: 400 }, (_, i) => `word${i % 37}`)) + ';\n';
    const url = await start(big);
    const raw = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
    expect(raw.headers.get('content-encoding')).toBeNull();
    expect(raw.headers.get('vary')).toBe('Accept-Encoding');
    expect(Number(raw.headers.get('content-length'))).toBe(Buffer.byteLength(big));
    expect(await raw.text()).toBe(big);
    // fetch asks for gzip and inflates it: the same text, fewer bytes on the wire.
    const gz = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(Number(gz.headers.get('content-length'))).toBeLessThan(Buffer.byteLength(big) / 3);
    expect(gz.headers.get('etag')).toBe(raw.headers.get('etag')!.replace(/"$/, '-gzip"'));
    expect(await gz.text()).toBe(big);
    expect((await fetch(url, { headers: { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.get('etag')! } })).status).toBe(304);
    expect((await fetch(url, { headers: { 'accept-encoding': 'gzip;q=0' } })).headers.get('content-encoding')).toBeNull();
  });

  it('reads the file once: a rebuild is served after a restart, not before', async () => {
    const url = await start(BUNDLE);
    writeFileSync(join(dir!, 'hubcast.min.js'), 'export const changed = 1;\n');
    expect(await (await fetch(url)).text()).toBe(BUNDLE);
  });

  it('answers HEAD with the headers and no body', async () => {
    const url = await start(BUNDLE);
    const r = await fetch(url, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('etag')).toMatch(/^"/);
    expect(await r.text()).toBe('');
  });

  it('a bundle that is not built: 503 with a JSON error saying how to build it', async () => {
    const url = await start(undefined);
    const r = await fetch(url);
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unavailable');
    expect(body.error.message).toContain('npm run build:client');
  });
});
