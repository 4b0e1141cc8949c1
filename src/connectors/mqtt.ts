import { z } from 'zod';
import { Readable } from 'node:stream';
import type { IConnackPacket, IPublishPacket, IStore, MqttClient, Packet } from 'mqtt';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import { decode, fieldsHash, type Format } from './payload.ts';
import { FatalSourceError, type Connector, type ConnectorContext, type ConnectorState, type SourceRecord } from './connector.ts';

/**
 * `mqtt`: subscribe to MQTT topic filters (MQTT 3.1.1) with a persistent session, so QoS 1/2
 * messages published while Hubcast was away are delivered when it comes back.
 *
 * Guarantees: mqtt.js hands over one PUBLISH at a time (`handleMessage`) and reads the next packet
 * only after our callback, so records are emitted strictly in arrival order, one per emit, and the
 * callback (which sends PUBACK for QoS 1, PUBCOMP for QoS 2) is called only after `ctx.emit`
 * resolved. A rejected emit leaves the message unacknowledged and drops the connection; the broker
 * redelivers it in the next session. QoS 2: mqtt.js answers PUBREC at once and hands the message over
 * at PUBREL, so the message is kept in `ctx.state` in between (`StateStore`): a PUBREL that arrives
 * after a reconnect or a restart still finds it. QoS 0 is at most once.
 *
 * Keys: MQTT 3.1.1 packet ids are reused, so the key is a SHA-256 of (topic, payload), prefixed with
 * the payload's `id` field when it is JSON with one (for readability). Identical payloads on the same
 * topic therefore share a key and the second is deduplicated: producers should include an `id`
 * (or a timestamp / sequence number) in each payload.
 */

const topicFilter = z
  .string()
  .min(1)
  .max(65_535)
  .refine(isTopicFilter, 'an MQTT topic filter: levels split by /, + as a whole level, # only as the whole last level');

export const settings = z
  .object({
    url: z
      .string()
      .url()
      .default('mqtt://127.0.0.1:1883')
      .describe('Broker URL: mqtt://, mqtts://, ws:// or wss:// (credentials may be in it). Never logged.'),
    topics: z.array(topicFilter).min(1).describe('MQTT topic filters to subscribe to, e.g. sensors/+/temp or plant/#.'),
    qos: z
      .union([z.literal(0), z.literal(1), z.literal(2)])
      .default(1)
      .describe('Subscription QoS: 1 or 2 for at-least-once (acknowledged after Hubcast stored it); 0 is at most once.'),
    clientId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('MQTT client id, the key of the persistent session (default hubcast-<connector name>). Unique per broker.'),
    cleanSession: z.boolean().default(false).describe('true: no persistent session (messages published while disconnected are lost).'),
    username: z.string().optional().describe('User name, when the broker requires one.'),
    password: z.string().optional().describe('Password for `username`. Never logged.'),
    format: z
      .enum(['auto', 'json', 'text', 'binary'])
      .default('auto')
      .describe('Payload decoding. auto: JSON if the payload parses, else UTF-8 text, else binary.'),
  })
  .strict();

export type MqttSettings = z.output<typeof settings>;
export type MqttConfig = CommonConnectorConfig & MqttSettings;

const CONNECT_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2_000;
/** ctx.state key: the subscriptions made in the persistent session, to skip re-subscribing. */
const SUBS_STATE = 'mqtt.subscriptions';
/** CONNACK return codes (3.1.1) and reason codes (5) retrying cannot fix. */
const FATAL_CONNACK: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  4: 'bad user name or password',
  5: 'not authorized',
  132: 'unsupported protocol version',
  133: 'client identifier not valid',
  134: 'bad user name or password',
  135: 'not authorized',
  138: 'banned',
  140: 'bad authentication method',
};

export function create(cfg: MqttConfig, deps: { log: Logger }): Connector {
  if (cfg.password !== undefined && cfg.username === undefined)
    throw new TypeError(`connector ${cfg.name}: mqtt \`password\` needs \`username\``);
  const log = deps.log;
  return {
    name: cfg.name,
    type: 'mqtt',
    run: (ctx) => run(cfg, ctx, log),
  };
}

async function run(cfg: MqttConfig, ctx: ConnectorContext, log: Logger): Promise<void> {
  const { signal } = ctx;
  if (signal.aborted) return;
  const mqtt = await import('mqtt');
  const clientId = cfg.clientId ?? `hubcast-${cfg.name}`;

  let failure: Error | undefined;
  let stopping = false;
  let onStop!: () => void;
  // Settles when the connection fails or the connector is asked to stop.
  const stopped = new Promise<void>((resolve) => (onStop = resolve));
  const fail = (err: Error) => {
    if (stopping || failure) return;
    failure = err;
    onStop();
  };
  signal.addEventListener('abort', onStop, { once: true });
  /** `p`, unless the connection fails first (throws) or the connector stops (undefined). */
  const guard = async <T>(p: Promise<T>): Promise<T | undefined> => {
    const v = await Promise.race([p, stopped.then(() => undefined)]);
    if (failure) throw failure;
    return signal.aborted ? undefined : v;
  };

  let inflight: Promise<void> | undefined;
  // One message at a time: mqtt.js waits for `ack` before it reads the next packet.
  const handle = (packet: IPublishPacket, ack: () => void) => {
    if (stopping || failure) return; // never acknowledge after a failure: the broker redelivers
    let record: SourceRecord;
    try {
      record = toRecord(packet, cfg.format, ctx.log);
    } catch (err) {
      fail(err as Error);
      return;
    }
    inflight = ctx.emit([record]).then(
      () => {
        if (!stopping && !failure) ack();
      },
      (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
    );
  };

  const client: MqttClient = mqtt.connect(cfg.url, {
    clientId,
    clean: cfg.cleanSession,
    protocolVersion: 4,
    reconnectPeriod: 0, // the supervisor reconnects
    connectTimeout: CONNECT_TIMEOUT_MS,
    manualConnect: true,
    incomingStore: new StateStore(ctx.state),
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
  });
  client.handleMessage = (packet, callback) => handle(packet, () => callback());
  let connack: IConnackPacket | undefined;
  let onConnected!: () => void;
  const connectedP = new Promise<void>((resolve) => (onConnected = resolve));
  client.on('connect', (p) => {
    connack = p;
    onConnected();
  });
  client.on('error', (err) => fail(classifyConnect(err)));
  client.on('close', () => fail(new Error('MQTT connection closed')));
  client.on('disconnect', () => fail(new Error('MQTT broker sent DISCONNECT')));
  const timer = setTimeout(() => fail(new Error(`MQTT connect timed out after ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS + 1000);
  timer.unref();

  try {
    client.connect();
    await guard(connectedP);
    clearTimeout(timer);
    if (signal.aborted || !connack) return;
    await subscribe(cfg, client, connack, ctx, guard);
    if (signal.aborted) return;
    ctx.connected();
    log.info({ topics: cfg.topics, clientId, sessionPresent: connack.sessionPresent }, 'mqtt subscribed');
    await stopped;
    if (failure) throw failure;
  } finally {
    clearTimeout(timer);
    const graceful = !failure; // DISCONNECT keeps the session and suppresses a will
    stopping = true;
    signal.removeEventListener('abort', onStop);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, CLOSE_TIMEOUT_MS).unref();
      client.end(!graceful, {}, () => {
        clearTimeout(t);
        resolve();
      });
    });
    client.stream?.destroy();
    // A failed run returns only once its last emit settled: the next run must not emit beside it.
    if (!signal.aborted && inflight) await inflight;
  }
}

/**
 * Subscribes unless the broker kept a session holding exactly these subscriptions (re-subscribing
 * would resend every retained message); filters dropped from the config are unsubscribed.
 */
async function subscribe(
  cfg: MqttConfig,
  client: MqttClient,
  connack: IConnackPacket,
  ctx: ConnectorContext,
  guard: <T>(p: Promise<T>) => Promise<T | undefined>,
): Promise<void> {
  const clientId = cfg.clientId ?? `hubcast-${cfg.name}`;
  const wanted = [...new Set(cfg.topics)].sort();
  const signature = JSON.stringify({ clientId, qos: cfg.qos, topics: wanted });
  const prior = ctx.state.get(SUBS_STATE);
  if (!cfg.cleanSession && connack.sessionPresent && prior === signature) return;
  const map = Object.fromEntries(wanted.map((t) => [t, { qos: cfg.qos }]));
  try {
    const granted = await guard(client.subscribeAsync(map));
    if (granted === undefined) return;
    const refused = granted.filter((g) => (g.qos & 0x80) !== 0).map((g) => g.topic);
    if (refused.length > 0) throw Object.assign(new Error(`refused: ${refused.join(', ')}`), { code: 0x80 });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number' && code >= 0x80)
      throw new FatalSourceError(`MQTT broker refused the subscription (ACL?): ${(err as Error).message}`, { cause: err });
    throw err;
  }
  if (connack.sessionPresent && prior !== undefined) {
    let before: string[] = [];
    try {
      before = (JSON.parse(prior) as { topics?: string[] }).topics ?? [];
    } catch {
      // unreadable state: nothing to unsubscribe
    }
    const dropped = before.filter((t) => !wanted.includes(t));
    if (dropped.length > 0) await guard(client.unsubscribeAsync(dropped));
  }
  if (!cfg.cleanSession) ctx.state.set(SUBS_STATE, signature);
}

/**
 * mqtt.js's store for inbound QoS 2 messages between PUBREC and PUBREL, kept in the connector's
 * durable state instead of memory (entries live for one round trip, keyed by packet id).
 */
class StateStore implements IStore {
  readonly #state: ConnectorState;
  constructor(state: ConnectorState) {
    this.#state = state;
  }
  put(packet: Packet, cb: (err?: Error) => void): this {
    const p = packet as IPublishPacket;
    const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : Buffer.from(p.payload);
    this.#state.set(`mqtt.qos2.${p.messageId}`, JSON.stringify({ topic: p.topic, payload: payload.toString('base64'), retain: p.retain }));
    cb();
    return this;
  }
  get(packet: Pick<Packet, 'messageId'>, cb: (err?: Error, packet?: Packet) => void): this {
    const raw = this.#state.get(`mqtt.qos2.${packet.messageId}`);
    if (raw === undefined) {
      cb(new Error('missing packet'));
      return this;
    }
    const { topic, payload, retain } = JSON.parse(raw) as { topic: string; payload: string; retain: boolean };
    const pub: IPublishPacket = { cmd: 'publish', qos: 2, dup: false, retain, topic, payload: Buffer.from(payload, 'base64') };
    if (packet.messageId !== undefined) pub.messageId = packet.messageId;
    cb(undefined, pub);
    return this;
  }
  del(packet: Pick<Packet, 'messageId'>, cb: (err?: Error, packet?: Packet) => void): this {
    this.#state.delete(`mqtt.qos2.${packet.messageId}`);
    cb();
    return this;
  }
  createStream(): ReturnType<IStore['createStream']> {
    return Readable.from([]) as unknown as ReturnType<IStore['createStream']>; // only used for outgoing stores
  }
  close(cb: (err?: Error) => void): void {
    cb();
  }
}

function classifyConnect(err: Error): Error {
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'number' ? FATAL_CONNACK[code] : undefined;
  if (reason !== undefined) return new FatalSourceError(`MQTT broker refused the connection: ${reason} (code ${code})`, { cause: err });
  return err;
}

function toRecord(packet: IPublishPacket, format: Format, log: Logger): SourceRecord {
  const topic = packet.topic;
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
  const decoded = decode(payload, format);
  const hash = fieldsHash([topic, payload]);
  const id = decoded.kind === 'json' ? jsonId(decoded.value) : undefined;
  const key = id !== undefined ? `${id}:${hash.slice(0, 32)}` : `sha256:${hash}`;
  const meta: Record<string, unknown> = { topic, topicDots: topicDots(topic), qos: packet.qos, retain: packet.retain };
  if (decoded.error) {
    meta.error = decoded.error;
    log.warn({ key, topic, error: decoded.error }, 'mqtt payload does not match the configured format');
  }
  return { key, value: decoded.value, kind: decoded.kind, raw: payload, meta };
}

function jsonId(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const id = (value as { id?: unknown }).id;
  const s = typeof id === 'string' ? id : typeof id === 'number' && Number.isFinite(id) ? String(id) : undefined;
  return s !== undefined && s.length > 0 && s.length <= 100 ? s : undefined;
}

/** `sensors/room 1//temp` → `sensors.room_1._.temp`: usable in a Hubcast topic template. */
export function topicDots(topic: string): string {
  return topic
    .split('/')
    .map((level) => (level === '' ? '_' : level.replace(/[^A-Za-z0-9_-]/g, '_')))
    .join('.');
}

function isTopicFilter(filter: string): boolean {
  if (filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}
