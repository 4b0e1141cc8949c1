import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminPage } from '../../scripts/build-admin.mjs';
import { startServer, type Harness } from '../helpers/server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

/**
 * The admin dashboard (GET /admin, docs/admin.md) in a real Chromium against a real server and its
 * admin API: sign in (a wrong key is refused, with a message), a consumer's connection shows within
 * a second, a client created in the page registers and connects, revoking it in the page closes its
 * connection with 4500, kicking one closes it with 4503, a test message published from the page
 * reaches a subscriber, a dead letter retried from the page is delivered; keyboard only; a phone's
 * width without sideways scrolling; no request to another origin and no CSP violation throughout.
 *
 * The page is built from src/http/admin-page into a temporary folder (scripts/build-admin.mjs, as
 * `npm run build` does). Needs Debian's chromium: skipped with a printed reason when it is missing,
 * a failure with HUBCAST_REQUIRE_SERVICES=1 (CI). Screenshots go to the temporary folder;
 * HUBCAST_UPDATE_SCREENSHOTS=1 also copies them to docs/images/admin.png and admin-phone.png.
 */

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? '' : `${CHROMIUM} (apt-get install chromium)`;
if (missing) {
  if (process.env.HUBCAST_REQUIRE_SERVICES === '1') throw new Error(`${missing} missing and HUBCAST_REQUIRE_SERVICES=1`);
  process.stdout.write(`skipping the Chromium admin dashboard tests: ${missing} missing\n`);
}
const SHOTS = mkdtempSync(join(tmpdir(), 'hubcast-browser-admin-'));
const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));

const SECRET = 'webhook-secret-0123456789';
const sign = (body: string, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}`;

describe.skipIf(missing !== '')('the admin dashboard in Chromium', () => {
  let h: Harness;
  let adminKey: string;
  let context: BrowserContext;
  let page: Page;
  /** The phone-sized tab (its screenshot is taken last). */
  let phoneTab: Page | undefined;
  let userDataDir: string;
  let pageDir: string;
  let work: string;
  /** While this file exists the connector's pipeline fails: its records become dead letters. */
  let brokenFlag: string;
  const requested: string[] = [];
  const consoleErrors: string[] = [];

  const row = (p: Page, tableId: string, key: string) => p.locator(`#${tableId} tbody tr[data-key="${key}"]`);

  /** A consumer of a new client (subscribe orders.*), connected from Node. */
  async function consumer(name: string): Promise<{ clientId: string; ws: TestClient }> {
    const creds = await h.createClient({ name, subscribe: ['orders.*'] });
    const ws = await h.connect(await h.register(creds));
    return { clientId: creds.client_id, ws };
  }

  async function signIn(p: Page): Promise<void> {
    await p.goto(`${h.base}/admin`);
    await p.getByLabel('Admin key').fill(adminKey);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('#live[data-mode="stream"]').waitFor({ timeout: 5000 });
  }

  /** Fails when the page can be scrolled sideways. */
  const noSidewaysScroll = async (p: Page) => {
    const m = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: document.documentElement.clientWidth }));
    expect(m.scroll, `page ${m.scroll}px wide in a ${m.width}px viewport`).toBeLessThanOrEqual(m.width);
  };

  const shot = async (p: Page, name: string, image?: string) => {
    const path = join(SHOTS, name);
    // A phone's: its first screens (the header, the figures, the charts, connections as cards).
    await p.screenshot({ path, fullPage: true, ...(name.includes('phone') ? { clip: { x: 0, y: 0, width: 390, height: 1500 } } : {}) });
    if (image && process.env.HUBCAST_UPDATE_SCREENSHOTS === '1') {
      mkdirSync(IMAGES, { recursive: true });
      copyFileSync(path, join(IMAGES, image));
    }
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hubcast-admin-work-'));
    pageDir = join(work, 'admin-page');
    await buildAdminPage(pageDir);
    brokenFlag = join(work, 'broken');
    writeFileSync(brokenFlag, '');
    const mod = join(work, 'check.mjs');
    writeFileSync(
      mod,
      `import { existsSync } from 'node:fs'; export default (r) => { if (existsSync(${JSON.stringify(brokenFlag)})) throw new Error('enrichment service down'); return r; };`,
    );
    h = await startServer(
      {
        alerts: { groupWaitS: 1 },
        connectors: [{ name: 'shop', type: 'webhook', topic: 'orders.{{region}}', secret: SECRET, pipeline: [{ module: mod }] }],
      },
      { adminPageDir: pageDir },
    );
    adminKey = await h.createKey('ops', 'admin');

    userDataDir = mkdtempSync(join(tmpdir(), 'hubcast-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      viewport: { width: 1280, height: 860 },
      timeout: 30_000,
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.base });
    // Every policy violation is recorded (the page may load and run nothing but its own files).
    await context.addInitScript(() => {
      const w = window as unknown as { cspViolations: string[] };
      w.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    context.on('request', (r) => void requested.push(r.url()));
    context.on('page', (p) => {
      p.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
      p.on('dialog', (d) => void d.accept());
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
    page.on('dialog', (d) => void d.accept());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await h?.close();
    for (const d of [userDataDir, work]) if (d) rmSync(d, { recursive: true, force: true });
    process.stdout.write(`screenshots of the admin dashboard tests: ${SHOTS}\n`);
  });

  it('sign in: a wrong key is refused with a message; the right one opens the dashboard, kept for this tab only', async () => {
    await page.goto(`${h.base}/admin`);
    // The key field has focus and a label; the dashboard is not there yet.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('key');
    expect(await page.locator('#dash').isHidden()).toBe(true);
    await page.getByLabel('Admin key').fill(h.ingestKey); // a real key, of the wrong scope
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#signin-error').textContent()).toContain('This key was refused');
    expect(await page.locator('#signin-error').textContent()).toContain('401 invalid_key');
    expect(await page.getByLabel('Admin key').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#dash').isHidden()).toBe(true);

    await page.getByLabel('Admin key').fill(adminKey);
    await page.getByLabel('Admin key').press('Enter');
    await page.locator('#live[data-mode="stream"]').waitFor({ timeout: 5000 });
    expect(await page.locator('#signin').isHidden()).toBe(true);
    expect(await page.locator('#node').textContent()).toMatch(/^node \S+ · v\d+\.\d+\.\d+ · up /);
    expect(await page.evaluate(() => sessionStorage.getItem('hubcast.adminKey'))).toBe(adminKey);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    // A reload keeps the session (session storage); the stream brings an overview a second to the chart.
    await page.reload();
    await page.locator('#live[data-mode="stream"]').waitFor({ timeout: 5000 });
    await expect.poll(() => page.locator('#chart-conn').getAttribute('data-points'), { timeout: 4000 }).toMatch(/^[2-9]|\d\d/);
    expect(await page.locator('#chart-conn canvas').count()).toBe(1);
    // The key travels in a header only, never in a URL.
    expect(requested.filter((u) => u.includes(adminKey))).toEqual([]);
  });

  it('a consumer that connects shows in the connections table within a second, and goes when it leaves', async () => {
    const started = Date.now();
    const { clientId, ws } = await consumer('watcher');
    const r = page.locator(`#connections tbody tr[data-client="${clientId}"]`);
    await r.waitFor({ timeout: 1000 });
    expect(Date.now() - started).toBeLessThan(1000 + 500); // register + connect take some of it
    const [conn] = (await h.connections()).filter((c) => c.client_id === clientId);
    expect(await r.getAttribute('data-key')).toBe(conn!.id);
    expect(await r.locator('td[data-col="address"]').textContent()).toBe('127.0.0.1');
    await expect.poll(() => page.locator('#s-connections').textContent()).toBe('1');
    ws.ws.close();
    await r.waitFor({ state: 'detached', timeout: 2000 });
  });

  it('a client created in the page registers and connects; revoking it in the page closes it with 4500 and shows it revoked', async () => {
    await page.getByLabel('Name', { exact: true }).fill('made-in-the-page');
    await page.getByLabel('May subscribe to').fill('orders.* news.>');
    await page.getByRole('button', { name: 'Create client' }).click();
    const dialog = page.getByRole('dialog', { name: 'Client created' });
    await dialog.waitFor();
    // Focus is in the dialog, on the secret (selected); the copy button copies it.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('secret-value');
    const clientId = await page.getByLabel('Client id').inputValue();
    const secret = await page.getByLabel('Client secret').inputValue();
    expect(clientId).toMatch(/^c_/);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    h.remember(secret);
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await expect.poll(() => page.locator('#secret-copied').textContent()).toBe('Copied to the clipboard.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // Gone from the page with the dialog; focus back where it was.
    expect(await page.getByLabel('Client secret', { exact: true }).inputValue()).toBe('');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('client-create');
    await row(page, 'clients', clientId).waitFor({ timeout: 2000 });
    expect(await row(page, 'clients', clientId).locator('td[data-col="subscribe"]').textContent()).toBe('orders.*, news.>');

    // The secret works: register, connect, receive.
    const token = await h.register({ client_id: clientId, client_secret: secret });
    const ws = await h.connect(token);
    await ws.subscribe('orders.eu');
    await page.locator(`#connections tbody tr[data-client="${clientId}"]`).waitFor({ timeout: 1000 });
    await expect
      .poll(() => row(page, 'clients', clientId).locator('td[data-col="connections"]').textContent(), { timeout: 3000 })
      .toBe('1');

    await row(page, 'clients', clientId)
      .getByRole('button', { name: `Revoke client made-in-the-page (${clientId})` })
      .click();
    expect((await ws.closed).code).toBe(4500);
    await expect.poll(() => row(page, 'clients', clientId).getAttribute('data-revoked')).toBe('true');
    expect(await row(page, 'clients', clientId).locator('td[data-col="status"]').textContent()).toMatch(/^revoked /);
    expect(await row(page, 'clients', clientId).getByRole('button').count()).toBe(0);
    expect(await page.locator('#notice').textContent()).toBe(
      `Client made-in-the-page (${clientId}) revoked: 1 connection closed on this node.`,
    );
    await page.locator(`#connections tbody tr[data-client="${clientId}"]`).waitFor({ state: 'detached', timeout: 2000 });
    // And it cannot come back.
    const again = await h.fetchJson('/consumers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, client_secret: secret }),
    });
    expect(again.status).toBe(401);
  });

  it('kicking a connection from the page closes it with 4503', async () => {
    const { clientId, ws } = await consumer('to-be-kicked');
    const r = page.locator(`#connections tbody tr[data-client="${clientId}"]`);
    await r.waitFor({ timeout: 1000 });
    await r.getByRole('button', { name: /^Kick connection / }).click();
    expect((await ws.closed).code).toBe(4503);
    await r.waitFor({ state: 'detached', timeout: 2000 });
    expect(await page.locator('#notice').textContent()).toMatch(/^Connection \S+ kicked/);
  });

  it('a test message published from the page reaches a subscriber', async () => {
    const { ws } = await consumer('listener');
    await ws.subscribe('orders.eu');
    await page.getByLabel('Topic', { exact: true }).fill('orders.eu');
    await page.getByLabel('Data (JSON)').fill('{"from": "the dashboard", "n": 1}');
    await page.getByRole('button', { name: 'Publish' }).click();
    const m = await ws.next('message', 3000);
    expect(m).toMatchObject({ topic: 'orders.eu', data: { from: 'the dashboard', n: 1 } });
    await expect.poll(() => page.locator('#notice').textContent()).toBe(`Published to orders.eu at offset ${m.offset as number}.`);
    await row(page, 'topics', 'orders.eu').waitFor({ timeout: 6000 });
    // Not JSON: said in the form, nothing sent.
    await page.getByLabel('Data (JSON)').fill('{oops');
    await page.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(() => page.locator('#publish-error').textContent()).toMatch(/^The data is not valid JSON/);
    ws.ws.close();
  });

  it('a dead letter retried from the page is delivered to a subscriber', async () => {
    const { ws } = await consumer('dlq-listener');
    await ws.subscribe('orders.us');
    const body = JSON.stringify({ id: 8, region: 'us' });
    const hook = await h.fetchJson('/hooks/shop', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubcast-signature': sign(body), 'idempotency-key': 'x8' },
      body,
    });
    expect(hook.status).toBe(202);
    const dead = page.locator('#dead-letters tbody tr[data-key]');
    await dead.first().waitFor({ timeout: 7000 }); // the lists refresh every 5 s
    expect(await dead.count()).toBe(1);
    expect(await dead.locator('td[data-col="reason"]').textContent()).toContain('enrichment service down');
    expect(await page.locator('#connectors tbody tr[data-key="shop"] td[data-col="type"]').textContent()).toBe('webhook');

    // The connector's failure is alerted, and the alert shows (as soon as the overview counts it).
    const alert = page.locator('#alerts tbody tr[data-key]', { hasText: 'pipeline_error' });
    await alert.waitFor({ timeout: 6000 });
    expect(await alert.locator('td[data-col="sent"]').textContent()).toBe('log: sent');
    await expect.poll(() => page.locator('#s-alerts').textContent()).toBe('1');

    unlinkSync(brokenFlag); // the cause is fixed
    await dead.getByRole('button', { name: /^Retry dead letter / }).click();
    expect(await ws.next('message', 5000)).toMatchObject({ topic: 'orders.us', data: { id: 8, region: 'us' } });
    await expect
      .poll(() => page.locator('#notice').textContent())
      .toMatch(/^Dead letter \d+ retried: published to orders\.us at offset \d+\.$/);
    await page.locator('#dead-letters tbody tr.empty').waitFor({ timeout: 3000 });
    ws.ws.close();
  });

  it('works from the keyboard alone: sign in, create a client, close the dialog; every control has a name', async () => {
    const p = await context.newPage(); // a new tab: nothing in its session storage
    await p.goto(`${h.base}/admin`);
    // The page's script puts the focus on the key field once it has loaded: type only then.
    await p.waitForFunction(() => document.activeElement?.id === 'key', undefined, { timeout: 5000 });
    await p.keyboard.type(adminKey);
    await p.keyboard.press('Enter');
    await p.locator('#live[data-mode="stream"]').waitFor({ timeout: 5000 });
    expect(await p.evaluate(() => document.activeElement?.id)).toBe('overview-title');
    // Tab to the new client's name (bounded), fill the form, submit with Enter.
    let tabs = 0;
    while ((await p.evaluate(() => document.activeElement?.id)) !== 'client-name') {
      await p.keyboard.press('Tab');
      if (++tabs > 60) throw new Error('the client name field is not reachable with Tab');
    }
    await p.keyboard.type('keyboard-made');
    await p.keyboard.press('Tab');
    await p.keyboard.type('orders.*');
    await p.keyboard.press('Enter');
    await p.getByRole('dialog', { name: 'Client created' }).waitFor();
    expect(await p.evaluate(() => document.activeElement?.id)).toBe('secret-value');
    h.remember(await p.getByLabel('Client secret').inputValue());
    await p.keyboard.press('Tab'); // → Copy secret
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe('Copy secret');
    await p.keyboard.press('Tab'); // → Done
    await p.keyboard.press('Enter');
    await p.getByRole('dialog').waitFor({ state: 'hidden' });
    expect(await p.evaluate(() => document.activeElement?.id)).toBe('client-create');

    // Every input has a label, every button a name, every table a caption and column headers.
    const unnamed = await p.evaluate(() => {
      const bad: string[] = [];
      for (const el of document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>('input, textarea'))
        if (!el.labels?.length && !el.getAttribute('aria-label')) bad.push(`${el.tagName}#${el.id}`);
      for (const b of document.querySelectorAll('button'))
        if (!(b.getAttribute('aria-label') || b.textContent?.trim())) bad.push(`button ${b.outerHTML}`);
      // (uPlot's legends are tables inside the charts, which are images to assistive technology.)
      for (const t of document.querySelectorAll<HTMLTableElement>('table:not(.u-legend)')) {
        if (!t.caption?.textContent?.trim()) bad.push(`table#${t.id} has no caption`);
        if (t.querySelectorAll('thead th[scope="col"]').length !== t.querySelectorAll('thead th').length)
          bad.push(`table#${t.id} th without scope`);
      }
      return bad;
    });
    expect(unnamed).toEqual([]);
    // Signing out forgets the key.
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.locator('#signin').waitFor();
    expect(await p.evaluate(() => sessionStorage.getItem('hubcast.adminKey'))).toBeNull();
    await p.close();
  });

  it('without the event stream it polls every 2 s (connections still show), and goes back to the stream when it can', async () => {
    const errorsBefore = consoleErrors.length;
    const p = await context.newPage();
    await p.route('**/admin/api/stream', (r) => r.abort());
    await p.goto(`${h.base}/admin`);
    await p.getByLabel('Admin key').fill(adminKey);
    await p.getByLabel('Admin key').press('Enter');
    await p.locator('#live[data-mode="polling"]').waitFor({ timeout: 5000 });
    expect(await p.locator('#live').textContent()).toMatch(/^polling every 2 s/);
    const { clientId, ws } = await consumer('polled');
    await p.locator(`#connections tbody tr[data-client="${clientId}"]`).waitFor({ timeout: 2500 });
    await expect.poll(() => p.locator('#s-connections').textContent(), { timeout: 2500 }).toBe('1');
    // The stream works again: the page takes it up at its next try (10 s of polling at most).
    await p.unroute('**/admin/api/stream');
    await p.locator('#live[data-mode="stream"]').waitFor({ timeout: 15_000 });
    ws.ws.close();
    await p.locator(`#connections tbody tr[data-client="${clientId}"]`).waitFor({ state: 'detached', timeout: 2000 });
    await p.close();
    // The aborted streams were logged by the browser: expected here, and only those.
    const logged = consoleErrors.splice(errorsBefore);
    expect(logged.filter((e) => e !== 'Failed to load resource: net::ERR_FAILED')).toEqual([]);
  }, 30_000);

  it('a key revoked while signed in: the page goes back to the sign-in form and says why', async () => {
    const other = await h.createKey('short-lived', 'admin');
    const p = await context.newPage();
    await p.goto(`${h.base}/admin`);
    await p.getByLabel('Admin key').fill(other);
    await p.getByLabel('Admin key').press('Enter');
    await p.locator('#live[data-mode="stream"]').waitFor({ timeout: 5000 });
    const keys = await h.fetchJson('/admin/api/keys', { headers: { authorization: `Bearer ${adminKey}` } });
    const id = (keys.body.keys as { id: string; name: string }[]).find((k) => k.name === 'short-lived')!.id;
    const revoked = await h.fetchJson(`/admin/api/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } });
    expect(revoked.status).toBe(200);
    await p.locator('#signin').waitFor({ timeout: 8000 });
    expect(await p.locator('#signin-error').textContent()).toMatch(/^Signed out: the key is no longer accepted/);
    expect(await p.evaluate(() => sessionStorage.getItem('hubcast.adminKey'))).toBeNull();
    await p.close();
  }, 20_000);

  it('on a phone: one column, no sideways scrolling, tables as labelled cards', async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${h.base}/admin`);
    await noSidewaysScroll(phone);
    await signIn(phone);
    const { clientId, ws } = await consumer('phone-watcher');
    await phone.locator(`#connections tbody tr[data-client="${clientId}"]`).waitFor({ timeout: 1000 });
    await phone.locator('#clients tbody tr[data-key]').first().waitFor({ timeout: 6000 });
    await noSidewaysScroll(phone);
    await expect.poll(() => phone.locator('#s-connections').textContent()).toBe('1');
    await expect.poll(() => phone.locator('#chart-conn').getAttribute('data-points'), { timeout: 5000 }).toMatch(/^([4-9]|\d\d+)$/);
    // The two charts are stacked, each the width of the page.
    const boxes = await phone.locator('.charts figure').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as DOMRect));
    expect(boxes[1]!.top).toBeGreaterThanOrEqual(boxes[0]!.bottom);
    expect(boxes[0]!.width).toBeGreaterThan(300);
    // A cell shows its column's name before its value.
    const label = await phone
      .locator(`#connections tbody tr[data-client="${clientId}"] td[data-col="address"]`)
      .evaluate((td) => getComputedStyle(td, '::before').content);
    expect(label).toBe('"Address"');
    ws.ws.close();
    phoneTab = phone; // kept open: its screenshot is taken with the laptop's, with traffic
  });

  it('laptop screenshot with live traffic; no other origin was contacted and no policy was violated', async () => {
    const watchers = [await consumer('storefront'), await consumer('mobile-app'), await consumer('ops-board')];
    for (const w of watchers) await w.ws.subscribe('orders.eu');
    // Some traffic for the rate chart: a few messages a second for a few seconds.
    for (let i = 0; i < 24; i++) {
      expect((await h.ingest('orders.eu', { n: i })).status).toBe(202);
      await new Promise((r) => setTimeout(r, 250));
    }
    // One from the page too (which clears the form's earlier complaint).
    await page.getByLabel('Data (JSON)').fill('{"order": 1042, "status": "paid"}');
    await page.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/^Published to orders\.eu at offset \d+\.$/);
    await page.locator('#connections tbody tr[data-key]').nth(2).waitFor({ timeout: 2000 });
    await expect.poll(() => page.locator('#s-connections').textContent()).toBe('3');
    await shot(page, 'admin.png', 'admin.png');
    await noSidewaysScroll(page);
    if (phoneTab) {
      await expect.poll(() => phoneTab!.locator('#s-connections').textContent()).toBe('3');
      await shot(phoneTab, 'admin-phone.png', 'admin-phone.png');
      await noSidewaysScroll(phoneTab);
    }

    for (const p of [page, ...(phoneTab ? [phoneTab] : [])])
      expect(await p.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);
    expect(requested.filter((u) => !u.startsWith(`${h.base}/`))).toEqual([]);
    expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    for (const w of watchers) w.ws.close();
  }, 30_000);
});
