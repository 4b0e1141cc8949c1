import { createInterface } from 'node:readline';
import { describeFetchError, describeHttpError, httpBase, hubUrl } from './hub-url.ts';
import { parse, UsageError, type Io } from './options.ts';

export const PUB_USAGE = `hubcast pub TOPIC [DATA | -] [--url URL] [--key KEY] [--idempotency-key K] [--content-type T] [--lines [--concurrency N]]
  Publishes one message through POST /entity/TOPIC with an ingest key (--key, or HUBCAST_KEY) and
  prints the answer, {"topic","offset","id"}. DATA is the body; - (or no DATA) reads it from stdin,
  byte for byte. Without --content-type: application/json when the body is valid JSON, else
  text/plain (stdin that is not UTF-8: application/octet-stream, delivered as a binary frame).
  --lines: each non-empty stdin line is one message (its content type chosen per line), published
  in line order, one answer per line; it stops at the first refusal, names the line and exits 1.
  With --idempotency-key K each line gets the key K-<line number>, so running it again after a
  failure stores nothing twice. --concurrency N: up to N requests in flight (default 1; above 1 the
  answers are still printed in line order but the offsets may not follow it).
  --url: default http://localhost:8080, or the configured host and port.`;

const own = {
  url: { type: 'string' as const },
  key: { type: 'string' as const },
  'idempotency-key': { type: 'string' as const },
  'content-type': { type: 'string' as const },
  lines: { type: 'boolean' as const },
  concurrency: { type: 'string' as const },
};

/** An answer to one publication: the server's JSON on success, a sentence on failure. */
type Outcome = { ok: true; body: string } | { ok: false; reason: string };

const REQUEST_TIMEOUT_MS = 30_000;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function contentTypeOf(body: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return 'application/octet-stream';
  }
  try {
    JSON.parse(text);
    return 'application/json';
  } catch {
    return 'text/plain; charset=utf-8';
  }
}

async function readStdin(): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function pubCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, own);
  if (values.help) {
    io.out(PUB_USAGE + '\n');
    return 0;
  }
  const [topic, data, ...extra] = positionals;
  if (!topic) throw new UsageError(`pub needs a TOPIC\n\n${PUB_USAGE}`);
  if (extra.length > 0) throw new UsageError(`pub takes one DATA argument (quote it), got also: ${extra.join(' ')}`);
  const lines = values.lines === true;
  if (lines && data !== undefined && data !== '-') throw new UsageError('--lines reads stdin: give - or no DATA');
  const concurrency = Number(values.concurrency ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new UsageError('--concurrency is an integer from 1 to 64');
  if (values.concurrency !== undefined && !lines) throw new UsageError('--concurrency goes with --lines');
  const idemKey = values['idempotency-key'] as string | undefined;
  if (idemKey !== undefined && (idemKey.length < 1 || idemKey.length > 200))
    throw new UsageError('--idempotency-key is 1–200 characters (with --lines, the line number is appended)');
  const contentType = values['content-type'] as string | undefined;
  const key = (values.key as string | undefined) ?? process.env.HUBCAST_KEY;
  const url = `${httpBase(hubUrl(values))}/entity/${encodeURIComponent(topic)}`;

  const send = async (body: Uint8Array<ArrayBuffer>, idempotencyKey: string | undefined): Promise<Outcome> => {
    const headers: Record<string, string> = { 'content-type': contentType ?? contentTypeOf(body) };
    if (key) headers.authorization = `Bearer ${key}`;
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      text = await res.text();
    } catch (err) {
      if ((err as Error).name === 'TimeoutError')
        return {
          ok: false,
          reason: `no answer within ${REQUEST_TIMEOUT_MS / 1000} s from ${url}: it may have been stored; retry with the same --idempotency-key`,
        };
      return { ok: false, reason: describeFetchError(url, err) };
    }
    if (res.ok) return { ok: true, body: text.trim() };
    let reason = describeHttpError(res.status, text, res.headers);
    if (res.status === 401 && !key) reason += ' (give the ingest key: --key KEY or HUBCAST_KEY)';
    return { ok: false, reason };
  };

  if (!lines) {
    const body = data === undefined || data === '-' ? await readStdin() : new TextEncoder().encode(data);
    const outcome = await send(body, idemKey);
    if (!outcome.ok) {
      io.err(`hubcast pub: ${outcome.reason}\n`);
      return 1;
    }
    io.out(outcome.body + '\n');
    return 0;
  }

  // --lines: a window of at most `concurrency` requests, answers printed in line order.
  const window: { line: number; outcome: Promise<Outcome> }[] = [];
  let failed: { line: number; reason: string } | undefined;
  let storedAfterFailure = 0;
  const settle = async (keep: number) => {
    while (window.length > keep) {
      const { line, outcome } = window.shift()!;
      const o = await outcome;
      if (o.ok) {
        io.out(o.body + '\n');
        if (failed) storedAfterFailure++;
      } else if (!failed) failed = { line, reason: o.reason };
    }
  };
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNo = 0;
  let sent = 0;
  for await (const text of rl) {
    lineNo++;
    if (text.trim() === '') continue;
    window.push({
      line: lineNo,
      outcome: send(new TextEncoder().encode(text), idemKey === undefined ? undefined : `${idemKey}-${lineNo}`),
    });
    sent++;
    await settle(concurrency - 1);
    if (failed) break;
  }
  rl.close();
  await settle(0);
  if (failed) {
    const later = storedAfterFailure > 0 ? `; ${storedAfterFailure} later line(s) already in flight were stored (answers above)` : '';
    io.err(`hubcast pub: line ${failed.line}: ${failed.reason}${later}\n`);
    return 1;
  }
  if (sent === 0) io.err('hubcast pub: stdin had no lines: nothing published\n');
  return 0;
}
