import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { HubcastError } from '../core/errors.ts';
import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth, tooDeep } from '../core/json-depth.ts';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import type { Connector, ConnectorContext, SourceRecord } from './connector.ts';

export const settings = z
  .object({
    secret: z.string().min(16).describe('HMAC-SHA256 key shared with the sender (at least 16 characters).'),
    signatureHeader: z
      .string()
      .default('x-hubcast-signature')
      .describe('Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (Stripe style; several v1= allowed).'),
    toleranceS: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(300)
      .describe('Largest difference between the signature timestamp and the server clock, seconds; older or newer is 401.'),
    legacySignature: z
      .boolean()
      .default(false)
      .describe(
        'Also accept `sha256=<hex HMAC of the body>` (GitHub style, no timestamp). Replayable: anyone who saw a delivery can resend it.',
      ),
    idHeader: z
      .string()
      .default('idempotency-key')
      .describe('Header with the sender’s delivery id, used as the idempotency key (else a hash of the signature).'),
    itemsPath: z.string().optional().describe('Dot path of an array in a JSON body whose items become separate records.'),
  })
  .strict();

export type WebhookConfig = CommonConnectorConfig & z.output<typeof settings>;

export interface WebhookDelivery {
  body: Buffer;
  contentType: string;
  headers: Record<string, string | string[] | undefined>;
  /** limits.maxJsonDepth: a deeper JSON body is refused (400 invalid_json) before it is parsed. */
  maxJsonDepth?: number;
}

/** What `receive` did: how many records were accepted, or that the delivery was a replay. */
export interface WebhookReceipt {
  accepted: number;
  duplicate: boolean;
}

const header = (h: WebhookDelivery['headers'], name: string) => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/** Seen signatures live in the connector state under this prefix, with their expiry (ms). */
const SEEN = 'seen-signature:';
const SWEEP_MS = 60_000;

const sha256hex = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * `POST /hooks/<name>`: third-party applications push records; each delivery is verified by an HMAC
 * signature over a timestamp and the body, and answered 2xx only after Hubcast durably accepted its
 * records.
 *
 * Replays: the signed timestamp must be within `toleranceS` of the server clock, and a signature
 * already accepted within that window is a duplicate (answered 202 with `duplicate: true`, nothing
 * stored) whatever its (unsigned) id header says. The seen signatures are kept in the connector's
 * durable state, so a restart does not reopen the window; in a cluster each signature is also
 * claimed cluster-wide before its records are stored (and the claim given back if storing fails, so
 * the sender's retry is accepted), so a delivery replayed to another node is a duplicate there too.
 */
export class WebhookConnector implements Connector {
  readonly type = 'webhook';
  readonly name: string;
  readonly #cfg: WebhookConfig;
  readonly #now: () => number;
  #ctx: ConnectorContext | undefined;
  /** Signatures being accepted right now: a concurrent replay is a duplicate too. */
  readonly #inFlight = new Set<string>();

  constructor(cfg: WebhookConfig, now: () => number = Date.now) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#now = now;
  }

  async run(ctx: ConnectorContext): Promise<void> {
    this.#ctx = ctx;
    ctx.connected();
    this.#sweep(ctx);
    const timer = setInterval(() => this.#sweep(ctx), SWEEP_MS).unref();
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(timer);
    this.#ctx = undefined;
  }

  /** Verifies and accepts one delivery; resolves once its records are stored (or it was a replay). */
  async receive(d: WebhookDelivery): Promise<WebhookReceipt> {
    const ctx = this.#ctx;
    if (!ctx) throw new HubcastError('unavailable', 'this webhook is not running', { retryAfterS: 5 });
    const signature = this.#verify(header(d.headers, this.#cfg.signatureHeader) ?? '', d.body);
    const seenKey = SEEN + sha256hex(signature);
    const now = this.#now();
    if (this.#inFlight.has(seenKey) || Number(ctx.state.get(seenKey) ?? 0) > now) return { accepted: 0, duplicate: true };
    const id = header(d.headers, this.#cfg.idHeader) ?? `sig:${sha256hex(signature)}`;
    const records = this.#records(d, id);
    this.#inFlight.add(seenKey);
    try {
      const ttlMs = this.#cfg.toleranceS * 2000;
      if (ctx.claim && !(await ctx.claim.once(seenKey, ttlMs))) return { accepted: 0, duplicate: true };
      try {
        await ctx.emit(records);
      } catch (err) {
        await ctx.claim?.undo(seenKey).catch(() => undefined);
        throw err;
      }
      // Kept a little past the tolerance: by then the timestamp alone refuses the replay.
      ctx.state.set(seenKey, String(now + this.#cfg.toleranceS * 2000));
    } finally {
      this.#inFlight.delete(seenKey);
    }
    return { accepted: records.length, duplicate: false };
  }

  /** The signature that matched (what identifies this delivery), or throws 401 invalid_signature. */
  #verify(value: string, body: Buffer): string {
    const v = value.trim();
    if (/^sha256=/i.test(v) || /^[0-9a-f]{64}$/i.test(v)) {
      if (!this.#cfg.legacySignature)
        throw new HubcastError(
          'invalid_signature',
          'this webhook takes signatures of the form t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">; a body-only sha256= signature can be replayed',
        );
      const sig = v.replace(/^sha256=/i, '');
      if (!this.#matches(sig, body)) throw new HubcastError('invalid_signature', 'the signature does not match the body');
      return `sha256=${sig.toLowerCase()}`;
    }
    let t: string | undefined;
    const v1: string[] = [];
    for (const part of v.split(',')) {
      const eq = part.indexOf('=');
      const k = part.slice(0, eq).trim();
      const val = part.slice(eq + 1).trim();
      if (k === 't' && t === undefined) t = val;
      else if (k === 'v1' && v1.length < 8) v1.push(val);
    }
    if (t === undefined || !/^\d{1,12}$/.test(t) || v1.length === 0)
      throw new HubcastError('invalid_signature', `missing or malformed ${this.#cfg.signatureHeader}: expected t=<unix seconds>,v1=<hex>`);
    const signed = Buffer.concat([Buffer.from(`${t}.`), body]);
    const match = v1.find((s) => this.#matches(s, signed));
    if (!match) throw new HubcastError('invalid_signature', 'the signature does not match the timestamp and body');
    const skewS = Math.abs(Math.round(this.#now() / 1000) - Number(t));
    if (skewS > this.#cfg.toleranceS)
      throw new HubcastError(
        'invalid_signature',
        `the signature timestamp is ${skewS} s away from the server clock (tolerance ${this.#cfg.toleranceS} s): a replay, or a clock to fix`,
      );
    return `t=${t},v1=${match.toLowerCase()}`;
  }

  #matches(hex: string, signed: Buffer): boolean {
    if (!/^[0-9a-f]{64}$/i.test(hex)) return false;
    const want = createHmac('sha256', this.#cfg.secret).update(signed).digest();
    return timingSafeEqual(Buffer.from(hex, 'hex'), want);
  }

  /** Forgets seen signatures past their expiry (one statement, whatever their number). */
  #sweep(ctx: ConnectorContext): void {
    ctx.state.prune?.(SEEN, this.#now());
  }

  #records(d: WebhookDelivery, id: string): SourceRecord[] {
    const type = d.contentType.split(';')[0]!.trim().toLowerCase();
    const meta = { hook: this.name, deliveryId: id };
    if (type === 'application/json' || type.endsWith('+json')) {
      const maxDepth = d.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
      if (exceedsJsonDepth(d.body, maxDepth)) throw new HubcastError('invalid_json', tooDeep(maxDepth));
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
      return [{ key: id, value, kind: 'json', raw: d.body, meta }];
    }
    if (type.startsWith('text/')) return [{ key: id, value: d.body.toString('utf8'), kind: 'text', raw: d.body, meta }];
    return [{ key: id, value: d.body, kind: 'binary', meta }];
  }
}

export function create(cfg: WebhookConfig, _deps: { log: Logger }): WebhookConnector {
  return new WebhookConnector(cfg);
}
