import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { FatalSourceError } from '../../src/connectors/connector.ts';
import { create, settings, type HttpPollConnectorConfig } from '../../src/connectors/http-poll.ts';
import { recordingContext } from '../helpers/connector-context.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

/** A real loopback HTTP server whose answer the test sets per request. */
interface Upstream {
  url: string;
  port: number;
  requests: IncomingHttpHeaders[];
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upstream(handle: Upstream['handle']): Promise<Upstream> {
  const u = { requests: [] as IncomingHttpHeaders[], handle } as Upstream;
  const server: Server = createServer((req, res) => {
    u.requests.push(req.headers);
    u.handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  u.port = (server.address() as { port: number }).port;
  u.url = `http://127.0.0.1:${u.port}/items?secret=q`;
  u.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  cleanups.push(() => u.close());
  return u;
}

function json(res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Serves `items` under `data.items` with an ETag that changes with the list; 304 when it matches. */
function etagServer(items: { id: number; v: string }[]): Upstream['handle'] {
  return (req, res) => {
    const etag = `"v${items.length}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    json(res, { data: { items } }, { etag });
  };
}

function config(url: string, extra: Record<string, unknown> = {}): HttpPollConnectorConfig {
  return {
    name: 'poll',
    type: 'http-poll',
    topic: 'items',
    pipeline: [],
    retry: { attempts: 10, initialMs: 200, maxMs: 30_000 },
    enabled: true,
    ...settings.parse({ url, intervalS: 0.05, itemsPath: 'data.items', keyField: 'id', ...extra }),
  };
}

function connector(url: string, extra: Record<string, unknown> = {}) {
  const rc = recordingContext();
  cleanups.push(() => rc.abort());
  return { rc, conn: create(config(url, extra), { log: rc.ctx.log }) };
}

describe('http-poll connector', () => {
  it('emits each item once across polls, uses the ETag (304) and emits only new items', async () => {
    const items = [
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ];
    const up = await upstream(etagServer(items));
    const { rc, conn } = connector(up.url);
    const done = conn.run(rc.ctx);
    await rc.waitFor(() => rc.records.length === 2 && up.requests.length >= 3, 5000, 'two items and three polls');
    expect(up.requests.slice(1).every((h) => h['if-none-match'] === '"v2"')).toBe(true);
    expect(rc.connectedCount).toBeGreaterThanOrEqual(2);

    items.push({ id: 3, v: 'c' });
    await rc.waitFor(() => rc.records.length === 3, 5000, 'the new item');
    const polls = up.requests.length;
    await rc.waitFor(() => up.requests.length >= polls + 3, 5000, 'more polls');
    rc.abort();
    await done;

    expect(rc.records.map((r) => r.key)).toEqual(['1', '2', '3']);
    expect(rc.records[2]).toMatchObject({
      key: '3',
      value: { id: 3, v: 'c' },
      kind: 'json',
      meta: { url: `http://127.0.0.1:${up.port}/items` },
    });
    expect(rc.state.get('etag')).toBe('"v3"');
  });

  it('remembers seen keys and Last-Modified across runs (state), sending If-Modified-Since', async () => {
    const stamp = 'Wed, 21 Oct 2015 07:28:00 GMT';
    let items = [{ id: 'x' }, { id: 'y' }];
    const up = await upstream((req, res) => {
      if (req.headers['if-modified-since'] === stamp && items.length === 2) {
        res.writeHead(304);
        res.end();
      } else json(res, items, { 'last-modified': stamp });
    });
    const first = recordingContext();
    const c1 = create(config(up.url, { itemsPath: undefined }), { log: first.ctx.log });
    const run1 = c1.run(first.ctx);
    await first.waitFor(() => first.records.length === 2 && up.requests.length >= 2, 5000, 'first run');
    first.abort();
    await run1;
    expect(up.requests[1]!['if-modified-since']).toBe(stamp);

    // A restart with the same state: the old items are not emitted again, a new one is.
    items = [{ id: 'y' }, { id: 'z' }, { id: 'x' }];
    const second = recordingContext({ state: first.state });
    const c2 = create(config(up.url, { itemsPath: undefined }), { log: second.ctx.log });
    const run2 = c2.run(second.ctx);
    await second.waitFor(() => second.records.length === 1, 5000, 'second run');
    second.abort();
    await run2;
    expect(second.records.map((r) => r.key)).toEqual(['z']);
  });

  it('sends the configured headers and never logs their values', async () => {
    const up = await upstream(etagServer([{ id: 1, v: 'a' }]));
    const { rc, conn } = connector(up.url, { headers: { Authorization: 'Bearer s3cr3t-value', 'X-Tenant': 'acme' } });
    const done = conn.run(rc.ctx);
    await rc.waitFor(() => rc.records.length === 1, 5000, 'one item');
    rc.abort();
    await done;
    expect(up.requests[0]).toMatchObject({ authorization: 'Bearer s3cr3t-value', 'x-tenant': 'acme', accept: 'application/json' });
    expect(JSON.stringify(rc.logs)).not.toContain('s3cr3t');
    expect(JSON.stringify(rc.logs)).not.toContain('secret=q');
  });

  it('a 500 makes run throw (retryable), not FatalSourceError', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(500);
      res.end('boom');
    });
    const { rc, conn } = connector(up.url);
    const err = await conn.run(rc.ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(FatalSourceError);
    expect((err as Error).message).toContain('answered 500');
    expect((err as Error).message).not.toContain('secret');
    expect(rc.connectedCount).toBe(0);
  });

  it.each([
    [401, 'credentials'],
    [403, 'credentials'],
    [404, 'url'],
  ])('a %i is a FatalSourceError', async (status, hint) => {
    const up = await upstream((_req, res) => {
      res.writeHead(status);
      res.end();
    });
    const { rc, conn } = connector(up.url);
    const err = await conn.run(rc.ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalSourceError);
    expect((err as Error).message).toContain(hint);
  });

  it('invalid JSON, a missing itemsPath or a non-array are FatalSourceError', async () => {
    let body = 'not json';
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    const run = async (extra: Record<string, unknown> = {}) => {
      const { rc, conn } = connector(up.url, extra);
      return conn.run(rc.ctx).catch((e: unknown) => e);
    };
    expect(await run()).toBeInstanceOf(FatalSourceError);
    body = JSON.stringify({ data: {} });
    expect(((await run()) as Error).message).toContain('itemsPath "data.items" is not an array');
    body = JSON.stringify({ id: 1 });
    expect(((await run({ itemsPath: undefined })) as Error).message).toContain('not an array');
  });

  it('when emit rejects, run throws, nothing is stored, and the next run emits the same items', async () => {
    const up = await upstream(etagServer([{ id: 7, v: 'a' }]));
    const { rc, conn } = connector(up.url);
    rc.failNextEmit();
    const err = await conn.run(rc.ctx).catch((e: unknown) => e);
    expect((err as Error).message).toBe('store unavailable');
    expect(rc.state.size).toBe(0);
    expect(rc.attempts.map((b) => b.map((r) => r.key))).toEqual([['7']]);

    rc.renew();
    const done = conn.run(rc.ctx);
    await rc.waitFor(() => rc.records.length === 1, 5000, 'the retried item');
    rc.abort();
    await done;
    expect(up.requests[1]!['if-none-match']).toBeUndefined();
    expect(rc.records.map((r) => r.key)).toEqual(['7']);
  });

  it('skips items without a key, with a warning', async () => {
    const up = await upstream((_req, res) => json(res, { data: { items: [{ id: 1 }, { nope: true }, { id: null }, { id: 1 }] } }));
    const { rc, conn } = connector(up.url);
    const done = conn.run(rc.ctx);
    await rc.waitFor(() => rc.records.length === 1 && up.requests.length >= 2, 5000, 'one item');
    rc.abort();
    await done;
    expect(rc.records.map((r) => r.key)).toEqual(['1']);
    expect(rc.logs.some((l) => l.msg === 'http-poll: items without a key skipped' && l.skipped === 2)).toBe(true);
  });

  it('a request that outlives timeoutS makes run throw; an abort ends run at once', async () => {
    const up = await upstream(() => {
      // never answers
    });
    const { rc, conn } = connector(up.url, { timeoutS: 0.2 });
    const err = await conn.run(rc.ctx).catch((e: unknown) => e);
    expect((err as Error).message).toContain('timed out after 0.2 s');

    const slow = connector(up.url, { timeoutS: 30 });
    const done = slow.conn.run(slow.rc.ctx);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    slow.rc.abort();
    await expect(done).resolves.toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('a connection cut mid-response makes run throw; re-running delivers every item exactly once', async () => {
    const items = Array.from({ length: 50 }, (_, i) => ({ id: i, v: 'x'.repeat(100) }));
    let hang = true;
    let halfSent: () => void = () => undefined;
    const halfway = new Promise<void>((resolve) => (halfSent = resolve));
    const up = await upstream((_req, res) => {
      const body = JSON.stringify({ data: { items } });
      if (hang) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
        res.write(body.slice(0, body.length / 2));
        halfSent();
        return; // the rest never comes: the proxy cuts the connection
      }
      json(res, { data: { items } }, { etag: '"all"' });
    });
    const proxy = await TcpProxy.start(up.port);
    cleanups.push(() => proxy.close());
    const url = `http://127.0.0.1:${proxy.port}/items`;
    const { rc, conn } = connector(url);

    const first = conn.run(rc.ctx).catch((e: unknown) => e);
    await halfway;
    proxy.cut();
    const err = await first;
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(FatalSourceError);
    expect(rc.records).toHaveLength(0);

    hang = false;
    rc.renew();
    const second = conn.run(rc.ctx);
    await rc.waitFor(() => rc.records.length === 50 && up.requests.length >= 4, 5000, 'all items');
    rc.abort();
    await second;
    expect(rc.records.map((r) => r.key)).toEqual(items.map((i) => String(i.id)));
    expect(proxy.connections).toBeGreaterThanOrEqual(2);
  });
});
