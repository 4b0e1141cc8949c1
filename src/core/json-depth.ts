import { HubcastError } from './errors.ts';
/**
 * The nesting depth of a JSON text, found by one scan of its bytes, without parsing and without
 * recursion: every entrance (HTTP ingest, WebSocket publishes, webhooks, the publish path itself)
 * refuses a JSON payload nested deeper than `limits.maxJsonDepth` before anything walks it
 * recursively (`JSON.stringify`, a pipeline expression, a consumer's parser).
 *
 * Counts `[` and `{` outside strings (a backslash escapes the next byte inside a string). It does not
 * validate: on a text that is not JSON it gives a number that means nothing, and JSON.parse refuses
 * the text anyway. Multi-byte UTF-8 sequences never contain the ASCII bytes it looks at.
 */
export function exceedsJsonDepth(text: Buffer | string, max: number): boolean {
  const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** The default of `limits.maxJsonDepth`. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/** The message of the `invalid_json` error for a payload nested too deeply. */
export const tooDeep = (max: number) => `the JSON is nested deeper than ${max} levels (limits.maxJsonDepth)`;

/**
 * Parses a JSON request body after checking its nesting (before parsing, so a deeply nested body
 * costs no parse): `invalid_json` when it is nested deeper than `maxDepth` or is not JSON.
 */
export function parseJsonBody(body: Buffer, maxDepth: number, tooDeepMessage = tooDeep(maxDepth)): unknown {
  if (exceedsJsonDepth(body, maxDepth)) throw new HubcastError('invalid_json', tooDeepMessage);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HubcastError('invalid_json');
  }
}
