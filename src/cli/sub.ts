import { Hubcast, type HubcastError, type Message, type PositionStorage, type StateInfo } from '../../packages/client/src/index.ts';
import { fileStorage } from '../../packages/client/src/node.ts';
import { CLOSE_CODES } from '../../packages/client/src/protocol.ts';
import { isValidPattern, isValidTopic } from '../core/topics.ts';
import { hubUrl } from './hub-url.ts';
import { parse, UsageError, type Io } from './options.ts';

export const SUB_USAGE = `hubcast sub TOPIC_OR_PATTERN... [--since N] [--position-file F] [--raw] [--count N] [--quiet] [--url URL]
            (--client-id ID --client-secret S | --token T)
  Subscribes through the WebSocket and prints one JSON line per message on stdout,
  {"topic","offset","ts","data"} ("base64" instead of "data" for a binary payload); --raw prints the
  data only (a string as is, other JSON as JSON, binary bytes as they are), one message per line.
  Reconnects with backoff and resumes where it was, so each message is printed once and in order.
  --position-file F keeps each topic's position (offset and epoch) in F: run again, it starts right
  after the last message printed. --since N: the first time (no position in F), replay the messages
  after offset N (0: all history). Patterns are live only. Status (subscribed, gaps, reconnects) goes
  to stderr; --quiet keeps only errors. --count N: exit after N messages.
  Credentials: --token (or HUBCAST_TOKEN), or --client-id and --client-secret (or HUBCAST_CLIENT_ID
  and HUBCAST_CLIENT_SECRET), which register through POST /consumers. --url: default
  http://localhost:8080, or the configured host and port.
  Exits 0 on SIGINT/SIGTERM or after --count messages; 1 when the hub refuses for good (bad
  credentials, a topic not allowed, the client revoked: 4500), with the reason on stderr.`;

const own = {
  url: { type: 'string' as const },
  token: { type: 'string' as const },
  'client-id': { type: 'string' as const },
  'client-secret': { type: 'string' as const },
  since: { type: 'string' as const },
  'position-file': { type: 'string' as const },
  raw: { type: 'boolean' as const },
  count: { type: 'string' as const },
  quiet: { type: 'boolean' as const },
};

function nonNegativeInt(v: unknown, flag: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || String(v).trim() === '')
    throw new UsageError(`${flag} is an integer ≥ ${min}, not "${String(v)}"`);
  return n;
}

/** One stdout line for a message. */
function render(m: Message, raw: boolean, io: Io): void {
  if (raw) {
    if (m.binary) {
      if (io.bytes) io.bytes(m.binary);
      else io.out(Buffer.from(m.binary).toString('utf8'));
      io.out('\n');
    } else io.out((typeof m.data === 'string' ? m.data : JSON.stringify(m.data)) + '\n');
    return;
  }
  const line = m.binary
    ? { topic: m.topic, offset: m.offset, ts: m.ts, base64: Buffer.from(m.binary).toString('base64') }
    : { topic: m.topic, offset: m.offset, ts: m.ts, data: m.data };
  io.out(JSON.stringify(line) + '\n');
}

/** What a refusal before the connection means, by error code (the server's own message is generic). */
const HINT: Record<string, string> = {
  unauthorized: 'the token is unknown, expired or revoked',
  invalid_client: 'unknown client, wrong secret or revoked client',
  origin_not_allowed: 'this origin is not in ws.allowedOrigins',
};

/** Why the hub refused or closed, from what the SDK reports: close code, HTTP status, error code. */
function describe(err: HubcastError | undefined, info: StateInfo = {}): string {
  const close = info.code ?? err?.closeCode;
  const status = info.status ?? err?.status;
  if (close !== undefined) {
    const known = (CLOSE_CODES as Record<number, { name: string }>)[close];
    const more = err && err.code !== 'connection_closed' && err.code !== info.reason ? `; ${err.code}: ${err.message}` : '';
    return `closed with ${close}${known ? ` (${known.name})` : ''}${info.reason ? `: ${info.reason}` : ''}${more}`;
  }
  const code = err?.code && !err.code.startsWith('http_') ? err.code : undefined;
  const what = (code && HINT[code]) ?? err?.message ?? '';
  if (status !== undefined) return `HTTP ${status}${code ? ` ${code}` : ''}${what ? `: ${what}` : ''}`;
  return err ? `${err.code}: ${err.message}` : 'closed';
}

export async function subCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals: topics } = parse(args, own);
  if (values.help) {
    io.out(SUB_USAGE + '\n');
    return 0;
  }
  if (topics.length === 0) throw new UsageError(`sub needs at least one TOPIC_OR_PATTERN\n\n${SUB_USAGE}`);
  for (const t of topics)
    if (!isValidPattern(t)) throw new UsageError(`"${t}" is not a topic or pattern (segments of [A-Za-z0-9_-], * or a final >)`);
  if (new Set(topics).size !== topics.length) throw new UsageError('a topic is given twice');
  const since = nonNegativeInt(values.since, '--since');
  const count = nonNegativeInt(values.count, '--count', 1);
  const patterns = topics.filter((t) => !isValidTopic(t));
  if (since !== undefined && patterns.length > 0)
    throw new UsageError(`--since applies to topics, not patterns (${patterns.join(', ')}): patterns are live only`);
  const positionFile = values['position-file'] as string | undefined;
  if (positionFile !== undefined && patterns.length > 0)
    throw new UsageError(`--position-file keeps positions of topics, not patterns (${patterns.join(', ')}): patterns are live only`);

  const token = (values.token as string | undefined) ?? process.env.HUBCAST_TOKEN;
  const clientId = (values['client-id'] as string | undefined) ?? process.env.HUBCAST_CLIENT_ID;
  const clientSecret = (values['client-secret'] as string | undefined) ?? process.env.HUBCAST_CLIENT_SECRET;
  if (token && (clientId || clientSecret)) throw new UsageError('give --token, or --client-id and --client-secret, not both');
  if (!token && !(clientId && clientSecret))
    throw new UsageError('sub needs credentials: --token T (or HUBCAST_TOKEN), or --client-id ID and --client-secret S');

  const url = hubUrl(values);
  const raw = values.raw === true;
  const quiet = values.quiet === true;
  let stopping = false;
  const note = (s: string) => {
    if (!quiet && !stopping) io.err(`hubcast sub: ${s}\n`);
  };
  let storage: PositionStorage | undefined;
  try {
    if (positionFile !== undefined) storage = fileStorage(positionFile);
  } catch (err) {
    io.err(`hubcast sub: cannot read the position file ${positionFile}: ${(err as Error).message}\n`);
    return 1;
  }

  const hub = new Hubcast({ url, ...(token ? { token } : { clientId, clientSecret }), ...(storage ? { storage } : {}) });
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const fail = (message: string) => {
    if (stopping) return;
    stopping = true;
    io.err(`hubcast sub: ${message}\n`);
    finish(1);
  };
  const stop = () => {
    stopping = true;
    finish(0);
  };

  hub.on('welcome', (w) => note(`connected to ${url} (connection ${w.connection_id})`));
  hub.on('state', (state, info) => {
    if (stopping) return;
    if (state === 'disconnected') note(`disconnected (${describe(info.error, info)}); reconnecting in ${info.retryInMs ?? 0} ms`);
    // The SDK stops for good (revoked, not allowed, refused credentials): so does the command.
    if (state === 'closed') fail(`stopped: ${describe(info.error, info)}`);
  });
  hub.on('error', (err) => {
    if (!stopping && hub.state !== 'closed') note(`error: ${describe(err)}`);
  });

  let printed = 0;
  for (const topic of topics) {
    // A position kept in the file wins over --since, which is only where to start the first time.
    const stored = storage && since !== undefined ? await storage.get(topic) : undefined;
    const sub = hub.subscribe(topic, since !== undefined && !stored ? { since: { offset: since } } : {});
    sub.on('subscribed', (info) => {
      if (info.pattern) return note(`${topic}: subscribed (a pattern: live only)`);
      const from = info.since ? `resuming after offset ${info.since.offset}` : 'live from here';
      note(
        `${topic}: subscribed, latest offset ${info.offset}, epoch ${info.epoch}; ${from}${info.since ? (info.recovered ? ' (recovered)' : '') : ''}`,
      );
    });
    sub.on('gap', (g) => {
      const why = {
        trimmed: 'no longer all in history',
        epoch: "the topic's history was replaced (new epoch)",
        pattern: 'patterns cannot resume',
      }[g.reason];
      note(`${g.topic}: messages may have been missed (${why}); going on from offset ${g.position?.offset ?? '(live)'}: reload your state`);
    });
    sub.on('message', (m) => {
      if (stopping) return;
      render(m, raw, io);
      if (count !== undefined && ++printed >= count) stop();
    });
    // A refused subscribe (forbidden, invalid_topic…). A client that stops ends its subscriptions
    // too, then reports its state: that report, right after, is the one to show.
    sub.on('error', (err) => setImmediate(() => fail(`${topic}: ${err.code}: ${err.message}`)));
  }

  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await finished;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await hub.close();
  }
}
