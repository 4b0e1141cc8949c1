import {
  ADMIN_GUARD,
  dateTime,
  errorExample,
  errorSchema,
  errors,
  jsonBody,
  jsonResponse,
  nullable,
  param,
  ref,
  secretSchema,
  topicPatternSchema,
  topicSchema,
  type ApiPart,
  type Obj,
} from './common.ts';

/**
 * The routes Hubcast serves on its main listener (docs/http-api.md): consumers, the WebSocket
 * upgrade, ingest, webhooks, the admin routes that predate the admin API, and the public files.
 */

const secret = (what: string): Obj => ({ ...secretSchema, description: what });

const publishResult: Obj = {
  type: 'object',
  description: 'Sent only after the message is committed to the topic’s history.',
  required: ['topic', 'offset', 'id'],
  additionalProperties: false,
  properties: {
    topic: ref('Topic'),
    offset: { type: 'integer', minimum: 1, description: 'The message’s position in the topic (1, 2, 3…).' },
    id: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: 'The idempotency key, or a generated `m_…` id when none was given.',
    },
  },
};

const connector: Obj = {
  type: 'object',
  required: ['name', 'type', 'status', 'last_error', 'records_in', 'dead_letters', 'last_record_at', 'lag_s', 'reconnect_attempts'],
  properties: {
    name: { type: 'string' },
    type: { type: 'string', description: '`postgres`, `amqp`, `mqtt`, `nats`, `file`, `http-poll`, `webhook`…' },
    status: {
      type: 'string',
      enum: ['starting', 'running', 'retrying', 'failed', 'stopped', 'standby'],
      description: '`failed`: an error retrying cannot fix; `standby`: in a cluster, another node holds the connector’s lease.',
    },
    holder: { ...nullable({ type: 'string' }), description: 'In a cluster (leased connectors): the node running it, or null.' },
    last_error: nullable({ type: 'string' }),
    records_in: { type: 'integer', minimum: 0 },
    dead_letters: { type: 'integer', minimum: 0 },
    last_record_at: nullable(dateTime),
    lag_s: {
      ...nullable({ type: 'number' }),
      description: 'Seconds from the last record’s source time to its acceptance (sources that give one).',
    },
    reconnect_attempts: { type: 'integer', minimum: 0 },
  },
};

const health: Obj = {
  type: 'object',
  description: 'One node: `{"status":"ok"}`. In a cluster, the node and its backends.',
  required: ['status'],
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded'] },
    node: { type: 'string' },
    store: {
      type: 'object',
      required: ['type', 'ok'],
      additionalProperties: false,
      properties: { type: { type: 'string' }, ok: { type: 'boolean' } },
    },
    broker: {
      type: 'object',
      required: ['type', 'connected'],
      additionalProperties: false,
      properties: { type: { type: 'string' }, connected: { type: 'boolean' } },
    },
    presence: {
      type: 'object',
      required: ['nodes'],
      additionalProperties: false,
      properties: { nodes: { type: 'integer', minimum: 0 } },
    },
  },
};

const HEADER = (description: string, schema: Obj = { type: 'string' }): Obj => ({ description, schema });

const staticHeaders = (cacheControl: string): Record<string, Obj> => ({
  ETag: HEADER('Strong entity tag of this representation (the gzipped one has its own).'),
  'Cache-Control': HEADER(cacheControl),
});

const notModified: Obj = {
  description: 'Not modified: `If-None-Match` names the current `ETag`. No body.',
  headers: { ETag: HEADER('The current entity tag.') },
};

const preflight = (path: string, methods: string): Obj => ({
  tags: ['cors'],
  operationId: `preflight${path.replace(/[^A-Za-z]+(.)/g, (_m, c: string) => c.toUpperCase())}`,
  summary: `CORS preflight for ${path}`,
  description:
    'With `Origin` and `Access-Control-Request-Method` from an origin `ws.allowedOrigins` allows: 204 with the CORS headers. ' +
    'Without `Origin` it is no preflight: 204 with `Allow` (docs/http-api.md#cors).',
  security: [],
  parameters: [
    { name: 'Origin', in: 'header', required: false, schema: { type: 'string' } },
    { name: 'Access-Control-Request-Method', in: 'header', required: false, schema: { type: 'string' } },
  ],
  responses: {
    '204': {
      description: 'Preflight answered.',
      headers: {
        Allow: HEADER(`\`${methods}, OPTIONS\``),
        'Access-Control-Allow-Origin': HEADER('The origin itself (with a list) or `*` (any origin allowed).'),
        'Access-Control-Allow-Methods': HEADER(`\`${methods}\``),
        'Access-Control-Allow-Headers': HEADER('`Authorization, Content-Type`'),
        'Access-Control-Max-Age': HEADER('`600`'),
      },
    },
    ...errors({ origin_not_allowed: 'the `Origin` is not in `ws.allowedOrigins`' }),
  },
});

const WS_ERRORS = errors({
  bad_request:
    'the URL cannot be parsed; not a valid WebSocket handshake (`Upgrade`, method, `Sec-WebSocket-Key`, `Sec-WebSocket-Version` 13 or 8, a malformed `Sec-WebSocket-Protocol`, `hubcast.bearer.<token>` offered without `hubcast.v1`)',
  origin_not_allowed: 'the request has an `Origin` that `ws.allowedOrigins` does not list (browser forms: close 4513)',
  unauthorized:
    'no credentials; malformed, unknown or expired token; revoked client; `client_id` not the token’s; unknown, used or expired ticket — one body for all (browser forms: close 4511)',
  duplicate_connection: 'this token already has a live connection (`duplicates.policy: reject`; browser forms: close 4010)',
  rate_limited: 'the source spent its failed-authentication budget (`limits.authFailures`; browser forms: close 4011)',
  connection_limit: '`limits.connectionsPerIp` or `limits.connectionsPerClient` reached (`Retry-After: 5`; browser forms: close 4012)',
  unavailable: 'shutting down, `limits.maxConnections` reached or the token store unreadable (`Retry-After`; browser forms: close 4013)',
});

const wsOperation = (path: string, operationId: string): Obj => ({
  tags: ['websocket'],
  operationId,
  summary: `Open the WebSocket (${path})`,
  description:
    'A WebSocket upgrade (RFC 6455), not a plain request: the protocol itself is in docs/websocket.md. ' +
    '`/ws` and `/ws/publish` behave the same (publish rights come from the client’s patterns, never from the path). ' +
    'Credentials, the first one present is used: `Authorization: Bearer <token>`; headers `client_id` and `token`; ' +
    'the subprotocols `hubcast.v1, hubcast.bearer.<token>` (browsers; the server selects `hubcast.v1`); `?ticket=` from POST /consumers/tickets. ' +
    'A refusal is a plain HTTP answer with the JSON error body and `Connection: close`; a request whose credentials came the browser way ' +
    '(ticket or subprotocol) gets the refusals that have a close code as a completed handshake closed at once with that code. ' +
    'A `GET` without `Upgrade` is no upgrade: 404 `not_found`.',
  'x-hubcast-websocket': true,
  security: [{ token: [] }, { clientIdHeader: [], tokenHeader: [] }, { ticket: [] }],
  parameters: [
    { name: 'Upgrade', in: 'header', required: true, schema: { type: 'string', const: 'websocket' } },
    { name: 'Connection', in: 'header', required: true, schema: { type: 'string' }, description: 'Must include `Upgrade`.' },
    { name: 'Sec-WebSocket-Key', in: 'header', required: true, schema: { type: 'string' } },
    { name: 'Sec-WebSocket-Version', in: 'header', required: true, schema: { type: 'string', enum: ['13', '8'] } },
    {
      name: 'Sec-WebSocket-Protocol',
      in: 'header',
      required: false,
      schema: { type: 'string' },
      description: '`hubcast.v1`, optionally with `hubcast.bearer.<token>` (the browser form of the token).',
    },
    {
      name: 'topics',
      in: 'query',
      required: false,
      schema: { type: 'string' },
      description: 'Comma-separated topics or patterns to subscribe to at connect, each answered like a `subscribe` frame.',
      example: 'orders.eu,alerts.*',
    },
  ],
  responses: {
    '101': {
      description: 'Switching Protocols: the WebSocket is open and its first frame is `welcome`.',
      headers: {
        'Sec-WebSocket-Accept': HEADER('RFC 6455 accept value.'),
        'Sec-WebSocket-Protocol': HEADER('`hubcast.v1` when it was offered; never the token.'),
      },
    },
    ...WS_ERRORS,
  },
});

export const coreApi: ApiPart = {
  tags: [
    { name: 'consumers', description: 'Consumers trade client credentials for a token, and a token for a WebSocket ticket.' },
    { name: 'websocket', description: 'The WebSocket upgrade (the frames are in docs/websocket.md).' },
    { name: 'ingest', description: 'Your backend publishes messages (behind `ingest.allow` and an ingest key).' },
    { name: 'webhooks', description: 'Signed deliveries to `webhook` connectors.' },
    { name: 'admin', description: 'Operators: behind `admin.allow` and an admin-scope key.' },
    { name: 'files', description: 'Public files: the browser SDK, the demo page, this document.' },
    { name: 'operations', description: 'Health and metrics.' },
    { name: 'cors', description: 'CORS preflights of the routes a browser page calls across origins.' },
  ],
  securitySchemes: {
    clientBasic: {
      type: 'http',
      scheme: 'basic',
      description: 'Client credentials: `Authorization: Basic base64(client_id:client_secret)` (from `hubcast clients create`).',
    },
    clientIdHeader: {
      type: 'apiKey',
      in: 'header',
      name: 'client_id',
      description: 'The client id, with `client_secret` (POST /consumers) or `token` (WebSocket).',
    },
    clientSecretHeader: { type: 'apiKey', in: 'header', name: 'client_secret', description: 'The client secret, with `client_id`.' },
    token: {
      type: 'http',
      scheme: 'bearer',
      description: 'A consumer token from POST /consumers: `Authorization: Bearer <token>`.',
    },
    tokenHeader: { type: 'apiKey', in: 'header', name: 'token', description: 'A consumer token, with `client_id` (WebSocket upgrade).' },
    ticket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'A single-use ticket from POST /consumers/tickets (browsers).' },
    ingestKey: {
      type: 'http',
      scheme: 'bearer',
      description: 'An ingest-scope key (`hubcast keys create`). Not needed with `ingest.requireKey: false`.',
    },
    adminKey: {
      type: 'http',
      scheme: 'bearer',
      description: 'An admin-scope key (`hubcast keys create --scope admin`), from an address in `admin.allow`.',
    },
    webhookSignature: {
      type: 'apiKey',
      in: 'header',
      name: 'X-Hubcast-Signature',
      description:
        '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the connector’s secret>`; the header name is the connector’s `signatureHeader`.',
    },
  },
  parameters: {
    IdempotencyKey: {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      schema: { type: 'string', minLength: 1, maxLength: 200 },
      description:
        'The idempotency key (per ingest key, for `history.dedupeS`): the same request again is answered with the first message; a different one is 409.',
    },
    Topic: { name: 'topic', in: 'path', required: true, schema: ref('Topic'), description: 'The topic (URL-encoded).' },
  },
  schemas: {
    Error: errorSchema,
    Topic: topicSchema,
    TopicOrPattern: topicPatternSchema,
    ConsumerCredentials: {
      type: 'object',
      properties: {
        client_id: { type: 'string', minLength: 1, maxLength: 256 },
        client_secret: { type: 'string', minLength: 1, maxLength: 256 },
      },
    },
    ConsumerRegistration: {
      type: 'object',
      required: ['client_id', 'token', 'token_type', 'expires_after_idle_s', 'websocket_url'],
      additionalProperties: false,
      properties: {
        client_id: { type: 'string' },
        token: secret('New on every call; stored only as a SHA-256 hash.'),
        token_type: { type: 'string', const: 'Bearer' },
        expires_after_idle_s: { type: 'integer', minimum: 1, description: '`tokens.idleTtl`: the token expires after this long unused.' },
        websocket_url: { type: 'string', description: 'Relative to this server.', examples: ['/ws'] },
      },
    },
    Ticket: {
      type: 'object',
      required: ['ticket', 'expires_in_s'],
      additionalProperties: false,
      properties: {
        ticket: secret('Single use: spent by the first upgrade that presents it, whatever the outcome.'),
        expires_in_s: { type: 'integer', minimum: 1, description: '`tickets.ttlS`.' },
      },
    },
    EntityMessage: {
      type: 'object',
      required: ['topic', 'data'],
      properties: {
        topic: ref('Topic'),
        data: { description: 'Any JSON value, delivered as JSON (at most `limits.maxMessageBytes` re-serialized).' },
        id: { type: 'string', minLength: 1, maxLength: 200, description: 'Idempotency key; when absent, the `Idempotency-Key` header.' },
      },
    },
    PublishResult: publishResult,
    WebhookReceipt: {
      type: 'object',
      required: ['accepted'],
      additionalProperties: false,
      properties: {
        accepted: {
          type: 'integer',
          minimum: 0,
          description: 'Records that went through the pipeline and were stored (or dead-lettered).',
        },
        duplicate: { type: 'boolean', const: true, description: 'A replay of a signature already accepted: nothing stored.' },
      },
    },
    Connector: connector,
    ConnectorList: {
      type: 'object',
      required: ['connectors'],
      additionalProperties: false,
      properties: { connectors: { type: 'array', items: ref('Connector') } },
    },
    Presence: {
      type: 'object',
      required: ['topic', 'subscribers'],
      additionalProperties: false,
      properties: {
        topic: ref('TopicOrPattern'),
        subscribers: {
          type: 'array',
          items: {
            type: 'object',
            required: ['connection_id', 'client_id', 'node', 'since'],
            additionalProperties: false,
            properties: {
              connection_id: { type: 'string' },
              client_id: { type: 'string' },
              node: { type: 'string' },
              since: dateTime,
            },
          },
        },
      },
    },
    Health: health,
  },
  paths: {
    '/consumers': {
      post: {
        tags: ['consumers'],
        operationId: 'registerConsumer',
        summary: 'Trade client credentials for a token',
        description:
          'Credentials in any one of three forms, the first one present used: a JSON body, the headers `client_id` and `client_secret`, or HTTP Basic. ' +
          'Each token may have one live WebSocket connection at a time: register once per connection. ' +
          'Not for browser pages (no CORS): register from your backend and hand the page a token.',
        security: [{ clientBasic: [] }, { clientIdHeader: [], clientSecretHeader: [] }, {}],
        requestBody: {
          required: false,
          description: 'The JSON form of the credentials (a JSON body without either field falls through to the other forms).',
          content: {
            'application/json': {
              schema: ref('ConsumerCredentials'),
              examples: {
                example: { value: { client_id: 'c_JIQIv7Ag4A6O86Gt', client_secret: 'EbcYC_Q30tPZ1jVrHyxPqZF9RYMn621fSs0mkJzOzBs' } },
              },
            },
          },
        },
        responses: {
          '201': jsonResponse('Registered: a new token (`Cache-Control: no-store`).', ref('ConsumerRegistration'), {
            client_id: 'c_JIQIv7Ag4A6O86Gt',
            token: 'n5fDFl144w5n-srAyLTZ5NUq__VaIARs5ePkblLu8_A',
            token_type: 'Bearer',
            expires_after_idle_s: 2592000,
            websocket_url: '/ws',
          }),
          ...errors({
            bad_request:
              'no credentials; malformed JSON; a body that is not `application/json`; a missing, empty or over-long value; malformed Basic',
            invalid_client: 'unknown `client_id`, wrong secret, or revoked client — the same body in every case',
            rate_limited: 'this address spent its budget of failed authentications (`limits.authFailures`); wait `Retry-After`',
            registration_rate_limited: 'this client or this address registered too often (`limits.registrations`); wait `Retry-After`',
            token_limit: 'the client holds `tokens.maxPerClient` tokens, each with a live connection (`Retry-After: 5`)',
            unavailable: 'the store failed, or `limits.registerConcurrency` secret checks are in progress; retry after `Retry-After`',
          }),
        },
      },
    },
    '/consumers/tickets': {
      post: {
        tags: ['consumers'],
        operationId: 'issueTicket',
        summary: 'Trade a token for a single-use WebSocket ticket',
        description:
          'For browsers, which cannot set headers on a WebSocket handshake: open `/ws?ticket=<ticket>`. CORS-enabled for the origins in `ws.allowedOrigins`.',
        security: [{ token: [] }],
        responses: {
          '201': jsonResponse('A ticket (`Cache-Control: no-store`).', ref('Ticket'), {
            ticket: 'dG9rZW4tdGlja2V0LWV4YW1wbGUtdmFsdWUtMDEyMzQ',
            expires_in_s: 30,
          }),
          ...errors({
            unauthorized: 'no `Authorization: Bearer`, or a malformed, unknown or expired token, or a revoked client (one body for all)',
            origin_not_allowed: 'a browser `Origin` not in `ws.allowedOrigins`: no ticket is issued',
            rate_limited: 'this address spent the consumer budget of failed authentications (`limits.authFailures`)',
            unavailable: 'store failure; retry after `Retry-After`',
          }),
        },
      },
      options: preflight('/consumers/tickets', 'POST'),
    },
    '/ws': { get: wsOperation('/ws', 'openWebSocket') },
    '/ws/publish': { get: wsOperation('/ws/publish', 'openPublishWebSocket') },
    '/entity': {
      post: {
        tags: ['ingest'],
        operationId: 'publish',
        summary: 'Publish a JSON message to a topic',
        description:
          'From an address in `ingest.allow` (default loopback), with an ingest key. `Content-Type: application/json` (or any `application/*+json`); ' +
          'send other bodies to POST /entity/{topic}. The body may be 16 KiB larger than `limits.maxMessageBytes`; `data` nests at most `limits.maxJsonDepth` levels.',
        security: [{ ingestKey: [] }],
        parameters: [param('IdempotencyKey')],
        requestBody: jsonBody(ref('EntityMessage'), { topic: 'orders.eu', data: { order: 42 }, id: 'order-42-paid' }),
        responses: {
          '202': jsonResponse('Accepted: committed to the topic’s history (or a retry of the same request).', ref('PublishResult'), {
            topic: 'orders.eu',
            offset: 7,
            id: 'order-42-paid',
          }),
          ...ingestErrors({
            bad_request: 'body not a JSON object, `data` missing, `id` not a string; an idempotency key not 1–200 characters',
            unsupported_media_type: 'a non-JSON content type; an unparsable `Content-Type`',
          }),
        },
      },
    },
    '/entity/{topic}': {
      post: {
        tags: ['ingest'],
        operationId: 'publishRaw',
        summary: 'Publish a raw body to a topic',
        description:
          'The `Content-Type` decides the payload kind: `application/json` or `application/*+json` (json, must parse), `text/*` (text, must be UTF-8), anything else or none (binary, delivered as a binary frame). ' +
          'The topic is the URL-decoded path segment; the body at most `limits.maxMessageBytes`.',
        security: [{ ingestKey: [] }],
        parameters: [param('Topic'), param('IdempotencyKey')],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: {}, examples: { example: { value: { order: 42, status: 'packed' } } } },
            'text/*': { schema: { type: 'string' }, examples: { example: { value: 'order 42 packed' } } },
            'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
          },
        },
        responses: {
          '202': jsonResponse('Accepted: committed to the topic’s history (or a retry of the same request).', ref('PublishResult'), {
            topic: 'orders.eu',
            offset: 8,
            id: 'evt-1001',
          }),
          ...ingestErrors({
            bad_request: 'an idempotency key not 1–200 characters',
            invalid_text: 'a `text/*` body that is not valid UTF-8',
            unsupported_media_type: 'an unparsable `Content-Type`',
          }),
        },
      },
    },
    '/hooks/{name}': {
      post: {
        tags: ['webhooks'],
        operationId: 'receiveWebhook',
        summary: 'A signed delivery to the webhook connector {name}',
        description:
          'Answered 2xx only after the delivery’s records are durably accepted. A timestamp more than `toleranceS` away is refused; ' +
          'a signature already accepted is a duplicate. An `Idempotency-Key` header (the sender’s delivery id) makes redeliveries harmless.',
        security: [{ webhookSignature: [] }],
        parameters: [
          { name: 'name', in: 'path', required: true, schema: { type: 'string' }, description: 'The webhook connector’s name.' },
          { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string' }, description: 'The sender’s delivery id.' },
        ],
        requestBody: {
          required: true,
          description: 'The sender’s payload (JSON, with the records at the connector’s `itemsPath`, or any body the connector takes).',
          content: { 'application/json': { schema: {}, examples: { example: { value: { event: 'order.paid', order: 42 } } } }, '*/*': {} },
        },
        responses: {
          '202': {
            description: 'Accepted, or a replay of an accepted signature (nothing stored).',
            content: {
              'application/json': {
                schema: ref('WebhookReceipt'),
                examples: { accepted: { value: { accepted: 1 } }, duplicate: { value: { accepted: 0, duplicate: true } } },
              },
            },
          },
          ...errors({
            bad_request: 'a JSON body without the array at `itemsPath`',
            invalid_json: 'a JSON body that does not parse or nests deeper than `limits.maxJsonDepth`',
            invalid_signature: 'the signature is missing, malformed or wrong, or its timestamp is outside `toleranceS`',
            not_found: 'no webhook connector by that name',
            payload_too_large: 'a body over `limits.maxMessageBytes` + 64 KiB (a record over `limits.maxMessageBytes` is dead-lettered)',
            unavailable: 'the store is unavailable; nothing was stored — retry',
          }),
        },
      },
    },
    '/connectors': {
      get: {
        tags: ['admin'],
        operationId: 'listConnectors',
        summary: 'The connectors and their state',
        security: [{ adminKey: [] }],
        responses: {
          '200': jsonResponse('The connectors of this node’s configuration.', ref('ConnectorList'), {
            connectors: [
              {
                name: 'orders-db',
                type: 'postgres',
                status: 'running',
                last_error: null,
                records_in: 1520,
                dead_letters: 2,
                last_record_at: '2026-11-26T02:10:12.000Z',
                lag_s: null,
                reconnect_attempts: 0,
              },
            ],
          }),
          ...errors(ADMIN_GUARD),
        },
      },
    },
    '/topics/{topic}/presence': {
      get: {
        tags: ['admin'],
        operationId: 'topicPresence',
        summary: 'Who is subscribed to a topic or pattern, on every node',
        description: 'A pattern lists the pattern’s own subscribers (`orders.*`), not those of the topics it matches.',
        security: [{ adminKey: [] }],
        parameters: [
          { name: 'topic', in: 'path', required: true, schema: ref('TopicOrPattern'), description: 'A topic or a pattern (URL-encoded).' },
        ],
        responses: {
          '200': jsonResponse('The subscribers.', ref('Presence'), {
            topic: 'room.1',
            subscribers: [
              { connection_id: 'cn_q3LbC2r9', client_id: 'c_JIQIv7Ag4A6O86Gt', node: 'hub-a', since: '2026-12-02T10:15:00.000Z' },
            ],
          }),
          ...errors({
            ...ADMIN_GUARD,
            invalid_topic: 'neither a topic nor a pattern',
            unavailable: 'the key store or the presence registry (the cluster’s PostgreSQL) cannot be read; retry after `Retry-After`',
          }),
        },
      },
    },
    '/client.js': {
      get: {
        tags: ['files'],
        operationId: 'clientBundle',
        summary: 'The browser SDK (ES module)',
        description:
          '`import { Hubcast } from "http://hub:8080/client.js"` with no build step. Revalidate with `If-None-Match`; gzipped for clients that accept it. CORS for the origins in `ws.allowedOrigins`.',
        security: [],
        parameters: [{ name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'The bundle.',
            headers: staticHeaders('`public, max-age=300`'),
            content: { 'text/javascript': { schema: { type: 'string' } } },
          },
          '304': notModified,
          ...errors({
            unavailable: 'the bundle is not built (`npm run build:client`, then restart); no Retry-After: retrying will not help',
          }),
        },
      },
      options: preflight('/client.js', 'GET'),
    },
    ...demoPaths(),
    '/healthz': {
      get: {
        tags: ['operations'],
        operationId: 'health',
        summary: 'Liveness, and in a cluster the node’s backends',
        description:
          'One node: 200 `{"status":"ok"}` while the HTTP server runs. In a cluster: 200 when the store answered its last probe and the broker is connected, else 503 `degraded` with the same fields.',
        security: [],
        responses: {
          '200': {
            description: 'Healthy.',
            content: {
              'application/json': {
                schema: ref('Health'),
                examples: {
                  single: { value: { status: 'ok' } },
                  cluster: {
                    value: {
                      status: 'ok',
                      node: 'hub-1',
                      store: { type: 'postgres', ok: true },
                      broker: { type: 'redis', connected: true },
                      presence: { nodes: 3 },
                    },
                  },
                },
              },
            },
          },
          '503': {
            description: 'Degraded (the store or broker is down), or the server is shutting down (the error body, `Retry-After: 1`).',
            headers: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
            content: {
              'application/json': {
                schema: { oneOf: [ref('Health'), ref('Error')] },
                examples: {
                  degraded: {
                    value: {
                      status: 'degraded',
                      node: 'hub-1',
                      store: { type: 'postgres', ok: false },
                      broker: { type: 'redis', connected: true },
                    },
                  },
                  shuttingDown: { value: errorExample('unavailable', 'the server is shutting down') },
                },
              },
            },
            'x-hubcast-error-codes': ['unavailable'],
          },
        },
      },
    },
    '/metrics': {
      get: {
        tags: ['operations'],
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        description: 'Prometheus text format; every metric is in docs/metrics.md. Neither authenticated nor allow-listed.',
        security: [],
        responses: {
          '200': {
            description: 'The metrics.',
            content: {
              'text/plain; version=0.0.4; charset=utf-8': {
                schema: { type: 'string' },
                examples: {
                  example: {
                    value:
                      '# HELP hubcast_connections Open consumer WebSocket connections.\n# TYPE hubcast_connections gauge\nhubcast_connections 3\n',
                  },
                },
              },
            },
          },
        },
      },
    },
    '/openapi.json': {
      get: {
        tags: ['files'],
        operationId: 'openApiDocument',
        summary: 'This document',
        description: 'OpenAPI 3.1, for client generators. Public (it holds no secret), readable from any origin.',
        security: [],
        parameters: [{ name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'The document.',
            headers: { ...staticHeaders('`public, max-age=300`'), 'Access-Control-Allow-Origin': HEADER('`*`') },
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          '304': notModified,
        },
      },
    },
  },
};

/** The ingest errors common to both forms of POST /entity, plus the form's own. */
function ingestErrors(own: Parameters<typeof errors>[0]): Record<string, Obj> {
  return errors({
    ...own,
    invalid_topic: 'missing or invalid topic (wildcards are not topics)',
    invalid_json: 'the body (or JSON-typed body) is not valid JSON, or nests deeper than `limits.maxJsonDepth`',
    invalid_key: 'no, unknown or revoked ingest key',
    ip_not_allowed: 'the source address is not in `ingest.allow`',
    idempotency_key_conflict:
      'the idempotency key was used by this ingest key for a different request within `history.dedupeS`; nothing was stored',
    payload_too_large: 'the payload exceeds `limits.maxMessageBytes`',
    rate_limited: 'this address spent its budget of failed key checks (`limits.ingestAuthFailures`); wait `Retry-After`',
    unavailable: 'the store failed: nothing was stored; retry (with the same idempotency key) after `Retry-After`',
  });
}

/** GET /demo and its two files: served only with `demo.enabled` (else 404). */
function demoPaths(): Record<string, Obj> {
  const files: [string, string, string, string][] = [
    ['/demo', 'demoPage', 'The live demo page', 'text/html'],
    ['/demo/demo.js', 'demoScript', 'The demo page’s script', 'text/javascript'],
    ['/demo/demo.css', 'demoStyle', 'The demo page’s style', 'text/css'],
  ];
  return Object.fromEntries(
    files.map(([path, operationId, summary, type]) => [
      path,
      {
        get: {
          tags: ['files'],
          operationId,
          summary,
          description:
            'Only with `demo.enabled` (default off: 404 `not_found`); docs/demo.md. Revalidated on every load (`no-cache`, 304 by ETag), with `Referrer-Policy: no-referrer` and a `Content-Security-Policy` limited to this origin.',
          security: [],
          parameters: [{ name: 'If-None-Match', in: 'header', required: false, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: summary + '.',
              headers: staticHeaders('`no-cache`'),
              content: { [type]: { schema: { type: 'string' } } },
            },
            '304': notModified,
            ...errors({ unavailable: 'the file is missing from this installation' }),
          },
        },
      },
    ]),
  );
}
