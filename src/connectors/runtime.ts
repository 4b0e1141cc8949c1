import { deserialize, serialize } from 'node:v8';
import type { Alerts } from '../alerts/alerts.ts';
import type { Leases } from '../cluster/leases.ts';
import type { Clock } from '../core/clock.ts';
import { HubcastError } from '../core/errors.ts';
import { sha256 } from '../core/ids.ts';
import { jsonPayload, type PublishInput } from '../core/publisher.ts';
import { isValidTopic } from '../core/topics.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { Pipeline, type PipelineRecord } from '../pipeline/pipeline.ts';
import { compileTemplate, type Template } from '../pipeline/template.ts';
import type { PayloadKind } from '../store/store.ts';
import type { Connector, ConnectorContext, SourceRecord } from './connector.ts';
import { createConnector, type ConnectorConfig } from './index.ts';
import { LeasedWork } from './lease.ts';
import { ConnectorDb, type DeadLetter } from './local-db.ts';
import { scrubUrls, Supervisor, type ConnectorStatus } from './supervisor.ts';
import type { WebhookConnector } from './webhook.ts';

/** Where accepted records go: the publisher (in-process) or the gateway spool (`hubcast connect`). */
export interface RecordSink {
  /** Resolves once the record is durably accepted; rejects with a HubcastError (4xx: the record is bad). */
  publish(input: PublishInput): Promise<unknown>;
}

export interface ConnectorInfo {
  name: string;
  type: string;
  /** `standby`: in a cluster, another node holds this connector's lease and runs it. */
  status: ConnectorStatus | 'standby';
  /** In a cluster (leased connectors only): the node running it, as last seen; null when none is. */
  holder?: string | null;
  last_error: string | null;
  records_in: number;
  dead_letters: number;
  last_record_at: string | null;
  /** Seconds between the last record's source time (when the source gives one) and its acceptance. */
  lag_s: number | null;
  reconnect_attempts: number;
}

/** What became of the records of one `#emit` (an immediate dead-letter retry reports it). */
export interface EmitOutcome {
  published: { topic: string; offset: number }[];
  /** Records dead-lettered (again): their new dead-letter ids. */
  dead: { id: number; reason: string }[];
}

interface Entry {
  cfg: ConnectorConfig;
  connector: Connector;
  pipeline: Pipeline;
  topic: Template;
  /** The current (or, on standby, the last) run. */
  supervisor: Supervisor;
  /** Cluster mode: runs only while this node holds the lease. */
  lease: LeasedWork | undefined;
  recordsIn: number;
  deadLetters: number;
  lastRecordAt: number | null;
  lagMs: number | null;
}

const MAX_KEY = 200;

export interface RuntimeOptions {
  configs: readonly ConnectorConfig[];
  sink: RecordSink;
  dataDir: string;
  alerts: Alerts;
  log: Logger;
  clock: Clock;
  metrics?: Metrics;
  /**
   * Cluster mode: each connector runs only while this node holds its lease `connector:<name>` (see
   * cluster/leases.ts and lease.ts), so that it runs on one node of the cluster and fails over when
   * that node stops or dies. Webhook connectors are not leased: they answer the requests that reach
   * their node. Absent (one node): every connector runs here.
   */
  leases?: Leases;
  /** The lease holder: this node's `nodeId`. Required with `leases`. */
  nodeId?: string;
  /** The lease TTL, ms: `cluster.leaseS` × 1000. Default 10,000. */
  leaseMs?: number;
}

function encode(value: unknown, kind: PayloadKind | undefined): { kind: PayloadKind; payload: Buffer } {
  if (Buffer.isBuffer(value)) return { kind: 'binary', payload: value };
  if (kind === 'text' && typeof value === 'string') return { kind: 'text', payload: Buffer.from(value) };
  return { kind: 'json', payload: jsonPayload(value) };
}

/** A UTF-8 byte-order mark decoders skip but a JSON payload (inserted verbatim into frames) must not carry. */
const withoutBom = (b: Buffer, kind: PayloadKind) =>
  kind !== 'binary' && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b;

const kindOf = (r: SourceRecord): PayloadKind => r.kind ?? (Buffer.isBuffer(r.value) ? 'binary' : 'json');

/** A dead letter stored as bytes, as the source record it was (bytes kept as `raw`). */
function fromBytes(d: DeadLetter): SourceRecord {
  const value =
    d.kind === 'binary'
      ? d.value
      : d.kind === 'text'
        ? withoutBom(d.value, 'text').toString('utf8')
        : (JSON.parse(withoutBom(d.value, 'json').toString('utf8')) as unknown);
  return { key: d.key, value, kind: d.kind, raw: d.value, meta: d.meta };
}

/**
 * Runs the configured connectors: each under a Supervisor (retry, alerts), each record through its
 * pipeline into the sink (the one publish path), failures into the dead-letter store.
 */
export class ConnectorRuntime {
  readonly #entries = new Map<string, Entry>();
  readonly #o: RuntimeOptions;
  #db: ConnectorDb | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: RuntimeOptions) {
    if (opts.leases && !opts.nodeId) throw new TypeError('ConnectorRuntime: `leases` needs `nodeId` (the lease holder)');
    this.#o = opts;
  }

  get db(): ConnectorDb | undefined {
    return this.#db;
  }

  async start(): Promise<void> {
    const enabled = this.#o.configs.filter((c) => c.enabled);
    if (enabled.length === 0) return;
    this.#db = new ConnectorDb(this.#o.dataDir);
    for (const [i, cfg] of this.#o.configs.entries()) {
      if (!cfg.enabled) continue;
      const log = this.#o.log.child({ connector: cfg.name, type: cfg.type });
      const pipeline = new Pipeline(cfg.pipeline, { where: `connectors[${i}].pipeline`, connector: cfg.name });
      await pipeline.load();
      const connector = createConnector(cfg, { log });
      const state = this.#db.state(cfg.name);
      const entry: Entry = {
        cfg,
        connector,
        pipeline,
        topic: compileTemplate(cfg.topic),
        recordsIn: 0,
        deadLetters: 0,
        lastRecordAt: null,
        lagMs: null,
        supervisor: undefined as unknown as Supervisor,
        lease: undefined,
      };
      // A stopped Supervisor cannot start again: each run a lease allows gets its own.
      const supervise = () =>
        new Supervisor(connector, {
          retry: cfg.retry,
          alerts: this.#o.alerts,
          log,
          ctx: {
            emit: (records) => this.#emit(entry, records),
            state,
            log,
            alert: (detail) => this.#o.alerts.raise({ kind: 'source_refused', connector: cfg.name, detail }),
            ...(this.#o.leases ? { claim: clusterClaim(this.#o.leases, `connector:${cfg.name}:`) } : {}),
          },
        });
      entry.supervisor = supervise();
      const { leases, nodeId } = this.#o;
      if (leases && nodeId && cfg.type !== 'webhook') {
        let first = true;
        entry.lease = new LeasedWork({
          name: `connector:${cfg.name}`,
          leases,
          nodeId,
          ttlMs: this.#o.leaseMs ?? 10_000,
          log,
          start: () => {
            if (!first) entry.supervisor = supervise();
            first = false;
            entry.supervisor.start();
          },
          stop: () => entry.supervisor.stop(),
        });
      }
      this.#entries.set(cfg.name, entry);
    }
    const entries = [...this.#entries.values()];
    for (const e of entries) if (!e.lease) e.supervisor.start();
    await Promise.all(entries.map((e) => e.lease?.start()));
    this.#retryTimer = setInterval(() => void this.#retryDeadLetters(), 1000);
    this.#retryTimer.unref();
  }

  /** Stops every connector (un-acked records stay with their source), then releases the leases held. */
  async stop(): Promise<void> {
    clearInterval(this.#retryTimer);
    this.#stopped = true;
    await Promise.all([...this.#entries.values()].map((e) => (e.lease ? e.lease.close() : e.supervisor.stop())));
    this.#db?.close();
    this.#db = undefined;
  }

  webhook(name: string): WebhookConnector | undefined {
    const e = this.#entries.get(name);
    return e?.cfg.type === 'webhook' ? (e.connector as WebhookConnector) : undefined;
  }

  list(): ConnectorInfo[] {
    return [...this.#entries.values()].map((e) => ({
      name: e.cfg.name,
      type: e.cfg.type,
      status: e.lease && !e.lease.running ? (this.#stopped ? 'stopped' : 'standby') : e.supervisor.status,
      ...(e.lease ? { holder: e.lease.holder ?? null } : {}),
      last_error: e.supervisor.lastError ?? null,
      records_in: e.recordsIn,
      dead_letters: e.deadLetters,
      last_record_at: e.lastRecordAt === null ? null : new Date(e.lastRecordAt).toISOString(),
      lag_s: e.lagMs === null ? null : e.lagMs / 1000,
      reconnect_attempts: e.supervisor.attempts,
    }));
  }

  /**
   * Pipeline → publish for a batch; resolves when every record is stored or dead-lettered. With
   * `out`, says what became of them (an immediate dead-letter retry reports it).
   */
  async #emit(e: Entry, records: SourceRecord[], out?: EmitOutcome): Promise<void> {
    const pubs: Promise<void>[] = [];
    for (const r of records) {
      const meta = r.meta ?? {};
      let outs: PipelineRecord[];
      try {
        outs = await e.pipeline.run({ value: r.value, meta, ...(r.kind ? { kind: r.kind } : {}) });
      } catch (err) {
        this.#dead(e, r, err, out);
        continue;
      }
      outs.forEach((o, i) => {
        let input: PublishInput;
        try {
          input = this.#toPublish(e, r, o, i, outs.length);
        } catch (err) {
          this.#dead(e, r, err, out);
          return;
        }
        pubs.push(
          this.#o.sink.publish(input).then(
            (res) => {
              const offset = (res as { offset?: unknown } | undefined)?.offset;
              if (typeof offset === 'number') out?.published.push({ topic: input.topic, offset });
            },
            (err: unknown) => {
              // The key names the source record, which was published before: a pipeline whose output
              // differs per run ($now(), a lookup) made a different payload this time. The first
              // publication stands; this is a redelivery, not bad data.
              if (err instanceof HubcastError && err.code === 'idempotency_key_conflict')
                this.#o.log.warn(
                  { connector: e.cfg.name, record_key: r.key, topic: input.topic },
                  'redelivered record: its pipeline output differs from the first publication, which stands',
                );
              else if (err instanceof HubcastError && err.status < 500) this.#dead(e, r, err, out);
              else throw err;
            },
          ),
        );
      });
    }
    const settled = await Promise.allSettled(pubs);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const now = this.#o.clock.now();
    e.recordsIn += records.length;
    e.lastRecordAt = now;
    const sourceTs = records.at(-1)?.meta?.sourceTs;
    if (typeof sourceTs === 'number') e.lagMs = Math.max(0, now - sourceTs);
    this.#o.metrics?.connectorRecords.inc({ connector: e.cfg.name }, records.length);
  }

  #toPublish(e: Entry, r: SourceRecord, o: PipelineRecord, i: number, n: number): PublishInput {
    const topic = o.topic ?? e.topic(o.value, o.meta);
    if (!isValidTopic(topic)) throw new Error(`invalid topic "${String(topic).slice(0, 210)}"`);
    let key = `${e.cfg.name}:${r.key}${n > 1 ? `#${i}` : ''}`;
    if (key.length > MAX_KEY) key = `${e.cfg.name}:${sha256(key)}`;
    // Unchanged by the pipeline: the bytes as received, not a re-serialization of what they decoded to.
    const asReceived = r.raw !== undefined && o.value === r.value && e.pipeline.preservesValue;
    const body = asReceived ? { kind: kindOf(r), payload: withoutBom(r.raw!, kindOf(r)) } : encode(o.value, o.kind);
    return { topic, ...body, key, scope: `connector:${e.cfg.name}`, source: `connector:${e.cfg.type}` };
  }

  #dead(e: Entry, r: SourceRecord, err: unknown, out?: EmitOutcome): void {
    const reason = scrubUrls((err as Error)?.message ?? String(err)).slice(0, 1000);
    // The record as received, so that `hubcast dlq retry` reproduces it exactly: its bytes when the
    // source gave some; else its encoding; else (a BigInt, a cycle, nesting JSON cannot hold) a v8
    // serialization of the value itself.
    let stored: { kind: PayloadKind; payload: Buffer; format: 'bytes' | 'v8' };
    if (r.raw !== undefined) stored = { kind: kindOf(r), payload: r.raw, format: 'bytes' };
    else {
      try {
        stored = { ...encode(r.value, typeof r.value === 'string' ? 'text' : r.kind), format: 'bytes' };
      } catch {
        try {
          stored = { kind: kindOf(r), payload: serialize(r.value), format: 'v8' };
        } catch (v8err) {
          // A function or a symbol: nothing can hold it. Say so rather than store something else.
          const what = `(the record could not be stored: ${(v8err as Error).message})`;
          stored = { kind: 'text', payload: Buffer.from(what), format: 'bytes' };
        }
      }
    }
    const { kind, payload, format } = stored;
    const id = this.#db?.deadLetter({
      connector: e.cfg.name,
      key: r.key,
      kind,
      value: payload,
      format,
      meta: r.meta ?? {},
      reason,
      at: this.#o.clock.now(),
    });
    if (id !== undefined) out?.dead.push({ id, reason });
    e.deadLetters++;
    this.#o.metrics?.connectorDeadLetters.inc({ connector: e.cfg.name });
    this.#o.log.warn({ connector: e.cfg.name, record_key: r.key, reason }, 'record rejected by the pipeline: dead-lettered');
    this.#o.alerts.raise({ kind: 'pipeline_error', connector: e.cfg.name, detail: reason.slice(0, 200) });
  }

  /**
   * Retries one dead letter now (the admin API): through its connector's pipeline and the publish
   * path, as the pass for `hubcast dlq retry` does, and says what became of it. The row is taken; a
   * record that fails again is dead-lettered again, under a new id. `undefined`: no dead letter by
   * that id on this node (or no connectors run here); `no_connector`: its connector is not configured
   * any more (the row stays). A store that fails puts the row back and throws `unavailable`.
   */
  async retryDeadLetter(id: number): Promise<EmitOutcome | 'no_connector' | undefined> {
    const db = this.#db;
    const d = db?.findDeadLetter(id);
    if (!db || !d) return undefined;
    const e = this.#entries.get(d.connector);
    if (!e) return 'no_connector';
    if (!db.takeDeadLetter(id)) return undefined;
    const out: EmitOutcome = { published: [], dead: [] };
    let record: SourceRecord;
    try {
      record = d.format === 'v8' ? { key: d.key, value: deserialize(d.value), kind: d.kind, meta: d.meta } : fromBytes(d);
    } catch (err) {
      const reason = `retry failed: the stored record cannot be decoded: ${(err as Error).message}`;
      out.dead.push({ id: db.deadLetter({ ...d, reason }), reason });
      return out;
    }
    try {
      await this.#emit(e, [record], out);
    } catch (err) {
      const reason = `retry failed: ${(err as Error).message}`;
      db.deadLetter({ ...d, reason });
      throw new HubcastError('unavailable', 'the message store is unavailable; the dead letter was kept', { cause: err, retryAfterS: 1 });
    }
    return out;
  }

  /** Dead letters stored on this node now, per connector (empty when no connector runs here). */
  deadLetterCounts(): Map<string, number> {
    return this.#db?.countDeadLetters() ?? new Map();
  }

  /** Dead letters marked with `hubcast dlq retry` go through their connector's pipeline again. */
  async #retryDeadLetters(): Promise<void> {
    const db = this.#db;
    if (!db) return;
    let rows: DeadLetter[];
    try {
      rows = db.takeRetries();
    } catch (err) {
      this.#o.log.error({ err }, 'could not read the dead-letter store');
      return;
    }
    for (const d of rows) {
      const e = this.#entries.get(d.connector);
      if (!e) {
        db.deadLetter({ ...d, reason: `no running connector named ${d.connector}` });
        continue;
      }
      let record: SourceRecord;
      try {
        record = d.format === 'v8' ? { key: d.key, value: deserialize(d.value), kind: d.kind, meta: d.meta } : fromBytes(d);
      } catch (err) {
        db.deadLetter({ ...d, reason: `retry failed: the stored record cannot be decoded: ${(err as Error).message}` });
        continue;
      }
      try {
        await this.#emit(e, [record]);
      } catch (err) {
        db.deadLetter({ ...d, reason: `retry failed: ${(err as Error).message}` });
      }
    }
  }
}

/** `ConnectorContext.claim` on the cluster's Leases, its keys under the connector's own prefix. */
function clusterClaim(leases: Leases, prefix: string): NonNullable<ConnectorContext['claim']> {
  return {
    once: (key, ttlMs) => leases.claimOnce(prefix + key, ttlMs),
    undo: (key) => leases.unclaim(prefix + key),
  };
}
