import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Connector, ConnectorContext, SourceRecord } from '../../src/connectors/connector.ts';

export interface RecordingContextOptions {
  /** Shared durable state (pass the map of an earlier context to simulate a restart). */
  state?: Map<string, string>;
  /** Abort the context once this many records were accepted (emit still resolves: they are stored). */
  abortAfterRecords?: number;
  /** Called with each batch before it is accepted (e.g. to change the source mid-stream). */
  onEmit?: (batch: SourceRecord[]) => void | Promise<void>;
  /** The cluster-wide claim (cluster mode); absent as on a single node. */
  claim?: ConnectorContext['claim'];
}

export interface RecordingContext {
  /** The context to pass to `run`; its `signal` is the current one (see `renew`). */
  ctx: ConnectorContext;
  /** Every record accepted (emit resolved), in order, across runs. */
  records: SourceRecord[];
  /** Accepted batches, one per resolved emit. */
  batches: SourceRecord[][];
  /** Every emit call, accepted or rejected. */
  attempts: SourceRecord[][];
  /** The next emit (or, with `skip`, the one after `skip` accepted emits) rejects with `err`: its records are not accepted. */
  failNextEmit(err?: Error, skip?: number): void;
  state: Map<string, string>;
  readonly connectedCount: number;
  /** Parsed log lines. */
  logs: Record<string, unknown>[];
  /** Details of the `source_refused` alerts raised through `ctx.alert`. */
  alerts: string[];
  abort(reason?: unknown): void;
  /** A fresh signal for the next `run` (after an abort), keeping records, state and counters. */
  renew(): void;
  /** Resolves once `predicate()` holds; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
}

/** An in-memory ConnectorContext that records what a connector emits; the durable state is a Map. */
export function recordingContext(opts: RecordingContextOptions = {}): RecordingContext {
  const state = opts.state ?? new Map<string, string>();
  const records: SourceRecord[] = [];
  const batches: SourceRecord[][] = [];
  const attempts: SourceRecord[][] = [];
  const logs: Record<string, unknown>[] = [];
  const alerts: string[] = [];
  const failures: (Error | undefined)[] = [];
  let controller = new AbortController();
  let connectedCount = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);

  const ctx: ConnectorContext = {
    get signal() {
      return controller.signal;
    },
    state: {
      get: (k) => state.get(k),
      set: (k, v) => void state.set(k, v),
      delete: (k) => void state.delete(k),
      prune: (prefix, before) => {
        for (const [k, v] of state) if (k.startsWith(prefix) && Number(v) < before) state.delete(k);
      },
    },
    log,
    ...(opts.claim ? { claim: opts.claim } : {}),
    alert: (detail) => void alerts.push(detail),
    connected() {
      connectedCount++;
    },
    async emit(batch) {
      const copy = [...batch];
      attempts.push(copy);
      await new Promise((resolve) => setImmediate(resolve));
      await opts.onEmit?.(copy);
      const err = failures.shift();
      if (err) throw err;
      batches.push(copy);
      records.push(...copy);
      if (opts.abortAfterRecords !== undefined && records.length >= opts.abortAfterRecords) controller.abort(new Error('test abort'));
    },
  };

  return {
    ctx,
    records,
    batches,
    attempts,
    state,
    logs,
    alerts,
    get connectedCount() {
      return connectedCount;
    },
    failNextEmit(err = new Error('store unavailable'), skip = 0) {
      for (let i = 0; i < skip; i++) failures.push(undefined);
      failures.push(err);
    },
    abort(reason = new Error('test abort')) {
      controller.abort(reason);
    },
    renew() {
      controller = new AbortController();
    },
    async waitFor(predicate, timeoutMs = 5000, what = 'condition') {
      const until = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

/** The fields every connector config has, for building one in a test. */
export function commonFields(name: string, type: string, topic: string) {
  return { name, type, topic, pipeline: [], retry: { attempts: 10, initialMs: 200, maxMs: 30_000 }, enabled: true };
}

/** Runs the connector in the background; `stop()` aborts it and waits for run to return. */
export function runInBackground(c: Connector, rc: RecordingContext) {
  const done = c.run(rc.ctx);
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      rc.abort();
      await done;
    },
  };
}
