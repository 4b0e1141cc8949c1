import pg from 'pg';
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
import { decodeControl, decodePublication, deliver, encodeControl, encodePublication, envelopeSize } from './wire.ts';

export interface PostgresBrokerOptions {
  /** postgres://[user[:password]@]host[:port]/database */
  url: string;
  /** Channel name prefix (several hubs on one database). */
  prefix: string;
  log?: Logger;
  /** How long connecting may take, at start and on each reconnect (default 5 s). */
  bootTimeoutMs?: number;
}

/** NOTIFY payloads must stay under 8000 bytes; above this a publication travels as its position. */
const NOTIFY_MAX = 7500;
/** Most notifications sent in one statement. */
const BATCH_MAX = 1000;
const NOTIFY_SQL = 'SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS u(c, p)';

interface Session {
  listen: pg.Client;
  send: pg.Client;
  lost: boolean;
}

/**
 * PostgreSQL LISTEN/NOTIFY between nodes: the smallest cluster is nodes + one PostgreSQL.
 *
 * Two channels, quoted identifiers: `<prefix>_pub` (publications) and `<prefix>_ctl` (control, with
 * its addressee inside: `{from, to?, msg}`). One client LISTENs; another sends, batching what was
 * published while its previous statement ran into one `pg_notify` statement (one transaction:
 * delivered in order). Interest is a local filter: **every node receives every notification** and
 * drops the topics it does not want (per-topic channels would cost a LISTEN per topic and gain
 * little). A notification is `<topic> <base64 envelope>`, so the filter reads the topic without
 * decoding. A publication whose notification would pass NOTIFY_MAX travels as its position only:
 * the receiving node reads it from History.
 *
 * A lost connection (error, end, a heartbeat unanswered) ends both clients; the broker reconnects
 * with capped jittered backoff and LISTENs again before it reports 'up'.
 */
export class PostgresBroker implements Broker {
  /** Publications dropped because the connection was down or the send failed. */
  dropped = 0;
  readonly #url: string;
  readonly #log: Logger | undefined;
  readonly #bootMs: number;
  readonly #pubChannel: string;
  readonly #ctlChannel: string;
  readonly #link: LinkState;
  readonly #topics = new Set<string>();
  readonly #patterns = new Set<string>();
  #h: BrokerHandler | undefined;
  #nodeId = '';
  #session: Session | undefined;
  #channels: string[] = [];
  #payloads: string[] = [];
  #sending = false;
  #scheduled = false;
  #attempts = 0;
  #retry: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(opts: PostgresBrokerOptions) {
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(opts.prefix)) throw new TypeError(`broker prefix must be 1–40 characters of [A-Za-z0-9_-]`);
    this.#url = opts.url;
    this.#log = opts.log;
    this.#bootMs = opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS;
    this.#pubChannel = `${opts.prefix}_pub`;
    this.#ctlChannel = `${opts.prefix}_ctl`;
    this.#link = new LinkState('postgres', opts.url, opts.log);
  }

  get connected(): boolean {
    return this.#link.up;
  }

  async start(nodeId: string, handler: BrokerHandler): Promise<void> {
    if (this.#started) throw new Error('PostgresBroker.start() called twice');
    this.#started = true;
    this.#nodeId = nodeId;
    let s: Session;
    try {
      s = await this.#open();
    } catch (err) {
      throw unreachable('PostgreSQL', this.#url, err);
    }
    if (this.#closed) return this.#end(s);
    this.#session = s;
    this.#h = handler;
    this.#link.arm(handler);
    this.#heartbeat = setInterval(this.#beat, HEARTBEAT_MS).unref();
  }

  publish(pub: Publication): void {
    if (this.#session === undefined) {
      this.dropped++;
      return;
    }
    const whole = pub.topic.length + 1 + 4 * Math.ceil(envelopeSize(pub) / 3) <= NOTIFY_MAX;
    this.#enqueue(this.#pubChannel, `${pub.topic} ${encodePublication(pub, whole).toString('base64')}`);
  }

  interest(topicOrPattern: string): void {
    (isWildcard(topicOrPattern) ? this.#patterns : this.#topics).add(topicOrPattern);
  }

  disinterest(topicOrPattern: string): void {
    (isWildcard(topicOrPattern) ? this.#patterns : this.#topics).delete(topicOrPattern);
  }

  control(msg: ControlMessage, to?: string): void {
    if (this.#session === undefined) {
      this.#log?.debug({ op: msg.op }, 'broker down: control message dropped');
      return;
    }
    this.#enqueue(this.#ctlChannel, encodeControl(this.#nodeId, msg, to));
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#h = undefined;
    this.#link.disarm();
    clearTimeout(this.#retry);
    clearInterval(this.#heartbeat);
    const s = this.#session;
    this.#session = undefined;
    if (s) await this.#end(s);
  }

  /** Connects both clients and LISTENs; on any failure ends both and throws. */
  async #open(): Promise<Session> {
    const config: pg.ClientConfig = {
      connectionString: this.#url,
      application_name: 'hubcast-broker',
      connectionTimeoutMillis: this.#bootMs,
      query_timeout: HEARTBEAT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: HEARTBEAT_MS,
    };
    const s: Session = { listen: new pg.Client(config), send: new pg.Client(config), lost: false };
    const lost = (err: unknown) => this.#lost(s, err);
    for (const c of [s.listen, s.send]) c.on('error', lost).on('end', () => lost(new Error('connection ended')));
    s.listen.on('notification', (n) => {
      if (this.#session === s) this.#onNotification(n);
    });
    try {
      await Promise.all([s.listen.connect(), s.send.connect()]);
      await s.listen.query(`LISTEN ${pg.escapeIdentifier(this.#pubChannel)}; LISTEN ${pg.escapeIdentifier(this.#ctlChannel)}`);
    } catch (err) {
      s.lost = true;
      void this.#end(s);
      throw err;
    }
    return s;
  }

  async #end(s: Session): Promise<void> {
    s.lost = true;
    await Promise.all([s.listen, s.send].map((c) => withDeadline(c.end(), 1000).catch(() => undefined)));
  }

  #lost(s: Session, err: unknown): void {
    if (s.lost) return;
    s.lost = true;
    void this.#end(s);
    if (this.#session !== s || this.#closed) return;
    this.#session = undefined;
    this.#link.set(false, err);
    this.#reconnectLater();
  }

  #reconnectLater(): void {
    this.#retry = setTimeout(this.#reconnect, backoffMs(++this.#attempts, RETRY_INITIAL_MS, RETRY_MAX_MS)).unref();
  }

  readonly #reconnect = (): void => {
    this.#open().then(
      (s) => {
        if (this.#closed) return void this.#end(s);
        if (s.lost) return this.#reconnectLater(); // lost between LISTEN and here
        this.#session = s;
        this.#attempts = 0;
        this.#link.set(true);
      },
      (err: unknown) => {
        if (this.#closed) return;
        this.#log?.debug({ error: describe(err), attempt: this.#attempts }, 'broker: PostgreSQL reconnect failed');
        this.#reconnectLater();
      },
    );
  };

  #enqueue(channel: string, payload: string): void {
    this.#channels.push(channel);
    this.#payloads.push(payload);
    // What is published in this turn goes in one statement; later ones wait for it.
    if (this.#sending || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(this.#send);
  }

  readonly #send = (): void => {
    this.#scheduled = false;
    const n = Math.min(this.#channels.length, BATCH_MAX);
    if (n === 0) return;
    const channels = this.#channels.splice(0, n);
    const payloads = this.#payloads.splice(0, n);
    const s = this.#session;
    if (s === undefined) {
      this.#dropped(channels, undefined);
      return this.#send();
    }
    this.#sending = true;
    s.send.query(NOTIFY_SQL, [channels, payloads]).then(
      () => this.#sent(),
      (err: unknown) => {
        this.#dropped(channels, err);
        this.#sent();
      },
    );
  };

  #sent(): void {
    this.#sending = false;
    if (this.#channels.length > 0) this.#send();
  }

  #dropped(channels: string[], err: unknown): void {
    for (const c of channels) if (c === this.#pubChannel) this.dropped++;
    if (err !== undefined) this.#log?.debug({ error: describe(err), count: channels.length }, 'broker: notifications not sent');
  }

  #wants(topic: string): boolean {
    if (this.#topics.has(topic)) return true;
    for (const p of this.#patterns) if (matches(p, topic)) return true;
    return false;
  }

  #onNotification(n: pg.Notification): void {
    const h = this.#h;
    const text = n.payload;
    if (h === undefined || text === undefined) return;
    if (n.channel === this.#pubChannel) {
      const space = text.indexOf(' ');
      if (space < 1 || !this.#wants(text.slice(0, space))) return;
      let r;
      try {
        r = decodePublication(Buffer.from(text.slice(space + 1), 'base64'));
      } catch (err) {
        this.#log?.warn({ error: describe(err) }, 'broker: undecodable publication dropped');
        return;
      }
      deliver(r, h);
    } else if (n.channel === this.#ctlChannel) {
      let env;
      try {
        env = decodeControl(text);
      } catch (err) {
        this.#log?.warn({ error: describe(err) }, 'broker: undecodable control message dropped');
        return;
      }
      if (env.to === undefined || env.to === this.#nodeId) h.control({ from: env.from, msg: env.msg });
    }
  }

  /** A round trip on the listening client: a silent (half-open) connection is treated as lost. */
  readonly #beat = (): void => {
    const s = this.#session;
    if (s) s.listen.query('SELECT 1').catch((err: unknown) => this.#lost(s, err));
  };
}
