import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultClientBundlePath } from '../../src/http/client-bundle.ts';
import { createServer } from '../../src/server.ts';
import { cli, startServer, type Harness } from '../helpers/server.ts';

/**
 * The demo page (GET /demo, docs/demo.md) and the served SDK (GET /client.js) in a real Chromium,
 * against a real server: a message published over HTTP shows within a second; the server restarts
 * (messages published while the page is away) and the page goes on with no gap and no duplicate; a
 * chat line typed in one tab shows in the other; a page on another origin imports the SDK and gets
 * its ticket through CORS, and connects, while a refused origin gets neither.
 *
 * Needs Debian's chromium and the built bundle (`npm run build:client`, run by `npm ci`): `npm test`
 * skips with a printed reason when either is missing; with HUBCAST_REQUIRE_SERVICES=1 (CI) it fails.
 * Screenshots go to the temporary folder; HUBCAST_UPDATE_SCREENSHOTS=1 also copies the demo's to
 * docs/images/demo.png (the README's).
 */

const CHROMIUM = '/usr/bin/chromium';
const BUNDLE = defaultClientBundlePath();
const missing = [
  !existsSync(CHROMIUM) && `${CHROMIUM} (apt-get install chromium)`,
  !existsSync(BUNDLE) && `${BUNDLE} (npm run build:client)`,
]
  .filter(Boolean)
  .join(' and ');
if (missing) {
  if (process.env.HUBCAST_REQUIRE_SERVICES === '1') throw new Error(`${missing} missing and HUBCAST_REQUIRE_SERVICES=1`);
  process.stdout.write(`skipping the Chromium demo tests: ${missing} missing\n`);
}
const SHOTS = mkdtempSync(join(tmpdir(), 'hubcast-browser-demo-'));
const README_IMAGE = fileURLToPath(new URL('../../docs/images/demo.png', import.meta.url));

/** A free loopback port (the server must come back on the same one after its restart). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A page on another origin that imports the SDK from the hub and follows demo.feed (token in the fragment). */
const foreignPage = (hub: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>Another origin</title>
<style>body{font:14px sans-serif;margin:16px} li{font-family:monospace}</style></head><body>
<h3>A page on <span id="origin"></span> using <code>${hub}/client.js</code></h3>
<p>state: <b id="state">loading</b></p><ol id="feed"></ol>
<script>
document.getElementById('origin').textContent = location.origin;
window.tryTicket = (token) => fetch('${hub}/consumers/tickets', { method: 'POST', headers: { authorization: 'Bearer ' + token } })
  .then((r) => 'status ' + r.status, (e) => 'failed: ' + e.name);
</script>
<script type="module">
import { Hubcast } from '${hub}/client.js';
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const hub = new Hubcast({ url: '${hub}', token });
hub.on('state', (s) => { document.getElementById('state').textContent = s; });
hub.subscribe('demo.feed', { since: { offset: 0 } }).on('message', (m) => {
  const li = document.createElement('li');
  li.dataset.offset = String(m.offset);
  li.textContent = '#' + m.offset + ' ' + JSON.stringify(m.data);
  document.getElementById('feed').appendChild(li);
});
</script></body></html>`;

function servePage(host: string, html: (origin: string) => string): Promise<{ server: Server; origin: string }> {
  return new Promise((resolve) => {
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html(''));
    });
    server.listen(0, host, () => resolve({ server, origin: `http://${host}:${(server.address() as { port: number }).port}` }));
  });
}

describe.skipIf(missing !== '')('the demo page and the served SDK in Chromium', () => {
  let h: Harness;
  let hub: string;
  let urls: string[];
  let context: BrowserContext;
  let tabA: Page;
  let tabB: Page;
  let userDataDir: string;
  let published = 0;
  /** Every URL the tabs requested (HTTP and WebSocket). */
  const requested: string[] = [];
  const pages: { server: Server; origin: string }[] = [];

  /** Publishes the next feed message over HTTP (POST /entity) on `base`. */
  async function publish(base = hub): Promise<number> {
    const n = ++published;
    const r = await fetch(`${base}/entity`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.ingestKey}` },
      body: JSON.stringify({ topic: 'demo.feed', data: { n, text: `update ${n}` } }),
    });
    expect(r.status).toBe(202);
    expect(((await r.json()) as { offset: number }).offset).toBe(n);
    return n;
  }

  /** What a tab shows: its feed's offsets in order, and the status counters. */
  const seen = (p: Page) =>
    p.evaluate(() => ({
      offsets: [...document.querySelectorAll<HTMLElement>('#feed li')].map((li) => Number(li.dataset.offset)),
      replayed: [...document.querySelectorAll<HTMLElement>('#feed li[data-replayed]')].map((li) => Number(li.dataset.offset)),
      state: document.getElementById('state')!.textContent,
      reconnects: Number(document.getElementById('reconnects')!.textContent),
      gaps: Number(document.getElementById('gaps')!.textContent),
    }));
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const shot = async (p: Page, name: string) => {
    const path = join(SHOTS, name);
    await p.screenshot({ path, fullPage: true });
    return path;
  };

  beforeAll(async () => {
    const port = await freePort();
    hub = `http://127.0.0.1:${port}`;
    // Two page origins besides the hub's own: one allowed, one not (another loopback address is another origin).
    pages.push(await servePage('127.0.0.2', () => foreignPage(hub)), await servePage('127.0.0.3', () => foreignPage(hub)));
    h = await startServer({ port, demo: { enabled: true }, ws: { allowedOrigins: [hub, pages[0]!.origin] } });
    const out = await cli(['demo', '--data-dir', h.dataDir, '--url', hub, '--tabs', '3', '--json', '--demo-enabled', 'true']);
    expect(out.code).toBe(0);
    urls = (JSON.parse(out.out) as { urls: string[] }).urls;
    h.remember(...urls.map((u) => new URLSearchParams(new URL(u).hash.slice(1)).get('token')!));

    userDataDir = mkdtempSync(join(tmpdir(), 'hubcast-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      viewport: { width: 1100, height: 760 },
      timeout: 30_000,
    });
    tabA = await context.newPage();
    tabB = await context.newPage();
    context.on('request', (r) => void requested.push(r.url()));
    for (const tab of [tabA, tabB]) tab.on('websocket', (ws) => void requested.push(ws.url()));
    await tabA.goto(urls[0]!);
    await tabB.goto(urls[1]!);
    for (const tab of [tabA, tabB]) {
      await tab.locator('#state[data-state="connected"]').waitFor({ timeout: 10_000 });
      await tab.locator('#events li', { hasText: 'subscribed to demo.feed' }).waitFor({ timeout: 5_000 });
    }
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await h?.close();
    for (const p of pages) p.server.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    process.stdout.write(`screenshots of the demo tests: ${SHOTS}\n`);
  });

  it('the token stays in the fragment: never in a requested URL, and gone from the address bar', async () => {
    const tokens = urls.map((u) => new URLSearchParams(new URL(u).hash.slice(1)).get('token')!);
    expect(requested.filter((u) => u.startsWith(`${hub}/demo`))).not.toEqual([]);
    expect(requested.some((u) => u.startsWith(`${hub.replace(/^http/, 'ws')}/ws?ticket=`))).toBe(true);
    expect(requested.filter((u) => tokens.some((t) => u.includes(t)))).toEqual([]);
    expect(tabA.url()).toBe(`${hub}/demo`);
    expect(await tabA.locator('#client').textContent()).toMatch(/^c_/);
    // Without a token (a new tab, nothing in its sessionStorage) the page says where to get one.
    const bare = await context.newPage();
    await bare.goto(`${hub}/demo`);
    await bare.locator('#missing', { hasText: 'hubcast demo' }).waitFor({ timeout: 5000 });
    expect(await bare.locator('#app').isHidden()).toBe(true);
    await bare.close();
  });

  it('shows a message published over HTTP within a second, in both tabs', async () => {
    const started = Date.now();
    const n = await publish();
    await tabA.locator(`#feed li[data-offset="${n}"]`).waitFor({ timeout: 1000 });
    expect(Date.now() - started).toBeLessThan(1000);
    await tabB.locator(`#feed li[data-offset="${n}"]`).waitFor({ timeout: 1000 });
    expect(await tabA.locator(`#feed li[data-offset="${n}"]`).textContent()).toContain(`update ${n}`);
  });

  it('a chat line typed in one tab shows in the other', async () => {
    await tabA.locator('#chat-name').fill('alice');
    await tabA.locator('#chat-text').fill('hello from tab A');
    await tabA.locator('#chat-text').press('Enter');
    const line = tabB.locator('#chat li', { hasText: 'hello from tab A' });
    await line.waitFor({ timeout: 2000 });
    expect(await line.locator('.from').textContent()).toBe('alice:');
    // And back: the other tab's line shows in the first, after the first.
    await tabB.locator('#chat-name').fill('bob');
    await tabB.locator('#chat-text').fill('hi alice');
    await tabB.locator('#chat-send').click();
    await tabA.locator('#chat li', { hasText: 'hi alice' }).waitFor({ timeout: 2000 });
    expect(await tabA.locator('#chat li .text').allTextContents()).toEqual(['hello from tab A', 'hi alice']);
    expect(await tabA.locator('#chat-text').inputValue()).toBe('');
  });

  it('the server restarts, messages are published meanwhile: the page goes on with no gap and no duplicate', async () => {
    for (let i = 0; i < 4; i++) await publish();
    const before = published;
    await tabA.locator(`#feed li[data-offset="${before}"]`).waitFor({ timeout: 2000 });

    // Down: the page sees the close (1001 going away) and retries with backoff.
    await h.server.close();
    await tabA.locator('#state[data-state="disconnected"]').waitFor({ timeout: 5000 });
    // Meanwhile the same data folder serves another port for a moment: five messages the page misses.
    const aside = createServer(
      { host: '127.0.0.1', port: 0, dataDir: h.dataDir },
      { logger: pino({ level: 'silent' }), clientBundlePath: BUNDLE },
    );
    const { port } = await aside.listen();
    for (let i = 0; i < 5; i++) await publish(`http://127.0.0.1:${port}`);
    await aside.close();
    const missed = published;

    // Back on its port: the page reconnects by itself, resumes with `since` and gets the missed ones replayed.
    await h.restart();
    for (const tab of [tabA, tabB]) {
      await tab.locator(`#feed li[data-offset="${missed}"]`).waitFor({ timeout: 20_000 });
      await tab.locator('#state[data-state="connected"]').waitFor({ timeout: 5000 });
    }
    // Live again: these arrive as they are published, not replayed.
    for (let i = 0; i < 3; i++) await publish();
    for (const tab of [tabA, tabB]) await tab.locator(`#feed li[data-offset="${published}"]`).waitFor({ timeout: 2000 });

    for (const tab of [tabA, tabB]) {
      const s = await seen(tab);
      expect(s.offsets).toEqual(range(1, published)); // each once, in order: no gap, no duplicate
      expect(s.replayed).toEqual(range(before + 1, missed));
      expect(s).toMatchObject({ state: 'connected', reconnects: 1, gaps: 0 });
    }
    await tabA.locator('#chat-text').fill('we are back');
    await tabA.locator('#chat-text').press('Enter');
    await tabB.locator('#chat li', { hasText: 'we are back' }).waitFor({ timeout: 2000 });
    expect(await tabB.locator('#chat li .text').allTextContents()).toEqual(['hello from tab A', 'hi alice', 'we are back']);

    const path = await shot(tabA, 'demo-tab-a.png');
    await shot(tabB, 'demo-tab-b.png');
    if (process.env.HUBCAST_UPDATE_SCREENSHOTS === '1') {
      mkdirSync(join(README_IMAGE, '..'), { recursive: true });
      copyFileSync(path, README_IMAGE);
    }
  }, 60_000);

  it('a page on another, allowed origin imports /client.js and gets its ticket through CORS, then connects', async () => {
    const allowed = pages[0]!;
    const refused = pages[1]!;
    const token = new URLSearchParams(new URL(urls[2]!).hash.slice(1)).get('token')!;
    const page = await context.newPage();
    const tickets: { status: number; allowOrigin: string | null }[] = [];
    const sockets: string[] = [];
    page.on('response', (r) => {
      if (r.url() === `${hub}/consumers/tickets`)
        tickets.push({ status: r.status(), allowOrigin: r.headers()['access-control-allow-origin'] ?? null });
    });
    page.on('websocket', (ws) => void sockets.push(ws.url()));
    await page.goto(`${allowed.origin}/#token=${token}`);
    await page.locator('#state', { hasText: 'connected' }).waitFor({ timeout: 10_000 });
    expect(tickets).toEqual([{ status: 201, allowOrigin: allowed.origin }]);
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).toMatch(/\/ws\?ticket=[A-Za-z0-9_-]{43}$/);
    await page.locator(`#feed li[data-offset="${published}"]`).waitFor({ timeout: 5000 });
    expect(await page.locator('#feed li').count()).toBe(published);
    const n = await publish();
    await page.locator(`#feed li[data-offset="${n}"]`).waitFor({ timeout: 1000 });
    await shot(page, 'demo-other-origin.png');

    // An origin not in ws.allowedOrigins: the module import is blocked (no CORS header) and so is a ticket.
    const other = await context.newPage();
    const failed: string[] = [];
    other.on('console', (m) => void (m.type() === 'error' && failed.push(m.text())));
    await other.goto(`${refused.origin}/#token=${token}`);
    expect(await other.evaluate((t) => (window as unknown as { tryTicket: (t: string) => Promise<string> }).tryTicket(t), token)).toBe(
      'failed: TypeError',
    );
    expect(await other.locator('#state').textContent()).toBe('loading');
    expect(failed.join('\n')).toContain('CORS');
    await shot(other, 'demo-refused-origin.png');
    // The allowed page itself is unaffected.
    expect(await page.locator('#state').textContent()).toBe('connected');
  }, 30_000);
});
