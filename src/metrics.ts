import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** The Prometheus metrics of one server instance (its own registry: several servers may share a process). */
export function createMetrics() {
  const registry = new Registry();
  // prom-client's names already start with `process_` or `nodejs_`: the prefix only adds `hubcast_`
  // (hubcast_process_cpu_seconds_total, hubcast_nodejs_eventloop_lag_seconds).
  collectDefaultMetrics({ register: registry, prefix: 'hubcast_' });
  const opts = { registers: [registry] };
  return {
    registry,
    connections: new Gauge({ name: 'hubcast_connections', help: 'Open consumer WebSocket connections.', ...opts }),
    messagesIn: new Counter({
      name: 'hubcast_messages_in_total',
      help: 'Messages published (not counting de-duplicated repeats), by source: http (POST /entity), ws (a consumer publish), api (server.publish()), connector:postgres, connector:amqp and so on (one per connector type).',
      labelNames: ['source'],
      ...opts,
    }),
    messagesOut: new Counter({
      name: 'hubcast_messages_out_total',
      help: 'Deliveries to consumers by live fan-out (one per connection per message).',
      ...opts,
    }),
    replayed: new Counter({ name: 'hubcast_messages_replayed_total', help: 'Messages replayed to consumers from history.', ...opts }),
    authFailures: new Counter({
      name: 'hubcast_auth_failures_total',
      help: 'Rejected credentials, by reason: missing, malformed, unknown, expired, revoked, client_mismatch (tokens and tickets), invalid_client (POST /consumers), invalid_key (ingest), timeout (authentication deadline), rate_limited (refused by the failure budget).',
      labelNames: ['reason'],
      ...opts,
    }),
    duplicateRejections: new Counter({
      name: 'hubcast_duplicate_rejections_total',
      help: 'Upgrades rejected with 409 duplicate_connection (a second connection for a live token).',
      ...opts,
    }),
    forbiddenSends: new Counter({
      name: 'hubcast_forbidden_sends_total',
      help: 'Consumers closed with 4501 for sending what they may not.',
      ...opts,
    }),
    slowConsumers: new Counter({
      name: 'hubcast_slow_consumers_total',
      help: 'Consumers closed with 4001 for exceeding the outbound buffer cap.',
      ...opts,
    }),
    requestRateCloses: new Counter({
      name: 'hubcast_request_rate_closes_total',
      help: 'Consumers closed with 4002 for exceeding their request rate (ws.requests).',
      ...opts,
    }),
    connectorRecords: new Counter({
      name: 'hubcast_connector_records_total',
      help: 'Records a connector took from its source, by connector name.',
      labelNames: ['connector'],
      ...opts,
    }),
    connectorDeadLetters: new Counter({
      name: 'hubcast_connector_dead_letters_total',
      help: 'Records a connector put in the dead-letter store (hubcast dlq), by connector name.',
      labelNames: ['connector'],
      ...opts,
    }),
    ingestRequests: new Counter({
      name: 'hubcast_ingest_requests_total',
      help: 'POST /entity requests, by HTTP status.',
      labelNames: ['status'],
      ...opts,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

interface ConnectorView {
  name: string;
  type: string;
  status: string;
  last_record_at: string | null;
  lag_s: number | null;
}

/** Connector state, last record time and lag, read from the runtime at scrape time. */
export function watchConnectors(metrics: Metrics, list: () => ConnectorView[]): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'hubcast_connector_up',
    help: '1 while the connector is running (connected to its source), else 0; status: starting, running, retrying, failed or stopped (as in GET /connectors).',
    labelNames: ['connector', 'type', 'status'],
    registers,
    collect() {
      this.reset();
      for (const c of list()) this.set({ connector: c.name, type: c.type, status: c.status }, c.status === 'running' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hubcast_connector_last_record_timestamp_seconds',
    help: 'When the connector last handed a record to Hubcast (Unix time).',
    labelNames: ['connector'],
    registers,
    collect() {
      this.reset();
      for (const c of list()) if (c.last_record_at) this.set({ connector: c.name }, Date.parse(c.last_record_at) / 1000);
    },
  });
  new Gauge({
    name: 'hubcast_connector_lag_seconds',
    help: 'Time from the last record’s source timestamp to its acceptance (sources that give one).',
    labelNames: ['connector'],
    registers,
    collect() {
      this.reset();
      for (const c of list()) if (c.lag_s !== null) this.set({ connector: c.name }, c.lag_s);
    },
  });
}
