import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Presence } from '../../cluster/presence.ts';
import type { Config } from '../../config/schema.ts';
import { HubcastError } from '../../core/errors.ts';
import { jsonPayload, type Publisher } from '../../core/publisher.ts';
import { isValidPattern, isValidTopic, isWildcard } from '../../core/topics.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import type { RateMeter } from '../../metrics.ts';
import type { Store, StoredMessage } from '../../store/store.ts';
import type { AuditLog } from './audit.ts';
import { backend, decodeCursor, encodeCursor, iso, limitParam, pageQuery, parseBody, parseQuery } from './common.ts';
import { callerOf } from './guard.ts';

export interface TopicRouteDeps {
  config: Config;
  store: Store;
  gateway: Gateway;
  publisher: Publisher;
  presence: Presence;
  rates: RateMeter;
  audit: AuditLog;
}

/** Payload bytes of one page of a topic's history (at least one message, however large). */
const MAX_PAGE_BYTES = 1024 * 1024;
/** Room for the `{"data":…}` envelope around a payload of maxMessageBytes. */
const ENVELOPE_BYTES = 16 * 1024;

const messagesQuery = {
  since: z
    .string()
    .regex(/^\d{1,15}$/, 'since must be an offset (an integer ≥ 0)')
    .transform(Number)
    .default('0'),
  limit: limitParam,
};

const publishBody = z
  .object({ data: z.unknown() })
  .strict()
  .refine((b) => b.data !== undefined, { message: 'data is required', path: ['data'] });

/** A stored message as JSON: `data` (JSON), `text` (text) or `data_base64` (binary). */
function messageView(m: StoredMessage) {
  const base = { offset: m.offset, ts: iso(m.ts), kind: m.kind };
  if (m.kind === 'json') return { ...base, data: JSON.parse(m.payload.toString('utf8')) as unknown };
  if (m.kind === 'text') return { ...base, text: m.payload.toString('utf8') };
  return { ...base, data_base64: m.payload.toString('base64') };
}

const validTopic = (topic: string) => {
  if (!isValidTopic(topic)) throw new HubcastError('invalid_topic');
  return topic;
};

/**
 * The admin API's topics: the list (topics with history, and topics subscribed on this node), a
 * topic's history page by page, a test message through the publish path; and who is subscribed
 * (`GET /topics/<topic>/presence`, every node).
 */
export function topicRoutes(app: FastifyInstance, d: TopicRouteDeps): void {
  app.get('/admin/api/topics', async (req) => {
    const q = parseQuery(pageQuery, req.query);
    const after = decodeCursor(q.cursor, isValidTopic) ?? '';
    const stored = await backend('store', () => d.store.listTopics(after, q.limit + 1));
    const rows = new Map<string, { offset: number; epoch: string | null }>(stored.map((t) => [t.topic, t]));
    // Topics subscribed here without a message yet: in the list too (as far as this page reaches).
    const reach = stored.length > q.limit ? stored[q.limit - 1]!.topic : undefined;
    for (const t of d.gateway.hub.topics())
      if (!isWildcard(t) && t > after && (reach === undefined || t <= reach) && !rows.has(t)) rows.set(t, { offset: 0, epoch: null });
    const names = [...rows.keys()].sort().slice(0, q.limit);
    const more = rows.size > q.limit;
    return {
      topics: names.map((topic) => ({
        topic,
        last_offset: rows.get(topic)!.offset,
        epoch: rows.get(topic)!.epoch,
        subscribers: d.gateway.hub.receivers(topic),
        published_per_s: d.rates.topicRate(topic),
      })),
      next_cursor: more ? encodeCursor(names.at(-1)!) : null,
    };
  });

  app.get<{ Params: { topic: string } }>('/admin/api/topics/:topic/messages', async (req) => {
    const topic = validTopic(req.params.topic);
    const q = parseQuery(messagesQuery, req.query);
    const [state, messages] = await backend('store', () =>
      Promise.all([d.store.topicState(topic), d.store.readHistory(topic, q.since, q.limit, MAX_PAGE_BYTES)]),
    );
    const last = messages.at(-1)?.offset;
    return {
      topic,
      epoch: state.epoch,
      last_offset: state.offset,
      first_offset: state.firstRetained,
      messages: messages.map(messageView),
      next_since: last !== undefined && last < state.offset ? last : null,
    };
  });

  app.post<{ Params: { topic: string } }>(
    '/admin/api/topics/:topic/messages',
    { bodyLimit: d.config.limits.maxMessageBytes + ENVELOPE_BYTES },
    async (req, reply) => {
      const topic = validTopic(req.params.topic);
      const body = parseBody(req, publishBody, d.config.limits.maxJsonDepth);
      const who = callerOf(req);
      const res = await d.audit.run(req, 'topics.publish', topic, () =>
        d.publisher.publish({ topic, kind: 'json', payload: jsonPayload(body.data), scope: `admin:${who.keyId}`, source: 'admin' }),
      );
      return reply.code(202).send({ topic: res.topic, offset: res.offset, id: res.id });
    },
  );

  // Who is subscribed to a topic (or a pattern, as subscribed), on every node of the cluster.
  app.get<{ Params: { topic: string } }>('/topics/:topic/presence', async (req) => {
    const { topic } = req.params;
    if (!isValidTopic(topic) && !isValidPattern(topic)) throw new HubcastError('invalid_topic');
    const subs = await backend('presence registry', () => d.presence.subscribers(topic));
    return {
      topic,
      subscribers: subs.map((s) => ({
        connection_id: s.connectionId,
        client_id: s.clientId,
        node: s.nodeId,
        since: iso(s.since),
      })),
    };
  });
}
