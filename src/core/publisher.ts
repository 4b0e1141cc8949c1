import { createHash } from 'node:crypto';
import type { Publication } from '../broker/broker.ts';
import type { PayloadKind, Store } from '../store/store.ts';
import type { Clock } from './clock.ts';
import { HubcastError } from './errors.ts';
import { randomId } from './ids.ts';
import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth, tooDeep } from './json-depth.ts';
import { isValidTopic } from './topics.ts';

/** The JSON text of a parsed value, for publishing; a value too deeply nested to serialize is a client error. */
export function jsonPayload(data: unknown): Buffer {
  try {
    return Buffer.from(JSON.stringify(data));
  } catch (err) {
    // RangeError: deeper than the stack; TypeError: a BigInt or a cycle (from a module step).
    throw new HubcastError('invalid_json', err instanceof RangeError ? 'data is nested too deeply' : 'data cannot be serialized as JSON');
  }
}

/** SHA-256 of what makes a publish request: topic, kind and payload (length-prefixed, unambiguous). */
function requestHash(input: PublishInput): string {
  return createHash('sha256').update(`${input.topic}\n${input.kind}\n${input.payload.length}\n`).update(input.payload).digest('hex');
}

export interface PublishInput {
  topic: string;
  kind: PayloadKind;
  /** json: UTF-8 JSON text; text: UTF-8; binary: raw bytes. */
  payload: Buffer;
  /**
   * Idempotency key: a repeat of the same request with the same key in the same `scope` within
   * `history.dedupeS` is not delivered twice; a different request (topic, kind or payload) reusing
   * the key is refused with `idempotency_key_conflict`.
   */
  key?: string | undefined;
  /**
   * Who owns the key (see `AppendRequest.scope`): `key:<ingest key id>`, `client:<client id>`,
   * `connector:<name>`, `api`. Default: `source`.
   */
  scope?: string | undefined;
  /** Who published (metrics label): http, ws, api, connector. */
  source: string;
}

export interface PublishResult {
  topic: string;
  offset: number;
  epoch: string;
  ts: number;
  /** The idempotency key, or a generated message id. */
  id: string;
  duplicate: boolean;
}

export interface PublisherDeps {
  store: Store;
  /**
   * Hands a committed publication to fan-out: this node's subscribers and, through the broker,
   * every other node's (server.ts wires it).
   */
  fanout: (pub: Publication) => void;
  clock: Clock;
  maxMessageBytes: number;
  /** Deepest JSON nesting accepted for a `json` payload (limits.maxJsonDepth); default 64. */
  maxJsonDepth?: number;
  onPublished?: (source: string) => void;
}

/**
 * THE publish path. HTTP ingest, client publishes, the programmatic API, connectors and the CLI
 * all call `publish()`: validate → append to history (durable; the offset is assigned there) → fan
 * out (this node at once, other nodes through the broker). Fan-out order per topic is the offset
 * order: on one node appends settle in call order; across nodes the receiving node's `Positions`
 * orders by offset.
 */
export class Publisher {
  readonly #d: PublisherDeps;

  constructor(deps: PublisherDeps) {
    this.#d = deps;
  }

  async publish(input: PublishInput): Promise<PublishResult> {
    const { store, fanout, clock, maxMessageBytes } = this.#d;
    if (!isValidTopic(input.topic))
      throw new HubcastError('invalid_topic', 'topic must be 1–200 characters: segments of [A-Za-z0-9_-] separated by "."');
    if (input.payload.length > maxMessageBytes) throw new HubcastError('payload_too_large', `the payload exceeds ${maxMessageBytes} bytes`);
    // Every entrance comes through here, so this is the one check no entrance can miss.
    const maxDepth = this.#d.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
    if (input.kind === 'json' && exceedsJsonDepth(input.payload, maxDepth)) throw new HubcastError('invalid_json', tooDeep(maxDepth));
    if (input.key !== undefined && (typeof input.key !== 'string' || input.key.length === 0 || input.key.length > 200)) {
      throw new HubcastError('bad_request', 'the idempotency key must be 1–200 characters');
    }
    const ts = clock.now();
    let res;
    try {
      // Nothing before this call may await: `publishMany` relies on making every append in one turn.
      res = await store.append({
        topic: input.topic,
        kind: input.kind,
        payload: input.payload,
        key: input.key,
        ...(input.key !== undefined ? { scope: input.scope ?? input.source, requestHash: requestHash(input) } : {}),
        ts,
      });
    } catch (err) {
      throw new HubcastError('unavailable', 'the message store is unavailable; nothing was stored', { cause: err, retryAfterS: 1 });
    }
    if (res.conflict) throw new HubcastError('idempotency_key_conflict');
    if (!res.duplicate) {
      fanout({ topic: input.topic, offset: res.offset, epoch: res.epoch, ts: res.ts, kind: input.kind, payload: input.payload });
      this.#d.onPublished?.(input.source);
    }
    return {
      topic: input.topic,
      offset: res.offset,
      epoch: res.epoch,
      ts: res.ts,
      id: input.key ?? randomId('m_'),
      duplicate: res.duplicate,
    };
  }

  /**
   * Publishes several messages as one unit (`POST /entities`), each through `publish()`. Every input
   * that passes validation is appended in this one event-loop turn, so the store commits them in one
   * transaction (History contract, store.ts): they are stored together or not at all, the messages of
   * one topic get consecutive offsets in input order, and fan-out follows that order.
   *
   * One settled result per input, in input order: an input refused by validation or idempotency
   * (`invalid_topic`, `payload_too_large`, `idempotency_key_conflict`…) is rejected on its own and not
   * stored; when the store fails, every input that reached it is rejected with `unavailable`.
   */
  publishMany(inputs: readonly PublishInput[]): Promise<PromiseSettledResult<PublishResult>[]> {
    return Promise.allSettled(inputs.map((input) => this.publish(input)));
  }
}
