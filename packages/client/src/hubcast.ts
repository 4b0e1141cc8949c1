import { Emitter } from './emitter.ts';
import { HubcastError } from './errors.ts';
import {
  BEARER_PROTOCOL,
  closeAction,
  decodeBinaryMessage,
  statusAction,
  SUBPROTOCOL,
  type AckFrame,
  type CloseAction,
  type ErrorFrame,
  type JoinLeaveFrame,
  type MessageFrame,
  type ServerFrame,
  type SubscribedFrame,
  type WelcomeFrame,
} from './protocol.ts';
import { memoryStorage, type PositionStorage } from './storage.ts';
import { matches, Subscription, type Message, type SubscribeOptions } from './subscription.ts';

/** The part of the WebSocket API the SDK uses (browsers' `WebSocket`, Node's, or the `ws` package's). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}
/** A WebSocket constructor; the third argument (headers) is used only with the `ws` package. */
export type WebSocketClass = new (url: string, protocols?: string | string[], options?: any) => WebSocketLike;

/** How the token reaches the server on the upgrade. */
export type AuthForm = 'header' | 'subprotocol' | 'ticket';

export interface HubcastOptions {
  /** The server: `http(s)://host:port` or `ws(s)://host:port` (a path such as `/ws` or `/ws/publish` is kept). */
  url: string;
  /** A token from `POST /consumers`. */
  token?: string;
  /** Called for a token at the start, and again after a refusal that means "register again". */
  getToken?: () => Promise<string> | string;
  /** Browsers: called for a ticket before every connection attempt (default with a token: `POST /consumers/tickets`). */
  getTicket?: () => Promise<string> | string;
  /** Node: client credentials; the SDK registers through `POST /consumers` (again after an expired token). */
  clientId?: string;
  clientSecret?: string;
  /** The WebSocket class; default `globalThis.WebSocket`, else the `ws` package. */
  WebSocket?: WebSocketClass;
  /**
   * How credentials are sent: `header` (`Authorization: Bearer`, needs the `ws` package; refusals are
   * HTTP statuses), `subprotocol` (`hubcast.bearer.<token>`) or `ticket` (`?ticket=`). Default:
   * `ticket` in a browser or with `getTicket`, `header` with the `ws` package, else `subprotocol`.
   */
  auth?: AuthForm;
  /** Where positions are kept; default in memory. */
  storage?: PositionStorage;
  /** Reconnect delays: exponential from `initialMs` (500) to `maxMs` (30000), full jitter; at least `Retry-After`. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long `publish` waits for its ack (default 10000 ms). */
  publishTimeoutMs?: number;
  /** How long a connection attempt may take until `welcome`, and each HTTP request of it (default 10000 ms). */
  connectTimeoutMs?: number;
  /** `fetch` for the HTTP routes; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export type State = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** Why the state changed: the close code or refusal, what the client does next, the error that stopped it. */
export interface StateInfo {
  code?: number;
  reason?: string;
  status?: number;
  action?: CloseAction;
  /** `disconnected`: the delay before the next attempt. */
  retryInMs?: number;
  error?: HubcastError;
}

export interface HubcastEvents {
  state: (state: State, info: StateInfo) => void;
  welcome: (w: WelcomeFrame) => void;
  /** Something went wrong: the client stopped (see `state`), or a failure no subscription or publish owns. */
  error: (err: HubcastError) => void;
}

/** The answer to a publish. */
export interface Ack {
  topic: string;
  offset: number;
  /** The idempotency key it was sent with (generated when none was given). */
  key: string;
}

export interface PublishOptions {
  /** Idempotency key (1–200 characters); default a random one, so the SDK may resend after a reconnect. */
  key?: string;
  timeoutMs?: number;
}

interface Pending {
  frame: { type: 'publish'; topic: string; data?: unknown; data_base64?: string; key: string; id: number };
  resolve: (a: Ack) => void;
  reject: (e: HubcastError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 5000;

interface Outcome {
  action: CloseAction;
  welcomed?: boolean;
  /** ms from welcome to close. */
  lasted?: number;
  code?: number;
  reason?: string;
  status?: number;
  retryAfterMs?: number;
  error?: HubcastError;
}

const isBrowser = () => typeof (globalThis as { document?: unknown }).document !== 'undefined';

function randomKey(): string {
  const b = new Uint8Array(12);
  const c = (globalThis as { crypto?: { getRandomValues(a: Uint8Array): void } }).crypto;
  if (c) c.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return 'k' + Array.from(b, (x) => x.toString(36).padStart(2, '0')).join('');
}

/**
 * A connection to Hubcast that stays up: it connects, reconnects with backoff after every close that
 * allows it, registers again when a token is refused, keeps its subscriptions (resuming each concrete
 * topic from its position), and stops — state `closed`, an `error` event — when the server says not to
 * come back (revoked, not allowed, replaced, origin refused).
 */
export class Hubcast extends Emitter<HubcastEvents> {
  #o: HubcastOptions;
  #http: string;
  #wsUrl: string;
  #state: State = 'idle';
  #token: string | undefined;
  #storage: PositionStorage;
  #subs = new Map<string, Subscription>();
  #active = new Set<Subscription>();
  #requests = new Map<number, (f: ServerFrame) => void>();
  #publishes = new Map<number, Pending>();
  #nextId = 1;
  #sock: WebSocketLike | undefined;
  #waiters: { resolve: () => void; reject: (e: HubcastError) => void }[] = [];
  #wake: (() => void) | undefined;
  #drop: (() => void) | undefined;

  constructor(options: HubcastOptions) {
    super();
    this.#o = options;
    const u = new URL(options.url);
    const secure = u.protocol === 'https:' || u.protocol === 'wss:';
    let path = u.pathname.replace(/\/+$/, '');
    let wsPath = '/ws';
    const m = /\/ws(\/publish)?$/.exec(path);
    if (m) {
      wsPath = m[0];
      path = path.slice(0, -m[0].length);
    }
    this.#http = `${secure ? 'https' : 'http'}://${u.host}${path}`;
    this.#wsUrl = `${secure ? 'wss' : 'ws'}://${u.host}${path}${wsPath}`;
    this.#token = options.token;
    this.#storage = options.storage ?? memoryStorage();
  }

  /** `idle` (not started), `connecting`, `connected`, `disconnected` (waiting to reconnect), `closed` (for good). */
  get state(): State {
    return this.#state;
  }

  /** Starts connecting (also started by the first `subscribe`); resolves once connected. */
  connect(): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new HubcastError('closed', 'this client is closed'));
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#state === 'idle') void this.#run();
    return p;
  }

  /** Subscribes to a topic or pattern, now and after every reconnect. */
  subscribe(topic: string, options: SubscribeOptions = {}): Subscription {
    if (this.#state === 'closed') throw new HubcastError('closed', 'this client is closed');
    if (this.#subs.has(topic)) throw new TypeError(`already subscribed to ${topic}`);
    const sub = new Subscription(topic, options, this.#storage, (s) => this.#unsubscribe(s));
    this.#subs.set(topic, sub);
    if (this.#state === 'idle') this.connect().catch(() => undefined);
    else if (this.#state === 'connected') this.#sendSubscribe(sub, this.#sock!);
    return sub;
  }

  /**
   * Publishes `data` (needs publish rights): a JSON value, or bytes (`Uint8Array` / `ArrayBuffer`,
   * sent as `data_base64`, received as a binary message); resolves with the ack once it is committed.
   * Waits for a connection if there is none; resent after a reconnect under the same idempotency key.
   */
  publish(topic: string, data: unknown, options: PublishOptions = {}): Promise<Ack> {
    if (this.#state === 'closed') return Promise.reject(new HubcastError('closed', 'this client is closed'));
    const id = this.#nextId++;
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : undefined;
    const body = bytes ? { data_base64: toBase64(bytes) } : { data };
    const frame = { type: 'publish' as const, topic, ...body, key: options.key ?? randomKey(), id };
    const p = new Promise<Ack>((resolve, reject) => {
      const ms = options.timeoutMs ?? this.#o.publishTimeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        this.#publishes.delete(id);
        reject(new HubcastError('timeout', `no ack for the publish to ${topic} within ${ms} ms`));
      }, ms);
      this.#publishes.set(id, { frame, resolve, reject, timer });
    });
    if (this.#state === 'idle') this.connect().catch(() => undefined);
    else if (this.#state === 'connected') this.#sock!.send(JSON.stringify(frame));
    return p;
  }

  /** Closes the connection for good; subscriptions end, pending publishes fail with `closed`. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const sock = this.#sock;
    this.#stop();
    // Bounded wait for the close handshake, so that the server has seen the close when this resolves.
    for (let i = 0; sock && sock.readyState !== 3 && i < 50; i++) await new Promise((r) => setTimeout(r, 20));
  }

  #setState(s: State, info: StateInfo = {}): void {
    this.#state = s;
    this.emit('state', s, info);
  }

  /** Ends everything; with an error when the server told the client to stop. */
  #stop(error?: HubcastError, info: StateInfo = {}): void {
    this.#wake?.();
    this.#drop?.();
    const err = error ?? new HubcastError('closed', 'this client is closed');
    for (const p of this.#publishes.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#publishes.clear();
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const s of this.#subs.values()) s._end(error);
    this.#subs.clear();
    this.#setState('closed', error ? { ...info, error } : info);
    if (error) this.emit('error', error);
  }

  async #run(): Promise<void> {
    let attempt = 0;
    let registers = 0;
    const { initialMs = 500, maxMs = 30_000 } = this.#o.backoff ?? {};
    while (this.#state !== 'closed') {
      this.#setState('connecting');
      let out: Outcome;
      try {
        out = await this.#attempt();
      } catch (e) {
        const err = e instanceof HubcastError ? e : new HubcastError('connection_failed', String((e as Error)?.message ?? e));
        out = { action: err.action ?? 'reconnect', error: err, ...(err.status ? { status: err.status } : {}) };
        if (err.retryAfterMs !== undefined) out.retryAfterMs = err.retryAfterMs;
      }
      if ((this.#state as State) === 'closed') return;
      // A connection that lasted resets the backoff; one closed soon after its welcome (a server that
      // accepts and then cuts, again and again) keeps it growing.
      if (out.welcomed) registers = 0;
      if (out.welcomed && out.lasted! >= STABLE_MS) attempt = 0;
      let action = out.action;
      if (action === 'register') {
        const canRenew = !!(this.#o.getToken || (this.#o.clientId && this.#o.clientSecret) || this.#o.getTicket);
        if (canRenew && registers++ < 2) this.#token = undefined;
        else action = 'stop';
      }
      const info: StateInfo = { action };
      if (out.code !== undefined) info.code = out.code;
      if (out.reason) info.reason = out.reason;
      if (out.status !== undefined) info.status = out.status;
      if (action === 'stop') {
        const code = out.status
          ? (({ 401: 'unauthorized', 403: 'origin_not_allowed' } as Record<number, string>)[out.status] ?? `http_${out.status}`)
          : undefined;
        const err =
          out.error ??
          (code
            ? new HubcastError(code, `upgrade refused: ${out.status}; not reconnecting`, { status: out.status!, action: 'stop' })
            : undefined) ??
          new HubcastError(
            out.reason && /^[a-z_]+$/.test(out.reason) ? out.reason : 'connection_closed',
            `closed with ${out.code}${out.reason ? ` (${out.reason})` : ''}; not reconnecting`,
            {
              action: 'stop',
              ...(out.code !== undefined ? { closeCode: out.code } : {}),
            },
          );
        return this.#stop(err, info);
      }
      const delay = Math.max(out.retryAfterMs ?? 0, Math.random() * Math.min(maxMs, initialMs * 2 ** attempt++));
      info.retryInMs = Math.round(delay);
      if (out.error) info.error = out.error;
      this.#setState('disconnected', info);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #fetchJson(path: string, init: RequestInit): Promise<any> {
    const res = await (this.#o.fetch ?? fetch)(this.#http + path, {
      ...init,
      signal: AbortSignal.timeout(this.#o.connectTimeoutMs ?? 10_000),
    });
    const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    if (res.ok) return body;
    const ra = Number(res.headers.get('retry-after'));
    throw new HubcastError(body.error?.code ?? 'http_' + res.status, `${path}: ${res.status} ${body.error?.message ?? ''}`.trim(), {
      status: res.status,
      action: statusAction(res.status),
      ...(ra > 0 ? { retryAfterMs: ra * 1000 } : {}),
    });
  }

  async #getToken(): Promise<string> {
    if (this.#token) return this.#token;
    const o = this.#o;
    if (o.getToken) this.#token = await o.getToken();
    else if (o.clientId && o.clientSecret) {
      try {
        const r = (await this.#fetchJson('/consumers', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_id: o.clientId, client_secret: o.clientSecret }),
        })) as { token: string };
        this.#token = r.token;
      } catch (e) {
        // A refused registration (wrong secret, revoked client) is not fixed by registering again.
        if (e instanceof HubcastError && e.status === 401) throw new HubcastError(e.code, e.message, { status: 401, action: 'stop' });
        throw e;
      }
    }
    if (!this.#token)
      throw new HubcastError('unauthorized', 'no token: give token, getToken, or clientId and clientSecret', { action: 'stop' });
    return this.#token;
  }

  async #wsClass(): Promise<[WebSocketClass, boolean]> {
    if (this.#o.WebSocket) return [this.#o.WebSocket, typeof (this.#o.WebSocket.prototype as { on?: unknown }).on === 'function'];
    const g = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    if (g) return [g, false];
    const name = 'ws';
    const mod = (await import(/* @vite-ignore */ name)) as { default?: WebSocketClass; WebSocket?: WebSocketClass };
    return [(mod.WebSocket ?? mod.default)!, true];
  }

  /** One connection, from credentials to close: resolves with what to do next. */
  async #attempt(): Promise<Outcome> {
    const [WS, headers] = await this.#wsClass();
    const o = this.#o;
    const form: AuthForm = o.auth ?? (o.getTicket || isBrowser() ? 'ticket' : headers ? 'header' : 'subprotocol');
    let url = this.#wsUrl;
    let args: unknown[] = [];
    if (form === 'ticket') {
      const ticket = o.getTicket
        ? await o.getTicket()
        : (
            (await this.#fetchJson('/consumers/tickets', {
              method: 'POST',
              headers: { authorization: `Bearer ${await this.#getToken()}` },
            })) as { ticket: string }
          ).ticket;
      url += '?ticket=' + encodeURIComponent(ticket);
    } else {
      const token = await this.#getToken();
      args = form === 'header' ? [[], { headers: { authorization: `Bearer ${token}` } }] : [[SUBPROTOCOL, BEARER_PROTOCOL + token]];
    }
    if (this.#state === 'closed') throw new HubcastError('closed', 'this client is closed');
    const sock = new WS(url, ...(args as [string[]]));
    sock.binaryType = 'arraybuffer';
    return new Promise<Outcome>((resolve) => {
      let welcomed = false;
      let welcomedAt = 0;
      let http: { status: number; retryAfterMs?: number } | undefined;
      let lastSeen = Date.now();
      let pinged = false;
      let beat: ReturnType<typeof setInterval> | undefined;
      const timeout = setTimeout(
        () => finish({ action: 'reconnect', code: 1006, reason: 'connect timeout' }),
        o.connectTimeoutMs ?? 10_000,
      );
      const finish = (out: Outcome) => {
        clearTimeout(timeout);
        clearInterval(beat);
        sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
        sock.onerror = () => undefined;
        if (sock.readyState < 2) sock.close(1000);
        if (this.#sock === sock) this.#sock = undefined;
        this.#drop = undefined;
        this.#requests.clear();
        this.#active.clear();
        resolve({ ...out, welcomed, lasted: Date.now() - welcomedAt });
      };
      this.#drop = () => finish({ action: 'stop' });
      // The `ws` package tells a refused upgrade's HTTP status; browsers only see 1006.
      (sock as { on?: (e: string, f: (req: unknown, res: any) => void) => void }).on?.('unexpected-response', (_req, res) => {
        const ra = Number(res.headers?.['retry-after']);
        http = { status: res.statusCode, ...(ra > 0 ? { retryAfterMs: ra * 1000 } : {}) };
        (sock as { terminate?: () => void }).terminate?.();
      });
      sock.onerror = () => undefined;
      sock.onclose = (ev) => {
        if (http)
          return finish({
            action: statusAction(http.status),
            status: http.status,
            ...(http.retryAfterMs ? { retryAfterMs: http.retryAfterMs } : {}),
          });
        finish({ action: closeAction(ev.code), code: ev.code, reason: ev.reason });
      };
      sock.onmessage = (ev) => {
        lastSeen = Date.now();
        pinged = false;
        let f: ServerFrame;
        let binary: Uint8Array | undefined;
        try {
          if (typeof ev.data === 'string') f = JSON.parse(ev.data) as ServerFrame;
          else {
            const d = decodeBinaryMessage(ev.data as ArrayBuffer);
            f = d.header;
            binary = d.payload;
          }
        } catch {
          return;
        }
        if (f.type === 'welcome') {
          welcomed = true;
          welcomedAt = Date.now();
          clearTimeout(timeout);
          this.#sock = sock;
          const hb = (f.heartbeat_s || 25) * 1000;
          // A dead link shows as silence: ask with a ping after one heartbeat of it, give up after two.
          beat = setInterval(() => {
            const idle = Date.now() - lastSeen;
            if (idle > 2 * hb && pinged) finish({ action: 'reconnect', code: 1006, reason: 'no answer from the server' });
            else if (idle > hb && !pinged) {
              pinged = true;
              sock.send('{"type":"ping"}');
            }
          }, hb / 2);
          this.#setState('connected');
          this.emit('welcome', f);
          for (const w of this.#waiters.splice(0)) w.resolve();
          for (const s of this.#subs.values()) this.#sendSubscribe(s, sock);
          for (const p of this.#publishes.values()) sock.send(JSON.stringify(p.frame));
          return;
        }
        this.#frame(f, binary);
      };
    });
  }

  #sendSubscribe(sub: Subscription, sock: WebSocketLike): void {
    void sub.ready.then(() => {
      if (this.#sock !== sock || sub.closed) return;
      const id = this.#nextId++;
      this.#requests.set(id, (f) => {
        if (sub.closed) return; // unsubscribed meanwhile: its unsubscribe follows this answer
        if (f.type === 'subscribed') {
          this.#active.add(sub);
          sub._subscribed(f);
        } else if (f.type === 'error') {
          if (f.code === 'unavailable') setTimeout(() => this.#sendSubscribe(sub, sock), 1000);
          else {
            this.#subs.delete(sub.topic);
            sub._end(new HubcastError(f.code, f.message));
          }
        }
      });
      sock.send(JSON.stringify({ type: 'subscribe', ...sub._request(), id }));
    });
  }

  #unsubscribe(sub: Subscription): void {
    if (this.#subs.get(sub.topic) !== sub) return;
    this.#subs.delete(sub.topic);
    this.#active.delete(sub);
    if (this.#sock) this.#sock.send(JSON.stringify({ type: 'unsubscribe', topic: sub.topic }));
  }

  #frame(f: ServerFrame, binary?: Uint8Array): void {
    if (f.type === 'message') return this.#message(f, binary);
    if (f.type === 'join' || f.type === 'leave') return this.#route(f.topic, (s) => s.emit(f.type, f as JoinLeaveFrame));
    const id = (f as { id?: unknown }).id;
    if (typeof id !== 'number') {
      if (f.type === 'error') this.emit('error', new HubcastError(f.code, f.message));
      return;
    }
    const pub = this.#publishes.get(id);
    if (pub) {
      this.#publishes.delete(id);
      clearTimeout(pub.timer);
      if (f.type === 'ack') pub.resolve({ topic: (f as AckFrame).topic, offset: (f as AckFrame).offset, key: pub.frame.key });
      else pub.reject(new HubcastError((f as ErrorFrame).code, (f as ErrorFrame).message));
      return;
    }
    const req = this.#requests.get(id);
    this.#requests.delete(id);
    req?.(f as SubscribedFrame);
  }

  /** Routes to the concrete subscription when it is live on this connection, else to each matching pattern. */
  #route(topic: string, fn: (s: Subscription) => void): void {
    const own = this.#subs.get(topic);
    if (own && this.#active.has(own)) return fn(own);
    for (const s of this.#active) if (s.pattern && matches(s.topic, topic)) fn(s);
  }

  #message(f: MessageFrame, binary?: Uint8Array): void {
    const m: Message = { topic: f.topic, offset: f.offset, ts: f.ts, data: f.data };
    if (binary) m.binary = binary;
    this.#route(f.topic, (s) => s._message(m));
  }
}

/** Standard padded base64 of `b` (`btoa` exists in browsers and Node 16+). */
function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}
