import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** The Prometheus metrics of one server instance (its own registry: several servers may share a process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hubcast_process_' });
  const opts = { registers: [registry] };
  return {
    registry,
    connections: new Gauge({ name: 'hubcast_connections', help: 'Open consumer WebSocket connections.', ...opts }),
    messagesIn: new Counter({ name: 'hubcast_messages_in_total', help: 'Messages published, by source.', labelNames: ['source'], ...opts }),
    messagesOut: new Counter({ name: 'hubcast_messages_out_total', help: 'Message deliveries to consumers (live fan-out).', ...opts }),
    replayed: new Counter({ name: 'hubcast_messages_replayed_total', help: 'Messages replayed to consumers from history.', ...opts }),
    authFailures: new Counter({
      name: 'hubcast_auth_failures_total',
      help: 'Rejected credentials, by reason.',
      labelNames: ['reason'],
      ...opts,
    }),
    duplicateRejections: new Counter({
      name: 'hubcast_duplicate_rejections_total',
      help: 'Connections rejected as duplicates of a live token.',
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
    connectorRecords: new Counter({
      name: 'hubcast_connector_records_total',
      help: 'Records taken from sources, by connector.',
      labelNames: ['connector'],
      ...opts,
    }),
    connectorDeadLetters: new Counter({
      name: 'hubcast_connector_dead_letters_total',
      help: 'Records put in the dead-letter store, by connector.',
      labelNames: ['connector'],
      ...opts,
    }),
    ingestRequests: new Counter({
      name: 'hubcast_ingest_requests_total',
      help: 'POST /entity requests, by status.',
      labelNames: ['status'],
      ...opts,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
