import {
  ADMIN_GUARD,
  dateTime,
  errors,
  jsonBody,
  jsonResponse,
  nullable,
  param,
  ref,
  secretSchema,
  type ApiPart,
  type Obj,
  type PathItem,
} from './common.ts';
import type { ErrorCode } from '../../core/errors.ts';

/**
 * The admin API, `/admin/api/...` (issue 13), from the contract the admin-API work follows. Kept
 * apart from the rest so that it can be adjusted to the implementation when the branches meet.
 *
 * Every route: the guard of src/http/admin.ts (`admin.allow`, an admin-scope key, the admin failure
 * budget). Lists are paged with `?limit=` (1–500, default 100) and `?cursor=` (the previous page’s
 * `next_cursor`, null on the last page). Unknown fields in a body are 400 `bad_request`.
 */

const T0 = '2026-12-02T10:15:00.000Z';
const CLIENT_EXAMPLE = {
  id: 'c_JIQIv7Ag4A6O86Gt',
  name: 'storefront',
  subscribe: ['orders.*'],
  publish: [],
  presence: [],
  created_at: T0,
  revoked_at: null,
  connections: 2,
};
const KEY_EXAMPLE = { id: 'k_P2mZr8Qx1dLw7TbN', name: 'ops', scope: 'admin', created_at: T0, revoked_at: null };

const strings = (description: string): Obj => ({ type: 'array', items: ref('TopicOrPattern'), description });
const page = (field: string, item: Obj): Obj => ({
  type: 'object',
  required: [field, 'next_cursor'],
  properties: { [field]: { type: 'array', items: item }, next_cursor: ref('AdminCursor') },
});

/** The guard’s failures plus the route’s own (`bad_request` for a body or query that does not validate). */
const adminErrors = (own: Partial<Record<ErrorCode, string>> = {}): Record<string, Obj> => errors({ ...ADMIN_GUARD, ...own });

const BAD_BODY = 'the body is not JSON, misses a required field, has an unknown one or a value out of range';
const BAD_QUERY = 'an unknown or repeated query parameter, `limit` outside 1–500, or a `cursor` that is not one this server gave';
/** The failures of a JSON body (admin routes take at most 64 KiB, publishing a message aside). */
const BODY_ERRORS: Partial<Record<ErrorCode, string>> = {
  bad_request: BAD_BODY,
  invalid_json: 'the body is not valid JSON, or nests deeper than `limits.maxJsonDepth`',
  unsupported_media_type: 'a body that is not `application/json`',
  payload_too_large: 'a body over 64 KiB',
};

/**
 * A 409 whose code the registry does not hold on this branch: the admin API adds `self_revocation`.
 * When the branches meet, replace it with `errors({ self_revocation: … })`.
 */
const selfRevoke: Obj = {
  description: '`self_revocation`: an admin key may not revoke itself; use another admin key or the CLI.',
  content: { 'application/json': { schema: ref('Error') } },
};

const op = (o: Obj): Obj => ({ tags: ['admin'], security: [{ adminKey: [] }], ...o });

const overview: Obj = {
  type: 'object',
  required: ['node', 'nodes', 'connections', 'subscriptions', 'topics', 'rates', 'store', 'broker', 'alerts'],
  properties: {
    node: {
      type: 'object',
      required: ['id', 'version', 'started_at', 'uptime_s'],
      properties: {
        id: { type: 'string' },
        version: { type: 'string' },
        started_at: nullable(dateTime),
        uptime_s: { type: 'number', minimum: 0 },
      },
    },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'connections'],
        properties: { id: { type: 'string' }, connections: { type: 'integer', minimum: 0 } },
      },
    },
    connections: { type: 'integer', minimum: 0 },
    subscriptions: { type: 'integer', minimum: 0 },
    topics: { type: 'integer', minimum: 0 },
    rates: {
      type: 'object',
      description: 'Averaged over the last 10 s, sampled each second.',
      required: ['published_per_s', 'delivered_per_s', 'connects_per_s'],
      properties: {
        published_per_s: { type: 'number', minimum: 0 },
        delivered_per_s: { type: 'number', minimum: 0 },
        connects_per_s: { type: 'number', minimum: 0 },
      },
    },
    store: { type: 'object', required: ['type', 'ok'], properties: { type: { type: 'string' }, ok: { type: 'boolean' } } },
    broker: { type: 'object', required: ['type', 'ok'], properties: { type: { type: 'string' }, ok: { type: 'boolean' } } },
    alerts: {
      type: 'object',
      required: ['recent'],
      properties: {
        recent: { type: 'integer', minimum: 0, description: 'Alert digests in the last hour.' },
        open: { type: 'integer', minimum: 0, description: 'Open alert groups.' },
      },
    },
  },
};

const OVERVIEW_EXAMPLE = {
  node: { id: 'hub-1', version: '0.1.0', started_at: T0, uptime_s: 3600 },
  nodes: [{ id: 'hub-1', connections: 412 }],
  connections: 412,
  subscriptions: 980,
  topics: 57,
  rates: { published_per_s: 120.5, delivered_per_s: 8400, connects_per_s: 0.4 },
  store: { type: 'sqlite', ok: true },
  broker: { type: 'memory', ok: true },
  alerts: { recent: 1, open: 0 },
};

const schemas: Record<string, Obj> = {
  AdminCursor: { ...nullable({ type: 'string' }), description: 'Opaque: pass it as `?cursor=` for the next page; null on the last page.' },
  AdminOverview: overview,
  AdminClient: {
    type: 'object',
    required: ['id', 'name', 'subscribe', 'publish', 'created_at', 'revoked_at', 'connections'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      subscribe: strings('Topics and patterns it may subscribe to.'),
      publish: strings('Topics and patterns it may publish to (empty: receive-only).'),
      presence: strings('Topics whose subscribers it may list and whose join/leave events it receives.'),
      created_at: dateTime,
      revoked_at: nullable(dateTime),
      connections: { type: 'integer', minimum: 0, description: 'Its live connections.' },
    },
  },
  AdminClientCreate: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      subscribe: strings('As `hubcast clients create --subscribe` (none: it may subscribe to nothing).'),
      publish: strings('As `--publish` (none: receive-only).'),
      presence: strings('As `--presence`.'),
    },
  },
  AdminKey: {
    type: 'object',
    required: ['id', 'name', 'scope', 'created_at', 'revoked_at'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', enum: ['ingest', 'admin'] },
      created_at: dateTime,
      revoked_at: nullable(dateTime),
    },
  },
  AdminKeyCreate: {
    type: 'object',
    required: ['name', 'scope'],
    additionalProperties: false,
    properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, scope: { type: 'string', enum: ['ingest', 'admin'] } },
  },
  AdminConnection: {
    type: 'object',
    required: ['id', 'client_id', 'node', 'address', 'connected_at', 'subscriptions', 'queued_bytes'],
    properties: {
      id: { type: 'string' },
      client_id: { type: 'string' },
      node: { type: 'string' },
      address: { type: 'string' },
      connected_at: dateTime,
      subscriptions: { ...nullable(strings('')), description: 'Its subscriptions; null for a connection on another node.' },
      queued_bytes: {
        ...nullable({ type: 'integer', minimum: 0 }),
        description: 'Outbound bytes queued; null for a connection on another node.',
      },
    },
  },
  AdminTopic: {
    type: 'object',
    required: ['topic', 'last_offset', 'epoch', 'subscribers', 'published_per_s'],
    properties: {
      topic: ref('Topic'),
      last_offset: { type: 'integer', minimum: 0 },
      epoch: { ...nullable({ type: 'string' }), description: 'The topic’s history epoch; null for a topic without history yet.' },
      subscribers: { type: 'integer', minimum: 0, description: 'On this node.' },
      published_per_s: { type: 'number', minimum: 0 },
    },
  },
  AdminMessage: {
    type: 'object',
    required: ['offset', 'ts', 'kind'],
    description: 'One of `data` (json), `text` (text) or `data_base64` (binary), by `kind`.',
    properties: {
      offset: { type: 'integer', minimum: 1 },
      ts: dateTime,
      kind: { type: 'string', enum: ['json', 'text', 'binary'] },
      data: {},
      text: { type: 'string' },
      data_base64: { type: 'string', contentEncoding: 'base64' },
    },
  },
  AdminDeadLetter: {
    type: 'object',
    required: ['id', 'connector', 'reason', 'at', 'size'],
    properties: {
      id: { type: ['string', 'integer'] },
      connector: { type: 'string' },
      reason: { type: 'string' },
      at: dateTime,
      size: { type: 'integer', minimum: 0 },
    },
  },
  AdminAlert: {
    type: 'object',
    required: ['id', 'kind', 'at', 'subject', 'summary', 'sent'],
    properties: {
      id: { type: 'string' },
      kind: { type: 'string' },
      at: dateTime,
      subject: { type: 'string' },
      summary: { type: 'string' },
      sent: {
        type: 'array',
        items: {
          type: 'object',
          required: ['channel', 'status', 'at'],
          properties: {
            channel: { type: 'string', enum: ['email', 'webhook', 'log'] },
            status: { type: 'string', enum: ['sent', 'failed', 'suppressed'] },
            at: dateTime,
          },
        },
      },
    },
  },
  AdminAction: {
    type: 'object',
    required: ['at', 'key_id', 'key_name', 'address', 'action', 'target', 'result'],
    properties: {
      at: dateTime,
      key_id: { type: 'string' },
      key_name: { type: 'string' },
      address: { type: 'string' },
      action: {
        type: 'string',
        enum: [
          'clients.create',
          'clients.revoke',
          'keys.create',
          'keys.revoke',
          'connections.kick',
          'topics.publish',
          'dead_letters.retry',
          'dead_letters.drop',
        ],
      },
      target: { type: 'string' },
      result: { type: 'string' },
    },
  },
};

const parameters: Record<string, Obj> = {
  AdminLimit: { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
  AdminCursor: {
    name: 'cursor',
    in: 'query',
    required: false,
    schema: { type: 'string' },
    description: 'The previous page’s `next_cursor`.',
  },
};
const PAGED = [param('AdminLimit'), param('AdminCursor')];
const idParam = (what: string): Obj => ({ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: what });
const topicParam: Obj = { name: 'topic', in: 'path', required: true, schema: ref('Topic'), description: 'The topic (URL-encoded).' };

const paths: Record<string, PathItem> = {
  '/admin/api/overview': {
    get: op({
      operationId: 'adminOverview',
      summary: 'This node and the cluster at a glance',
      responses: { '200': jsonResponse('The overview.', ref('AdminOverview'), OVERVIEW_EXAMPLE), ...adminErrors() },
    }),
  },
  '/admin/api/clients': {
    get: op({
      operationId: 'adminListClients',
      summary: 'Clients',
      parameters: PAGED,
      responses: {
        '200': jsonResponse('A page of clients.', page('clients', ref('AdminClient')), { clients: [CLIENT_EXAMPLE], next_cursor: null }),
        ...adminErrors({ bad_request: BAD_QUERY }),
      },
    }),
    post: op({
      operationId: 'adminCreateClient',
      summary: 'Create a client (as `hubcast clients create`)',
      description: 'The secret is shown once, in this answer; only its hash is stored.',
      requestBody: jsonBody(ref('AdminClientCreate'), { name: 'storefront', subscribe: ['orders.*'] }),
      responses: {
        '201': jsonResponse(
          'Created (`Cache-Control: no-store`).',
          {
            type: 'object',
            required: ['client', 'secret'],
            properties: { client: ref('AdminClient'), secret: { ...secretSchema, description: 'The client secret, shown once.' } },
          },
          { client: { ...CLIENT_EXAMPLE, connections: 0 }, secret: 'EbcYC_Q30tPZ1jVrHyxPqZF9RYMn621fSs0mkJzOzBs' },
        ),
        ...adminErrors({ ...BODY_ERRORS, bad_request: BAD_BODY + '; an invalid pattern' }),
      },
    }),
  },
  '/admin/api/clients/{id}': {
    get: op({
      operationId: 'adminGetClient',
      summary: 'One client',
      parameters: [idParam('The client id.')],
      responses: {
        '200': jsonResponse(
          'The client.',
          { type: 'object', required: ['client'], properties: { client: ref('AdminClient') } },
          { client: CLIENT_EXAMPLE },
        ),
        ...adminErrors({ not_found: 'no client by that id' }),
      },
    }),
    delete: op({
      operationId: 'adminRevokeClient',
      summary: 'Revoke a client (as `hubcast clients revoke`)',
      description:
        'Its tokens die and its live connections on every node close with 4500. Revoking twice answers 200 with the same `revoked_at`.',
      parameters: [idParam('The client id.')],
      responses: {
        '200': jsonResponse(
          'Revoked.',
          {
            type: 'object',
            required: ['client', 'closed'],
            properties: {
              client: ref('AdminClient'),
              closed: { type: 'integer', minimum: 0, description: 'Connections closed on this node.' },
            },
          },
          { client: { ...CLIENT_EXAMPLE, revoked_at: '2026-12-02T11:00:00.000Z', connections: 0 }, closed: 2 },
        ),
        ...adminErrors({ not_found: 'no client by that id' }),
      },
    }),
  },
  '/admin/api/keys': {
    get: op({
      operationId: 'adminListKeys',
      summary: 'Ingest and admin keys (never a secret or hash)',
      parameters: PAGED,
      responses: {
        '200': jsonResponse('A page of keys.', page('keys', ref('AdminKey')), { keys: [KEY_EXAMPLE], next_cursor: null }),
        ...adminErrors({ bad_request: BAD_QUERY }),
      },
    }),
    post: op({
      operationId: 'adminCreateKey',
      summary: 'Create a key (as `hubcast keys create`)',
      requestBody: jsonBody(ref('AdminKeyCreate'), { name: 'billing-backend', scope: 'ingest' }),
      responses: {
        '201': jsonResponse(
          'Created: the secret is shown once (`Cache-Control: no-store`).',
          { type: 'object', required: ['key', 'secret'], properties: { key: ref('AdminKey'), secret: secretSchema } },
          { key: { ...KEY_EXAMPLE, name: 'billing-backend', scope: 'ingest' }, secret: 'n5fDFl144w5n-srAyLTZ5NUq__VaIARs5ePkblLu8_A' },
        ),
        ...adminErrors(BODY_ERRORS),
      },
    }),
  },
  '/admin/api/keys/{id}': {
    delete: op({
      operationId: 'adminRevokeKey',
      summary: 'Revoke a key',
      parameters: [idParam('The key id.')],
      responses: {
        '200': jsonResponse(
          'Revoked.',
          { type: 'object', required: ['key'], properties: { key: ref('AdminKey') } },
          { key: { ...KEY_EXAMPLE, revoked_at: '2026-12-02T11:00:00.000Z' } },
        ),
        ...adminErrors({ not_found: 'no key by that id' }),
        '409': selfRevoke,
      },
    }),
  },
  '/admin/api/connections': {
    get: op({
      operationId: 'adminListConnections',
      summary: 'Live connections',
      description: 'This node’s live connections; in a cluster, every node’s (through the presence registry).',
      parameters: [
        ...PAGED,
        { name: 'client', in: 'query', required: false, schema: { type: 'string' }, description: 'Only this client’s.' },
        { name: 'topic', in: 'query', required: false, schema: { type: 'string' }, description: 'Only those subscribed to this topic.' },
        { name: 'address', in: 'query', required: false, schema: { type: 'string' }, description: 'Only those from this IP address.' },
      ],
      responses: {
        '200': jsonResponse('A page of connections.', page('connections', ref('AdminConnection')), {
          connections: [
            {
              id: 'cn_q3LbC2r9',
              client_id: 'c_JIQIv7Ag4A6O86Gt',
              node: 'hub-1',
              address: '203.0.113.7',
              connected_at: T0,
              subscriptions: ['orders.eu'],
              queued_bytes: 0,
            },
          ],
          next_cursor: null,
        }),
        ...adminErrors({
          bad_request: BAD_QUERY + '; an `address` that is not an IP address',
          invalid_topic: 'a `topic` that is neither a topic nor a pattern',
        }),
      },
    }),
  },
  '/admin/api/connections/{id}': {
    delete: op({
      operationId: 'adminKickConnection',
      summary: 'Disconnect a connection (on any node)',
      description:
        'Closes it with 4503 "disconnected by an operator" (the SDK stops), or with `?reconnect=true` 4003 (the SDK reconnects).',
      parameters: [
        idParam('The connection id.'),
        { name: 'reconnect', in: 'query', required: false, schema: { type: 'boolean', default: false } },
      ],
      responses: {
        '200': jsonResponse(
          'Kicked.',
          {
            type: 'object',
            required: ['kicked', 'node'],
            properties: {
              kicked: { type: 'boolean', const: true },
              node: { type: 'string', description: 'The node that held it.' },
              code: { type: 'integer', enum: [4503, 4003], description: 'The close code sent.' },
            },
          },
          { kicked: true, node: 'hub-2', code: 4503 },
        ),
        ...adminErrors({ not_found: 'no live connection by that id' }),
      },
    }),
  },
  '/admin/api/topics': {
    get: op({
      operationId: 'adminListTopics',
      summary: 'Topics with history, and those subscribed to',
      parameters: PAGED,
      responses: {
        '200': jsonResponse('A page of topics.', page('topics', ref('AdminTopic')), {
          topics: [{ topic: 'orders.eu', last_offset: 1520, epoch: 'e1', subscribers: 12, published_per_s: 3.2 }],
          next_cursor: null,
        }),
        ...adminErrors({ bad_request: BAD_QUERY }),
      },
    }),
  },
  '/admin/api/topics/{topic}/messages': {
    get: op({
      operationId: 'adminTopicMessages',
      summary: 'A page of a topic’s history',
      parameters: [
        topicParam,
        {
          name: 'since',
          in: 'query',
          required: false,
          schema: { type: 'integer', minimum: 0 },
          description: 'Messages after this offset.',
        },
        param('AdminLimit'),
      ],
      responses: {
        '200': jsonResponse(
          'Messages after `since`, oldest first.',
          {
            type: 'object',
            required: ['topic', 'epoch', 'messages', 'next_since'],
            properties: {
              topic: ref('Topic'),
              epoch: nullable({ type: 'string' }),
              last_offset: { type: 'integer', minimum: 0 },
              first_offset: { ...nullable({ type: 'integer', minimum: 0 }), description: 'The oldest offset still in history.' },
              messages: { type: 'array', items: ref('AdminMessage') },
              next_since: {
                ...nullable({ type: 'integer', minimum: 0 }),
                description: 'Pass as `since` for the next page; null when done.',
              },
            },
          },
          {
            topic: 'orders.eu',
            epoch: 'e1',
            messages: [{ offset: 7, ts: T0, kind: 'json', data: { order: 42 } }],
            next_since: null,
          },
        ),
        ...adminErrors({ bad_request: BAD_QUERY, invalid_topic: 'not a topic' }),
      },
    }),
    post: op({
      operationId: 'adminPublish',
      summary: 'Publish to a topic (through the same path as POST /entity, source `admin`)',
      parameters: [topicParam],
      requestBody: jsonBody(
        { type: 'object', required: ['data'], additionalProperties: false, properties: { data: { description: 'Any JSON value.' } } },
        { data: { notice: 'maintenance at 22:00' } },
      ),
      responses: {
        '202': jsonResponse('Accepted: committed to the topic’s history.', ref('PublishResult'), {
          topic: 'orders.eu',
          offset: 1521,
          id: 'm_Xq8LrT2p',
        }),
        ...adminErrors({
          ...BODY_ERRORS,
          invalid_topic: 'not a topic',
          payload_too_large: '`data` over `limits.maxMessageBytes`',
        }),
      },
    }),
  },
  '/admin/api/connectors': {
    get: op({
      operationId: 'adminListConnectors',
      summary: 'Connectors, with their counters',
      responses: {
        '200': jsonResponse(
          'What GET /connectors gives, and counters.',
          { type: 'object', required: ['connectors'], properties: { connectors: { type: 'array', items: ref('Connector') } } },
          {
            connectors: [
              {
                name: 'orders-db',
                type: 'postgres',
                status: 'running',
                last_error: null,
                records_in: 1520,
                dead_letters: 2,
                last_record_at: T0,
                lag_s: 0.4,
                reconnect_attempts: 0,
              },
            ],
          },
        ),
        ...adminErrors(),
      },
    }),
  },
  '/admin/api/dead-letters': {
    get: op({
      operationId: 'adminListDeadLetters',
      summary: 'This node’s dead letters',
      parameters: [
        ...PAGED,
        { name: 'connector', in: 'query', required: false, schema: { type: 'string' }, description: 'Only this connector’s.' },
      ],
      responses: {
        '200': jsonResponse('A page of dead letters.', page('dead_letters', ref('AdminDeadLetter')), {
          dead_letters: [{ id: 'dl_1', connector: 'orders-db', reason: 'pipeline: $.order is undefined', at: T0, size: 312 }],
          next_cursor: null,
        }),
        ...adminErrors({ bad_request: BAD_QUERY }),
      },
    }),
  },
  '/admin/api/dead-letters/{id}/retry': {
    post: op({
      operationId: 'adminRetryDeadLetter',
      summary: 'Re-publish a dead letter (as `hubcast dlq retry`); the row is removed',
      parameters: [idParam('The dead letter’s id.')],
      responses: {
        '202': jsonResponse(
          'Re-published.',
          {
            type: 'object',
            required: ['retried', 'topic', 'offset'],
            properties: { retried: { type: 'boolean', const: true }, topic: ref('Topic'), offset: { type: 'integer', minimum: 1 } },
          },
          { retried: true, topic: 'orders.eu', offset: 1522 },
        ),
        ...adminErrors({ not_found: 'no dead letter by that id' }),
      },
    }),
  },
  '/admin/api/dead-letters/{id}': {
    delete: op({
      operationId: 'adminDropDeadLetter',
      summary: 'Drop a dead letter',
      parameters: [idParam('The dead letter’s id.')],
      responses: {
        '200': jsonResponse(
          'Dropped.',
          { type: 'object', required: ['dropped'], properties: { dropped: { type: 'boolean', const: true } } },
          { dropped: true },
        ),
        ...adminErrors({ not_found: 'no dead letter by that id' }),
      },
    }),
  },
  '/admin/api/alerts': {
    get: op({
      operationId: 'adminListAlerts',
      summary: 'Recent alert digests, newest first (a bounded ring)',
      responses: {
        '200': jsonResponse(
          'The alerts.',
          { type: 'object', required: ['alerts'], properties: { alerts: { type: 'array', items: ref('AdminAlert') } } },
          {
            alerts: [
              {
                id: 'al_9f2KcQ1xZ',
                kind: 'invalid_token',
                at: T0,
                subject: '[hubcast] invalid_token ×12 on hub-1',
                summary: '12 invalid tokens from 3 addresses',
                sent: [{ channel: 'email', status: 'sent', at: T0 }],
              },
            ],
          },
        ),
        ...adminErrors(),
      },
    }),
  },
  '/admin/api/audit': {
    get: op({
      operationId: 'adminAudit',
      summary: 'Recent admin actions on this node, newest first (the last 500)',
      parameters: [param('AdminLimit')],
      responses: {
        '200': jsonResponse(
          'The actions.',
          { type: 'object', required: ['actions'], properties: { actions: { type: 'array', items: ref('AdminAction') } } },
          {
            actions: [
              {
                at: T0,
                key_id: 'k_P2mZr8Qx1dLw7TbN',
                key_name: 'ops',
                address: '127.0.0.1',
                action: 'clients.revoke',
                target: 'c_JIQIv7Ag4A6O86Gt',
                result: 'ok',
              },
            ],
          },
        ),
        ...adminErrors({ bad_request: BAD_QUERY }),
      },
    }),
  },
  '/admin/api/stream': {
    get: op({
      operationId: 'adminStream',
      summary: 'Live events (server-sent events)',
      description:
        'Read with `fetch` and the `Authorization` header (not `EventSource`). An `overview` event every second (the body of GET /admin/api/overview) and a `connection` event ' +
        '(`{"event":"open"|"close","id","client_id","address","code"?}`) as connections open and close on this node. At most `admin.maxStreams` streams at once.',
      responses: {
        '200': {
          description: 'The stream; it stays open.',
          content: {
            'text/event-stream': {
              schema: { type: 'string' },
              examples: {
                example: {
                  value:
                    'event: connection\ndata: {"event":"open","id":"cn_q3LbC2r9","client_id":"c_JIQIv7Ag4A6O86Gt","address":"203.0.113.7"}\n\n',
                },
              },
            },
          },
        },
        ...adminErrors(),
        '429': {
          description:
            '`rate_limited`: this address spent the admin budget of failed key checks; or `admin.maxStreams` streams are open (the code is the one the admin API defines). `Retry-After`.',
          headers: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
          content: { 'application/json': { schema: ref('Error') } },
        },
      },
    }),
  },
};

export const adminApi: ApiPart = { paths, schemas, parameters };
