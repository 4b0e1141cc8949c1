import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Alerts } from '../alerts/alerts.ts';
import type { AuthFailures } from '../auth/failures.ts';
import type { TokenCheck, TokenService } from '../auth/tokens.ts';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { randomId } from '../core/ids.ts';
import { isWildcard } from '../core/topics.ts';
import type { Publisher } from '../core/publisher.ts';
import type { Logger } from '../logger.ts';
import type { Metrics, RateMeter } from '../metrics.ts';
import type { Broker, ControlMessage } from '../broker/broker.ts';
import type { ClaimResult, ConnectionRecord, Presence } from '../cluster/presence.ts';
import type { Store } from '../store/store.ts';
import { readCredentials, SUBPROTOCOL } from './credentials.ts';
import { controlFrame, errorFrame } from './frames.ts';
import { ClusterLink } from './cluster-link.ts';
import { Hub } from './hub.ts';
import { Positions } from './positions.ts';
import { Coalescer } from './coalescer.ts';
import { Peer, type PeerEvents } from './peer.ts';
import { checkHandshake } from './handshake.ts';
import { Refuser, wsClientError, type Upgrade } from './refuse.ts';
import { Session } from './session.ts';
import { CloseCode } from '../../packages/client/src/protocol.ts';

/** WebSocket close codes (docs/websocket.md), from the shared protocol module. 4500–4999: do not reconnect automatically. */
export { CloseCode };

export interface GatewayDeps {
  config: Config;
  store: Store;
  tokens: TokenService;
  publisher: Publisher;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  nodeId: string;
  alerts: Alerts;
  /** The consumer entrances' failure handler (its budget is shared with POST /consumers and tickets). */
  failures: AuthFailures;
  /** Who is connected where, cluster-wide: admission (one connection per token), subscriptions. */
  presence: Presence;
  /** Interest for this node's topics, and control messages to other nodes. */
  broker: Broker;
  /** Deliveries and connections opened, for the admin API's rates. */
  rates?: RateMeter | undefined;
}

/** A live connection of this node, as the admin API lists it. */
export interface LiveConnection {
  id: string;
  clientId: string;
  address: string;
  connectedAt: number;
  /** Topics and patterns, as subscribed. */
  subscriptions: string[];
  /** Outbound bytes queued for it and not yet taken by the kernel. */
  queuedBytes: number;
}

/** A connection of this node opened or closed (the admin event stream). */
export type ConnectionEvent =
  | { event: 'open'; id: string; client_id: string; address: string }
  | { event: 'close'; id: string; client_id: string; address: string; code: number };

const WS_PATHS = new Set(['/ws', '/ws/publish']);
/**
 * After this node starts wanting a topic, History is checked for what the broker missed while its
 * subscription was being set up (no broker confirms it): soon, and once more in case it was slow.
 */
const CHECK_AFTER_INTEREST_MS = [250, 2000];
const DUPLICATE_ALERT_STRIKES = 3;

/**
 * Module-level on purpose: a closure here would keep the upgrade request (headers, the raw
 * Authorization value) alive for the whole life of the connection.
 */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * The Experience layer's WebSocket side: authenticates upgrades before any WebSocket exists,
 * enforces one live connection per token, tracks connections in the store, runs the heartbeat.
 */
export class Gateway {
  readonly hub: Hub;
  /** Per-topic order and gap filling between the broker (and this node's publisher) and the hub. */
  readonly positions: Positions;
  /** The broker's handler on this node. */
  readonly link: ClusterLink;
  readonly #d: GatewayDeps;
  readonly #wss: WebSocketServer;
  readonly #session: Session;
  readonly #peers = new Map<string, Peer>();
  readonly #byClient = new Map<string, Set<Peer>>();
  readonly #strikes = new Map<string, { since: number; count: number }>();
  readonly #perIp = new Map<string, number>();
  readonly #origins: ReadonlySet<string> | undefined;
  readonly #refuser: Refuser;
  /** Shared by every Peer (one object, not closures per connection). */
  readonly #peerEvents: PeerEvents = {
    slow: (peer, why) => this.#slow(peer, why),
    error: (peer, err) => this.#internalError(peer, err),
  };
  /** Each connection's frames of a turn go out as one socket write (ws.writeDelayMs: adaptive delay). */
  readonly #coalescer: Coalescer;
  readonly #watchers = new Set<(e: ConnectionEvent) => void>();
  #heartbeat: NodeJS.Timeout | undefined;
  #positionCheck: NodeJS.Timeout | undefined;
  #closing = false;
  /** This node's lease on its connections is lost: they may live elsewhere now; refuse until regained. */
  #fenced = false;

  constructor(deps: GatewayDeps) {
    this.#d = deps;
    this.#coalescer = new Coalescer(deps.config.ws.writeDelayMs);
    const origins = deps.config.ws.allowedOrigins;
    this.#origins = origins.length && !origins.includes('*') ? new Set(origins) : undefined;
    this.#refuser = new Refuser({
      closeRefusals: deps.config.ws.closeRefusals,
      log: deps.log,
      burnTicket: (ticket) => deps.tokens.burnTicket(ticket),
      now: () => deps.clock.now(),
    });
    const cluster = deps.config.broker.type !== 'memory';
    this.hub = new Hub(
      (n) => {
        deps.metrics.messagesOut.inc(n);
        deps.rates?.delivered(n);
      },
      {
        interest: (t) => {
          deps.broker.interest(t);
          // The broker's subscription takes a moment: what was published meanwhile is read from History.
          if (cluster && !isWildcard(t)) for (const ms of CHECK_AFTER_INTEREST_MS) setTimeout(() => this.positions.check(t), ms).unref();
        },
        disinterest: (t) => {
          deps.broker.disinterest(t);
          this.positions.forget(t);
        },
      },
    );
    this.positions = new Positions({
      history: deps.store,
      deliver: (pub) => this.hub.deliver(pub),
      wanted: (t) => this.hub.wants(t),
      gapWaitMs: deps.config.cluster.gapWaitMs,
      log: deps.log,
      onGapFilled: () => deps.metrics.clusterGapFills.inc(),
    });
    this.link = new ClusterLink({
      positions: this.positions,
      onControl: (env) => this.onControl(env.msg),
      log: deps.log,
      onState: (state, err) => {
        deps.metrics.brokerConnected.set(state === 'up' ? 1 : 0);
        if (state === 'down')
          deps.alerts.raise({
            kind: 'broker_unavailable',
            detail: String((err as Error | undefined)?.message ?? 'connection lost').slice(0, 200),
          });
      },
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: deps.config.ws.perMessageDeflate,
      maxPayload: deps.config.ws.maxPayload,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.#wss.on('wsClientError', wsClientError);
    this.#session = new Session({
      config: deps.config,
      store: deps.store,
      publisher: deps.publisher,
      hub: this.hub,
      metrics: deps.metrics,
      log: deps.log,
      presence: deps.presence,
      broker: deps.broker,
      nodeId: deps.nodeId,
      positions: this.positions,
      forbid: (peer, what, id) => this.#forbid(peer, what, id),
      overRate: (peer) => this.#overRate(peer),
    });
  }

  /** The session (subscribe positions are tracked through it). */
  get session(): Session {
    return this.#session;
  }

  get connectionCount(): number {
    return this.#peers.size;
  }

  start(): void {
    const ms = this.#d.config.ws.heartbeatS * 1000;
    this.#heartbeat = setInterval(() => this.#sweep(), ms);
    this.#heartbeat.unref();
    if (this.#d.config.broker.type !== 'memory') {
      this.#positionCheck = setInterval(() => void this.positions.checkAll(), this.#d.config.cluster.positionCheckMs);
      this.#positionCheck.unref();
    }
  }

  /**
   * The HTTP server's `upgrade` listener. Every refusal goes through the Refuser: a JSON HTTP status,
   * or for the browser forms a handshake closed at once with a close code; a ticket in the URL is
   * used up by any refusal once the request is a /ws upgrade.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    const ip = req.socket.remoteAddress ?? '';
    const up: Upgrade = { req, socket, head, ip, browser: false, ticket: undefined };
    const refuse = this.#refuser;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return refuse.refuse(up, 400, 'bad_request');
    }
    if (!WS_PATHS.has(url.pathname)) return refuse.refuse(up, 404, 'not_found');
    up.ticket = url.searchParams.get('ticket') ?? undefined;
    // The handshake's shape is checked here so that ws never answers with its own (non-JSON) error.
    const fault = checkHandshake(req);
    if (fault) return refuse.refuse(up, 400, 'bad_request', fault.message, fault.headers);
    const creds = readCredentials(req, url.searchParams);
    up.browser = creds.kind === 'ticket' || (creds.kind === 'token' && creds.subprotocol === true);
    // A ticket beside other credentials is not redeemed, but it was presented: used up now.
    if (creds.kind !== 'ticket') refuse.burn(up);
    if (creds.kind === 'bad_request') return refuse.refuse(up, 400, 'bad_request', creds.message);
    if (this.#closing) return refuse.refuse(up, 503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' });
    if (this.#fenced)
      return refuse.refuse(up, 503, 'unavailable', 'this node lost its cluster lease; connect to another node', { 'Retry-After': '1' });
    const { config, tokens, failures, metrics } = this.#d;
    const origin = req.headers.origin;
    if (origin !== undefined && this.#origins && !this.#origins.has(origin)) return refuse.refuse(up, 403, 'origin_not_allowed');
    // Cheap refusals first: a source past its failure budget gets no lookup at all.
    const wait = failures.retryAfterS(ip, { alert: true });
    if (wait > 0) return refuse.refuse(up, 429, 'rate_limited', undefined, { 'Retry-After': String(wait) });
    const { maxConnections, connectionsPerIp } = config.limits;
    if (maxConnections > 0 && this.#peers.size >= maxConnections) {
      return refuse.refuse(up, 503, 'unavailable', 'this node is at its connection limit', { 'Retry-After': '5' });
    }
    if (connectionsPerIp > 0 && (this.#perIp.get(ip) ?? 0) >= connectionsPerIp) {
      return refuse.refuse(up, 429, 'connection_limit', 'too many connections from this address', { 'Retry-After': '5' });
    }
    if (creds.kind === 'none' || creds.kind === 'malformed')
      return this.#unauthorized(up, creds.kind === 'none' ? 'missing' : 'malformed', ip);
    // Node's request timeouts no longer apply once `upgrade` fired: bound the authentication here.
    let settled = false;
    const deadline = setTimeout(() => {
      if (settled) return;
      settled = true;
      metrics.authFailures.inc({ reason: 'timeout' });
      this.#d.log.warn({ ip }, 'upgrade: authentication deadline passed; socket destroyed');
      socket.destroy();
    }, config.limits.authTimeoutMs);
    // Redeeming uses the ticket up, whatever comes next.
    up.ticket = undefined;
    const checking = creds.kind === 'ticket' ? tokens.redeemTicket(creds.ticket) : tokens.check(creds.token, creds.clientId);
    checking.then(
      (check) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (!check.ok) return this.#unauthorized(up, check.reason, ip);
        this.#accept(up, check, url);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        this.#d.log.error({ err, ip }, 'upgrade: store lookup failed');
        refuse.refuse(up, 503, 'unavailable', 'the token store is unavailable, try again', { 'Retry-After': '1' });
      },
    );
  }

  #unauthorized(up: Upgrade, reason: string, ip: string): void {
    this.#d.failures.fail(ip, { reason, msg: 'connection rejected: invalid credentials', alert: reason });
    this.#refuser.refuse(up, 401, 'unauthorized');
  }

  #accept(up: Upgrade, check: TokenCheck & { ok: true }, url: URL): void {
    const { socket, ip } = up;
    if (socket.destroyed) return;
    if (this.#closing) return this.#refuser.refuse(up, 503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' });
    const { config, presence, clock, nodeId } = this.#d;
    const rec: ConnectionRecord = {
      id: randomId('cn_'),
      clientId: check.client.id,
      tokenHash: check.token.hash,
      nodeId,
      connectedAt: clock.now(),
      remoteAddress: ip,
    };
    // The cluster's answer to "may this token connect?" (one live connection per token, any node).
    presence.claim(rec, { replace: config.duplicates.policy === 'replace', maxPerClient: config.limits.connectionsPerClient }).then(
      (claim) => this.#admitted(up, check, url, rec, claim),
      (err: unknown) => {
        this.#d.log.error({ err, ip }, 'upgrade: presence unavailable');
        this.#refuser.refuse(up, 503, 'unavailable', 'the connection registry is unavailable, try again', { 'Retry-After': '1' });
      },
    );
  }

  #admitted(up: Upgrade, check: TokenCheck & { ok: true }, url: URL, rec: ConnectionRecord, claim: ClaimResult): void {
    const { req, socket, head, ip } = up;
    const { log, metrics, presence } = this.#d;
    if (!claim.ok) {
      if (claim.reason === 'client_limit')
        return this.#refuser.refuse(up, 429, 'connection_limit', 'too many connections for this client', { 'Retry-After': '5' });
      metrics.duplicateRejections.inc();
      log.warn(
        { client_id: check.client.id, connection_id: claim.holder.id, node: claim.holder.nodeId, ip },
        'duplicate connection rejected',
      );
      this.#duplicateStrike(rec.tokenHash, check.client.id, ip);
      this.#control({ op: 'probe', connectionId: claim.holder.id }, claim.holder.nodeId);
      return this.#refuser.refuse(up, 409, 'duplicate_connection');
    }
    if (claim.replaced) {
      log.info(
        { client_id: check.client.id, connection_id: claim.replaced.id, node: claim.replaced.nodeId, ip },
        'connection replaced by a newer one',
      );
      this.#duplicateStrike(rec.tokenHash, check.client.id, ip);
      this.#control(
        { op: 'close', connectionId: claim.replaced.id, code: CloseCode.replaced, reason: 'replaced by a newer connection' },
        claim.replaced.nodeId,
      );
    }
    if (socket.destroyed || this.#closing) {
      void presence.release(rec.id).catch(() => undefined);
      if (!socket.destroyed) this.#refuser.refuse(up, 503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' });
      return;
    }
    // ws answers 101 and calls back synchronously: corked, the 101 and the welcome frame leave in one write.
    (socket as Socket).cork();
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, socket as Socket, check, url, ip, rec));
    (socket as Socket).uncork();
  }

  /** A control message to the node `to` — handled here at once when that is this node. */
  #control(msg: ControlMessage, to: string): void {
    if (to === this.#d.nodeId) this.onControl(msg);
    else this.#d.broker.control(msg, to);
  }

  /** A control message from another node (or this one). */
  onControl(msg: ControlMessage): void {
    switch (msg.op) {
      case 'close': {
        const peer = this.#peers.get(msg.connectionId);
        if (peer?.open) peer.close(msg.code, msg.reason);
        return;
      }
      case 'probe': {
        const peer = this.#peers.get(msg.connectionId);
        if (peer) this.#probe(peer);
        return;
      }
      case 'closeClient': {
        const n = this.closeClient(msg.clientId, msg.reason, msg.code);
        if (n) this.#d.log.info({ client_id: msg.clientId, connections: n, code: msg.code }, 'connections of a client closed');
        return;
      }
      case 'presence':
        return this.#session.presenceEvent(msg);
      case 'keysChanged':
        return;
    }
  }

  /**
   * This node could not renew its lease: its connections may already have been taken over on other
   * nodes. They are closed with 1013 (reconnect — to another node) and new ones refused until the
   * lease is back, so that a token never has two live connections.
   */
  fence(): void {
    if (this.#fenced) return;
    this.#fenced = true;
    this.#d.log.error({ connections: this.#peers.size }, 'cluster lease lost: closing every connection with 1013');
    for (const p of this.#peers.values()) p.close(CloseCode.tryAgainLater, 'node lost its cluster lease');
  }

  unfence(): void {
    if (!this.#fenced) return;
    this.#fenced = false;
    this.#d.log.info('cluster lease regained: accepting connections again');
  }

  #onConnection(ws: WebSocket, socket: Socket, check: TokenCheck & { ok: true }, url: URL, ip: string, rec: ConnectionRecord): void {
    const { config, store, clock, log, metrics } = this.#d;
    const peer = new Peer({
      id: rec.id,
      clientId: check.client.id,
      tokenHash: check.token.hash,
      remoteAddress: ip,
      connectedAt: rec.connectedAt,
      subscribeAcl: check.client.subscribe,
      publishAcl: check.client.publish,
      presenceAcl: check.client.presence ?? [],
      ws,
      socket,
      maxBufferedBytes: config.limits.maxBufferedBytes,
      requests: config.ws.requests,
      events: this.#peerEvents,
      coalescer: this.#coalescer,
    });
    this.#peers.set(peer.id, peer);
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    let set = this.#byClient.get(peer.clientId);
    if (!set) this.#byClient.set(peer.clientId, (set = new Set()));
    set.add(peer);
    metrics.connections.inc();
    this.#d.rates?.connected();
    if (this.#watchers.size) this.#tell({ event: 'open', id: peer.id, client_id: peer.clientId, address: ip });

    ws.on('message', (data: Buffer, isBinary: boolean) => {
      try {
        this.#session.onMessage(peer, data, isBinary);
      } catch (err) {
        this.#internalError(peer, err);
      }
    });
    // WebSocket-level pings spend the request budget too (ws answers them itself, and drops a client
    // with more than 60 answers it has not taken).
    ws.on('ping', () => {
      if (peer.open && !peer.rate.take()) this.#overRate(peer);
    });
    ws.on('pong', () => {
      peer.alive = true;
      peer.lastPongAt = Date.now();
    });
    ws.on('error', (err) => log.debug({ err: err.message, connection_id: peer.id }, 'websocket error'));
    ws.on('close', (code) => this.#onClose(peer, code));

    // Anything thrown while setting the connection up (a store that throws, a bug) closes only
    // this connection with 1011; the process keeps serving everyone else.
    try {
      // The connection is recorded already (the presence claim); this records the token's use.
      store.touchToken(peer.tokenHash, clock.now()).catch((err: unknown) => {
        log.error({ err, connection_id: peer.id }, 'could not record the token use');
      });
      log.debug({ connection_id: peer.id, client_id: peer.clientId, ip }, 'connected');
      peer.sendText(controlFrame('welcome', { connection_id: peer.id, client_id: peer.clientId, heartbeat_s: config.ws.heartbeatS }));
      const topics = url.searchParams.get('topics');
      if (topics) {
        const list = topics
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean);
        this.#session.subscribeAtConnect(peer, list);
      }
    } catch (err) {
      this.#internalError(peer, err);
    }
  }

  #onClose(peer: Peer, code: number): void {
    if (peer.closed) return;
    peer.closed = true;
    peer.gone();
    const { log, metrics } = this.#d;
    const topics = [...peer.subs];
    this.hub.removeAll(peer);
    if (topics.length) this.#session.left(peer, topics);
    this.#peers.delete(peer.id);
    const n = (this.#perIp.get(peer.remoteAddress) ?? 1) - 1;
    if (n > 0) this.#perIp.set(peer.remoteAddress, n);
    else this.#perIp.delete(peer.remoteAddress);
    const set = this.#byClient.get(peer.clientId);
    if (set?.delete(peer) && set.size === 0) this.#byClient.delete(peer.clientId);
    metrics.connections.dec();
    if (this.#watchers.size) this.#tell({ event: 'close', id: peer.id, client_id: peer.clientId, address: peer.remoteAddress, code });
    // Ordinary comings and goings are debug; a close for any other reason is worth an info line.
    const ordinary = code === CloseCode.normal || code === CloseCode.goingAway || code === 1005;
    log[ordinary ? 'debug' : 'info']({ connection_id: peer.id, client_id: peer.clientId, code }, 'disconnected');
    void this.#forget(peer);
  }

  /** Releases the connection's claim (cluster-wide) and records the token's last use. Once per peer. */
  async #forget(peer: Peer): Promise<void> {
    if (peer.released) return;
    peer.released = true;
    const { store, presence, clock, log } = this.#d;
    try {
      // While the node drains, Presence.close() forgets all of its connections at once.
      await Promise.all([this.#closing ? undefined : presence.release(peer.id), store.touchToken(peer.tokenHash, clock.now())]);
    } catch (err) {
      log.error({ err, connection_id: peer.id }, 'could not release the connection in the presence registry');
    }
  }

  #forbid(peer: Peer, what: string, id?: unknown): void {
    const { log, metrics } = this.#d;
    metrics.forbiddenSends.inc();
    log.warn({ client_id: peer.clientId, connection_id: peer.id, what }, 'consumer sent a message it may not send; closing 4501');
    this.#d.alerts.raise({ kind: 'consumer_sent_message', clientId: peer.clientId, ip: peer.remoteAddress, detail: what });
    peer.sendText(errorFrame('publish_not_allowed', undefined, id));
    peer.close(CloseCode.notAllowed, 'message not allowed');
    // A consumer that broke the rules gets 5 s (not ws's 30) to answer the close.
    setTimeout(() => peer.ws.terminate(), 5000).unref();
    void this.#forget(peer);
  }

  #slow(peer: Peer, why = 'outbound buffer cap reached'): void {
    this.#d.metrics.slowConsumers.inc();
    this.#d.log.warn({ client_id: peer.clientId, connection_id: peer.id, why }, `slow consumer: ${why}; closing 4001`);
    peer.cut(CloseCode.slowConsumer, 'slow consumer');
  }

  #overRate(peer: Peer): void {
    this.#d.metrics.requestRateCloses.inc();
    this.#d.log.warn({ client_id: peer.clientId, connection_id: peer.id }, 'request rate exceeded (ws.requests); closing 4002');
    peer.cut(CloseCode.requestRate, 'request rate exceeded');
  }

  #internalError(peer: Peer, err: unknown): void {
    const correlationId = randomId('e_', 8);
    this.#d.log.error({ err, correlation_id: correlationId, connection_id: peer.id }, 'internal error in a connection handler');
    this.#d.alerts.raise({
      kind: 'internal_error',
      clientId: peer.clientId,
      ip: peer.remoteAddress,
      detail: `connection handler, ref ${correlationId}`,
    });
    if (peer.open) peer.close(CloseCode.internalError, `internal error ${correlationId}`);
  }

  /**
   * Duplicates for one token within a minute. One is normal (a reconnect racing a half-open
   * connection); from the third on, DevOps hear of it: the token may have leaked.
   */
  #duplicateStrike(tokenHash: string, clientId: string, ip: string): void {
    const now = this.#d.clock.now();
    let s = this.#strikes.get(tokenHash);
    if (!s || now - s.since > 60_000) this.#strikes.set(tokenHash, (s = { since: now, count: 0 }));
    if (++s.count >= DUPLICATE_ALERT_STRIKES) {
      this.#d.alerts.raise({
        kind: 'duplicate_connection',
        clientId,
        ip,
        detail: `${s.count} duplicate connections for one token within a minute`,
      });
    }
  }

  /** On a rejected duplicate: ping the live connection, terminate it if no pong within probeMs. */
  #probe(peer: Peer): void {
    if (peer.probing || !peer.open) return;
    peer.probing = true;
    const started = Date.now();
    peer.ws.ping();
    setTimeout(() => {
      peer.probing = false;
      if (!peer.closed && peer.lastPongAt < started) {
        this.#d.log.warn(
          { connection_id: peer.id, client_id: peer.clientId },
          'live connection did not answer the duplicate probe; terminated',
        );
        peer.ws.terminate();
      }
    }, this.#d.config.duplicates.probeMs).unref();
  }

  #sweep(): void {
    this.#d.failures.sweep();
    this.#refuser.sweep();
    const now = this.#d.clock.now();
    for (const [k, s] of this.#strikes) if (now - s.since > 60_000) this.#strikes.delete(k);
    this.positions.sweep((t) => this.hub.has(t));
    for (const peer of this.#peers.values()) {
      if (!peer.alive) {
        peer.ws.terminate();
        continue;
      }
      peer.alive = false;
      if (peer.ws.readyState === WebSocket.OPEN) peer.ws.ping();
    }
  }

  /** Closes every live connection of a client on this node (4500: revoked). */
  closeClient(clientId: string, reason = 'client revoked', code: number = CloseCode.revoked): number {
    const set = this.#byClient.get(clientId);
    if (!set) return 0;
    for (const peer of set) peer.close(code, reason);
    return set.size;
  }

  /** Live connections of a client on this node. */
  clientConnections(clientId: string): number {
    return this.#byClient.get(clientId)?.size ?? 0;
  }

  /**
   * This node's live connections, oldest first, matching every filter given: `client` (its id),
   * `address` (its source address), `topic` (a topic or pattern it subscribed to, as subscribed).
   */
  liveConnections(
    filter: { client?: string | undefined; address?: string | undefined; topic?: string | undefined } = {},
  ): LiveConnection[] {
    const { client, address, topic } = filter;
    const peers = client !== undefined ? (this.#byClient.get(client) ?? []) : this.#peers.values();
    const out: LiveConnection[] = [];
    for (const p of peers) {
      if (p.closed || (address !== undefined && p.remoteAddress !== address) || (topic !== undefined && !p.subs.has(topic))) continue;
      out.push({
        id: p.id,
        clientId: p.clientId,
        address: p.remoteAddress,
        connectedAt: p.connectedAt,
        subscriptions: [...p.subs],
        queuedBytes: p.queuedBytes,
      });
    }
    return out.sort((a, b) => a.connectedAt - b.connectedAt || (a.id < b.id ? -1 : 1));
  }

  /**
   * An operator closes a live connection of this node: 4503 (stop), or 4003 (reconnect) with
   * `reconnect`. False when this node has no such open connection.
   */
  kick(connectionId: string, reconnect: boolean): boolean {
    const peer = this.#peers.get(connectionId);
    if (!peer?.open) return false;
    peer.close(reconnect ? CloseCode.kickedReconnect : CloseCode.kicked, 'disconnected by an operator');
    return true;
  }

  /** Calls `fn` for every connection opened or closed on this node until the returned function is called. */
  watchConnections(fn: (e: ConnectionEvent) => void): () => void {
    this.#watchers.add(fn);
    return () => void this.#watchers.delete(fn);
  }

  #tell(e: ConnectionEvent): void {
    for (const fn of this.#watchers) {
      try {
        fn(e);
      } catch (err) {
        this.#d.log.error({ err }, 'connection watcher failed');
      }
    }
  }

  /** Stops accepting, closes every connection with 1001, waits (bounded) for them to go. */
  async close(graceMs = 2000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#positionCheck);
    const peers = [...this.#peers.values()];
    for (const p of peers) p.close(CloseCode.goingAway, 'server going away');
    const deadline = Date.now() + graceMs;
    while (this.#peers.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const p of this.#peers.values()) p.ws.terminate();
    await Promise.all(peers.map((p) => this.#forget(p)));
    this.positions.close();
    this.#wss.close();
  }
}
