import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpApp } from '../../src/http/app.ts';
import { cachedProbe, healthRoutes, type HealthSource } from '../../src/http/health.ts';
import { createMetrics } from '../../src/metrics.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * GET /healthz reports the node and its backends (503 "degraded" when the store or the broker is
 * down), cheaply under load; GET /metrics labels every sample with the node. The store probe runs
 * against the real PostgreSQL through a TCP proxy the test cuts.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(health?: HealthSource, nodeId = 'node-a') {
  const metrics = createMetrics(nodeId);
  const app = createHttpApp(pino({ level: 'silent' }), { bodyLimit: 1024, isClosing: () => false, onInternalError: () => undefined });
  healthRoutes(app, metrics, health);
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const get = async (path: string) => {
    const res = await fetch(base + path, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      text,
      body: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : undefined,
    };
  };
  return { get, metrics };
}

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('GET /healthz', () => {
  it('without a health source: 200 {"status":"ok"} (liveness, as on one node before)', async () => {
    const s = await serve();
    const r = await s.get('/healthz');
    expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: { status: 'ok' } });
    expect(r.type).toMatch(/^application\/json/);
  });

  it('reports the node, the store (probed, cached) and the broker; 503 "degraded" while the store is cut off, 200 once it is back', async () => {
    if (!(await requireService('postgres', 5432))) return;
    const proxy = await TcpProxy.start(5432);
    cleanups.push(() => proxy.close());
    const pool = new pg.Pool({
      connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
      max: 1,
      connectionTimeoutMillis: 300,
      query_timeout: 300,
    });
    pool.on('error', () => undefined); // a cut connection: the probe's next query says it
    cleanups.push(() => pool.end());
    let probes = 0;
    const storeOk = cachedProbe(
      async () => {
        probes++;
        await pool.query('SELECT 1');
      },
      { ttlMs: 200, timeoutMs: 500 },
    );
    const broker = { connected: true };
    const s = await serve(async () => ({
      node: 'node-a',
      store: { type: 'postgres', ok: (await storeOk()).ok },
      broker: { type: 'redis', connected: broker.connected },
      presence: { nodes: 3 },
    }));

    const up = await s.get('/healthz');
    expect(up.status).toBe(200);
    expect(up.text).toBe(
      '{"status":"ok","node":"node-a","store":{"type":"postgres","ok":true},"broker":{"type":"redis","connected":true},"presence":{"nodes":3}}',
    );

    // Cheap under load: 300 requests at once cost the store one probe per ttlMs (200), not one each.
    const before = probes;
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 300 }, () => s.get('/healthz')));
    const tookMs = Date.now() - t0;
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(probes - before).toBeLessThanOrEqual(Math.ceil(tookMs / 200) + 1);
    expect(probes - before).toBeLessThan(20);

    proxy.refuse();
    proxy.cut();
    const down = await waitFor(
      () => s.get('/healthz'),
      (r) => r.status === 503,
      3000,
      'a 503 while the store is cut off',
    );
    expect(down.body).toEqual({
      status: 'degraded',
      node: 'node-a',
      store: { type: 'postgres', ok: false },
      broker: { type: 'redis', connected: true },
      presence: { nodes: 3 },
    });
    expect(down.type).toMatch(/^application\/json/);

    proxy.accept();
    await waitFor(
      () => s.get('/healthz'),
      (r) => r.status === 200,
      5000,
      'a 200 once the store is back',
    );

    broker.connected = false;
    const noBroker = await s.get('/healthz');
    expect(noBroker.status).toBe(503);
    expect(noBroker.body).toMatchObject({ status: 'degraded', store: { ok: true }, broker: { connected: false } });
  });

  it('a health source that fails is 503 {"status":"degraded"}', async () => {
    const s = await serve(() => {
      throw new Error('boom');
    });
    const r = await s.get('/healthz');
    expect({ status: r.status, body: r.body }).toEqual({ status: 503, body: { status: 'degraded' } });
  });
});

describe('cachedProbe', () => {
  it('a probe that does not answer within timeoutMs is a failure; a stale outcome is refreshed in the background', async () => {
    let answer: 'hang' | 'ok' = 'hang';
    const probe = cachedProbe(() => (answer === 'hang' ? new Promise<number>(() => undefined) : Promise.resolve(7)), {
      ttlMs: 50,
      timeoutMs: 100,
    });
    const t0 = Date.now();
    expect(await probe()).toEqual({ ok: false });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    answer = 'ok';
    await new Promise((r) => setTimeout(r, 60));
    const t1 = Date.now();
    expect(await probe()).toEqual({ ok: false }); // the last outcome at once; a refresh starts
    expect(Date.now() - t1).toBeLessThan(50);
    await new Promise((r) => setTimeout(r, 20));
    expect(await probe()).toEqual({ ok: true, value: 7 });
  });
});

describe('GET /metrics in a cluster', () => {
  it('every sample carries the node label; the cluster metrics are served', async () => {
    const s = await serve(undefined, 'node-b');
    s.metrics.brokerConnected.set(1);
    s.metrics.clusterNodes.set(3);
    s.metrics.messagesIn.inc({ source: 'http' });
    const text = (await s.get('/metrics')).text;
    const samples = text.split('\n').filter((l) => l.startsWith('hubcast_'));
    expect(samples.length).toBeGreaterThan(20);
    expect(samples.filter((l) => !/\{(.*,)?node="node-b"(,.*)?\} /.test(l))).toEqual([]);
    expect(text).toContain('hubcast_broker_connected{node="node-b"} 1');
    expect(text).toContain('hubcast_cluster_nodes{node="node-b"} 3');
    expect(text).toContain('hubcast_broker_dropped_total{node="node-b"} 0');
    expect(text).toContain('hubcast_cluster_gap_fills_total{node="node-b"} 0');
    expect(text).toContain('hubcast_messages_in_total{source="http",node="node-b"} 1');
  });
});
