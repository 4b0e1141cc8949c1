import { TextDecoder } from 'node:util';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { cidrBlockList, type Config } from '../config/schema.ts';
import { HubcastError } from '../core/errors.ts';
import { parseJsonBody, tooDeep } from '../core/json-depth.ts';
import { jsonPayload, type PublishInput, type PublishResult, type Publisher } from '../core/publisher.ts';
import { isValidTopic } from '../core/topics.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { readBearer } from '../auth/credentials.ts';
import type { AuthFailures } from '../auth/failures.ts';
import type { KeyCheck } from '../auth/keys.ts';
import { clientAddress, inList } from './ip.ts';

export interface EntityRouteDeps {
  config: Config;
  keys: KeyCheck;
  publisher: Publisher;
  metrics: Metrics;
  /** The ingest entrance's failure handler: a budget of its own, apart from the consumer entrances'. */
  failures: AuthFailures;
  log: Logger;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Room for the `{"topic","data","id"}` envelope around a payload of maxMessageBytes. */
const ENVELOPE_BYTES = 16 * 1024;

function mediaType(req: FastifyRequest): string {
  const ct = req.headers['content-type'];
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The ingest key id of each authenticated request: idempotency keys are scoped per ingest key. */
const keyIds = new WeakMap<FastifyRequest, string>();
const scopeOf = (req: FastifyRequest) => (keyIds.has(req) ? `key:${keyIds.get(req)!}` : 'http');

const isJson = (t: string) => t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'));

function idempotencyKey(req: FastifyRequest): string | undefined {
  const v = req.headers['idempotency-key'];
  return Array.isArray(v) ? v[0] : v;
}

/** One answer of `POST /entities`, in item order. */
type BatchResult = { topic: string; offset: number; id: string; duplicate?: true } | ReturnType<HubcastError['toJSON']>;

/** Levels of `{"messages":[{"data": …}]}` around each item's `data`. */
const BATCH_ENVELOPE_DEPTH = 3;

/**
 * One item of a `POST /entities` body as a publish input, or the error that refuses it (nothing is
 * stored for it). The same checks as the `POST /entity` envelope; the publisher checks the rest.
 */
function batchItem(item: unknown, scope: string): PublishInput | HubcastError {
  if (typeof item !== 'object' || item === null || Array.isArray(item))
    return new HubcastError('bad_request', 'each message must be {"topic","data","id"?}');
  const o = item as Record<string, unknown>;
  if (!isValidTopic(o.topic)) return new HubcastError('invalid_topic');
  if (o.data === undefined) return new HubcastError('bad_request', '"data" is required');
  if (o.id !== undefined && typeof o.id !== 'string') return new HubcastError('bad_request', '"id" must be a string');
  try {
    return { topic: o.topic, kind: 'json', payload: jsonPayload(o.data), key: o.id as string | undefined, scope, source: 'http' };
  } catch (err) {
    if (err instanceof HubcastError) return err;
    throw err;
  }
}

/**
 * POST /entity, POST /entity/<topic> and POST /entities (a batch): the Experience API's ingest,
 * behind the allow-list and key.
 */
export function entityRoutes(app: FastifyInstance, d: EntityRouteDeps): void {
  const { config, publisher, metrics } = d;
  const allow = cidrBlockList(config.ingest.allow);
  const trusted = config.ingest.trustProxy.length ? cidrBlockList(config.ingest.trustProxy) : undefined;
  const max = config.limits.maxMessageBytes;
  const maxDepth = config.limits.maxJsonDepth;
  const { maxBatchMessages, maxBatchBytes } = config.limits;

  app.register(async (scope) => {
    scope.addHook('onRequest', async (req) => {
      const addr = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trusted);
      if (!inList(allow, addr)) {
        d.log.warn({ ip: addr, path: req.routeOptions.url }, 'ingest rejected: source address not allowed');
        throw new HubcastError('ip_not_allowed');
      }
      if (!config.ingest.requireKey) return;
      const wait = d.failures.retryAfterS(addr);
      if (wait > 0) throw new HubcastError('rate_limited', undefined, { retryAfterS: wait });
      const bearer = readBearer(req.headers);
      const key = await d.keys.find(bearer.kind === 'bearer' ? bearer.token : undefined);
      if (!key) {
        d.failures.fail(addr, { reason: 'invalid_key', msg: 'ingest rejected: missing or invalid key' });
        throw new HubcastError('invalid_key');
      }
      keyIds.set(req, key.id);
    });
    scope.addHook('onResponse', (_req, reply, done) => {
      metrics.ingestRequests.inc({ status: String(reply.statusCode) });
      metrics.ingestDuration.observe(reply.elapsedTime / 1000);
      done();
    });

    const accept = async (input: PublishInput) => {
      const res = await publisher.publish(input);
      return { topic: res.topic, offset: res.offset, id: res.id };
    };

    scope.post('/entity', { bodyLimit: max + ENVELOPE_BYTES }, async (req, reply) => {
      const type = mediaType(req);
      if (!isJson(type))
        throw new HubcastError('unsupported_media_type', 'POST /entity takes application/json; send other bodies to POST /entity/<topic>');
      const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
      // Before parsing: the envelope is one level, `data` may use the other maxDepth.
      const parsed = parseJsonBody(body, maxDepth + 1, tooDeep(maxDepth));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new HubcastError('bad_request', 'the body must be {"topic","data","id"?}');
      const o = parsed as Record<string, unknown>;
      if (!isValidTopic(o.topic)) throw new HubcastError('invalid_topic');
      if (o.data === undefined) throw new HubcastError('bad_request', '"data" is required');
      if (o.id !== undefined && typeof o.id !== 'string') throw new HubcastError('bad_request', '"id" must be a string');
      const key = (o.id as string | undefined) ?? idempotencyKey(req);
      const payload = jsonPayload(o.data);
      return reply.code(202).send(await accept({ topic: o.topic, kind: 'json', payload, key, scope: scopeOf(req), source: 'http' }));
    });

    // A path of its own, not /entity/batch: `batch` is a valid topic name, published to with
    // POST /entity/batch like any other.
    scope.post('/entities', { bodyLimit: maxBatchBytes }, async (req, reply) => {
      if (!isJson(mediaType(req))) throw new HubcastError('unsupported_media_type', 'POST /entities takes application/json');
      // A retry of a whole batch is safe through each message's own id; one key for the lot cannot say
      // which messages it covers, so it is refused rather than ignored.
      if (idempotencyKey(req) !== undefined)
        throw new HubcastError('bad_request', 'Idempotency-Key does not apply to POST /entities; give each message an "id"');
      const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
      // Before parsing, as for /entity: any item's `data` nested deeper than maxDepth refuses the body.
      const parsed = parseJsonBody(body, maxDepth + BATCH_ENVELOPE_DEPTH, tooDeep(maxDepth));
      const messages = (parsed as { messages?: unknown } | null)?.messages;
      if (typeof parsed !== 'object' || Array.isArray(parsed) || !Array.isArray(messages))
        throw new HubcastError('bad_request', 'the body must be {"messages":[{"topic","data","id"?}, …]}');
      if (messages.length === 0) throw new HubcastError('bad_request', '"messages" is empty');
      if (messages.length > maxBatchMessages)
        throw new HubcastError('payload_too_large', `a batch holds at most ${maxBatchMessages} messages (limits.maxBatchMessages)`);

      const scopeId = scopeOf(req);
      const items = messages.map((m) => batchItem(m, scopeId));
      const inputs = items.filter((i): i is PublishInput => !(i instanceof HubcastError));
      const settled = await publisher.publishMany(inputs);
      // One commit for the lot: when the store failed, it failed for every message that reached it.
      const failed = settled.find((s) => s.status === 'rejected' && s.reason instanceof HubcastError && s.reason.code === 'unavailable');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      let next = 0;
      const results: BatchResult[] = items.map((item) => {
        if (item instanceof HubcastError) return item.toJSON();
        const s = settled[next++]!;
        if (s.status === 'rejected') {
          if (s.reason instanceof HubcastError) return s.reason.toJSON();
          throw s.reason;
        }
        const r: PublishResult = s.value;
        return { topic: r.topic, offset: r.offset, id: r.id, ...(r.duplicate ? { duplicate: true as const } : {}) };
      });
      return reply.code(200).send({ results });
    });

    scope.post<{ Params: { topic: string } }>('/entity/:topic', { bodyLimit: max }, async (req, reply) => {
      const topic = req.params.topic;
      if (!isValidTopic(topic)) throw new HubcastError('invalid_topic');
      const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
      const type = mediaType(req);
      let kind: PublishInput['kind'] = 'binary';
      if (isJson(type)) {
        parseJsonBody(body, maxDepth);
        kind = 'json';
      } else if (type.startsWith('text/')) {
        try {
          utf8.decode(body);
        } catch {
          throw new HubcastError('invalid_text');
        }
        kind = 'text';
      }
      return reply
        .code(202)
        .send(await accept({ topic, kind, payload: body, key: idempotencyKey(req), scope: scopeOf(req), source: 'http' }));
    });
  });
}
