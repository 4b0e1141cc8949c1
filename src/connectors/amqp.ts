import { z } from 'zod';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import { decode, fieldsHash, type Format } from './payload.ts';
import { FatalSourceError, type Connector, type ConnectorContext, type SourceRecord } from './connector.ts';

/**
 * `amqp`: consume a RabbitMQ (AMQP 0-9-1) queue, or bind a queue to an exchange with routing keys.
 *
 * Guarantees: deliveries are emitted strictly in delivery order, in small batches of what has
 * arrived; each is acked (multiple, up to the last of a batch) only after `ctx.emit` resolved. A
 * rejected emit nacks everything outstanding with requeue and throws, so the supervisor reconnects.
 *
 * Keys: the message's `messageId` property when the producer set one. Otherwise a SHA-256 of
 * (exchange, routing key, body, timestamp property): delivery tags are per channel and change on
 * redelivery, so they cannot be keys. Two identical bodies on the same routing key without a
 * messageId or timestamp therefore share a key and the second is deduplicated: producers should set
 * `messageId`.
 */

export const settings = z
  .object({
    url: z
      .string()
      .url()
      .default('amqp://127.0.0.1:5672')
      .describe('Broker URL, amqp:// or amqps:// (credentials guest/guest when absent). Never logged.'),
    queue: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe('Queue to consume. With `exchange`: a named durable queue bound to it (survives reconnects).'),
    exchange: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe('Exchange to bind to. Without `queue`: an exclusive auto-delete queue (messages sent while disconnected are lost).'),
    exchangeType: z
      .enum(['topic', 'direct', 'fanout', 'headers'])
      .default('topic')
      .describe('Type used when asserting `exchange` (declare: true).'),
    routingKeys: z
      .array(z.string().max(255))
      .min(1)
      .optional()
      .describe("Binding keys for `exchange` (default ['#']: everything on a topic exchange)."),
    prefetch: z.number().int().min(1).max(65_535).default(100).describe('Unacknowledged deliveries the broker may send ahead.'),
    declare: z
      .boolean()
      .default(true)
      .describe('Assert the queue (durable) and exchange; false: they must exist (a missing one is a fatal error).'),
    format: z
      .enum(['auto', 'json', 'text', 'binary'])
      .default('auto')
      .describe('Body decoding. auto: JSON if content-type is application/json or the body parses, else UTF-8 text, else binary.'),
  })
  .strict();

export type AmqpSettings = z.output<typeof settings>;
export type AmqpConfig = CommonConnectorConfig & AmqpSettings;

const BATCH_MAX = 64;
const CONNECT_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2_000;

export function create(cfg: AmqpConfig, deps: { log: Logger }): Connector {
  if (cfg.queue === undefined && cfg.exchange === undefined)
    throw new TypeError(`connector ${cfg.name}: amqp needs \`queue\`, or \`exchange\` (with \`routingKeys\`)`);
  if (cfg.routingKeys !== undefined && cfg.exchange === undefined)
    throw new TypeError(`connector ${cfg.name}: amqp \`routingKeys\` needs \`exchange\``);
  const log = deps.log;
  return {
    name: cfg.name,
    type: 'amqp',
    run: (ctx) => run(cfg, ctx, log),
  };
}

async function run(cfg: AmqpConfig, ctx: ConnectorContext, log: Logger): Promise<void> {
  const { signal } = ctx;
  if (signal.aborted) return;
  const amqp = await import('amqplib');

  let conn: ChannelModel | undefined;
  let ch: Channel | undefined;
  let failure: Error | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;
  const nudge = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (err: Error) => {
    if (stopping || failure) return;
    failure = err;
    nudge();
  };
  signal.addEventListener('abort', nudge, { once: true });

  try {
    conn = await abortable(
      amqp.connect(cfg.url, { timeout: CONNECT_TIMEOUT_MS }).catch((err: unknown) => {
        throw classify(err, 'connect');
      }),
      signal,
      (late) => void late.close().catch(() => {}),
    );
    if (!conn) return;
    conn.on('error', (err: Error) => fail(err));
    conn.on('close', (err?: Error) => fail(err ?? new Error('AMQP connection closed')));

    ch = await conn.createChannel();
    ch.on('error', (err: Error) => fail(err));
    ch.on('close', () => fail(new Error('AMQP channel closed')));
    const queue = await setup(cfg, ch).catch((err: unknown) => {
      throw classify(err, 'setup');
    });

    const pending: ConsumeMessage[] = [];
    const { consumerTag } = await ch.consume(
      queue,
      (msg) => {
        if (msg === null) fail(new Error(`AMQP consumer on queue ${queue} was cancelled by the broker`));
        else {
          pending.push(msg);
          nudge();
        }
      },
      { noAck: false },
    );
    ctx.connected();
    log.info({ queue, exchange: cfg.exchange }, 'amqp consuming');

    const decoder = { format: cfg.format, log: ctx.log };
    while (!signal.aborted) {
      if (failure) throw failure;
      if (pending.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const batch = pending.splice(0, BATCH_MAX);
      const records = batch.map((m) => toRecord(m, queue, decoder));
      const result = await abortable(
        ctx.emit(records).then(
          () => ({ ok: true as const }),
          (err: unknown) => ({ ok: false as const, err }),
        ),
        signal,
      );
      // Aborted mid-emit: nothing is acked; closing the channel requeues, the key deduplicates.
      if (!result) return;
      if (!result.ok) {
        try {
          ch.nackAll(true);
        } catch {
          // the channel is gone: the broker requeues unacked deliveries anyway
        }
        throw result.err;
      }
      if (failure) throw failure;
      ch.ack(batch[batch.length - 1]!, true);
    }
    stopping = true;
    await bounded(ch.cancel(consumerTag));
  } finally {
    stopping = true;
    signal.removeEventListener('abort', nudge);
    if (ch) await bounded(ch.close());
    if (conn) await bounded(conn.close());
  }
}

/** Declares or checks what the settings name; returns the queue to consume. */
async function setup(cfg: AmqpConfig, ch: Channel): Promise<string> {
  await ch.prefetch(cfg.prefetch);
  if (cfg.exchange !== undefined) {
    if (cfg.declare) await ch.assertExchange(cfg.exchange, cfg.exchangeType, { durable: true });
    else await ch.checkExchange(cfg.exchange);
  }
  let queue: string;
  if (cfg.queue !== undefined) {
    if (cfg.declare) await ch.assertQueue(cfg.queue, { durable: true });
    else await ch.checkQueue(cfg.queue);
    queue = cfg.queue;
  } else {
    queue = (await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false })).queue;
  }
  if (cfg.exchange !== undefined) for (const key of cfg.routingKeys ?? ['#']) await ch.bindQueue(queue, cfg.exchange, key);
  return queue;
}

/** Errors retrying cannot fix become FatalSourceError; everything else stays retryable. */
function classify(err: unknown, phase: 'connect' | 'setup'): unknown {
  const e = err as { code?: unknown; message?: unknown };
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.code === 403 || /\b403 \(ACCESS-REFUSED\)/.test(msg))
    return new FatalSourceError(`AMQP access refused (check the credentials and permissions): ${msg}`, { cause: err });
  // A closed handshake without a reply code is a refused virtual host (530 NOT_ALLOWED).
  if (e?.code === 530 || (phase === 'connect' && /Expected ConnectionOpenOk/.test(msg)))
    return new FatalSourceError(`AMQP virtual host refused or missing: ${msg}`, { cause: err });
  if (phase === 'setup' && e?.code === 404)
    return new FatalSourceError(`AMQP queue or exchange not found (declare: false?): ${msg}`, { cause: err });
  if (phase === 'setup' && e?.code === 406)
    return new FatalSourceError(`AMQP queue or exchange exists with other arguments: ${msg}`, { cause: err });
  return err;
}

function toRecord(m: ConsumeMessage, queue: string, decoder: { format: Format; log: Logger }): SourceRecord {
  const { exchange, routingKey, redelivered } = m.fields;
  const props = m.properties;
  const messageId = typeof props.messageId === 'string' && props.messageId.length > 0 ? props.messageId : undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries((props.headers ?? {}) as Record<string, unknown>)) if (typeof v === 'string') headers[k] = v;

  let key: string;
  if (messageId !== undefined && messageId.length <= 128) key = messageId;
  else if (messageId !== undefined) key = `sha256:${fieldsHash([messageId])}`;
  else {
    const ts = typeof props.timestamp === 'number' ? String(props.timestamp) : '';
    key = `sha256:${fieldsHash([exchange, routingKey, m.content, ts])}`;
  }

  const meta: Record<string, unknown> = { exchange, routingKey, queue, headers, redelivered };
  if (messageId !== undefined) meta.messageId = messageId;
  const decoded = decode(m.content, decoder.format, typeof props.contentType === 'string' ? props.contentType : undefined);
  if (decoded.error) {
    meta.error = decoded.error;
    decoder.log.warn({ key, routingKey, error: decoded.error }, 'amqp body does not match the configured format');
  }
  return { key, value: decoded.value, kind: decoded.kind, raw: m.content, meta };
}

/** Resolves with `p`, or with undefined as soon as `signal` aborts (a late value goes to `onLate`). */
function abortable<T>(p: Promise<T>, signal: AbortSignal, onLate?: (value: T) => void): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    let gaveUp = false;
    const onAbort = () => {
      gaveUp = true;
      resolve(undefined);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        if (gaveUp) onLate?.(v);
        else resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!gaveUp) reject(err);
      },
    );
  });
}

/** Waits for a cleanup step at most CLOSE_TIMEOUT_MS and never throws: the source may be gone. */
async function bounded(p: Promise<unknown>): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise<void>((resolve) => (t = setTimeout(resolve, CLOSE_TIMEOUT_MS).unref()))]);
  clearTimeout(t);
}
