import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

/**
 * Upgrade refusals as a real browser sees them (docs/websocket.md#refusals-for-browsers): a page
 * served from another origin opens `new WebSocket()` with the bearer subprotocol or a ticket and
 * records the close code and reason of each refusal. Needs Debian's chromium: `npm test` skips with
 * a printed reason when it is missing; with HUBCAST_REQUIRE_SERVICES=1 (CI) the test fails instead.
 */

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have) {
  if (process.env.HUBCAST_REQUIRE_SERVICES === '1') throw new Error(`${CHROMIUM} is missing and HUBCAST_REQUIRE_SERVICES=1`);
  process.stdout.write(`skipping the Chromium tests: ${CHROMIUM} is missing (apt-get install chromium)\n`);
}
const SCREENSHOT = join(tmpdir(), 'hubcast-browser-refusals.png');
const SCREENSHOT_FOREIGN = join(tmpdir(), 'hubcast-browser-refusals-foreign-origin.png');
const BOGUS = 'A'.repeat(43);

/** The test page: `attempt(url, protocols)` opens a WebSocket and resolves with what the page saw. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Hubcast refusals</title>
<style>body{font:14px sans-serif;margin:16px} td,th{border:1px solid #999;padding:3px 8px} table{border-collapse:collapse}</style>
</head><body>
<h3>Hubcast upgrade refusals seen by this page (<span id="origin"></span>)</h3>
<table><thead><tr><th>case</th><th>opened</th><th>welcome</th><th>close code</th><th>reason</th></tr></thead><tbody id="rows"></tbody></table>
<script>
document.getElementById('origin').textContent = location.origin;
window.attempt = (name, url, protocols) => new Promise((resolve) => {
  const seen = { opened: false, welcome: false, code: 0, reason: '' };
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  ws.onopen = () => { seen.opened = true; seen.protocol = ws.protocol; };
  ws.onmessage = (e) => {
    if (JSON.parse(e.data).type === 'welcome') { seen.welcome = true; if (!window.keep) ws.close(1000); }
  };
  ws.onclose = (e) => {
    seen.code = e.code; seen.reason = e.reason;
    const tr = document.createElement('tr');
    for (const v of [name, seen.opened, seen.welcome, e.code, e.reason]) {
      const td = document.createElement('td'); td.textContent = String(v); tr.appendChild(td);
    }
    document.getElementById('rows').appendChild(tr);
    resolve(seen);
  };
});
</script></body></html>`;

function servePage(host: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      const port = (server.address() as { port: number }).port;
      resolve({ server, origin: `http://${host}:${port}` });
    });
  });
}

interface Seen {
  opened: boolean;
  welcome: boolean;
  code: number;
  reason: string;
  protocol?: string;
}

describe.skipIf(!have)('refusals as Chromium sees them: close code and reason after the handshake', () => {
  let h: Harness;
  let allowed: { server: Server; origin: string };
  let foreign: { server: Server; origin: string };
  let context: BrowserContext;
  let page: Page;
  let other: Page;
  let userDataDir: string;
  const held: TestClient[] = [];

  beforeAll(async () => {
    // Two page origins: one allowed, one not (another loopback address is another origin).
    allowed = await servePage('127.0.0.1');
    foreign = await servePage('127.0.0.2');
    h = await startServer({
      ws: { allowedOrigins: [allowed.origin], closeRefusals: { perMinute: 1, burst: 20 } },
      limits: { authFailures: { perMinute: 1, burst: 4 }, connectionsPerClient: 1, maxConnections: 3 },
    });
    userDataDir = mkdtempSync(join(tmpdir(), 'hubcast-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30_000,
    });
    page = await context.newPage();
    await page.goto(`${allowed.origin}/`);
    other = await context.newPage();
    await other.goto(`${foreign.origin}/`);
  }, 60_000);

  afterAll(async () => {
    for (const c of held) c.ws.terminate();
    await context?.close();
    await h?.close();
    allowed?.server.close();
    foreign?.server.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  const attempt = (p: Page, name: string, query: string, protocols?: string[]): Promise<Seen> =>
    p.evaluate(([n, url, prot]) => (window as unknown as { attempt: (...a: unknown[]) => Promise<Seen> }).attempt(n, url, prot), [
      name,
      `${h.wsBase}/ws${query}`,
      protocols,
    ] as const);
  const bearer = (token: string) => ['hubcast.v1', `hubcast.bearer.${token}`];

  async function ticketFor(token: string): Promise<string> {
    const r = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(201);
    h.remember(r.body.ticket);
    return r.body.ticket as string;
  }

  it('tells each refusal by its documented close code; a refused ticket is spent', async () => {
    const a = await h.createClient({ name: 'a' });
    const b = await h.createClient({ name: 'b' });
    const c = await h.createClient({ name: 'c' });
    const tokenA = await h.register(a);

    // Accepted, for reference: welcome, then the page closes normally.
    const ticket = await ticketFor(tokenA);
    expect(await attempt(page, 'ticket', `?ticket=${ticket}`)).toMatchObject({ opened: true, welcome: true, code: 1000 });
    expect(await attempt(page, 'bearer subprotocol', '', bearer(tokenA))).toMatchObject({
      welcome: true,
      code: 1000,
      protocol: 'hubcast.v1',
    });

    // Bad credentials: 4511 unauthorized (a used ticket, an unknown token).
    expect(await attempt(page, 'used ticket', `?ticket=${ticket}`)).toMatchObject({
      opened: true,
      welcome: false,
      code: 4511,
      reason: 'unauthorized',
    });
    expect(await attempt(page, 'unknown token', '', bearer(BOGUS))).toMatchObject({ welcome: false, code: 4511, reason: 'unauthorized' });

    // A page from an origin not in ws.allowedOrigins: 4513; its ticket is spent all the same.
    const foreignTicket = await ticketFor(tokenA);
    expect(await attempt(other, 'foreign origin', `?ticket=${foreignTicket}`)).toMatchObject({
      welcome: false,
      code: 4513,
      reason: 'origin_not_allowed',
    });
    expect(await attempt(page, 'that ticket again', `?ticket=${foreignTicket}`)).toMatchObject({ code: 4511, reason: 'unauthorized' });

    // A second connection for a live token: 4010 duplicate_connection.
    held.push(await h.connect(tokenA));
    expect(await attempt(page, 'duplicate', '', bearer(tokenA))).toMatchObject({
      welcome: false,
      code: 4010,
      reason: 'duplicate_connection',
    });

    // The client already holds limits.connectionsPerClient (1): 4012 connection_limit.
    expect(await attempt(page, 'per-client cap', '', bearer(await h.register(a)))).toMatchObject({
      welcome: false,
      code: 4012,
      reason: 'connection_limit',
    });

    // The node holds limits.maxConnections (3): 4013 unavailable.
    held.push(await h.connect(await h.register(b)));
    held.push(await h.connect(await h.register(c)));
    const tokenC2 = await h.register(c);
    expect(await attempt(page, 'node full', `?ticket=${await ticketFor(tokenC2)}`)).toMatchObject({
      welcome: false,
      code: 4013,
      reason: 'unavailable',
    });
    for (const t of held.splice(0)) t.ws.terminate();

    // Three failures so far (used ticket, unknown token, spent ticket); the budget holds four.
    expect(await attempt(page, 'unknown token', '', bearer(BOGUS))).toMatchObject({ code: 4511 });
    expect(await attempt(page, 'rate limited', '', bearer(BOGUS))).toMatchObject({ welcome: false, code: 4011, reason: 'rate_limited' });

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await other.screenshot({ path: SCREENSHOT_FOREIGN, fullPage: true });
    process.stdout.write(`screenshots of the test pages: ${SCREENSHOT}, ${SCREENSHOT_FOREIGN}\n`);
  }, 60_000);
});
