import { ERRORS, type ErrorCode } from '../../core/errors.ts';
import { MAX_TOPIC_LENGTH } from '../../core/topics.ts';

/**
 * Building blocks of the OpenAPI document (see index.ts): plain objects, JSON Schema 2020-12 as
 * OpenAPI 3.1 takes it. Schemas use JSON Schema keywords only (no OpenAPI `example`/`nullable`), so
 * that any 2020-12 validator compiles them as they are; examples live on the media types.
 */

/** A JSON object of the document (an operation, a schema, a response…). */
export type Obj = Record<string, unknown>;

/** A path item: method (lower case, as OpenAPI spells it) → operation. */
export type PathItem = Partial<Record<'get' | 'post' | 'put' | 'patch' | 'delete' | 'options' | 'head', Obj>> & Obj;

/** A group of routes and the components they add, merged by index.ts. */
export interface ApiPart {
  paths: Record<string, PathItem>;
  schemas?: Record<string, Obj>;
  parameters?: Record<string, Obj>;
  securitySchemes?: Record<string, Obj>;
  tags?: { name: string; description: string }[];
}

export const ref = (name: string): Obj => ({ $ref: `#/components/schemas/${name}` });
export const param = (name: string): Obj => ({ $ref: `#/components/parameters/${name}` });
export const nullable = (schema: Obj): Obj => ({ anyOf: [schema, { type: 'null' }] });

/** `{"error":{"code","message"}}`, `code` from the registry (src/core/errors.ts). */
export const errorSchema: Obj = {
  type: 'object',
  description: 'Every HTTP error Hubcast produces. Switch on `code` (stable, docs/errors.md); `message` is for humans and may change.',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { type: 'string', enum: Object.keys(ERRORS) },
        message: { type: 'string' },
      },
    },
  },
};

const SEGMENT = '[A-Za-z0-9_-]+';
/** isValidTopic (src/core/topics.ts) as a regular expression; the openapi test checks they agree. */
export const TOPIC_PATTERN = `^${SEGMENT}(\\.${SEGMENT})*$`;
/** isValidPattern as a regular expression: segments may be `*`, the last one `>`. */
export const TOPIC_OR_PATTERN_PATTERN = `^((${SEGMENT}|\\*)(\\.(${SEGMENT}|\\*))*(\\.>)?|>)$`;

export const topicSchema: Obj = {
  type: 'string',
  description: 'A topic: segments of `[A-Za-z0-9_-]` separated by `.`, 1–200 characters (docs/websocket.md#topics-and-patterns).',
  minLength: 1,
  maxLength: MAX_TOPIC_LENGTH,
  pattern: TOPIC_PATTERN,
};

export const topicPatternSchema: Obj = {
  type: 'string',
  description: 'A topic or a pattern: a segment may be `*` (exactly one segment), the last one `>` (one or more).',
  minLength: 1,
  maxLength: MAX_TOPIC_LENGTH,
  pattern: TOPIC_OR_PATTERN_PATTERN,
};

export const dateTime: Obj = { type: 'string', format: 'date-time' };

/** A secret as Hubcast issues them: 256 random bits, base64url, 43 characters. */
export const secretSchema: Obj = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' };

/** `{"error":{…}}` example bodies, with the registry's default message (real messages may be more specific). */
export function errorExample(code: ErrorCode, message: string = ERRORS[code].message): Obj {
  return { error: { code, message } };
}

/**
 * The error responses of an operation: `codes` maps each error code it may answer to when it does.
 * Grouped by the code's status (from the registry, so a status cannot be wrong here), each with an
 * example per code and the list of codes in `x-hubcast-error-codes`; 429 and 503 carry Retry-After.
 */
export function errors(codes: Partial<Record<ErrorCode, string>>): Record<string, Obj> {
  const byStatus = new Map<number, [ErrorCode, string][]>();
  for (const [code, when] of Object.entries(codes) as [ErrorCode, string][]) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), [code, when]]);
  }
  const out: Record<string, Obj> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = errorResponse(status, list);
  }
  return out;
}

function errorResponse(status: number, list: [ErrorCode, string][]): Obj {
  return {
    description: list.map(([code, when]) => `\`${code}\`: ${when}`).join('\n\n'),
    ...(status === 429 || status === 503 ? { headers: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } } } : {}),
    content: {
      'application/json': {
        schema: ref('Error'),
        examples: Object.fromEntries(list.map(([code, when]) => [code, { summary: when, value: errorExample(code) }])),
      },
    },
    'x-hubcast-error-codes': list.map(([code]) => code),
  };
}

/** A JSON response with one example. */
export function jsonResponse(description: string, schema: Obj, example: unknown, headers?: Record<string, Obj>): Obj {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/json': { schema, examples: { example: { value: example } } } },
  };
}

/** A required JSON request body with one example. */
export function jsonBody(schema: Obj, example: unknown, description?: string): Obj {
  return {
    required: true,
    ...(description ? { description } : {}),
    content: { 'application/json': { schema, examples: { example: { value: example } } } },
  };
}

/** The failures every admin route shares: the guard of src/http/admin.ts. */
export const ADMIN_GUARD: Partial<Record<ErrorCode, string>> = {
  invalid_key: 'no `Authorization: Bearer`, or not a live admin-scope key',
  ip_not_allowed: 'the source address is not in `admin.allow` (default loopback only)',
  rate_limited: 'this address spent the admin budget of failed key checks; wait `Retry-After`',
  unavailable: 'the key store could not be read; retry after `Retry-After`',
};
