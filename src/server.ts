import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { alertChannels, createAlerts, RecentAlerts } from './alerts/index.ts';
import { TokenService } from './auth/tokens.ts';
import { createBroker } from './broker/index.ts';
import { parseConfig } from './config/load.ts';
import type { Config, ConfigInput } from './config/schema.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { AuthFailures } from './auth/failures.ts';
import { FailureBudget, RateBuckets, sourceKey } from './core/rate-limit.ts';
import { Publisher, type PublishResult } from './core/publisher.ts';
import { Gateway } from './gateway/gateway.ts';
import { createHttpApp, registeredRoutes, type HttpRoute } from './http/app.ts';
import { clientBundleRoute } from './http/client-bundle.ts';
import { consumerRoutes } from './http/consumers.ts';
import { corsRoutes, originPolicy } from './http/cors.ts';
import { demoRoutes } from './http/demo.ts';
import { KeyCheck } from './auth/keys.ts';
import { entityRoutes } from './http/entity.ts';
import { cachedProbe, healthRoutes } from './http/health.ts';
import { hookRoutes } from './http/hooks.ts';
import { openApiRoute } from './http/openapi/index.ts';
import { adminRoutes } from './http/admin/index.ts';
import { adminPageRoutes } from './http/admin-page.ts';
import { ConnectorRuntime } from './connectors/runtime.ts';
import { readTlsFiles } from './http/tls.ts';
import { createLogger, type Logger } from './logger.ts';
import { countAlerts, createMetrics, RateMeter, watchConnectors, type Metrics } from './metrics.ts';
import { createBackend, type Backend } from './store/index.ts';
import { monitorStore } from './store/monitored.ts';
import { MemoryPresence } from './cluster/memory-presence.ts';
import { MemoryLeases } from './cluster/memory-leases.ts';
import { PresenceConflict } from './cluster/presence.ts';
import { randomId } from './core/ids.ts';
import { ConfigError } from './core/errors.ts';
import type { PayloadKind, Store } from './store/store.ts';
import type { Publication } from './broker/broker.ts';

export interface ServerOptions {
  /** Time source (tests inject one to move time). */
  clock?: Clock;
  logger?: Logger;
  /** Replaces the store built from config (tests), with the embedded Presence and Leases. */
  store?: Store;
  /** Replaces the whole storage backend built from config (tests). */
  backend?: Backend;
  /** How often revocations made by the CLI are picked up, ms (default 1000). */
  changePollMs?: number;
  /** The browser bundle served at GET /client.js (tests; default packages/client/dist/hubcast.min.js). */
  clientBundlePath?: string;
  /** The built admin dashboard served at GET /admin (tests; default dist/admin-page). */
  adminPageDir?: string;
}

export interface HubcastServer {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Opens the store, starts the broker, listens. Resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /**
   * Stops accepting (new requests 503, upgrades 503, then the port closes), lets in-flight requests
   * finish, closes consumers with 1001, flushes and closes the store. Bounded by `shutdown.graceS`:
   * consumers that ignore the close handshake are dropped after half of it, requests still running
   * near its end have their connections closed. Idempotent.
   */
  close(): Promise<void>;
  /**
   * Re-reads `tls.cert` and `tls.key` and serves new TLS connections with them; live connections
   * keep going. Rejects (keeping the current certificate) when a file is unreadable or invalid, or
   * when TLS is not configured.
   */
  reloadTls(): Promise<void>;
  address(): AddressInfo | null;
  /** The separate admin listener's address (`admin.listen.port`), or null when the admin routes share the main one. */
  adminAddress(): AddressInfo | null;
  /** Publishes through the same path as POST /entity. JSON values unless `kind` says otherwise. */
  publish(topic: string, data: unknown, opts?: { kind?: PayloadKind; key?: string }): Promise<PublishResult>;
  /** Live WebSocket connections on this node. */
  readonly connectionCount: number;
  /** The HTTP routes this server answers (method and path pattern), as registered; the WebSocket upgrade aside. */
  routes(): readonly HttpRoute[];
}

/**
 * The one programmatic entry point. Builds everything from a validated, frozen config; nothing
 * listens, opens files or connects before `listen()`.
 */
export function createServer(input: ConfigInput | Config = {}, options: ServerOptions = {}): HubcastServer {
  const config = parseConfig(input);
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? createLogger(config.logLevel);
  // A cluster's nodes label every sample with their nodeId; a single node's metrics stay unlabelled.
  const metrics = createMetrics(config.broker.type === 'memory' ? undefined : config.nodeId);
  const backend: Backend =
    options.backend ??
    (options.store
      ? { store: options.store, presence: new MemoryPresence(), leases: new MemoryLeases() }
      : createBackend(config, clock, log.child({ component: 'store' })));
  const { presence, leases } = backend;
  // One digest per window for the whole cluster (a shared claim); a single node needs none.
  const recentAlerts = new RecentAlerts({ channels: alertChannels(config), now: () => clock.now() });
  const alertManager = createAlerts(config, log.child({ component: 'alerts' }), {
    clock,
    ...(config.store.type === 'sqlite' ? {} : { leases }),
    recent: recentAlerts,
  });
  const alerts = countAlerts(metrics, alertManager);
  // This node's publications, deliveries and connections per second (the admin API).
  const rates = new RateMeter();
  const store = monitorStore(backend.store, (method, err) => {
    log.error({ err, method }, 'store call failed');
    alerts.raise({
      kind: 'store_unavailable',
      detail: `${method}: ${(err as { code?: string }).code ?? (err as Error).message ?? 'error'}`,
    });
  });
  const broker = createBroker(config, log.child({ component: 'broker' }));
  const nodeId = config.nodeId;
  const instanceId = randomId('i_');
  // Fan-out of this node's publications: every other node through the broker first, then this
  // node's own subscribers (the broker's echo, if any, is dropped by Positions). The local write is a
  // microtask queued after the broker's own flush (nats.js flushes in a microtask, ioredis at once),
  // so the other nodes are not kept waiting while this one writes to thousands of sockets.
  // Microtasks run in order: publications still reach Positions in the order they were committed.
  // The memory broker is this node.
  const fanout =
    config.broker.type === 'memory'
      ? (pub: Publication) => broker.publish(pub)
      : (pub: Publication) => {
          broker.publish(pub);
          queueMicrotask(() => {
            try {
              gw.positions.accept(pub);
            } catch (err) {
              log.error({ err, topic: pub.topic }, 'local fan-out failed');
            }
          });
        };
  const publisher = new Publisher({
    store,
    fanout: (pub) => {
      rates.published(pub.topic);
      fanout(pub);
    },
    clock,
    maxMessageBytes: config.limits.maxMessageBytes,
    maxJsonDepth: config.limits.maxJsonDepth,
    onPublished: (source) => metrics.messagesIn.inc({ source }),
  });
  // The token service asks the gateway whether a token is live; the gateway is built right after.
  const tokens = new TokenService({
    store,
    clock,
    idleTtlS: config.tokens.idleTtl,
    ticketTtlS: config.tickets.ttlS,
    maxPerClient: config.tokens.maxPerClient,
    isLive: async (hash) => (await presence.liveTokens([hash])).has(hash),
  });
  // Separate budgets of failed authentications per entrance, so that browsers failing behind a
  // proxy cannot throttle the backend's ingest from the same address (nor the reverse): consumer
  // entrances (POST /consumers, tickets, upgrades) share one; ingest and admin keys have their own.
  const clockNow = () => clock.now();
  const failuresOf = (limits: { perMinute: number; burst: number }, budget: string) =>
    new AuthFailures({
      budget: new FailureBudget({ ...limits, now: clockNow }),
      metrics,
      alerts,
      log: log.child({ component: 'auth', budget }),
    });
  const consumerFailures = failuresOf(config.limits.authFailures, 'consumer');
  const ingestFailures = failuresOf(config.limits.ingestAuthFailures, 'ingest');
  const adminFailures = failuresOf(config.limits.ingestAuthFailures, 'admin');
  const reg = config.limits.registrations;
  const registrations = {
    perClient: new RateBuckets({ perMinute: reg.perClientPerMinute, burst: reg.perClientBurst, now: clockNow }),
    perIp: new RateBuckets({ perMinute: reg.perIpPerMinute, burst: reg.perIpBurst, now: clockNow, keyOf: sourceKey }),
  };
  const gw: Gateway = new Gateway({
    config,
    store,
    tokens,
    publisher,
    metrics,
    log: log.child({ component: 'gateway' }),
    clock,
    nodeId,
    alerts,
    failures: consumerFailures,
    presence,
    broker,
    rates,
  });

  // Read (and checked) now: a missing or bad certificate stops start-up with a ConfigError naming the key.
  const tlsFiles = readTlsFiles(config.tls);
  const httpApp = () =>
    createHttpApp(log.child({ component: 'http' }), {
      ...(tlsFiles ? { https: { ...tlsFiles, handshakeTimeout: config.limits.headersTimeoutMs } } : {}),
      bodyLimit: config.limits.maxMessageBytes + 64 * 1024,
      isClosing: () => state === 'closed',
      onInternalError: (ref) => alerts.raise({ kind: 'internal_error', detail: `HTTP handler, ref ${ref}` }),
    });
  const app = httpApp();
  // `admin.listen.port`: the admin routes on a listener of their own, and none of them on the main one.
  const adminApp = config.admin.listen.port === null ? app : httpApp();
  const storeProbe = cachedProbe(() => store.getClient('healthz'));
  const nodesProbe = cachedProbe(() => presence.nodes());
  healthRoutes(app, metrics, async () => {
    const [s, n] = await Promise.all([storeProbe(), nodesProbe()]);
    if (n.ok) metrics.clusterNodes.set(n.value!.length);
    return {
      node: nodeId,
      store: { type: config.store.type, ok: s.ok },
      broker: { type: config.broker.type, connected: broker.connected },
      ...(n.ok ? { presence: { nodes: n.value!.length } } : {}),
    };
  });
  // CORS first: its hook must run before the routes' own (a refused origin is answered before any work).
  corsRoutes(app, originPolicy(config.ws.allowedOrigins), [
    { path: '/consumers/tickets', methods: ['POST'], refuse: true },
    { path: '/client.js', methods: ['GET'], refuse: false },
  ]);
  clientBundleRoute(app, options.clientBundlePath);
  openApiRoute(app);
  if (config.demo.enabled) demoRoutes(app);
  consumerRoutes(app, { config, store, tokens, failures: consumerFailures, registrations, log: log.child({ component: 'consumers' }) });
  const keys = new KeyCheck({ store, clock });
  entityRoutes(app, { config, keys, publisher, metrics, failures: ingestFailures, log: log.child({ component: 'ingest' }) });
  const runtime = new ConnectorRuntime({
    configs: config.connectors,
    sink: publisher,
    dataDir: config.dataDir,
    alerts,
    log: log.child({ component: 'connectors' }),
    clock,
    metrics,
    // One node runs each connector of a cluster (the lease); a single node needs none.
    ...(config.store.type === 'sqlite' ? {} : { leases, nodeId, leaseMs: config.cluster.leaseS * 1000 }),
  });
  watchConnectors(metrics, () => runtime.list());
  hookRoutes(app, runtime, { maxJsonDepth: config.limits.maxJsonDepth });
  let startedAt: number | undefined;
  const admin = adminRoutes(adminApp, {
    config,
    store,
    failures: adminFailures,
    runtime,
    presence,
    gateway: gw,
    tokens,
    publisher,
    broker,
    rates,
    recentAlerts,
    openAlertGroups: () => alertManager.groupCount,
    storeProbe,
    startedAt: () => startedAt,
    clock,
    nodeId,
    log: log.child({ component: 'admin' }),
  });
  // The dashboard: its page and assets hold no secret, so admin.allow alone guards them (docs/admin.md).
  adminPageRoutes(adminApp, { allow: config.admin.allow, ...(options.adminPageDir ? { dir: options.adminPageDir } : {}) });
  // Slow senders: complete headers within headersTimeoutMs (checked every half of it), whole requests within 30 s.
  const headersMs = config.limits.headersTimeoutMs;
  for (const a of new Set([app, adminApp]))
    Object.assign(a.server, {
      headersTimeout: headersMs,
      requestTimeout: Math.max(30_000, headersMs),
      connectionsCheckingInterval: Math.max(100, Math.floor(headersMs / 2)),
    });
  app.server.on('upgrade', (req, socket, head) => gw.handleUpgrade(req, socket, head));

  let timers: NodeJS.Timeout[] = [];
  let state: 'new' | 'listening' | 'closed' = 'new';
  let closing: Promise<void> | undefined;

  let droppedSeen = 0;
  const pollChanges = async () => {
    if (broker.dropped > droppedSeen) {
      metrics.brokerDropped.inc(broker.dropped - droppedSeen);
      droppedSeen = broker.dropped;
    }
    try {
      const changes = await store.pollChanges();
      if (changes.revokedKeys.length) keys.forgetAll();
      for (const clientId of changes.revokedClients) {
        tokens.forgetClient(clientId);
        const n = gw.closeClient(clientId);
        if (n) log.info({ client_id: clientId, connections: n }, 'client revoked: live connections closed with 4500');
      }
    } catch (err) {
      log.error({ err }, 'could not poll the store for revocations');
    }
  };
  const housekeeping = async () => {
    // The consumer budget is swept by the gateway's heartbeat; these here (their memory bound).
    ingestFailures.sweep();
    adminFailures.sweep();
    registrations.perClient.sweep();
    registrations.perIp.sweep();
    try {
      const now = clock.now();
      await store.trim(now);
      await store.deleteIdleTokens(now - config.tokens.idleTtl * 1000);
    } catch (err) {
      log.error({ err }, 'history trim failed');
    }
  };

  return {
    config,
    metrics,
    log,
    get connectionCount() {
      return gw.connectionCount;
    },
    routes: () => registeredRoutes(app),
    async listen() {
      if (state !== 'new') throw new Error('listen() may be called once');
      state = 'listening';
      await store.open();
      await alerts.start();
      try {
        await presence.start({
          nodeId,
          instanceId,
          address: `${config.host}:${config.port}`,
          leaseMs: config.cluster.leaseS * 1000,
          onLeaseLost: () => gw.fence(),
          onLeaseRegained: () => gw.unfence(),
          onReaped: (gone) => {
            log.warn(
              { node: gone.nodeId, subscriptions: gone.subscriptions.length },
              'a node stopped renewing its lease: its connections are free',
            );
            if (!config.cluster.presenceEvents) return;
            for (const s of gone.subscriptions)
              broker.control({
                op: 'presence',
                event: 'leave',
                topic: s.topic,
                clientId: s.clientId,
                connectionId: s.connectionId,
                nodeId: s.nodeId,
              });
          },
        });
      } catch (err) {
        if (err instanceof PresenceConflict) throw new ConfigError(`nodeId: ${err.message}`);
        throw err;
      }
      await broker.start(nodeId, gw.link);
      metrics.brokerConnected.set(1);
      if (config.broker.type === 'memory') {
        const others = (await presence.nodes()).filter((n) => n.nodeId !== nodeId);
        if (others.length)
          throw new ConfigError(
            `broker.type is memory but other nodes are live on this store (${others.map((n) => n.nodeId).join(', ')}): set broker.type to redis, nats or postgres on every node`,
          );
      }
      gw.start();
      await app.listen({ host: config.host, port: config.port });
      if (adminApp !== app) {
        await adminApp.listen({ host: config.admin.listen.host, port: config.admin.listen.port! });
        const a = adminApp.server.address() as AddressInfo;
        log.info({ host: a.address, port: a.port }, 'admin routes listening on their own port');
      }
      startedAt = clock.now();
      rates.start();
      await runtime.start();
      timers = [setInterval(() => void pollChanges(), options.changePollMs ?? 1000), setInterval(() => void housekeeping(), 60_000)];
      for (const t of timers) t.unref();
      void housekeeping();
      const addr = app.server.address() as AddressInfo;
      log.info(
        { host: addr.address, port: addr.port, dataDir: config.dataDir, store: config.store.type, broker: config.broker.type },
        'hubcast listening',
      );
      return addr;
    },
    close() {
      closing ??= (async () => {
        const wasListening = state === 'listening';
        state = 'closed';
        for (const t of timers) clearInterval(t);
        rates.stop();
        admin.streams.closeAll();
        if (!wasListening) return;
        const graceMs = config.shutdown.graceS * 1000;
        const deadline = Date.now() + graceMs;
        // New requests get 503 from here on (isClosing). Consumers get half of the grace period for
        // their close handshakes while in-flight requests run on; then the port closes and in-flight
        // requests get what is left, less a reserve for closing the store.
        await Promise.all([gw.close(Math.floor(graceMs / 2)), runtime.stop()]);
        const httpMs = Math.max(0, deadline - Date.now() - Math.min(1000, graceMs / 10));
        await Promise.all([...new Set([app, adminApp])].map((a) => closeHttp(a, httpMs, log)));
        await broker.close();
        await presence.close();
        await leases.close();
        await store.close();
        await alerts.close();
        log.info('hubcast stopped');
      })();
      return closing;
    },
    async reloadTls() {
      if (!tlsFiles) throw new Error('TLS is not configured (tls.cert, tls.key)');
      const files = readTlsFiles(config.tls)!;
      for (const a of new Set([app, adminApp])) (a.server as unknown as HttpsServer).setSecureContext({ cert: files.cert, key: files.key });
    },
    address() {
      const a = app.server.address();
      return a && typeof a === 'object' ? a : null;
    },
    adminAddress() {
      const a = adminApp === app ? null : adminApp.server.address();
      return a && typeof a === 'object' ? a : null;
    },
    publish(topic, data, opts = {}) {
      const kind = opts.kind ?? 'json';
      let payload: Buffer;
      if (kind === 'json') payload = Buffer.from(JSON.stringify(data));
      else payload = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
      return publisher.publish({ topic, kind, payload, key: opts.key, source: 'api' });
    },
  };
}

/**
 * Closes the HTTP server: stops listening and waits for in-flight requests, at most `ms`; then
 * closes the connections still open (their requests are cut short) and waits a little for the end.
 */
async function closeHttp(app: ReturnType<typeof createHttpApp>, ms: number, log: Logger): Promise<void> {
  const closed = app.close().then(() => true);
  const within = (t: number) => Promise.race([closed, new Promise<false>((resolve) => setTimeout(() => resolve(false), t).unref())]);
  if (await within(ms)) return;
  log.warn('in-flight HTTP requests did not finish within the shutdown grace period; closing their connections');
  app.server.closeAllConnections();
  await within(500);
}
