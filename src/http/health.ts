import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics.ts';

/** What `GET /healthz` says about this node and its backends. */
export interface NodeHealth {
  /** `nodeId`. */
  node: string;
  /** `ok`: the store answered its last probe (see `cachedProbe`). */
  store: { type: string; ok: boolean };
  /** `connected`: the broker's connection is up (`Broker.connected`). */
  broker: { type: string; connected: boolean };
  /** Live nodes of the cluster, this one included (informational: not part of the verdict). */
  presence?: { nodes: number };
}

/** Gives the node's health; called on every `GET /healthz`, so it must be cheap (see `cachedProbe`). */
export type HealthSource = () => NodeHealth | Promise<NodeHealth>;

/**
 * GET /healthz and GET /metrics (Prometheus text format).
 *
 * Without `health`: `200 {"status":"ok"}` while the HTTP server runs (liveness). With it:
 * `{"status":"ok","node":…,"store":{…},"broker":{…}}` with 200 when the store is ok and the broker
 * connected, else the same JSON with `"status":"degraded"` and 503 — so that a load balancer sends
 * no traffic to a node that cannot serve it.
 */
export function healthRoutes(app: FastifyInstance, metrics: Metrics, health?: HealthSource): void {
  app.get('/healthz', async (_req, reply) => {
    if (!health) return { status: 'ok' };
    let h: NodeHealth;
    try {
      h = await health();
    } catch {
      return reply.code(503).send({ status: 'degraded' });
    }
    const ok = h.store.ok && h.broker.connected;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', ...h });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.header('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}

export interface ProbeResult<T> {
  ok: boolean;
  /** What the probe resolved with, when it did. */
  value?: T;
}

/**
 * Makes a backend probe (a `SELECT 1`, `presence.nodes()`) cheap enough for `/healthz` under load:
 * at most one call in flight; its outcome reused for `ttlMs` (default 1000); a call that has not
 * answered within `timeoutMs` (default 1000) is a failure. Only the very first call waits for the
 * probe; later ones get the latest outcome at once while a stale one is refreshed in the background,
 * so a verdict is at most `ttlMs + timeoutMs` old.
 */
export function cachedProbe<T>(
  probe: () => Promise<T>,
  opts: { ttlMs?: number; timeoutMs?: number; now?: () => number } = {},
): () => Promise<ProbeResult<T>> {
  const ttlMs = opts.ttlMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const now = opts.now ?? Date.now;
  let last: { result: ProbeResult<T>; at: number } | undefined;
  let inFlight: Promise<ProbeResult<T>> | undefined;
  const refresh = (): Promise<ProbeResult<T>> =>
    (inFlight ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      let result: ProbeResult<T>;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('probe timed out')), timeoutMs);
          timer.unref();
        });
        result = { ok: true, value: await Promise.race([Promise.resolve().then(probe), timeout]) };
      } catch {
        result = { ok: false };
      } finally {
        clearTimeout(timer);
      }
      last = { result, at: now() };
      inFlight = undefined;
      return result;
    })());
  return async () => {
    if (!last) return refresh();
    if (now() - last.at >= ttlMs) void refresh();
    return last.result;
  };
}
