import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HubcastError } from '../../core/errors.ts';
import { exceedsJsonDepth, tooDeep } from '../../core/json-depth.ts';

/**
 * What every admin route shares: query and body validation (zod, strict: an unknown field is
 * `400 bad_request`), opaque cursors and paging, and store calls that fail as `503 unavailable`.
 */

/** Body limit of the admin routes (publishing a test message takes a message's size instead). */
export const ADMIN_BODY_LIMIT = 64 * 1024;
/** Page size bounds of every list (`?limit=`). */
export const MAX_LIMIT = 500;
export const DEFAULT_LIMIT = 100;
const MAX_CURSOR = 400;

/** `?limit=` (1–500, default 100). */
export const limitParam = z
  .string()
  .regex(/^\d{1,4}$/, 'limit must be an integer from 1 to 500')
  .transform(Number)
  .refine((n) => n >= 1 && n <= MAX_LIMIT, 'limit must be an integer from 1 to 500')
  .default(String(DEFAULT_LIMIT));

/** `?limit=&cursor=`: the paging parameters of every list. */
export const pageQuery = {
  limit: limitParam,
  cursor: z.string().min(1).max(MAX_CURSOR).optional(),
};

/** A zod failure as one line naming the field. */
function describe(err: z.ZodError): string {
  const issue = err.issues[0]!;
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
  const where = issue.path.join('.');
  return where ? `${where}: ${issue.message}` : issue.message;
}

/** The query string checked against `shape` (strict: unknown or repeated parameters are 400). */
export function parseQuery<S extends z.ZodRawShape>(shape: S, query: unknown): z.output<z.ZodObject<S, 'strict'>> {
  const r = z
    .object(shape)
    .strict()
    .safeParse(query ?? {});
  if (!r.success) throw new HubcastError('bad_request', `query: ${describe(r.error)}`);
  return r.data;
}

/**
 * A JSON body checked against `schema`: `415` unless `application/json`, `400 invalid_json` for
 * malformed or too deeply nested JSON, `400 bad_request` naming the first field that does not fit.
 * The size was capped by the route's body limit before any of this (413).
 */
export function parseBody<T extends z.ZodTypeAny>(req: FastifyRequest, schema: T, maxDepth: number): z.output<T> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HubcastError('unsupported_media_type', 'send the body as application/json');
  const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
  if (exceedsJsonDepth(body, maxDepth + 1)) throw new HubcastError('invalid_json', tooDeep(maxDepth));
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HubcastError('invalid_json');
  }
  const r = schema.safeParse(parsed);
  if (!r.success) throw new HubcastError('bad_request', describe(r.error));
  return r.data;
}

/** An opaque cursor for a sort key. */
export const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

/** The sort key in a cursor; `400 bad_request` for one this server did not make. */
export function decodeCursor(cursor: string | undefined, check: (key: string) => boolean = () => true): string | undefined {
  if (cursor === undefined) return undefined;
  const key = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!key || !check(key)) throw new HubcastError('bad_request', 'query: cursor is not one this server gave (take next_cursor as it is)');
  return key;
}

/** A sort key that orders by a time, then an id. */
export const timeKey = (ms: number, id: string): string => `${String(ms).padStart(16, '0')}:${id}`;
export const isTimeKey = (key: string): boolean => /^\d{16}:.+$/.test(key);

/**
 * One page of `items` (any order), by `key`: those after the cursor's key, at most `limit`, and the
 * cursor of the next page (null when this one is the last).
 */
export function page<T>(
  items: T[],
  key: (item: T) => string,
  after: string | undefined,
  limit: number,
): { items: T[]; next: string | null } {
  const keyed = items.map((item) => ({ item, k: key(item) })).filter((x) => after === undefined || x.k > after);
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const taken = keyed.slice(0, limit);
  return { items: taken.map((x) => x.item), next: keyed.length > limit ? encodeCursor(taken.at(-1)!.k) : null };
}

/** A backend call whose failure is `503 unavailable` (with Retry-After), not a 500. */
export async function backend<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HubcastError) throw err;
    throw new HubcastError('unavailable', `the ${what} is unavailable, try again`, { cause: err, retryAfterS: 1 });
  }
}

/** An ISO 8601 time. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** A dead letter or other integer id in a path: `400 bad_request` otherwise. */
export function intParam(value: string, what: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new HubcastError('bad_request', `${what} must be a positive integer`);
  return Number(value);
}
