import { isIP } from 'node:net';

/**
 * Per-source budget of failed authentications (a token bucket per IP). Checked before any lookup, so
 * a flood of bogus credentials from one address costs a Map lookup once its budget is spent.
 * IPv6 addresses are grouped by /64 (one host usually owns a whole /64). Memory is bounded: at most
 * `maxSources` buckets; full buckets are forgotten by `sweep()`.
 */
export class FailureBudget {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: { perMinute: number; burst: number; maxSources?: number; now?: () => number }) {
    this.#perMs = opts.perMinute / 60_000;
    this.#burst = opts.burst;
    this.#max = opts.maxSources ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  static key(ip: string): string {
    if (isIP(ip) !== 6 || ip.startsWith('::ffff:')) return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    const head = ip.split('::')[0]!.split(':');
    return head.length >= 4 ? head.slice(0, 4).join(':') + '::/64' : ip;
  }

  #refill(key: string): { tokens: number; at: number } | undefined {
    const b = this.#buckets.get(key);
    if (!b) return undefined;
    const now = this.#now();
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    return b;
  }

  /** Seconds until this source may try again (0: it may try now). */
  retryAfterS(ip: string): number {
    const b = this.#refill(FailureBudget.key(ip));
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000));
  }

  /** Records one failed authentication from `ip`. */
  fail(ip: string): void {
    const key = FailureBudget.key(ip);
    let b = this.#refill(key);
    if (!b) {
      if (this.#buckets.size >= this.#max) this.sweep();
      if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.#burst, at: this.#now() };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.max(0, b.tokens - 1);
  }

  /** Forgets sources whose bucket has refilled. */
  sweep(): void {
    for (const key of [...this.#buckets.keys()]) {
      const b = this.#refill(key)!;
      if (b.tokens >= this.#burst) this.#buckets.delete(key);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
