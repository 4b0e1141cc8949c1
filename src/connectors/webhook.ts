import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { HubcastError } from '../core/errors.ts';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import type { Connector, ConnectorContext, SourceRecord } from './connector.ts';

export const settings = z
  .object({
    secret: z.string().min(16).describe('HMAC-SHA256 key shared with the sender (at least 16 characters).'),
    signatureHeader: z
      .string()
      .default('x-hubcast-signature')
      .describe('Header carrying `sha256=<hex HMAC of the raw body>` (GitHub style); a bare hex digest is accepted too.'),
    idHeader: z
      .string()
      .default('idempotency-key')
      .describe('Header with the sender’s delivery id, used as the idempotency key (else a SHA-256 of the body).'),
    itemsPath: z.string().optional().describe('Dot path of an array in a JSON body whose items become separate records.'),
  })
  .strict();

export type WebhookConfig = CommonConnectorConfig & z.output<typeof settings>;

export interface WebhookDelivery {
  body: Buffer;
  contentType: string;
  headers: Record<string, string | string[] | undefined>;
}

const header = (h: WebhookDelivery['headers'], name: string) => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * `POST /hooks/<name>`: third-party applications push records; each delivery is verified by an HMAC
 * signature and answered 2xx only after Hubcast durably accepted its records.
 */
export class WebhookConnector implements Connector {
  readonly type = 'webhook';
  readonly name: string;
  readonly #cfg: WebhookConfig;
  #ctx: ConnectorContext | undefined;

  constructor(cfg: WebhookConfig) {
    this.name = cfg.name;
    this.#cfg = cfg;
  }

  async run(ctx: ConnectorContext): Promise<void> {
    this.#ctx = ctx;
    ctx.connected();
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    this.#ctx = undefined;
  }

  /** Verifies and accepts one delivery; resolves with the number of records once they are stored. */
  async receive(d: WebhookDelivery): Promise<number> {
    const ctx = this.#ctx;
    if (!ctx) throw new HubcastError('unavailable', 'this webhook is not running', { retryAfterS: 5 });
    const sig = (header(d.headers, this.#cfg.signatureHeader) ?? '').trim().replace(/^sha256=/i, '');
    const want = createHmac('sha256', this.#cfg.secret).update(d.body).digest();
    const got = /^[0-9a-f]{64}$/i.test(sig) ? Buffer.from(sig, 'hex') : Buffer.alloc(0);
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new HubcastError('invalid_signature');
    const id = header(d.headers, this.#cfg.idHeader) ?? createHash('sha256').update(d.body).digest('hex');
    const records = this.#records(d, id);
    await ctx.emit(records);
    return records.length;
  }

  #records(d: WebhookDelivery, id: string): SourceRecord[] {
    const type = d.contentType.split(';')[0]!.trim().toLowerCase();
    const meta = { hook: this.name, deliveryId: id };
    if (type === 'application/json' || type.endsWith('+json')) {
      let value: unknown;
      try {
        value = JSON.parse(d.body.toString('utf8'));
      } catch {
        throw new HubcastError('invalid_json');
      }
      if (this.#cfg.itemsPath) {
        let items: unknown = value;
        for (const p of this.#cfg.itemsPath.split('.')) items = (items as Record<string, unknown> | undefined)?.[p];
        if (!Array.isArray(items)) throw new HubcastError('bad_request', `the body has no array at ${this.#cfg.itemsPath}`);
        return items.map((v, i) => ({ key: `${id}:${i}`, value: v, meta }));
      }
      return [{ key: id, value, meta }];
    }
    if (type.startsWith('text/')) return [{ key: id, value: d.body.toString('utf8'), kind: 'text', meta }];
    return [{ key: id, value: d.body, kind: 'binary', meta }];
  }
}

export function create(cfg: WebhookConfig, _deps: { log: Logger }): WebhookConnector {
  return new WebhookConnector(cfg);
}
