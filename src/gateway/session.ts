import type { Config } from '../config/schema.ts';
import { HubcastError, type ErrorCode } from '../core/errors.ts';
import { jsonPayload, type Publisher } from '../core/publisher.ts';
import { allowedBy, isValidPattern, isValidTopic, isWildcard } from '../core/topics.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Broker, ControlMessage } from '../broker/broker.ts';
import type { Presence } from '../cluster/presence.ts';
import type { Store } from '../store/store.ts';
import { controlFrame, errorFrame, isValidId, MAX_ID_LENGTH } from './frames.ts';
import type { Hub } from './hub.ts';
import type { Peer } from './peer.ts';
import { Replayer } from './replay.ts';
import { CloseCode } from '../../packages/client/src/protocol.ts';

export interface SessionDeps {
  config: Config;
  store: Store;
  publisher: Publisher;
  hub: Hub;
  metrics: Metrics;
  log: Logger;
  presence: Presence;
  broker: Broker;
  nodeId: string;
  /** Where a concrete topic's live position starts (the first subscription gives it). */
  positions: {
    track(topic: string, offset: number, epoch: string): void;
    lastOf(topic: string): number | undefined;
    epochOf(topic: string): string | undefined;
  };
  /** Closes a consumer that sent what it may not send (error frame with `id`, log, store cleanup, close 4501). */
  forbid: (peer: Peer, what: string, id?: unknown) => void;
  /** Closes a consumer past its request budget (close 4002). */
  overRate: (peer: Peer) => void;
}

interface Since {
  offset: number;
  epoch?: string;
}

function parseSince(v: unknown): Since | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) return null;
  const { offset, epoch } = v as Record<string, unknown>;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return null;
  if (epoch !== undefined && typeof epoch !== 'string') return null;
  return epoch === undefined ? { offset } : { offset, epoch };
}

/** A `presence` answer lists at most this many subscribers (it says the total and that it was cut). */
const MAX_PRESENCE_LISTED = 500;

/** Topics named in error frames are cut to this many characters (a valid topic is at most 200). */
const MAX_NAMED_TOPIC = 200;

/** The `topic` field of an error about a subscription: the topic as given, when it is a string. */
function topicField(topic: unknown): Record<string, unknown> | undefined {
  if (typeof topic !== 'string') return undefined;
  return { topic: topic.length > MAX_NAMED_TOPIC ? topic.slice(0, MAX_NAMED_TOPIC) + '…' : topic };
}

const BAD_ID = `"id" must be a string of at most ${MAX_ID_LENGTH} characters or an integer`;

/**
 * What a connected consumer may say, and the answers. Frames are documented in docs/websocket.md.
 * Requests of one connection are handled one at a time, in arrival order (peer.requests).
 */
export class Session {
  readonly #d: SessionDeps;
  readonly #replayer: Replayer;

  constructor(deps: SessionDeps) {
    this.#d = deps;
    this.#replayer = new Replayer({ config: deps.config, store: deps.store, metrics: deps.metrics, log: deps.log });
  }

  onMessage(peer: Peer, data: Buffer, isBinary: boolean): void {
    if (!peer.open) return;
    if (!peer.rate.take()) return this.#d.overRate(peer);
    if (isBinary) return this.#forbidInTurn(peer, 'binary frame');
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return this.#forbidInTurn(peer, 'malformed JSON');
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.#forbidInTurn(peer, 'not a JSON object');
    const m = msg as Record<string, unknown>;
    peer.requests.push(() => this.#handle(peer, m));
  }

  /** A frame that breaks the receive-only rule, handled in its turn: the requests before it are answered first. */
  #forbidInTurn(peer: Peer, what: string): void {
    peer.requests.push(() => {
      if (peer.open) this.#d.forbid(peer, what);
    });
  }

  /** The `?topics=` of the upgrade: subscribed in order, before any request; errors name their topic. */
  subscribeAtConnect(peer: Peer, topics: string[]): void {
    for (const topic of topics) peer.requests.push(() => this.subscribe(peer, topic, undefined, undefined, true));
  }

  #handle(peer: Peer, m: Record<string, unknown>): void | Promise<void> {
    if (!peer.open) return;
    const { id } = m;
    const echo = isValidId(id) ? id : undefined;
    switch (m.type) {
      case 'subscribe':
      case 'unsubscribe':
      case 'ping':
      case 'presence':
        break;
      case 'publish':
        if (peer.publishAcl.length === 0) return this.#d.forbid(peer, 'publish without publish rights', echo);
        break;
      default:
        return this.#d.forbid(peer, 'unknown frame type', echo);
    }
    // An id that cannot be echoed: the request is not carried out, and the answer says why (without it).
    if (!isValidId(id)) return peer.sendText(errorFrame('bad_request', BAD_ID));
    switch (m.type) {
      case 'subscribe':
        if (m.presence !== undefined && typeof m.presence !== 'boolean')
          return peer.sendText(errorFrame('bad_request', '"presence" must be a boolean', id));
        return this.subscribe(peer, m.topic, m.since, id, false, m.presence === true);
      case 'unsubscribe':
        return this.#unsubscribe(peer, m.topic, id);
      case 'ping':
        return peer.sendText(controlFrame('pong', {}, id));
      case 'presence':
        return this.#presence(peer, m.topic, id);
      default:
        return this.#publish(peer, m);
    }
  }

  /**
   * Subscribes and answers `subscribed`, then replays history after `since`, then goes live. Live
   * messages of the topic are held from the moment the subscription exists until the answer and the
   * replay are written, so the consumer sees every offset once, in order.
   */
  async subscribe(peer: Peer, topic: unknown, sinceRaw: unknown, id: unknown, atConnect = false, events = false): Promise<void> {
    if (!peer.open) return;
    const { hub, store, config } = this.#d;
    // A `?topics=` subscription has no id to match its error by: the error names its topic instead.
    const named = atConnect ? topicField(topic) : undefined;
    const fail = (code: ErrorCode, message?: string) => peer.sendText(errorFrame(code, message, id, named));
    if (!isValidTopic(topic) && !isValidPattern(topic)) return fail('invalid_topic');
    if (!allowedBy(peer.subscribeAcl, topic)) return fail('forbidden', `not allowed to subscribe to ${topic}`);
    if (peer.subs.has(topic)) return fail('already_subscribed');
    if (peer.subs.size >= config.ws.maxSubscriptions) return fail('too_many_subscriptions');
    if (events && !allowedBy(peer.presenceAcl, topic)) return fail('forbidden', `not allowed to see the presence of ${topic}`);
    const since = parseSince(sinceRaw);
    if (since === null) return fail('bad_request', 'since must be {"offset": integer ≥ 0, "epoch"?: string}');
    if (isWildcard(topic)) {
      if (since) return fail('bad_request', 'since is only allowed on a concrete topic');
      hub.add(peer, topic);
      this.#joined(peer, topic, events);
      return peer.sendText(controlFrame('subscribed', { topic, pattern: true }, id));
    }

    hub.add(peer, topic);
    const hold = peer.hold(topic);
    let state;
    try {
      state = await store.topicState(topic);
    } catch (err) {
      this.#d.log.error({ err, connection_id: peer.id }, 'subscribe: store read failed');
      if (peer.isCurrentHold(topic, hold)) hub.remove(peer, topic);
      return fail('unavailable', 'history is unavailable, try again');
    }
    if (!peer.isCurrentHold(topic, hold)) return;
    const { positions } = this.#d;
    positions.track(topic, state.offset, state.epoch);
    // While History was being read, this node may have started delivering the topic from a later
    // publication (one that arrived first set the baseline, e.g. when the broker lost the one before
    // it): the replay goes through what the node has delivered, else the offsets between History's
    // answer and that baseline would reach this connection neither live nor replayed.
    const live = positions.lastOf(topic);
    const through = live !== undefined && live > state.offset && positions.epochOf(topic) === state.epoch ? live : state.offset;
    this.#joined(peer, topic, events);
    let recovered = false;
    let from = state.offset;
    if (since && (since.epoch === undefined || since.epoch === state.epoch) && since.offset <= state.offset) {
      recovered = state.firstRetained <= since.offset + 1;
      from = since.offset;
    }
    peer.sendText(controlFrame('subscribed', { topic, offset: state.offset, epoch: state.epoch, recovered }, id));
    let replayed: number | undefined;
    try {
      replayed = await this.#replayer.run(peer, topic, hold, from, through);
    } catch (err) {
      // The answer was given: a failed history read ends the connection (it can resume with `since`).
      this.#d.log.error({ err, connection_id: peer.id }, 'replay: store read failed');
      if (peer.open) peer.close(CloseCode.internalError, 'history is unavailable');
      return;
    }
    if (replayed === undefined || !peer.release(topic, hold, replayed)) return;
    // On a cluster node whose live position lags behind history (a gap being filled), the live
    // messages the replay already wrote are still to come: skip them.
    if (!((positions.lastOf(topic) ?? -1) >= replayed)) peer.skipThrough(topic, replayed);
  }

  #unsubscribe(peer: Peer, topic: unknown, id: unknown): void {
    if (typeof topic !== 'string' || !peer.subs.has(topic)) return peer.sendText(errorFrame('not_subscribed', undefined, id));
    this.#d.hub.remove(peer, topic);
    this.left(peer, [topic]);
    peer.sendText(controlFrame('unsubscribed', { topic }, id));
  }

  /** Records a subscription in Presence and tells the cluster (join events). */
  #joined(peer: Peer, topic: string, events: boolean): void {
    const { presence, config } = this.#d;
    presence.join(peer.id, topic, Date.now());
    if (events) this.#d.hub.watch(peer, topic);
    if (config.cluster.presenceEvents) this.#announce(peer, 'join', topic);
  }

  /** Subscriptions that ended (unsubscribe, close): Presence forgets them, the cluster hears of it. */
  left(peer: Peer, topics: readonly string[]): void {
    const { presence, config } = this.#d;
    for (const topic of topics) {
      if (!peer.released) presence.leave(peer.id, topic);
      this.#d.hub.unwatch(peer, topic);
      if (config.cluster.presenceEvents) this.#announce(peer, 'leave', topic);
    }
  }

  #announce(peer: Peer, event: 'join' | 'leave', topic: string): void {
    const { broker, nodeId } = this.#d;
    broker.control({ op: 'presence', event, topic, clientId: peer.clientId, connectionId: peer.id, nodeId });
  }

  /** A join or leave anywhere in the cluster: a frame to each local connection that asked for them. */
  presenceEvent(msg: ControlMessage & { op: 'presence' }): void {
    const watchers = this.#d.hub.watchersOf(msg.topic);
    if (!watchers) return;
    for (const peer of watchers) {
      if (peer.id === msg.connectionId) continue;
      peer.sendText(controlFrame(msg.event, { topic: msg.topic, client_id: msg.clientId, connection_id: msg.connectionId }));
    }
  }

  /** `{"type":"presence","topic":…}`: who is subscribed to the topic, on every node. */
  async #presence(peer: Peer, topic: unknown, id: unknown): Promise<void> {
    if (!isValidTopic(topic) && !isValidPattern(topic)) return peer.sendText(errorFrame('invalid_topic', undefined, id));
    if (!allowedBy(peer.presenceAcl, topic))
      return peer.sendText(errorFrame('forbidden', `not allowed to see the presence of ${topic}`, id));
    let subs;
    try {
      subs = await this.#d.presence.subscribers(topic);
    } catch (err) {
      this.#d.log.error({ err, connection_id: peer.id }, 'presence: registry unavailable');
      return peer.sendText(errorFrame('unavailable', 'presence is unavailable, try again', id));
    }
    const max = MAX_PRESENCE_LISTED;
    const list = subs.slice(0, max).map((s) => ({ client_id: s.clientId, connection_id: s.connectionId }));
    peer.sendText(controlFrame('presence', { topic, subscribers: list, total: subs.length, truncated: subs.length > max }, id));
  }

  #publish(peer: Peer, m: Record<string, unknown>): void {
    const { topic, id } = m;
    if (!isValidTopic(topic)) return peer.sendText(errorFrame('invalid_topic', undefined, id));
    if (!allowedBy(peer.publishAcl, topic)) return this.#d.forbid(peer, `publish to ${topic} without rights`, id);
    const hasData = 'data' in m && m.data !== undefined;
    const b64 = m.data_base64;
    if (hasData === (b64 !== undefined))
      return peer.sendText(errorFrame('bad_request', 'publish needs exactly one of "data" (JSON) and "data_base64" (bytes)', id));
    const key = m.key;
    if (key !== undefined && typeof key !== 'string') return peer.sendText(errorFrame('bad_request', '"key" must be a string', id));
    let payload: Buffer;
    let kind: 'json' | 'binary' = 'json';
    if (b64 !== undefined) {
      // Checked before decoding: Buffer.from(…, 'base64') would skip what is not base64.
      if (typeof b64 !== 'string' || !isBase64(b64))
        return peer.sendText(errorFrame('bad_request', '"data_base64" must be standard base64 (RFC 4648, padded)', id));
      payload = Buffer.from(b64, 'base64');
      kind = 'binary';
    } else {
      try {
        payload = jsonPayload(m.data);
      } catch (err) {
        return peer.sendText(errorFrame('invalid_json', (err as Error).message, id));
      }
    }
    // Not awaited: the ack comes when the message is committed, possibly after later answers.
    this.#d.publisher.publish({ topic, kind, payload, key, scope: `client:${peer.clientId}`, source: 'ws' }).then(
      (res) => peer.sendText(controlFrame('ack', { topic, offset: res.offset }, id)),
      (err: unknown) => {
        if (err instanceof HubcastError) return peer.sendText(errorFrame(err.code, err.message, id));
        this.#d.log.error({ err, connection_id: peer.id }, 'publish failed');
        peer.sendText(errorFrame('internal_error', undefined, id));
      },
    );
  }
}

/** Standard base64 with padding (what `btoa` and `Buffer#toString('base64')` write). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const isBase64 = (s: string) => BASE64.test(s);
