import { connect, Events, type ConnectionOptions, type Msg, type NatsConnection, type NatsError, type Subscription } from 'nats';
import { backoffMs } from '../alerts/delivery.ts';
import type { Logger } from '../logger.ts';
import type { Broker, BrokerHandler, ControlMessage, Publication } from './broker.ts';
import { BOOT_TIMEOUT_MS, LinkState, RETRY_INITIAL_MS, RETRY_MAX_MS, describe, unreachable, withDeadline } from './link.ts';
import {
  EchoFilter,
  decodeControl,
  decodePublication,
  deliver,
  encodeControl,
  encodePublication,
  envelopeSize,
  isEnvelope,
  nodeToken,
} from './wire.ts';

export interface NatsBrokerOptions {
  /** nats://[user:password@ | token@]host:port, or tls://… */
  url: string;
  /** Subject prefix (several hubs on one server). */
  prefix: string;
  log?: Logger;
  /** How long `start()` may take (default 5 s). */
  bootTimeoutMs?: number;
}

/**
 * Core NATS between nodes (no JetStream: History is the durable copy).
 *
 * Subjects: `<prefix>.t.<topic>` carries a topic's publications (wire.ts envelopes). Topics are valid
 * NATS tokens and our wildcards are NATS's (`*` one token, `>` one or more, last only), so an
 * interest is one subscription on `<prefix>.t.<topic or pattern>` and the server delivers exactly
 * what matches. Copies of one publication through overlapping interests are dropped (EchoFilter).
 * Control: `<prefix>.c.n<base64url node id>` (one node) and `<prefix>.c._all` (every node).
 *
 * Reconnects are the client's (forever, our capped jittered backoff); it re-sends every subscription
 * on reconnect, and 'up' is reported after a flush (a round trip) confirms the server has them.
 * A publication bigger than the server's max_payload travels as its position only.
 */
export class NatsBroker implements Broker {
  /** Publications dropped because the connection was down or the send failed. */
  dropped = 0;
  readonly #url: string;
  readonly #prefix: string;
  readonly #log: Logger | undefined;
  readonly #bootMs: number;
  readonly #link: LinkState;
  readonly #echo = new EchoFilter();
  readonly #subs = new Map<string, Subscription>();
  #nc: NatsConnection | undefined;
  #h: BrokerHandler | undefined;
  #nodeId = '';
  #maxPayload = 1024 * 1024;
  #attempts = 0;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #lastErr: unknown;

  constructor(opts: NatsBrokerOptions) {
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(opts.prefix)) throw new TypeError(`broker prefix must be 1–40 characters of [A-Za-z0-9_-]`);
    this.#url = opts.url;
    this.#prefix = opts.prefix;
    this.#log = opts.log;
    this.#bootMs = opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS;
    this.#link = new LinkState('nats', opts.url, opts.log);
  }

  get connected(): boolean {
    return this.#link.up;
  }

  async start(nodeId: string, handler: BrokerHandler): Promise<void> {
    if (this.#started) throw new Error('NatsBroker.start() called twice');
    this.#started = true;
    this.#nodeId = nodeId;
    const connecting = connect({
      ...target(this.#url),
      name: 'hubcast',
      timeout: this.#bootMs,
      noEcho: false,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => backoffMs(++this.#attempts, RETRY_INITIAL_MS, RETRY_MAX_MS),
      ignoreClusterUpdates: true,
      // A half-open connection is noticed within about 30 s.
      pingInterval: 10_000,
      maxPingOut: 2,
    });
    let nc: NatsConnection;
    try {
      // The client's own timeout covers the handshake; this is the backstop.
      nc = await withDeadline(connecting, this.#bootMs + 1000);
    } catch (err) {
      connecting.then(
        (late) => late.close(),
        () => undefined,
      );
      throw unreachable('NATS', this.#url, err);
    }
    if (this.#closed) return void (await nc.close().catch(() => undefined));
    this.#nc = nc;
    if (nc.info?.max_payload) this.#maxPayload = nc.info.max_payload;
    const opts = { callback: this.#onMessage };
    nc.subscribe(`${this.#prefix}.c.${nodeToken(nodeId)}`, opts);
    nc.subscribe(`${this.#prefix}.c._all`, opts);
    for (const i of this.#subs.keys()) this.#subs.set(i, nc.subscribe(this.#subject(i), opts));
    try {
      await withDeadline(nc.flush(), this.#bootMs);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw unreachable('NATS', this.#url, err);
    }
    if (this.#closed) return void (await nc.close().catch(() => undefined));
    this.#h = handler;
    this.#link.arm(handler);
    void this.#watch(nc);
    void nc.closed().then((err) => {
      // Closed by the client on its own (not by close()): it no longer reconnects.
      if (this.#closed) return;
      this.#log?.error({ error: err ? describe(err) : undefined }, 'broker: the NATS connection closed for good');
      this.#link.set(false, err ?? new Error('NATS connection closed'));
    });
  }

  publish(pub: Publication): void {
    const nc = this.#nc;
    // While reconnecting the client would buffer: drop instead, receivers recover from History.
    if (nc === undefined || !this.#link.up) {
      this.dropped++;
      return;
    }
    try {
      nc.publish(this.#prefix + '.t.' + pub.topic, encodePublication(pub, envelopeSize(pub) <= this.#maxPayload));
    } catch (err) {
      this.dropped++;
      this.#lastErr = err;
    }
  }

  interest(topicOrPattern: string): void {
    if (this.#subs.has(topicOrPattern)) return;
    const nc = this.#nc;
    // Before start: subscribed by start(). While reconnecting: the client sends it on reconnect.
    this.#subs.set(topicOrPattern, nc && !this.#closed ? nc.subscribe(this.#subject(topicOrPattern), { callback: this.#onMessage }) : NONE);
  }

  disinterest(topicOrPattern: string): void {
    const sub = this.#subs.get(topicOrPattern);
    if (sub === undefined) return;
    this.#subs.delete(topicOrPattern);
    if (sub !== NONE) sub.unsubscribe();
  }

  control(msg: ControlMessage, to?: string): void {
    const nc = this.#nc;
    if (nc === undefined || !this.#link.up) {
      this.#log?.debug({ op: msg.op }, 'broker down: control message dropped');
      return;
    }
    const subject = `${this.#prefix}.c.${to === undefined ? '_all' : nodeToken(to)}`;
    try {
      nc.publish(subject, encodeControl(this.#nodeId, msg));
    } catch (err) {
      this.#log?.debug({ error: describe(err) }, 'broker: control message not sent');
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#h = undefined;
    this.#link.disarm();
    await this.#nc?.close().catch(() => undefined);
  }

  #subject(topicOrPattern: string): string {
    return `${this.#prefix}.t.${topicOrPattern}`;
  }

  /** Follows the client's status: 'down' on a disconnect, 'up' once a reconnect is confirmed. */
  async #watch(nc: NatsConnection): Promise<void> {
    let generation = 0;
    for await (const s of nc.status()) {
      if (this.#closed) return;
      if (s.type === Events.Error) this.#lastErr = s.data;
      else if (s.type === Events.Disconnect) {
        generation++;
        this.#link.set(false, this.#lastErr ?? new Error(`disconnected from ${s.data}`));
      } else if (s.type === Events.Reconnect) {
        this.#attempts = 0;
        const g = generation;
        // The client re-sent every subscription before anything else; a round trip confirms them.
        nc.flush().then(
          () => {
            if (g === generation && !nc.isClosed() && !this.#closed) this.#link.set(true);
          },
          (err: unknown) => (this.#lastErr = err),
        );
      }
    }
  }

  readonly #onMessage = (err: NatsError | null, m: Msg): void => {
    const h = this.#h;
    if (h === undefined) return;
    if (err) {
      this.#lastErr = err;
      return;
    }
    const data = m.data;
    if (!isEnvelope(data)) {
      let env;
      try {
        env = decodeControl(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
      } catch (e) {
        this.#log?.warn({ error: describe(e) }, 'broker: undecodable control message dropped');
        return;
      }
      h.control({ from: env.from, msg: env.msg });
      return;
    }
    let r;
    try {
      r = decodePublication(data);
    } catch (e) {
      this.#log?.warn({ error: describe(e) }, 'broker: undecodable publication dropped');
      return;
    }
    if (!this.#echo.repeat(r)) deliver(r, h);
  };
}

/** Stands for an interest given before start() (subscribed then). */
const NONE = { unsubscribe() {} } as unknown as Subscription;

/**
 * The client does not read credentials from a URL: take them out (user:password, or a token as the
 * user name) and hand it only host:port.
 */
function target(url: string): Pick<ConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'tls'> {
  const u = new URL(url);
  const out: Pick<ConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'tls'> = { servers: u.host || '127.0.0.1:4222' };
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  if (user && u.password !== '') Object.assign(out, { user, pass });
  else if (user) out.token = user;
  if (u.protocol === 'tls:') out.tls = {};
  return out;
}
