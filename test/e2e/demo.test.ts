import { afterEach, describe, expect, it } from 'vitest';
import { cli, startServer, type Harness } from '../helpers/server.ts';

/**
 * The demo over real HTTP: GET /demo only with demo.enabled, its files and headers, and `hubcast demo`
 * (a client that may subscribe and publish on demo.>, tokens in the URL fragment). The page itself
 * running in a browser is test/browser/demo.chromium.test.ts.
 */

const errorShape = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('the demo page and `hubcast demo`', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('demo.enabled false (the default): GET /demo is 404 not_found', async () => {
    h = await startServer();
    for (const path of ['/demo', '/demo/demo.js']) {
      const r = await h.fetchJson(path);
      expect(r.status).toBe(404);
      expect(r.body).toEqual(errorShape('not_found'));
    }
  });

  it('serves the page, its script and style with a strict CSP, ETag and no-cache', async () => {
    h = await startServer({ demo: { enabled: true } });
    const page = await fetch(`${h.base}/demo`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/demo/demo.js"></script>');
    expect((await fetch(`${h.base}/demo`, { headers: { 'if-none-match': page.headers.get('etag')! } })).status).toBe(304);

    const script = await fetch(`${h.base}/demo/demo.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const js = await script.text();
    expect(js).toContain("import('/client.js')");
    expect(js).toContain('location.hash');
    expect((await fetch(`${h.base}/demo/demo.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('`hubcast demo` prints one URL per tab with the token in the fragment; the token subscribes and publishes on demo.>', async () => {
    h = await startServer({ demo: { enabled: true } });
    const r = await cli(['demo', '--data-dir', h.dataDir, '--url', h.base, '--demo-enabled', 'true']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const urls = [...r.out.matchAll(/(http:\/\/\S+\/demo#token=([A-Za-z0-9_-]{43})&topic=demo\.feed&chat=demo\.chat)/g)];
    expect(urls).toHaveLength(2);
    const [tokenA, tokenB] = urls.map((m) => m[2]!);
    h.remember(tokenA!, tokenB!);
    expect(urls[0]![1]!.startsWith(`${h.base}/demo#`)).toBe(true);

    // Two tokens: two tabs connected at once; one publishes on the chat, the other receives it.
    const a = await h.connect(tokenA!);
    const b = await h.connect(tokenB!);
    b.ws.send(JSON.stringify({ type: 'subscribe', topic: 'demo.chat', id: 1 }));
    expect(await b.next('subscribed')).toMatchObject({ topic: 'demo.chat', id: 1 });
    a.ws.send(JSON.stringify({ type: 'publish', topic: 'demo.chat', data: { from: 'a', text: 'hi' }, id: 2 }));
    expect(await a.next('ack')).toMatchObject({ topic: 'demo.chat', id: 2 });
    expect(await b.next('message')).toMatchObject({ topic: 'demo.chat', data: { from: 'a', text: 'hi' } });
    // Nothing outside demo.>.
    a.ws.send(JSON.stringify({ type: 'subscribe', topic: 'orders.eu', id: 3 }));
    expect(await a.next('error')).toMatchObject({ code: 'forbidden', id: 3 });

    // A token also buys a ticket, as the page does.
    const t = await h.fetchJson('/consumers/tickets', { method: 'POST', headers: { authorization: `Bearer ${tokenA}` } });
    expect(t.status).toBe(201);
    h.remember(t.body.ticket);
  });

  it('`hubcast demo` reuses its client, and says when the config would refuse the page', async () => {
    h = await startServer();
    const first = await cli(['demo', '--data-dir', h.dataDir, '--json', '--tabs', '1']);
    expect(first.code).toBe(0);
    const out = JSON.parse(first.out) as { client_id: string; urls: string[]; topic: string; chat: string };
    expect(out).toMatchObject({ topic: 'demo.feed', chat: 'demo.chat' });
    expect(out.urls).toHaveLength(1);
    expect(out.urls[0]).toMatch(/^http:\/\/localhost:8080\/demo#token=[A-Za-z0-9_-]{43}&/);
    h.remember(out.urls[0]!.split('token=')[1]!.split('&')[0]!);
    expect(first.err).toContain('demo.enabled false');

    const second = await cli([
      'demo',
      '--data-dir',
      h.dataDir,
      '--json',
      '--tabs',
      '1',
      '--demo-enabled',
      'true',
      '--ws-allowed-origins',
      'https://app.example.com',
    ]);
    const again = JSON.parse(second.out) as { client_id: string; urls: string[] };
    h.remember(again.urls[0]!.split('token=')[1]!.split('&')[0]!);
    expect(again.client_id).toBe(out.client_id);
    expect(second.err).toContain('ws.allowedOrigins does not list http://localhost:8080');
    const list = await cli(['clients', 'list', '--json', '--data-dir', h.dataDir]);
    expect((JSON.parse(list.out) as { clients: unknown[] }).clients).toHaveLength(1);

    const bad = await cli(['demo', '--data-dir', h.dataDir, '--tabs', '0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--tabs');
  });
});
