import { z } from 'zod';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import { FatalSourceError, sleep, type Connector, type ConnectorContext, type SourceRecord } from './connector.ts';

/**
 * The `http-poll` connector: GET a JSON URL every `intervalS` seconds and emit the items not seen
 * before. Conditional requests (`If-None-Match`, `If-Modified-Since`) make an unchanged resource
 * cost a 304. The validators and the bounded list of seen keys are written to `ctx.state` only after
 * `emit` resolved, so a failed emit means the same items are offered again on the next poll.
 */

export const settings = z
  .object({
    url: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//i.test(u), 'url must start with http:// or https://')
      .describe('URL to GET; the response is JSON.'),
    intervalS: z.number().positive().default(30).describe('Seconds between polls.'),
    headers: z
      .record(
        z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a header name is an HTTP token'),
        z.string().regex(/^[^\r\n\0]*$/, 'a header value has no CR, LF or NUL'),
      )
      .default({})
      .describe('Request headers, e.g. Authorization; values are never logged.'),
    itemsPath: z
      .string()
      .min(1)
      .optional()
      .describe('Dot path to the array of items in the response (e.g. data.items); default: the response is the array.'),
    keyField: z.string().min(1).describe("Dot path to each item's unique key (e.g. id); the idempotency key."),
    timeoutS: z.number().positive().default(10).describe('Seconds before one request (headers and body) is abandoned.'),
    seenKeys: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe('How many item keys are remembered to tell new items from old; keep it above the items per response.'),
  })
  .strict();

export type HttpPollSettings = z.output<typeof settings>;
export type HttpPollConnectorConfig = CommonConnectorConfig & HttpPollSettings;

const STATE_ETAG = 'etag';
const STATE_LAST_MODIFIED = 'lastModified';
const STATE_SEEN = 'seen';

export function create(cfg: HttpPollConnectorConfig, _deps: { log: Logger }): Connector {
  const u = new URL(cfg.url);
  // Logs and errors name the endpoint without its query string or credentials.
  const where = `${u.origin}${u.pathname}`;
  return {
    name: cfg.name,
    type: 'http-poll',
    async run(ctx) {
      const seen = new SeenKeys(ctx, cfg.seenKeys);
      while (!ctx.signal.aborted) {
        if (!(await pollOnce(cfg, where, seen, ctx))) return;
        ctx.connected();
        try {
          await sleep(cfg.intervalS * 1000, ctx.signal);
        } catch {
          return;
        }
      }
    },
  };
}

/** One poll; false when aborted. Throws to be retried, FatalSourceError when retrying cannot help. */
async function pollOnce(cfg: HttpPollConnectorConfig, where: string, seen: SeenKeys, ctx: ConnectorContext): Promise<boolean> {
  const headers = new Headers(cfg.headers);
  if (!headers.has('accept')) headers.set('accept', 'application/json');
  const etag = ctx.state.get(STATE_ETAG);
  const lastModified = ctx.state.get(STATE_LAST_MODIFIED);
  if (etag) headers.set('if-none-match', etag);
  if (lastModified) headers.set('if-modified-since', lastModified);

  const timeout = AbortSignal.timeout(cfg.timeoutS * 1000);
  const signal = AbortSignal.any([ctx.signal, timeout]);
  let res: Response;
  let text: string;
  try {
    res = await fetch(cfg.url, { headers, signal });
    if (res.status === 304 || res.status === 204 || !res.ok) {
      await res.body?.cancel().catch(() => undefined);
      text = '';
    } else {
      text = await res.text();
    }
  } catch (err) {
    if (ctx.signal.aborted) return false;
    if (timeout.aborted) throw new Error(`GET ${where} timed out after ${cfg.timeoutS} s`, { cause: err });
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`GET ${where} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
  }

  if (res.status === 304 || res.status === 204) return true;
  if (res.status === 401 || res.status === 403)
    throw new FatalSourceError(`GET ${where} answered ${res.status}: check the credentials in headers`);
  if (res.status === 404 || res.status === 410) throw new FatalSourceError(`GET ${where} answered ${res.status}: check the url`);
  if (!res.ok) throw new Error(`GET ${where} answered ${res.status}`);

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new FatalSourceError(`GET ${where}: the response is not JSON`, { cause: err });
  }
  const items = cfg.itemsPath ? lookup(body, cfg.itemsPath) : body;
  if (!Array.isArray(items))
    throw new FatalSourceError(
      cfg.itemsPath
        ? `GET ${where}: itemsPath "${cfg.itemsPath}" is not an array in the response`
        : `GET ${where}: the response is not an array (set itemsPath)`,
    );

  const current: string[] = [];
  const fresh: SourceRecord[] = [];
  const inResponse = new Set<string>();
  let keyless = 0;
  for (const item of items) {
    const k = lookup(item, cfg.keyField);
    if (!(typeof k === 'string' || (typeof k === 'number' && Number.isFinite(k))) || k === '') {
      keyless++;
      continue;
    }
    const key = String(k);
    if (inResponse.has(key)) continue;
    inResponse.add(key);
    current.push(key);
    if (!seen.has(key)) fresh.push({ key, value: item, kind: 'json', meta: { url: where } });
  }
  if (keyless > 0) ctx.log.warn({ url: where, keyField: cfg.keyField, skipped: keyless }, 'http-poll: items without a key skipped');
  ctx.log.debug({ url: where, items: items.length, new: fresh.length }, 'http-poll: polled');

  if (fresh.length > 0) await ctx.emit(fresh);
  // Seen keys before validators: a crash in between costs a re-read, never a skipped item.
  seen.remember(current);
  setOrDelete(ctx, STATE_ETAG, res.headers.get('etag'));
  setOrDelete(ctx, STATE_LAST_MODIFIED, res.headers.get('last-modified'));
  return true;
}

/**
 * The keys of recent items, oldest first, bounded. Keys still in the latest response move to the
 * end, so only items gone from the resource are forgotten.
 */
class SeenKeys {
  readonly #ctx: ConnectorContext;
  readonly #limit: number;
  #order: string[];
  #set: Set<string>;

  constructor(ctx: ConnectorContext, limit: number) {
    this.#ctx = ctx;
    this.#limit = limit;
    this.#order = parseKeys(ctx.state.get(STATE_SEEN));
    this.#set = new Set(this.#order);
  }

  has(key: string): boolean {
    return this.#set.has(key);
  }

  remember(current: string[]): void {
    const now = new Set(current);
    const order = this.#order.filter((k) => !now.has(k)).concat(current);
    this.#order = order.length > this.#limit ? order.slice(order.length - this.#limit) : order;
    this.#set = new Set(this.#order);
    this.#ctx.state.set(STATE_SEEN, JSON.stringify(this.#order));
  }
}

function parseKeys(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}

function setOrDelete(ctx: ConnectorContext, key: string, value: string | null): void {
  if (value) ctx.state.set(key, value);
  else ctx.state.delete(key);
}

function lookup(root: unknown, path: string): unknown {
  let cur = root;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}
