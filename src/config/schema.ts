import { BlockList, isIP } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { retrySchema } from '../connectors/config.ts';
import { connectorConfigSchema, createConnector } from '../connectors/index.ts';
import { pino } from 'pino';
import { Pipeline } from '../pipeline/pipeline.ts';
import { checkTemplate } from '../pipeline/template.ts';
import { isValidTopic } from '../core/topics.ts';

/**
 * The one configuration schema. Every key has a default and a one-line doc (`describe`), which
 * `hubcast config print` and docs/configuration.md show. Sources, lowest first: defaults, the config
 * file (YAML or JSON), environment variables (`HUBCAST_` + the key path in upper snake case), flags
 * (`--` + the key path in kebab case). Validated once at boot, then frozen.
 */

const DURATION_RE = /^(\d+)\s*(ms|s|m|h|d)?$/;
const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds, given as a number of seconds or a string such as `30d`, `12h`, `90m`, `45s`. */
const durationS = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = DURATION_RE.exec(v.trim());
  if (!m) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected seconds or a duration like 30d, 12h, 90m, 45s; got "${v}"` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * UNIT_S[m[2] ?? 's']!);
});

function validCidr(v: string): boolean {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
}

const cidrList = z.array(z.string().refine(validCidr, (v) => ({ message: `not an IP address or CIDR: "${v}"` })));

const port = z.number().int().min(0).max(65535);

/** A per-source token bucket: `perMinute` refill, `burst` size (both at least 1). */
function tokenBucket(perMinute: number, burst: number, doc: { perMinute: string; burst: string }) {
  return z
    .object({
      perMinute: z.number().int().min(1).default(perMinute).describe(doc.perMinute),
      burst: z.number().int().min(1).default(burst).describe(doc.burst),
    })
    .strict()
    .default({});
}

/**
 * An entry of ws.allowedOrigins must be an origin exactly as a browser sends it (scheme, host and a
 * non-default port; lower case; no slash or path), else it would silently never match; "*" = any.
 */
function checkOrigin(v: string, ctx: z.RefinementCtx): void {
  if (v === '*') return;
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" is not an origin; write scheme and host, e.g. https://app.example.com` });
  } else if (url.origin !== v) {
    const why =
      url.username || url.password
        ? 'has credentials'
        : url.pathname !== '/' || url.search || url.hash
          ? 'has a path'
          : v.endsWith('/')
            ? 'has a trailing slash'
            : 'is not written as a browser sends it (lower case, no default port)';
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" ${why}; an origin is exactly ${url.origin}` });
  }
}

export const configSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0').describe('Address to listen on.'),
    port: port.default(8080).describe('TCP port for HTTP and WebSocket (0 = any free port).'),
    dataDir: z.string().min(1).default('./data').describe('Folder of the embedded SQLite store (created if missing).'),
    nodeId: z
      .string()
      .min(1)
      .max(100)
      .default(() => hostname())
      .describe(
        'Name of this node (default: the host name); at start it clears the connections it had recorded. Distinct per node in a cluster.',
      ),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Minimum level of the JSON log lines written to stderr.'),
    pidFile: z
      .string()
      .default('')
      .describe('hubcast start writes its process id here once listening and removes it at exit (kill -HUP $(cat FILE)). Empty: none.'),
    tokens: z
      .object({
        idleTtl: durationS
          .default('30d')
          .describe('A token expires after this long unused (since its last connection ended, or since issued).'),
        maxPerClient: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe(
            'Most tokens one client_id holds. A registration past it revokes the client’s least recently used token that has no live connection; if every one is live, 429 token_limit.',
          ),
      })
      .strict()
      .default({}),
    tickets: z
      .object({
        ttlS: z.number().int().min(1).max(3600).default(30).describe('Lifetime of a single-use WebSocket ticket, seconds.'),
      })
      .strict()
      .default({}),
    duplicates: z
      .object({
        policy: z
          .enum(['reject', 'replace'])
          .default('reject')
          .describe('A second connection for a live token: reject it (409) or replace the old one (closed with 4502).'),
        probeMs: z
          .number()
          .int()
          .min(100)
          .default(2000)
          .describe('On a rejected duplicate, ping the live connection and drop it if no pong within this many ms.'),
      })
      .strict()
      .default({}),
    ws: z
      .object({
        heartbeatS: z.number().int().min(1).default(25).describe('Server ping interval; a connection that misses a pong is terminated.'),
        maxPayload: z
          .number()
          .int()
          .min(128)
          .default(4096)
          .describe('Largest frame a consumer may send, bytes (bigger: close 1009). Raise it for publishing clients.'),
        maxSubscriptions: z.number().int().min(1).default(256).describe('Most subscriptions one connection may hold.'),
        writeDelayMs: z
          .number()
          .min(0)
          .max(1000)
          .default(0)
          .describe(
            'Adaptive write delay, ms (0 = off). Under load (the last socket flush less than this ago) each connection’s messages are gathered and written at most once per this many ms: fewer, larger writes and less CPU per delivery, at up to this much added latency. An idle hub still writes at once.',
          ),
        perMessageDeflate: z
          .boolean()
          .default(false)
          .describe('Offer permessage-deflate compression (costs CPU and memory per connection).'),
        allowedOrigins: z
          .array(z.string().superRefine(checkOrigin))
          .default([])
          .describe(
            'Browser origins allowed to connect (exact match, e.g. https://app.example.com); empty or "*" = any. Others get 403 (close 4513). Also the CORS allow-list of POST /consumers/tickets and GET /client.js.',
          ),
        closeRefusals: tokenBucket(30, 10, {
          perMinute: 'Refusals told to a browser form (ticket, bearer subprotocol) by close code, per source IP per minute.',
          burst: 'Such refusals a source IP may get at once; past the budget, refusals are plain HTTP statuses again.',
        }),
        requests: z
          .object({
            perSecond: z
              .number()
              .min(1)
              .default(200)
              .describe('Requests (frames) one connection may send per second, sustained (token bucket refill); past it: close 4002.'),
            burst: z
              .number()
              .int()
              .min(1)
              .default(1000)
              .describe('Requests one connection may send at once (token bucket size), e.g. resubscribing every topic on reconnect.'),
          })
          .strict()
          .default({}),
        replay: z
          .object({
            concurrency: z
              .number()
              .int()
              .min(1)
              .default(4)
              .describe(
                'Replay pages this node reads and writes per event-loop turn, over all connections; other replays wait their turn.',
              ),
            pageMessages: z.number().int().min(1).default(100).describe('Most messages read from history for one replay page.'),
            pageBytes: z
              .number()
              .int()
              .min(1024)
              .default(65536)
              .describe(
                'Most payload bytes read from history for one replay page (at least one message; also at most limits.maxBufferedBytes/4).',
              ),
            stallMs: z
              .number()
              .int()
              .min(100)
              .default(10000)
              .describe('A replay waiting this long for its consumer to read what it was sent closes the consumer with 4001.'),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    ingest: z
      .object({
        allow: cidrList
          .default(['127.0.0.0/8', '::1/128'])
          .describe('Source addresses (CIDR) allowed to use POST /entity; judged on the socket peer.'),
        trustProxy: cidrList.default([]).describe('Proxies (CIDR) whose X-Forwarded-For is believed for the allow-list.'),
        requireKey: z.boolean().default(true).describe('Require `Authorization: Bearer <ingest key>` on POST /entity.'),
      })
      .strict()
      .default({}),
    admin: z
      .object({
        allow: cidrList
          .default(['127.0.0.0/8', '::1/128'])
          .describe(
            'Source addresses (CIDR) allowed to use the admin routes (/admin/api/…, GET /connectors, presence), with an admin-scope key, and to load the /admin dashboard (no key: it asks for one).',
          ),
        listen: z
          .object({
            host: z.string().min(1).default('127.0.0.1').describe('Address of the separate admin listener (with admin.listen.port).'),
            port: port
              .nullable()
              .default(null)
              .describe(
                'Serve the admin routes (/admin/api/…, the /admin dashboard, GET /connectors, GET /topics/<topic>/presence) on this port only, and 404 on the main one (null: on the main port; 0: any free port).',
              ),
          })
          .strict()
          .default({}),
        maxStreams: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(8)
          .describe('Admin event streams (GET /admin/api/stream) open at once on this node; more get 429 connection_limit.'),
      })
      .strict()
      .default({}),
    history: z
      .object({
        size: z.number().int().min(0).default(1000).describe('Messages kept per topic for replay.'),
        ttlS: z.number().int().min(1).default(86400).describe('Messages older than this many seconds are dropped from history.'),
        dedupeS: z
          .number()
          .int()
          .min(0)
          .default(300)
          .describe(
            'Seconds an idempotency key is remembered per publisher: a retry is not delivered again, another request with it is 409.',
          ),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        maxMessageBytes: z.number().int().min(1).default(262144).describe('Largest message payload accepted for publishing, bytes.'),
        maxJsonDepth: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(64)
          .describe(
            'Deepest [ and { nesting of a JSON payload on every entrance (ingest, WebSocket, webhooks, connectors); deeper is invalid_json.',
          ),
        maxBatchMessages: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(1000)
          .describe('Most messages in one POST /entities batch; more is 413 payload_too_large and nothing is stored.'),
        maxBatchBytes: z
          .number()
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(4 * 1024 * 1024)
          .describe(
            'Largest POST /entities body, bytes (each message in it is still capped by limits.maxMessageBytes); larger is 413 payload_too_large.',
          ),
        authFailures: tokenBucket(30, 60, {
          perMinute:
            'Consumer entrances (POST /consumers, POST /consumers/tickets, WebSocket upgrades): failed authentications per source address per minute, sustained (token bucket refill). IPv6 sources count per /64.',
          burst: 'Consumer entrances: failed authentications a source address may make at once before it gets 429 rate_limited.',
        }),
        ingestAuthFailures: tokenBucket(30, 60, {
          perMinute:
            'Key entrances (POST /entity, admin routes): failed key checks per source address per minute, sustained. A budget separate from the consumer one (and admin separate from ingest), so failing browsers behind one proxy cannot throttle the backend.',
          burst: 'Key entrances: failed key checks a source address may make at once before it gets 429 rate_limited.',
        }),
        registrations: z
          .object({
            perClientPerMinute: z
              .number()
              .int()
              .min(1)
              .default(60)
              .describe('Successful POST /consumers per client_id per minute, sustained (token bucket refill).'),
            perClientBurst: z
              .number()
              .int()
              .min(1)
              .default(60)
              .describe(
                'Successful POST /consumers a client_id may make at once; past it, 429 registration_rate_limited with Retry-After.',
              ),
            perIpPerMinute: z
              .number()
              .int()
              .min(1)
              .default(120)
              .describe('Successful POST /consumers per source address (IPv6: per /64) per minute, sustained, all clients together.'),
            perIpBurst: z
              .number()
              .int()
              .min(1)
              .default(60)
              .describe(
                'Successful POST /consumers a source address may make at once; past it, 429 registration_rate_limited with Retry-After.',
              ),
          })
          .strict()
          .default({}),
        registerConcurrency: z
          .number()
          .int()
          .min(1)
          .default(4)
          .describe(
            'POST /consumers secret checks (scrypt) in progress at once; excess requests get 503 with Retry-After. However high, at most half of the libuv pool (UV_THREADPOOL_SIZE, default 4) hashes at a time.',
          ),
        maxConnections: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('Most WebSocket connections on this node (0 = no cap); excess get 503.'),
        connectionsPerIp: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('Most concurrent WebSocket connections from one source IP on this node (0 = no cap); excess get 429.'),
        connectionsPerClient: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('Most concurrent WebSocket connections of one client_id, across every node of a cluster (0 = no cap); excess get 429.'),
        authTimeoutMs: z
          .number()
          .int()
          .min(100)
          .default(5000)
          .describe('Deadline for authenticating a WebSocket upgrade; a socket still waiting then is destroyed.'),
        headersTimeoutMs: z
          .number()
          .int()
          .min(1000)
          .default(10000)
          .describe('Time a client has to send complete request headers (HTTP and upgrade); slower sockets are destroyed.'),
        maxBufferedBytes: z
          .number()
          .int()
          .min(1024)
          .default(1048576)
          .describe('Outbound bytes queued for one consumer before it is closed with 4001 (slow consumer).'),
      })
      .strict()
      .default({}),
    tls: z
      .object({
        cert: z
          .string()
          .default('')
          .describe('PEM certificate (chain) file; with tls.key, serves HTTPS and WSS on the same port. Reloaded on SIGHUP.'),
        key: z.string().default('').describe('PEM private key file for tls.cert.'),
      })
      .strict()
      .refine((t) => (t.cert === '') === (t.key === ''), { message: 'tls.cert and tls.key go together: set both or neither' })
      .default({}),
    shutdown: z
      .object({
        graceS: z
          .number()
          .min(0)
          .default(10)
          .describe('On SIGTERM/SIGINT: stop accepting, finish in-flight work, close consumers with 1001; exit within this many seconds.'),
      })
      .strict()
      .default({}),
    connectors: z
      .array(connectorConfigSchema)
      .default([])
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((c, i) => {
          if (seen.has(c.name))
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'name'], message: `duplicate connector name "${c.name}"` });
          seen.add(c.name);
          try {
            checkTemplate(c.topic, isValidTopic);
            // Setting combinations that can never work are refused by the implementation itself.
            createConnector(c, { log: pino({ level: 'silent' }) });
            new Pipeline(c.pipeline, { where: `connectors[${i}].pipeline`, connector: c.name });
          } catch (err) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: (err as Error).message });
          }
        });
      })
      .describe('Upstream connectors (config file only): see docs/connectors.md.'),
    connect: z
      .object({ retry: retrySchema })
      .strict()
      .default({})
      .describe('hubcast connect (standalone mode): retrying the gateway while it is unreachable.'),
    store: z
      .object({
        type: z
          .enum(['sqlite', 'postgres'])
          .default('sqlite')
          .describe('Where clients, tokens and history live: sqlite = one node, embedded; postgres = shared by every node of a cluster.'),
        synchronous: z
          .enum(['full', 'normal'])
          .default('full')
          .describe('SQLite durability: full = every acknowledged write fsynced (survives power loss); normal = survives a process crash.'),
        url: z
          .string()
          .refine((v) => v === '' || /^postgres(ql)?:\/\//i.test(v), {
            message: 'expected postgres://[user[:password]@]host[:port]/database',
          })
          .default('')
          .describe('PostgreSQL connection URL (store.type postgres), e.g. postgres://hubcast@db:5432/hubcast.'),
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL identifier')
          .default('hubcast')
          .describe("PostgreSQL schema holding Hubcast's tables (created and migrated at start); one per hub."),
        poolSize: z.number().int().min(2).max(200).default(10).describe('PostgreSQL connections per node.'),
      })
      .strict()
      .refine((s) => s.type !== 'postgres' || s.url !== '', {
        message: 'store.type is postgres: set store.url (postgres://host:port/database)',
        path: ['url'],
      })
      .default({}),
    broker: z
      .object({
        type: z
          .enum(['memory', 'redis', 'nats', 'postgres'])
          .default('memory')
          .describe(
            'How publications reach the connections: memory = this process; redis, nats, postgres (LISTEN/NOTIFY) = every node of a cluster.',
          ),
        url: z.string().default('').describe('Broker server URL: redis://host:6379, nats://host:4222; empty for postgres = store.url.'),
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,40}$/, 'expected 1–40 characters of [A-Za-z0-9_-]')
          .default('hubcast')
          .describe('Channel (subject) name prefix: several hubs can share one broker server under different prefixes.'),
      })
      .strict()
      .default({}),
    cluster: z
      .object({
        leaseS: z
          .number()
          .min(1)
          .max(300)
          .default(10)
          .describe(
            "A node's lease on its connections: renewed every third of it; a node that dies frees its tokens and presence within it.",
          ),
        gapWaitMs: z
          .number()
          .int()
          .min(0)
          .max(10000)
          .default(100)
          .describe('How long a node holds back a publication that arrived ahead of a missing offset before reading the gap from history.'),
        positionCheckMs: z
          .number()
          .int()
          .min(100)
          .max(60000)
          .default(2000)
          .describe(
            'How often a node compares the topics it delivers with history (one query per 1,000 topics): the longest a publication the broker lost waits.',
          ),
        presenceEvents: z
          .boolean()
          .default(true)
          .describe(
            'Send join/leave events between nodes (one small control message per subscribe and unsubscribe) for consumers that ask for them.',
          ),
      })
      .strict()
      .default({}),
    alerts: z
      .object({
        groupWaitS: z
          .number()
          .int()
          .min(0)
          .default(30)
          .describe(
            'An alert group (kind, and client_id for per-client kinds) sends its first digest this many seconds after its first event.',
          ),
        repeatS: z
          .number()
          .int()
          .min(1)
          .default(600)
          .describe(
            'Later events of a group are folded into at most one digest per this many seconds; a group quiet this long is forgotten.',
          ),
        email: z
          .object({
            smtpUrl: z
              .string()
              .refine((v) => v === '' || /^smtps?:\/\/[^/\s]+/i.test(v), { message: 'expected smtp://host[:port] or smtps://host[:port]' })
              .default('')
              .describe('SMTP server for alert e-mail, smtp://[user:pass@]host[:port] or smtps://… (empty = no e-mail).'),
            from: z.string().min(1).default('hubcast@localhost').describe('Sender address of alert e-mail.'),
            to: z
              .array(z.string().regex(/^[^\s@,<>]+@[^\s@,<>]+$/, 'expected an e-mail address'))
              .default([])
              .describe('Recipients of alert e-mail (required when alerts.email.smtpUrl is set).'),
          })
          .strict()
          .refine((e) => e.smtpUrl === '' || e.to.length > 0, {
            message: 'alerts.email.smtpUrl is set: name at least one recipient in alerts.email.to',
            path: ['to'],
          })
          .default({}),
        webhook: z
          .object({
            url: z
              .string()
              .refine((v) => v === '' || /^https?:\/\/[^/\s]+/i.test(v), { message: 'expected an http:// or https:// URL' })
              .default('')
              .describe('URL that receives each alert digest as a JSON POST (empty = no webhook).'),
          })
          .strict()
          .default({}),
        retry: z
          .object({
            initialMs: z
              .number()
              .int()
              .min(1)
              .default(1000)
              .describe('First retry delay of an undelivered alert (e-mail or webhook down); doubles per failure, jittered.'),
            maxMs: z.number().int().min(1).default(300000).describe('Longest delay between retries of an undelivered alert.'),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    demo: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Serve the live demo page at GET /demo (open the URL `hubcast demo` prints; the token travels in the URL fragment). Off: 404.',
          ),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.admin.listen.port !== null && c.admin.listen.port !== 0 && c.admin.listen.port === c.port) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['admin', 'listen', 'port'],
        message: `admin.listen.port is the main port (${c.port}): choose another one, or null to serve the admin routes on the main port`,
      });
    }
    // Several nodes cannot share one SQLite file: a cluster broker needs the cluster store.
    if (c.broker.type !== 'memory' && c.store.type === 'sqlite') {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['store', 'type'],
        message: `broker.type is ${c.broker.type} (several nodes) but store.type is sqlite, which one node holds alone: set store.type: postgres and store.url`,
      });
    }
    if (c.broker.type === 'redis' && c.broker.url !== '' && !/^rediss?:\/\//i.test(c.broker.url)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['broker', 'url'], message: 'expected redis://host:port or rediss://host:port' });
    }
    if (c.broker.type === 'nats' && c.broker.url !== '' && !/^(nats|tls):\/\//i.test(c.broker.url)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['broker', 'url'], message: 'expected nats://host:port' });
    }
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = Readonly<z.output<typeof configSchema>>;

/** A BlockList from CIDRs (IPv4-mapped IPv6 addresses match their IPv4 rules). */
export function cidrBlockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/') as [string, string | undefined];
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}
