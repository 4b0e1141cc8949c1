import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Alerts } from './alerts/alerts.ts';

/**
 * The Prometheus metrics of one server instance (its own registry: several servers may share a
 * process). With `nodeId`, every sample carries the label `node="<nodeId>"`, so that the series of
 * a cluster's nodes stay apart wherever they are scraped or aggregated.
 */
export function createMetrics(nodeId?: string) {
  const registry = new Registry();
  if (nodeId !== undefined) registry.setDefaultLabels({ node: nodeId });
  // prom-client's names already start with `process_` or `nodejs_`: the prefix only adds `hubcast_`
  // (hubcast_process_cpu_seconds_total, hubcast_nodejs_eventloop_lag_seconds).
  collectDefaultMetrics({ register: registry, prefix: 'hubcast_' });
  const opts = { registers: [registry] };
  return {
    registry,
    connections: new Gauge({ name: 'hubcast_connections', help: 'Open consumer WebSocket connections.', ...opts }),
    messagesIn: new Counter({
      name: 'hubcast_messages_in_total',
      help: 'Messages published (not counting de-duplicated repeats), by source: http (POST /entity), ws (a consumer publish), api (server.publish()), admin (a test message from the admin API), connector:postgres, connector:amqp and so on (one per connector type).',
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
    ingestDuration: new Histogram({
      name: 'hubcast_ingest_duration_seconds',
      help: 'Time to answer each ingest request (the routes behind ingest.allow and the ingest key: POST /entity and the like), from its arrival to its answer (for a 202: the message committed to history), whatever the status.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      ...opts,
    }),
    alertEvents: new Counter({
      name: 'hubcast_alert_events_total',
      help: 'Alert events raised, by kind (invalid_token, store_unavailable, source_unreachable…; docs/operations.md), before they are grouped into digests.',
      labelNames: ['kind'],
      ...opts,
    }),
    brokerConnected: new Gauge({
      name: 'hubcast_broker_connected',
      help: '1 while this node is connected to its broker (broker.type memory: always), else 0 — then other nodes’ publications reach this node’s consumers only once it is back, from history.',
      ...opts,
    }),
    brokerDropped: new Counter({
      name: 'hubcast_broker_dropped_total',
      help: 'Publications this node stored but could not hand to the broker because it was down (other nodes read them from history after their gap or reconnect: nothing acknowledged is lost).',
      ...opts,
    }),
    clusterGapFills: new Counter({
      name: 'hubcast_cluster_gap_fills_total',
      help: 'Gaps in a topic’s offsets (a publication the broker lost or delivered late) that this node filled by reading history, so that consumers still got every message once, in order.',
      ...opts,
    }),
    clusterNodes: new Gauge({
      name: 'hubcast_cluster_nodes',
      help: 'Live nodes of the cluster (holding a presence lease) as this node last saw them, itself included.',
      ...opts,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** `alerts`, counting every event raised in `hubcast_alert_events_total` on its way. */
export function countAlerts(metrics: Metrics, alerts: Alerts): Alerts {
  return {
    raise: (e) => {
      metrics.alertEvents.inc({ kind: e.kind });
      alerts.raise(e);
    },
    start: () => alerts.start(),
    close: () => alerts.close(),
  };
}

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
    help: '1 while the connector is running (connected to its source), else 0; status: starting, running, retrying, failed, stopped or standby (in a cluster: another node holds its lease and runs it), as in GET /connectors.',
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

/**
 * Rates for the admin API (`/admin/api/overview`, `/admin/api/topics`): per-second averages over the
 * last `windowS` seconds, from one-second buckets, of this node's publications (overall and per
 * topic), deliveries and connections opened. Counting is a few Map and array operations; a shared,
 * unref'd timer moves the window every second. Memory is bounded: at most `maxTopics` topics are
 * tracked at once (further ones are counted only overall), and a topic quiet for a whole window is
 * forgotten.
 */
export class RateMeter {
  readonly #windowS: number;
  readonly #maxTopics: number;
  /** Ring of per-second buckets; `#head` is the second being counted now. */
  readonly #totals = { published: [] as number[], delivered: [] as number[], connects: [] as number[] };
  readonly #topics = new Map<string, number[]>();
  #head = 0;
  /** Completed buckets so far (the divisor while the node is younger than the window). */
  #filled = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { windowS?: number; maxTopics?: number } = {}) {
    this.#windowS = opts.windowS ?? 10;
    this.#maxTopics = opts.maxTopics ?? 10_000;
    for (const ring of Object.values(this.#totals)) ring.push(...new Array<number>(this.#windowS + 1).fill(0));
  }

  start(): void {
    this.#timer ??= setInterval(() => this.tick(), 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  published(topic: string): void {
    this.#totals.published[this.#head]!++;
    let ring = this.#topics.get(topic);
    if (!ring) {
      if (this.#topics.size >= this.#maxTopics) return;
      this.#topics.set(topic, (ring = new Array<number>(this.#windowS + 1).fill(0)));
    }
    ring[this.#head]!++;
  }

  delivered(n: number): void {
    this.#totals.delivered[this.#head]! += n;
  }

  connected(): void {
    this.#totals.connects[this.#head]!++;
  }

  /** Moves the window one second on (the timer calls it; tests may too). */
  tick(): void {
    const next = (this.#head + 1) % (this.#windowS + 1);
    for (const ring of Object.values(this.#totals)) ring[next] = 0;
    for (const [topic, ring] of this.#topics) {
      ring[next] = 0;
      if (ring.every((n) => n === 0)) this.#topics.delete(topic);
    }
    this.#head = next;
    this.#filled = Math.min(this.#windowS, this.#filled + 1);
  }

  /** Per-second average over the completed seconds of the window (the current one is not counted). */
  rate(what: 'published' | 'delivered' | 'connects'): number {
    return this.#average(this.#totals[what]);
  }

  topicRate(topic: string): number {
    const ring = this.#topics.get(topic);
    return ring ? this.#average(ring) : 0;
  }

  #average(ring: number[]): number {
    if (this.#filled === 0) return 0;
    let sum = 0;
    for (let i = 0; i < ring.length; i++) if (i !== this.#head) sum += ring[i]!;
    return Math.round((sum / this.#filled) * 100) / 100;
  }
}
