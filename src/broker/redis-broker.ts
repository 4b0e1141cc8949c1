import { Redis, type RedisOptions } from 'ioredis';
import { backoffMs } from '../alerts/delivery.ts';
import { isWildcard, matches } from '../core/topics.ts';
import type { Logger } from '../logger.ts';
import type { Broker, BrokerHandler, ControlMessage, Publication } from './broker.ts';
import {
  BOOT_TIMEOUT_MS,
  HEARTBEAT_MS,
  HEARTBEAT_TIMEOUT_MS,
  LinkState,
  RETRY_INITIAL_MS,
  RETRY_MAX_MS,
  describe,
  unreachable,
  withDeadline,
} from './link.ts';
import { EchoFilter, decodeControl, decodePublication, deliver, encodeControl, encodePublication, isEnvelope, nodeToken } from './wire.ts';

export interface RedisBrokerOptions {
  /** redis://[user:password@]host:port[/db] or rediss://… */
  url: string;
  /** Channel name prefix (several hubs on one server). */
  prefix: string;
  log?: Logger;
  /** How long `start()` may take (default 5 s). */
  bootTimeoutMs?: number;
}

/** Most channels named in one SUBSCRIBE when restoring after a reconnect. */
const SUBSCRIBE_CHUNK = 1000;

/**
 * Redis pub/sub between nodes (ioredis): one connection publishes, one subscribes.
 *
 * Channels: `<prefix>:t:<topic>` carries a topic's publications (wire.ts envelopes); a concrete
 * interest SUBSCRIBEs it, a pattern PSUBSCRIBEs a glob (`*` → `*`, a final `>` → `?*`). A Redis glob
 * `*` also crosses dots, so a pattern copy is delivered only when the pattern really matches the
 * topic (core/topics.ts); copies of one publication arriving through overlapping interests are
 * dropped (wire.ts EchoFilter). Control: `<prefix>:c:n<base64url node id>` (one node) and
 * `<prefix>:c:all` (every node).
 *
 * Sharded pub/sub (SPUBLISH/SSUBSCRIBE) is not used: it only spreads channels over the shards of a
 * Redis Cluster; against one server (or a replica set) it is plain pub/sub without patterns, which
 * our wildcard interests need.
 *
 * Reconnects use ioredis's retry with our capped jittered backoff; the subscriptions are restored by
 * this class (ioredis's autoResubscribe is off) so that 'up' is reported only once they are in place.
 * Commands are never queued while disconnected (enableOfflineQueue off): a publication is dropped.
 */
export class RedisBroker implements Broker {
  /** Publications dropped because the connection was down or the send failed. */
  dropped = 0;
  readonly #url: string;
  readonly #log: Logger | undefined;
  readonly #bootMs: number;
  readonly #prefix: string;
  readonly #topicPrefix: string;
  readonly #ctlAll: string;
  #ctlNode = '';
  readonly #interests = new Set<string>();
  readonly #link: LinkState;
  readonly #echo = new EchoFilter();
  #pub: Redis | undefined;
  #sub: Redis | undefined;
  #h: BrokerHandler | undefined;
  #nodeId = '';
  #restored = false;
  /** Counts subscriber connections: a restore applies only to the connection it ran on. */
  #generation = 0;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #lastErr: unknown;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(opts: RedisBrokerOptions) {
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(opts.prefix)) throw new TypeError(`broker prefix must be 1–40 characters of [A-Za-z0-9_-]`);
    this.#url = opts.url;
    this.#log = opts.log;
    this.#bootMs = opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS;
    this.#prefix = opts.prefix;
    this.#topicPrefix = `${opts.prefix}:t:`;
    this.#ctlAll = `${opts.prefix}:c:all`;
    this.#link = new LinkState('redis', opts.url, opts.log);
  }

  get connected(): boolean {
    return this.#link.up;
  }

  async start(nodeId: string, handler: BrokerHandler): Promise<void> {
    if (this.#started) throw new Error('RedisBroker.start() called twice');
    this.#started = true;
    this.#nodeId = nodeId;
    this.#ctlNode = `${this.#prefix}:c:${nodeToken(nodeId)}`;
    const options: RedisOptions = {
      lazyConnect: true,
      connectTimeout: this.#bootMs,
      enableOfflineQueue: false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (n) => backoffMs(n, RETRY_INITIAL_MS, RETRY_MAX_MS),
    };
    const pub = new Redis(this.#url, { ...options, connectionName: 'hubcast-pub', enableAutoPipelining: true });
    const sub = new Redis(this.#url, { ...options, connectionName: 'hubcast-sub' });
    this.#pub = pub;
    this.#sub = sub;
    pub.on('error', this.#onError).on('close', this.#onClose).on('ready', this.#onPubReady);
    sub.on('error', this.#onError).on('close', this.#onSubClose).on('ready', this.#onSubReady);
    sub.on('messageBuffer', this.#onMessage).on('pmessageBuffer', this.#onPatternMessage);
    try {
      await withDeadline(
        Promise.all([pub.connect(), sub.connect()]).then(() => this.#restore(sub)),
        this.#bootMs,
      );
    } catch (err) {
      const cause = this.#lastErr ?? err;
      this.#closed = true;
      pub.disconnect();
      sub.disconnect();
      throw unreachable('Redis', this.#url, cause);
    }
    if (this.#closed) return;
    this.#h = handler;
    this.#restored = true;
    this.#link.arm(handler);
    this.#check(); // the publishing connection may have dropped meanwhile
    this.#heartbeat = setInterval(this.#beat, HEARTBEAT_MS).unref();
  }

  publish(pub: Publication): void {
    const conn = this.#pub;
    if (conn === undefined || conn.status !== 'ready' || this.#closed) {
      this.dropped++;
      return;
    }
    conn.publish(this.#topicPrefix + pub.topic, encodePublication(pub)).catch(this.#onPublishError);
  }

  interest(topicOrPattern: string): void {
    if (this.#interests.has(topicOrPattern)) return;
    this.#interests.add(topicOrPattern);
    const sub = this.#sub;
    // Not ready: the restore after (re)connecting subscribes everything in the set.
    if (sub?.status !== 'ready') return;
    const key = this.#key(topicOrPattern);
    (isWildcard(topicOrPattern) ? sub.psubscribe(key) : sub.subscribe(key)).catch(this.#onCommandError);
  }

  disinterest(topicOrPattern: string): void {
    if (!this.#interests.delete(topicOrPattern)) return;
    const sub = this.#sub;
    if (sub?.status !== 'ready') return;
    const key = this.#key(topicOrPattern);
    (isWildcard(topicOrPattern) ? sub.punsubscribe(key) : sub.unsubscribe(key)).catch(this.#onCommandError);
  }

  control(msg: ControlMessage, to?: string): void {
    const conn = this.#pub;
    if (conn === undefined || conn.status !== 'ready' || this.#closed) {
      this.#log?.debug({ op: msg.op }, 'broker down: control message dropped');
      return;
    }
    const channel = to === undefined ? this.#ctlAll : `${this.#prefix}:c:${nodeToken(to)}`;
    conn.publish(channel, encodeControl(this.#nodeId, msg)).catch(this.#onCommandError);
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#h = undefined;
    this.#link.disarm();
    clearInterval(this.#heartbeat);
    const conns = [this.#pub, this.#sub].filter((c): c is Redis => c !== undefined);
    await Promise.all(
      conns.map(async (c) => {
        const ended = new Promise<void>((resolve) => (c.status === 'end' ? resolve() : c.once('end', () => resolve())));
        c.disconnect();
        await withDeadline(ended, 1000).catch(() => undefined);
      }),
    );
  }

  /** The channel (concrete topic) or glob (pattern) of an interest. */
  #key(topicOrPattern: string): string {
    const k = topicOrPattern.endsWith('>') ? `${topicOrPattern.slice(0, -1)}?*` : topicOrPattern;
    return this.#topicPrefix + k;
  }

  /** Subscribes the control channels and every interest on a fresh subscriber connection. */
  async #restore(sub: Redis): Promise<void> {
    const channels = [this.#ctlNode, this.#ctlAll];
    const globs: string[] = [];
    for (const i of this.#interests) (isWildcard(i) ? globs : channels).push(this.#key(i));
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) await sub.subscribe(...channels.slice(i, i + SUBSCRIBE_CHUNK));
    for (let i = 0; i < globs.length; i += SUBSCRIBE_CHUNK) await sub.psubscribe(...globs.slice(i, i + SUBSCRIBE_CHUNK));
  }

  #check(): void {
    if (this.#h === undefined) return;
    this.#link.set(this.#restored && this.#pub?.status === 'ready', this.#lastErr);
  }

  readonly #onError = (err: unknown): void => {
    this.#lastErr = err;
  };

  readonly #onClose = (): void => {
    this.#check();
  };

  readonly #onSubClose = (): void => {
    this.#generation++;
    this.#restored = false;
    this.#check();
  };

  readonly #onPubReady = (): void => {
    this.#check();
  };

  readonly #onSubReady = (): void => {
    const sub = this.#sub;
    if (this.#h === undefined || sub === undefined) return; // the boot restores in start()
    const generation = this.#generation;
    this.#restore(sub).then(
      () => {
        if (generation !== this.#generation || sub.status !== 'ready') return;
        this.#restored = true;
        this.#check();
      },
      (err: unknown) => {
        this.#lastErr = err;
        if (this.#closed || generation !== this.#generation || sub.status !== 'ready') return;
        // Refused (not a lost connection): try again on a new connection, with backoff.
        this.#log?.error({ error: describe(err) }, 'broker: cannot restore the Redis subscriptions');
        sub.disconnect(true);
      },
    );
  };

  readonly #onMessage = (_channel: Buffer, message: Buffer): void => {
    const h = this.#h;
    if (h === undefined) return;
    if (!isEnvelope(message)) return this.#onControl(h, message);
    const r = this.#decode(message);
    if (r === undefined || !this.#interests.has(r.topic) || this.#echo.repeat(r)) return;
    deliver(r, h);
  };

  readonly #onPatternMessage = (glob: string, _channel: Buffer, message: Buffer): void => {
    const h = this.#h;
    if (h === undefined) return;
    const r = this.#decode(message);
    if (r === undefined) return;
    const g = glob.slice(this.#topicPrefix.length);
    const pattern = g.endsWith('?*') ? `${g.slice(0, -2)}>` : g;
    if (!this.#interests.has(pattern) || !matches(pattern, r.topic) || this.#echo.repeat(r)) return;
    deliver(r, h);
  };

  #onControl(h: BrokerHandler, message: Buffer): void {
    let env;
    try {
      env = decodeControl(message.toString('utf8'));
    } catch (err) {
      this.#log?.warn({ error: describe(err) }, 'broker: undecodable control message dropped');
      return;
    }
    h.control({ from: env.from, msg: env.msg });
  }

  #decode(message: Buffer): ReturnType<typeof decodePublication> | undefined {
    try {
      return decodePublication(message);
    } catch (err) {
      this.#log?.warn({ error: describe(err) }, 'broker: undecodable publication dropped');
      return undefined;
    }
  }

  readonly #onPublishError = (err: unknown): void => {
    this.dropped++;
    this.#lastErr = err;
  };

  readonly #onCommandError = (err: unknown): void => {
    this.#lastErr = err;
    this.#log?.debug({ error: describe(err) }, 'broker: Redis command failed');
  };

  /** Pings both connections; one that stays silent (half-open) is dropped and reconnects. */
  readonly #beat = (): void => {
    for (const c of [this.#pub, this.#sub]) {
      if (c?.status !== 'ready') continue;
      const timer = setTimeout(() => c.disconnect(true), HEARTBEAT_TIMEOUT_MS).unref();
      c.ping().then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    }
  };
}
