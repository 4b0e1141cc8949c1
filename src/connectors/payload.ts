import { createHash } from 'node:crypto';
import type { PayloadKind } from '../store/store.ts';

/** Decoding and identity helpers shared by the message-queue connectors (amqp, mqtt, nats). */

export type Format = 'auto' | 'json' | 'text' | 'binary';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a body per `format`; a body that does not fit `json`/`text` falls back and says why. */
export function decode(body: Buffer, format: Format, contentType?: string): { value: unknown; kind: PayloadKind; error?: string } {
  if (format === 'binary') return { value: body, kind: 'binary' };
  let text: string | undefined;
  try {
    text = utf8.decode(body);
  } catch {
    text = undefined;
  }
  if (format === 'json' || format === 'auto') {
    const jsonType = contentType !== undefined && /^application\/([\w.+-]+\+)?json\b/i.test(contentType);
    if (text !== undefined && (format === 'json' || jsonType || looksJson(text))) {
      try {
        return { value: JSON.parse(text) as unknown, kind: 'json' };
      } catch {
        // fall through
      }
    }
    if (format === 'json')
      return text === undefined
        ? { value: body, kind: 'binary', error: 'invalid JSON' }
        : { value: text, kind: 'text', error: 'invalid JSON' };
  }
  if (text !== undefined) return { value: text, kind: 'text' };
  return format === 'text' ? { value: body, kind: 'binary', error: 'invalid UTF-8' } : { value: body, kind: 'binary' };
}

/** Cheap pre-check before JSON.parse: what a JSON text can start with. */
function looksJson(text: string): boolean {
  return /^\s*([{["\d-]|true\b|false\b|null\b)/.test(text);
}

/** SHA-256 (hex) of length-prefixed parts: an identity for a message without an id. */
export function fieldsHash(parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  return h.digest('hex');
}
