import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_BUDGET_GZIP_BYTES, buildAdminPage } from '../../scripts/build-admin.mjs';
import { ADMIN_PAGE_CSP } from '../../src/http/admin-page.ts';
import { startServer, type Harness } from '../helpers/server.ts';

/**
 * GET /admin and its assets over real HTTP (docs/admin.md): built from src/http/admin-page by the
 * same script `npm run build` runs (here into a temporary folder), within the size budget, served
 * with a strict policy, ETag and gzip, only to addresses in admin.allow.
 */

const dir = mkdtempSync(join(tmpdir(), 'hubcast-admin-page-'));
let sizes: { file: string; bytes: number; gzip: number }[];

beforeAll(async () => {
  sizes = await buildAdminPage(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A body as sent (not decoded, as fetch would). */
const rawBody = (url: string, headers: Record<string, string>) =>
  new Promise<Buffer>((resolve, reject) => {
    get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    }).on('error', reject);
  });

/** The files the page names (script, style sheet, icon). */
const assetsOf = (html: string) => [...html.matchAll(/(?:src|href)="(\/admin\/assets\/[^"]+)"/g)].map((m) => m[1]!);

describe('the admin dashboard build', () => {
  it('is one page, one script, one style sheet and an icon, within the budget gzipped (uPlot included)', () => {
    const files = sizes.map((s) => s.file);
    expect(files).toHaveLength(4);
    expect(files).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^assets\/admin-[A-Z0-9]{8}\.css$/),
        expect.stringMatching(/^assets\/admin-[A-Z0-9]{8}\.js$/),
        'assets/icon.svg',
        'index.html',
      ]),
    );
    const total = sizes.reduce((n, s) => n + s.gzip, 0);
    expect(total).toBeLessThanOrEqual(ADMIN_BUDGET_GZIP_BYTES);
    // uPlot is in: the script is well over what the page's own code needs.
    expect(sizes.find((s) => s.file.endsWith('.js'))!.bytes).toBeGreaterThan(40_000);
  });
});

describe('GET /admin', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({}, { adminPageDir: dir });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('serves the page with a strict policy (no inline code, no other origin), no-cache and an ETag (304)', async () => {
    const r = await fetch(`${h.base}/admin`, { headers: { 'accept-encoding': 'identity' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('content-security-policy')).toBe(ADMIN_PAGE_CSP);
    expect(ADMIN_PAGE_CSP).toContain("script-src 'self';");
    expect(ADMIN_PAGE_CSP).not.toMatch(/unsafe|https?:|\*/);
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await r.text();
    expect(html).toContain('<title>Hubcast admin</title>');
    // Nothing inline: every script has a src, no <style>, no style= or on…= attribute; nothing from elsewhere.
    expect(html.match(/<script\b[^>]*>/g)).toEqual([
      expect.stringMatching(/^<script type="module" src="\/admin\/assets\/admin-\w+\.js">$/),
    ]);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=|https?:\/\//i);
    expect(html).toMatch(/<label for="key">Admin key<\/label>/);

    const etag = r.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    const again = await fetch(`${h.base}/admin`, { headers: { 'if-none-match': etag, 'accept-encoding': 'identity' } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('serves the assets the page names, cached for good (hashed names), gzipped: within the budget as sent', async () => {
    const page = await fetch(`${h.base}/admin`, { headers: { 'accept-encoding': 'gzip' } });
    expect(page.headers.get('content-encoding')).toBe('gzip');
    const pageBytes = Number(page.headers.get('content-length'));
    const html = await page.text(); // fetch gunzips
    const assets = assetsOf(html);
    expect(assets).toHaveLength(3);
    let sent = pageBytes;
    for (const path of assets) {
      const r = await fetch(h.base + path, { headers: { 'accept-encoding': 'gzip' } });
      expect(r.status, path).toBe(200);
      expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(r.headers.get('content-type')).toBe(
        path.endsWith('.js') ? 'text/javascript; charset=utf-8' : path.endsWith('.css') ? 'text/css; charset=utf-8' : 'image/svg+xml',
      );
      expect(r.headers.get('vary')).toMatch(/accept-encoding/i);
      expect(r.headers.get('content-encoding')).toBe('gzip');
      sent += Number(r.headers.get('content-length'));
      // The gzipped body is the file: compare with an uncompressed request.
      const plain = Buffer.from(await (await fetch(h.base + path, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer());
      expect(gunzipSync(await rawBody(h.base + path, { 'accept-encoding': 'gzip' })).equals(plain)).toBe(true);
      await r.arrayBuffer();
    }
    expect(sent).toBeLessThanOrEqual(ADMIN_BUDGET_GZIP_BYTES);
  });

  it('answers 404 not_found for a file it does not have, without reading the disk for it', async () => {
    for (const path of ['/admin/assets/nope.js', '/admin/assets/..%2Findex.html', '/admin/assets/%2E%2E%2F%2E%2E%2Fpackage.json']) {
      const r = await h.fetchJson(path);
      expect(r, path).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    }
  });
});

describe('GET /admin: admin.allow, and a missing build', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close();
  });

  it('refuses an address outside admin.allow (403 ip_not_allowed), page and assets alike; needs no key', async () => {
    h = await startServer({ admin: { allow: ['10.0.0.0/8'] } }, { adminPageDir: dir });
    for (const path of ['/admin', '/admin/assets/icon.svg']) {
      expect(await h.fetchJson(path), path).toMatchObject({ status: 403, body: { error: { code: 'ip_not_allowed' } } });
    }
    await h.close();
    h = await startServer({ admin: { allow: ['127.0.0.0/8'] } }, { adminPageDir: dir });
    expect((await h.fetchJson('/admin')).status).toBe(200);
    expect((await h.fetchJson('/admin/assets/icon.svg')).status).toBe(200);
  });

  it('with admin.listen, it is served on the admin listener only (404 on the main one)', async () => {
    await h?.close();
    h = await startServer({ admin: { listen: { host: '127.0.0.1', port: 0 } } }, { adminPageDir: dir });
    const adminBase = `http://127.0.0.1:${h.server.adminAddress()!.port}`;
    for (const path of ['/admin', '/admin/assets/icon.svg']) {
      expect(await h.fetchJson(path), path).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      expect((await fetch(adminBase + path)).status, path).toBe(200);
    }
    // The page's API calls go to its own origin: the admin listener, where the API is.
    expect((await fetch(`${adminBase}/admin/api/overview`)).status).toBe(401);
  });

  it('says how to build it when the build is missing (503 unavailable)', async () => {
    await h?.close();
    const empty = mkdtempSync(join(tmpdir(), 'hubcast-admin-none-'));
    h = await startServer({}, { adminPageDir: empty });
    for (const path of ['/admin', '/admin/assets/admin-ABCDEFGH.js']) {
      const r = await h.fetchJson(path);
      expect(r, path).toMatchObject({
        status: 503,
        body: { error: { code: 'unavailable', message: expect.stringContaining('npm run build') } },
      });
    }
    rmSync(empty, { recursive: true, force: true });
  });
});
