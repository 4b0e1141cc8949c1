import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript module without types
import { browserBundle } from '../../packages/client/bundle-options.mjs';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import { freePort } from './helpers/net.ts';

/**
 * The browser bundle in Chromium, against a real server: a page (served from its own origin, with a
 * backend route that trades a token for a ticket, as an application's backend would) imports
 * hubcast.min.js and subscribes. The server restarts mid-stream: the page goes on with every message
 * once and in order. A refused token in the subprotocol form stops the client with the close code.
 * Needs Debian's chromium: skipped with a printed reason when missing, unless HUBCAST_REQUIRE_SERVICES=1.
 */

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have) {
  if (process.env.HUBCAST_REQUIRE_SERVICES === '1') throw new Error(`${CHROMIUM} is missing and HUBCAST_REQUIRE_SERVICES=1`);
  process.stdout.write(`skipping the SDK Chromium tests: ${CHROMIUM} is missing (apt-get install chromium)\n`);
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>SDK</title></head><body><pre id="log"></pre>
<script type="module">
import { Hubcast } from '/hubcast.min.js';
window.seen = { states: [], messages: [], gaps: 0, errors: [], subscribed: 0 };
window.start = (opts, topic) => {
  if (opts.ticketRoute) opts.getTicket = () => fetch('/ticket', { method: 'POST' }).then((r) => r.json()).then((b) => b.ticket);
  const hub = new Hubcast(opts);
  hub.on('state', (s, info) => window.seen.states.push({ s, code: info.code }));
  hub.on('error', (e) => window.seen.errors.push({ code: e.code, closeCode: e.closeCode }));
  const sub = hub.subscribe(topic);
  sub.on('message', (m) => {
    window.seen.messages.push(m.offset);
    document.getElementById('log').textContent += m.topic + ' ' + m.offset + ' ' + JSON.stringify(m.data) + '\\n';
  });
  sub.on('gap', () => window.seen.gaps++);
  sub.on('subscribed', () => window.seen.subscribed++);
  window.hub = hub;
};
window.ready = true;
</script></body></html>`;

describe.skipIf(!have)('the browser bundle in Chromium', () => {
  let h: Harness;
  let site: Server;
  let origin: string;
  let context: BrowserContext;
  let userDataDir: string;
  let token = '';

  beforeAll(async () => {
    h = await startServer({ port: await freePort() });
    const out = await build({ ...browserBundle, write: false, outfile: 'hubcast.min.js', logLevel: 'silent' });
    const bundle = out.outputFiles![0]!.text;
    site = createServer((req, res) => {
      if (req.url === '/hubcast.min.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      if (req.url === '/ticket' && req.method === 'POST') {
        // The application's backend: trades its token for a ticket, so the page never holds the token.
        fetch(`${h.base}/consumers/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
          .then(async (r) => {
            const body = (await r.json()) as { ticket?: string };
            if (body.ticket) h.remember(body.ticket);
            res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          })
          .catch(() => res.writeHead(502).end('{}'));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
    userDataDir = mkdtempSync(join(tmpdir(), 'hubcast-sdk-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30_000,
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await h?.close();
    site?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function open(): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    return page;
  }
  type Seen = {
    states: { s: string; code?: number }[];
    messages: number[];
    gaps: number;
    subscribed: number;
    errors: { code: string; closeCode?: number }[];
  };
  const seen = (page: Page) => page.evaluate(() => (window as unknown as { seen: Seen }).seen);

  it('ticket flow through the page’s backend; a server restart mid-stream: every message once, in order', async () => {
    const creds = await h.createClient({ subscribe: ['web.>'] });
    token = await h.register(creds);
    const page = await open();
    await page.evaluate(
      ([url]) => (window as any).start({ url, ticketRoute: true, backoff: { initialMs: 100, maxMs: 500 } }, 'web.feed'),
      [h.base],
    );
    await eventually(async () => (await seen(page)).subscribed === 1, 10_000, 'page subscribed');
    for (let i = 1; i <= 20; i++) expect((await h.ingest('web.feed', { i })).status).toBe(202);
    await h.restart();
    for (let i = 21; i <= 40; i++) {
      const send = () => h.ingest('web.feed', { i }, { 'idempotency-key': `w-${i}` });
      expect((await send().catch(send)).status).toBe(202);
    }
    await eventually(async () => (await seen(page)).messages.length >= 40, 15_000, '40 messages in the page');
    const s = await seen(page);
    expect(s.messages).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(s.gaps).toBe(0);
    expect(s.subscribed).toBe(2);
    expect(s.states.filter((x) => x.s === 'disconnected')[0]).toMatchObject({ code: 1001 });
    expect(s.states.at(-1)!.s).toBe('connected');
    await page.screenshot({ path: join(tmpdir(), 'hubcast-sdk-chromium.png') });
    await page.close();
  });

  it('subprotocol form with a bad token: close 4511, the client stops and says why', async () => {
    const page = await open();
    await page.evaluate(
      ([url]) =>
        (window as any).start({ url, token: 'A'.repeat(43), auth: 'subprotocol', backoff: { initialMs: 50, maxMs: 100 } }, 'web.x'),
      [h.base],
    );
    await eventually(async () => (await seen(page)).states.some((x) => x.s === 'closed'), 10_000, 'state closed');
    const s = await seen(page);
    expect(s.errors).toEqual([{ code: 'unauthorized', closeCode: 4511 }]);
    expect(s.states.map((x) => x.s)).toEqual(['connecting', 'closed']);
    await page.close();
  });
});
