import type { Config } from '../config/schema.ts';
import { HubcastError } from '../core/errors.ts';
import { jsonPayload, type Publisher } from '../core/publisher.ts';
import { allowedBy, isValidPattern, isValidTopic, isWildcard } from '../core/topics.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';
import { controlFrame, errorFrame, messageFrame } from './frames.ts';
import type { Hub } from './hub.ts';
import type { Peer } from './peer.ts';

export interface SessionDeps {
  config: Config;
  store: Store;
  publisher: Publisher;
  hub: Hub;
  metrics: Metrics;
  log: Logger;
  /** Closes a consumer that sent what it may not send (error frame, log, store cleanup, close 4501). */
  forbid: (peer: Peer, what: string) => void;
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

/** What a connected consumer may say, and the answers. Frames are documented in docs/websocket.md. */
export class Session {
  readonly #d: SessionDeps;

  constructor(deps: SessionDeps) {
    this.#d = deps;
  }

  onMessage(peer: Peer, data: Buffer, isBinary: boolean): void {
    if (!peer.open) return;
    if (isBinary) return this.#d.forbid(peer, 'binary frame');
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return this.#d.forbid(peer, 'malformed JSON');
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.#d.forbid(peer, 'not a JSON object');
    const m = msg as Record<string, unknown>;
    switch (m.type) {
      case 'subscribe':
        return void this.subscribe(peer, m.topic, m.since, m.id);
      case 'unsubscribe':
        return this.#unsubscribe(peer, m.topic, m.id);
      case 'ping':
        return peer.sendText(controlFrame('pong', {}, m.id));
      case 'publish':
        return this.#publish(peer, m);
      default:
        return this.#d.forbid(peer, 'unknown frame type');
    }
  }

  /**
   * Subscribes and answers `subscribed`, then replays history after `since`, then goes live. Live
   * messages of the topic are held from the moment the subscription exists until the answer and the
   * replay are written, so the consumer sees every offset once, in order.
   */
  async subscribe(peer: Peer, topic: unknown, sinceRaw: unknown, id: unknown): Promise<void> {
    const { hub, store, config, metrics } = this.#d;
    if (!isValidTopic(topic) && !isValidPattern(topic)) return peer.sendText(errorFrame('invalid_topic', undefined, id));
    if (!allowedBy(peer.subscribeAcl, topic)) return peer.sendText(errorFrame('forbidden', `not allowed to subscribe to ${topic}`, id));
    if (peer.subs.has(topic)) return peer.sendText(errorFrame('already_subscribed', undefined, id));
    if (peer.subs.size >= config.ws.maxSubscriptions) return peer.sendText(errorFrame('too_many_subscriptions', undefined, id));
    const since = parseSince(sinceRaw);
    if (since === null) return peer.sendText(errorFrame('bad_request', 'since must be {"offset": integer ≥ 0, "epoch"?: string}', id));
    if (isWildcard(topic)) {
      if (since) return peer.sendText(errorFrame('bad_request', 'since is only allowed on a concrete topic', id));
      hub.add(peer, topic);
      return peer.sendText(controlFrame('subscribed', { topic, pattern: true }, id));
    }

    hub.add(peer, topic);
    const hold = peer.hold(topic);
    let state;
    let replay: Awaited<ReturnType<Store['readHistory']>> = [];
    let recovered = false;
    try {
      state = await store.topicState(topic);
      if (since && (since.epoch === undefined || since.epoch === state.epoch) && since.offset <= state.offset) {
        recovered = state.firstRetained <= since.offset + 1;
        if (since.offset < state.offset)
          replay = await store.readHistory(topic, since.offset, Math.min(state.offset - since.offset, config.history.size));
      }
    } catch (err) {
      this.#d.log.error({ err, connection_id: peer.id }, 'subscribe: store read failed');
      if (peer.isCurrentHold(topic, hold)) hub.remove(peer, topic);
      return peer.sendText(errorFrame('unavailable', 'history is unavailable, try again', id));
    }
    if (!peer.isCurrentHold(topic, hold)) return;
    peer.sendText(controlFrame('subscribed', { topic, offset: state.offset, epoch: state.epoch, recovered }, id));
    let last = since?.offset ?? 0;
    for (const m of replay) {
      if (m.offset > state.offset || m.offset <= last) continue;
      peer.writeMessage(messageFrame(m));
      last = m.offset;
    }
    if (replay.length) metrics.replayed.inc(replay.length);
    peer.release(topic, hold, state.offset);
  }

  #unsubscribe(peer: Peer, topic: unknown, id: unknown): void {
    if (typeof topic !== 'string' || !peer.subs.has(topic)) return peer.sendText(errorFrame('not_subscribed', undefined, id));
    this.#d.hub.remove(peer, topic);
    peer.sendText(controlFrame('unsubscribed', { topic }, id));
  }

  #publish(peer: Peer, m: Record<string, unknown>): void {
    const { topic, id } = m;
    if (peer.publishAcl.length === 0) return this.#d.forbid(peer, 'publish without publish rights');
    if (!isValidTopic(topic)) return peer.sendText(errorFrame('invalid_topic', undefined, id));
    if (!allowedBy(peer.publishAcl, topic)) return this.#d.forbid(peer, `publish to ${topic} without rights`);
    if (!('data' in m) || m.data === undefined) return peer.sendText(errorFrame('bad_request', 'publish needs "data"', id));
    const key = m.key;
    if (key !== undefined && typeof key !== 'string') return peer.sendText(errorFrame('bad_request', '"key" must be a string', id));
    let payload: Buffer;
    try {
      payload = jsonPayload(m.data);
    } catch (err) {
      return peer.sendText(errorFrame('invalid_json', (err as Error).message, id));
    }
    this.#d.publisher.publish({ topic, kind: 'json', payload, key, scope: `client:${peer.clientId}`, source: 'ws' }).then(
      (res) => peer.sendText(controlFrame('ack', { topic, offset: res.offset }, id)),
      (err: unknown) => {
        if (err instanceof HubcastError) return peer.sendText(errorFrame(err.code, err.message, id));
        this.#d.log.error({ err, connection_id: peer.id }, 'publish failed');
        peer.sendText(errorFrame('internal_error', undefined, id));
      },
    );
  }
}
