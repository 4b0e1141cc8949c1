import { createHash } from 'node:crypto';
import type { JetStreamManager, JsMsg, Msg, MsgHdrs, NatsConnection } from 'nats';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import { decode } from './payload.ts';
import { FatalSourceError, type Connector, type ConnectorContext, type SourceRecord } from './connector.ts';

/**
 * The `nats` connector, two modes:
 *
 * - Core subjects (`subjects`): plain subscriptions, wildcards allowed. Core NATS is at-most-once by
 *   nature: a message published while Hubcast is disconnected, or lost in a crash before `emit`
 *   resolved, is gone. Use `jetstream` when every message matters.
 * - JetStream (`jetstream`): a durable pull consumer with explicit acks. A message is acked only after
 *   `emit` resolved; when `emit` rejects the batch is nak'ed (redelivered) and `run` throws.
 *
 * The client's own reconnect is off: a lost connection makes `run` throw and the supervisor
 * reconnects with its backoff, so retry counting and alerts live in one place.
 */

const NAME = /^[^.*>\s/\\]+$/;

export const settings = z
  .object({
    servers: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default('nats://127.0.0.1:4222')
      .describe('NATS server URL, or a list of them (tried in order).'),
    subjects: z
      .array(z.string().min(1))
      .default([])
      .describe('Core NATS subjects to subscribe to; wildcards * and > allowed. At-most-once: use jetstream for at-least-once.'),
    queue: z.string().min(1).optional().describe('Queue group for the core subscriptions (shares the messages among Hubcast instances).'),
    jetstream: z
      .object({
        stream: z
          .string()
          .regex(NAME, 'a stream name has no . * > / \\ or whitespace')
          .describe('Existing stream to consume (never created by Hubcast).'),
        durable: z
          .string()
          .regex(NAME, 'a durable name has no . * > / \\ or whitespace')
          .describe('Durable pull consumer name; created when missing.'),
        filterSubject: z.string().min(1).optional().describe('Only messages of the stream whose subject matches this filter.'),
        deliverPolicy: z
          .enum(['all', 'new', 'last', 'last_per_subject'])
          .default('all')
          .describe('Where a new durable starts (ignored once the durable exists).'),
        ackWaitS: z.number().positive().default(30).describe('Seconds before an unacknowledged message is redelivered.'),
        maxAckPending: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe('Messages in flight (delivered, not yet acked); 1 keeps strict order across reconnects.'),
      })
      .strict()
      .optional()
      .describe('Consume a JetStream stream through a durable consumer with explicit acks (at-least-once).'),
    user: z.string().min(1).optional().describe('User name for user/password authentication.'),
    pass: z.string().optional().describe('Password for user/password authentication; never logged.'),
    token: z.string().min(1).optional().describe('Token authentication; never logged.'),
    format: z
      .enum(['json', 'text', 'binary', 'auto'])
      .default('auto')
      .describe('Payload decoding. auto: JSON when it parses, else text when valid UTF-8, else binary.'),
  })
  .strict();

export type NatsSettings = z.output<typeof settings>;
export type NatsConnectorConfig = CommonConnectorConfig & NatsSettings;

/** Most records handed to one `emit` call. */
const MAX_BATCH = 256;
/** Core mode: messages waiting for `emit` beyond this are dropped (logged); core NATS is at-most-once. */
const MAX_BACKLOG = 10_000;
const FATAL_CODES = new Set(['AUTHORIZATION_VIOLATION', 'AUTHENTICATION_EXPIRED', 'PERMISSIONS_VIOLATION', 'ACCOUNT_EXPIRED']);
const NAK_DELAY_MS = 500;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

export function create(cfg: NatsConnectorConfig, deps: { log: Logger }): Connector {
  if (cfg.jetstream && cfg.subjects.length > 0)
    throw new ConfigError(`connectors.${cfg.name}: nats takes either subjects (core) or jetstream, not both`);
  if (!cfg.jetstream && cfg.subjects.length === 0) throw new ConfigError(`connectors.${cfg.name}: nats needs subjects (core) or jetstream`);
  if (cfg.queue && cfg.jetstream) throw new ConfigError(`connectors.${cfg.name}: queue applies to core subjects only`);
  if (cfg.token && cfg.user) throw new ConfigError(`connectors.${cfg.name}: nats takes token or user/pass, not both`);
  return {
    name: cfg.name,
    type: 'nats',
    async run(ctx) {
      if (ctx.signal.aborted) return;
      const nats = await import('nats');
      let nc: NatsConnection;
      try {
        nc = await nats.connect({
          servers: cfg.servers,
          ...(cfg.user ? { user: cfg.user, pass: cfg.pass ?? '' } : {}),
          ...(cfg.token ? { token: cfg.token } : {}),
          name: `hubcast-${cfg.name}`,
          reconnect: false,
          timeout: 10_000,
          // A half-open connection is noticed within about a minute.
          pingInterval: 20_000,
          maxPingOut: 3,
        });
      } catch (err) {
        throw classify(err, 'connect');
      }
      const session = new Session(nc, ctx, cfg.format);
      try {
        if (cfg.jetstream) await session.jetstream(nats, cfg.jetstream, deps.log);
        else await session.core(cfg.subjects, cfg.queue);
      } catch (err) {
        throw classify(err, cfg.jetstream ? 'jetstream' : 'subscribe');
      } finally {
        await session.close();
      }
    },
  };
}

type NatsModule = typeof import('nats');

/** Messages pushed by the client's callbacks, taken in order by the one loop that emits them. */
class Inbox<T> {
  items: T[] = [];
  error: Error | undefined;
  #wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.#wake?.();
  }

  fail(err: Error): void {
    this.error ??= err;
    this.#wake?.();
  }

  /** Resolves when items are waiting, a failure was reported or `signal` aborted. */
  wait(signal: AbortSignal): Promise<void> {
    if (this.items.length > 0 || this.error || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.#wake = undefined;
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.#wake = wake;
      signal.addEventListener('abort', wake, { once: true });
    });
  }
}

class Session {
  readonly #nc: NatsConnection;
  readonly #ctx: ConnectorContext;
  readonly #format: NatsSettings['format'];
  #closing = false;
  #onClosed: (() => void) | undefined;
  #inbox = new Inbox<never>();

  constructor(nc: NatsConnection, ctx: ConnectorContext, format: NatsSettings['format']) {
    this.#nc = nc;
    this.#ctx = ctx;
    this.#format = format;
    void nc.closed().then((err) => {
      if (!this.#closing) this.#inbox.fail(classify(err ?? new Error('NATS connection closed'), 'connection'));
    });
  }

  /** Core subscriptions: emit in arrival order; nothing to acknowledge. */
  async core(subjects: string[], queue: string | undefined): Promise<void> {
    const inbox = new Inbox<Msg>();
    this.#inbox = inbox as Inbox<never>;
    let dropped = 0;
    for (const subject of subjects) {
      this.#nc.subscribe(subject, {
        ...(queue ? { queue } : {}),
        callback: (err, msg) => {
          if (err) inbox.fail(classify(err, `subscribe ${subject}`));
          else if (inbox.items.length >= MAX_BACKLOG) dropped++;
          else inbox.push(msg);
        },
      });
    }
    // The server has registered the subscriptions (or reported a permissions violation) once this resolves.
    await this.#nc.flush();
    if (inbox.error) throw inbox.error;
    this.#ctx.connected();
    for (;;) {
      await inbox.wait(this.#ctx.signal);
      if (inbox.error) throw inbox.error;
      if (this.#ctx.signal.aborted) return;
      if (dropped > 0) {
        this.#ctx.log.warn({ dropped }, 'nats: backlog full, core messages dropped (use jetstream for at-least-once)');
        dropped = 0;
      }
      const records = inbox.items.splice(0, MAX_BATCH).map((m) => this.#record(m, coreKey(m)));
      // A rejected emit loses these (at-most-once): run throws and the supervisor reconnects.
      await this.#ctx.emit(records);
    }
  }

  /** JetStream durable pull consumer: ack after emit resolved, nak and throw when it rejects. */
  async jetstream(nats: NatsModule, js: NonNullable<NatsSettings['jetstream']>, log: Logger): Promise<void> {
    let jsm: JetStreamManager;
    try {
      jsm = await this.#nc.jetstreamManager();
    } catch (err) {
      if ((err as { code?: string }).code === '503')
        throw new FatalSourceError('JetStream is not enabled for this NATS account', { cause: err });
      throw err;
    }
    try {
      await jsm.streams.info(js.stream);
    } catch (err) {
      if (apiErrCode(err) === STREAM_NOT_FOUND) throw new FatalSourceError(`stream not found: ${js.stream}`, { cause: err });
      throw err;
    }
    await ensureConsumer(nats, jsm, js, log);
    const consumer = await this.#nc.jetstream().consumers.get(js.stream, js.durable);
    const inbox = new Inbox<JsMsg>();
    this.#inbox = inbox as Inbox<never>;
    const messages = await consumer.consume({
      max_messages: Math.min(js.maxAckPending, MAX_BATCH),
      abort_on_missing_resource: true,
      // Once closing, whatever still arrives goes straight back.
      callback: (m) => (this.#closing ? nakQuietly(m) : inbox.push(m)),
    });
    this.#onClosed = () => messages.stop();
    void messages.closed().then((err) => {
      if (!this.#closing) inbox.fail(err ?? new Error('JetStream consumer stopped'));
    });
    this.#ctx.connected();
    // Delivered but not acked when the loop ends: handed back (nak) in order (see nakQuietly).
    let unacked: JsMsg[] = [];
    try {
      for (;;) {
        await inbox.wait(this.#ctx.signal);
        if (inbox.error) throw inbox.error;
        if (this.#ctx.signal.aborted) return;
        const batch = inbox.items.splice(0, MAX_BATCH);
        unacked = batch;
        await this.#ctx.emit(
          batch.map((m) =>
            this.#record(m, `${js.stream}:${m.seq}`, {
              stream: js.stream,
              seq: m.seq,
              redelivered: m.redelivered,
              sourceTs: Math.floor(m.info.timestampNanos / 1e6),
            }),
          ),
        );
        for (const m of unacked.splice(0)) m.ack();
      }
    } finally {
      // No messages.stop(): it drops what is in flight, which would then wait out ackWait.
      this.#closing = true;
      for (const m of [...unacked, ...inbox.items.splice(0)]) nakQuietly(m);
    }
  }

  #record(m: Msg | JsMsg, key: string, extra: Record<string, unknown> = {}): SourceRecord {
    const body = Buffer.from(m.data);
    const decoded = decode(body, this.#format);
    const meta: Record<string, unknown> = {
      subject: m.subject,
      subjectTopic: subjectTopic(m.subject),
      headers: headerRecord(m.headers),
      ...extra,
    };
    if (decoded.error) {
      meta.error = decoded.error;
      this.#ctx.log.warn({ key, subject: m.subject, error: decoded.error }, 'nats payload does not match the configured format');
    }
    return { key, value: decoded.value, kind: decoded.kind, raw: body, meta };
  }

  /**
   * Drains (bounded) and closes the connection. Draining delivers what the server sent before our
   * unsubscribe to the callbacks (which nak it while closing) and flushes pending acks and naks.
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (!this.#nc.isClosed()) {
      await Promise.race([this.#nc.drain().catch(() => undefined), delay(2000)]);
      await this.#nc.close().catch(() => undefined);
    }
    this.#onClosed?.();
  }
}

async function ensureConsumer(
  nats: NatsModule,
  jsm: JetStreamManager,
  js: NonNullable<NatsSettings['jetstream']>,
  log: Logger,
): Promise<void> {
  const ackWait = nats.nanos(js.ackWaitS * 1000);
  let info;
  try {
    info = await jsm.consumers.info(js.stream, js.durable);
  } catch (err) {
    if (apiErrCode(err) !== CONSUMER_NOT_FOUND) throw err;
  }
  if (!info) {
    await jsm.consumers.add(js.stream, {
      durable_name: js.durable,
      ack_policy: nats.AckPolicy.Explicit,
      deliver_policy: js.deliverPolicy as never,
      ack_wait: ackWait,
      max_ack_pending: js.maxAckPending,
      ...(js.filterSubject ? { filter_subject: js.filterSubject } : {}),
    });
    return;
  }
  const c = info.config;
  if (c.deliver_subject)
    throw new FatalSourceError(`durable ${js.durable} on stream ${js.stream} is a push consumer; the nats connector needs a pull consumer`);
  if (c.ack_policy !== nats.AckPolicy.Explicit)
    throw new FatalSourceError(`durable ${js.durable} on stream ${js.stream} does not use explicit acks`);
  if (c.deliver_policy !== js.deliverPolicy)
    log.warn({ durable: js.durable, current: c.deliver_policy }, 'nats: deliverPolicy applies only when the durable is created');
  const filterChanged = (c.filter_subject ?? '') !== (js.filterSubject ?? '');
  if (c.ack_wait === ackWait && c.max_ack_pending === js.maxAckPending && !filterChanged) return;
  try {
    await jsm.consumers.update(js.stream, js.durable, {
      ack_wait: ackWait,
      max_ack_pending: js.maxAckPending,
      ...(filterChanged ? { filter_subject: js.filterSubject ?? '' } : {}),
    });
  } catch (err) {
    if (apiErrCode(err) !== undefined)
      throw new FatalSourceError(`cannot update durable ${js.durable}: ${(err as Error).message} (delete it or choose another name)`, {
        cause: err,
      });
    throw err;
  }
}

/** Core messages have no id unless the publisher set `Nats-Msg-Id`; else the content is the identity. */
function coreKey(m: Msg): string {
  const id = m.headers?.get('Nats-Msg-Id');
  if (id) return id;
  return `sha256:${createHash('sha256').update(m.subject).update('\0').update(m.data).digest('hex')}`;
}

/** The subject with every character a Hubcast topic segment cannot hold replaced by `_`. */
export function subjectTopic(subject: string): string {
  return subject
    .split('.')
    .map((s) => s.replace(/[^A-Za-z0-9_-]/g, '_') || '_')
    .join('.');
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.values(k).join(', ');
  return out;
}

function apiErrCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}

function classify(err: unknown, during: string): Error {
  if (err instanceof FatalSourceError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (err as { code?: string } | null)?.code;
  if (code && FATAL_CODES.has(code)) return new FatalSourceError(`NATS ${during}: ${e.message}`, { cause: err });
  return e;
}

/**
 * Hands a message back for redelivery after NAK_DELAY_MS. Not at once: the server would hand it
 * straight to this connection's open pull request, which is about to close, and it would then wait
 * out ackWait; after the delay the pull requests of the next run get it.
 */
function nakQuietly(m: JsMsg): void {
  try {
    m.nak(NAK_DELAY_MS);
  } catch {
    // The connection is gone: the server redelivers after ackWait.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
