import type { FastifyInstance } from 'fastify';
import type { RecentAlerts } from '../../alerts/recent.ts';
import type { AuthFailures } from '../../auth/failures.ts';
import type { TokenService } from '../../auth/tokens.ts';
import type { Broker } from '../../broker/broker.ts';
import type { Presence } from '../../cluster/presence.ts';
import type { Config } from '../../config/schema.ts';
import type { ConnectorRuntime } from '../../connectors/runtime.ts';
import type { Clock } from '../../core/clock.ts';
import type { Publisher } from '../../core/publisher.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import type { Logger } from '../../logger.ts';
import type { RateMeter } from '../../metrics.ts';
import type { Store } from '../../store/store.ts';
import type { ProbeResult } from '../health.ts';
import { alertRoutes } from './alerts.ts';
import { AuditLog, auditRoutes } from './audit.ts';
import { clientRoutes } from './clients.ts';
import { ADMIN_BODY_LIMIT } from './common.ts';
import { connectionRoutes } from './connections.ts';
import { connectorRoutes } from './connectors.ts';
import { adminGuard } from './guard.ts';
import { keyRoutes } from './keys.ts';
import { overviewRoutes, overviewSource } from './overview.ts';
import { AdminStreams } from './stream.ts';
import { topicRoutes } from './topics.ts';

export interface AdminDeps {
  config: Config;
  store: Store;
  /** The admin entrance's failure budget. */
  failures: AuthFailures;
  runtime: ConnectorRuntime;
  presence: Presence;
  gateway: Gateway;
  tokens: TokenService;
  publisher: Publisher;
  broker: Broker;
  rates: RateMeter;
  recentAlerts: RecentAlerts;
  openAlertGroups: () => number;
  storeProbe: () => Promise<ProbeResult<unknown>>;
  startedAt: () => number | undefined;
  clock: Clock;
  nodeId: string;
  log: Logger;
}

/** What the server keeps of the admin routes: the streams to end on close, the audit trail. */
export interface AdminApi {
  streams: AdminStreams;
  audit: AuditLog;
}

/**
 * The admin routes (docs/http-api.md#admin-api): `/admin/api/…`, `GET /connectors` and
 * `GET /topics/<topic>/presence`, every one behind the guard (`admin.allow`, an admin-scope key, the
 * admin failure budget), with bodies of at most 64 KiB unless a route says otherwise. One file per
 * area; every action that changes something is audited (audit.ts).
 */
export function adminRoutes(app: FastifyInstance, d: AdminDeps): AdminApi {
  const audit = new AuditLog({ log: d.log, now: () => d.clock.now() });
  const overview = overviewSource(d);
  const streams = new AdminStreams({ gateway: d.gateway, overview, store: d.store, maxStreams: d.config.admin.maxStreams, log: d.log });
  const maxJsonDepth = d.config.limits.maxJsonDepth;
  app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.bodyLimit ??= ADMIN_BODY_LIMIT;
    });
    scope.addHook('onRequest', adminGuard({ allow: d.config.admin.allow, store: d.store, failures: d.failures }));
    overviewRoutes(scope, overview);
    const cluster = d.config.broker.type !== 'memory';
    clientRoutes(scope, {
      store: d.store,
      tokens: d.tokens,
      gateway: d.gateway,
      clock: d.clock,
      audit,
      maxJsonDepth,
      cluster: cluster ? { presence: d.presence, broker: d.broker, nodeId: d.nodeId, log: d.log } : undefined,
    });
    keyRoutes(scope, { store: d.store, clock: d.clock, audit, maxJsonDepth });
    connectionRoutes(scope, {
      gateway: d.gateway,
      presence: d.presence,
      broker: d.broker,
      nodeId: d.nodeId,
      cluster,
      audit,
    });
    topicRoutes(scope, {
      config: d.config,
      store: d.store,
      gateway: d.gateway,
      publisher: d.publisher,
      presence: d.presence,
      rates: d.rates,
      audit,
    });
    connectorRoutes(scope, { runtime: d.runtime, audit });
    alertRoutes(scope, d.recentAlerts);
    auditRoutes(scope, audit);
    streams.routes(scope);
  });
  return { streams, audit };
}
