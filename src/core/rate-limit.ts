import { isIP, SocketAddress } from 'node:net';

/**
 * Token buckets by key: each key may spend `burst` at once and gets `perMinute` back per minute.
 * Memory is bounded: at most `maxKeys` buckets; full buckets are forgotten by `sweep()` (a key with
 * no bucket is a full bucket, so forgetting one changes nothing).
 */
export class RateBuckets {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #keyOf: (id: string) => string;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: { perMinute: number; burst: number; maxKeys?: number; now?: () => number; keyOf?: (id: string) => string }) {
    this.#perMs = opts.perMinute / 60_000;
    this.#burst = opts.burst;
    this.#max = opts.maxKeys ?? 100_000;
    this.#now = opts.now ?? Date.now;
    this.#keyOf = opts.keyOf ?? ((id) => id);
  }

  #refill(key: string): { tokens: number; at: number } | undefined {
    const b = this.#buckets.get(key);
    if (!b) return undefined;
    const now = this.#now();
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    return b;
  }

  /** Seconds until `id` may spend again (0: it may now). */
  retryAfterS(id: string): number {
    const b = this.#refill(this.#keyOf(id));
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000));
  }

  /** Spends one token of `id`'s bucket (never below zero). */
  take(id: string): void {
    const key = this.#keyOf(id);
    let b = this.#refill(key);
    if (!b) {
      if (this.#buckets.size >= this.#max) this.sweep();
      if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.#burst, at: this.#now() };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.max(0, b.tokens - 1);
  }

  /** Gives back one token taken by `take` (a reservation that was not used). */
  refund(id: string): void {
    const b = this.#refill(this.#keyOf(id));
    if (b) b.tokens = Math.min(this.#burst, b.tokens + 1);
  }

  /** Forgets keys whose bucket has refilled. */
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

/**
 * The eight 16-bit groups of an IPv6 address in any valid text form (`::` anywhere, a dotted IPv4
 * tail, upper case, a zone id), or undefined if `ip` is not IPv6. The OS parser (inet_pton, through
 * `SocketAddress`) validates and canonicalizes; the canonical text is then expanded, which cannot
 * go wrong the way splitting arbitrary input on `::` does.
 */
export function ipv6Groups(ip: string): number[] | undefined {
  if (isIP(ip) !== 6) return undefined;
  let text: string;
  try {
    text = new SocketAddress({ address: ip, family: 'ipv6' }).address;
  } catch {
    return undefined;
  }
  const part = (s: string): number[] => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const gap = text.indexOf('::');
  const head = part(gap < 0 ? text : text.slice(0, gap));
  const tail = gap < 0 ? [] : part(text.slice(gap + 2));
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const keys = new Map<string, string>();
const MAX_KEYS_REMEMBERED = 4096;

/**
 * The key a source address is counted under: IPv4 as is; IPv4-mapped IPv6 (`::ffff:1.2.3.4`, also
 * written `::ffff:102:304`) as its IPv4 address; other IPv6 by its /64 (one host usually owns a
 * whole /64, so counting single addresses would let it rotate through 2^64 of them).
 */
export function sourceKey(ip: string): string {
  const hit = keys.get(ip);
  if (hit !== undefined) return hit;
  let key = ip;
  const g = ipv6Groups(ip);
  if (g) {
    const mapped = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
    key = mapped
      ? `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`
      : `${g
          .slice(0, 4)
          .map((n) => n.toString(16))
          .join(':')}::/64`;
  }
  if (keys.size >= MAX_KEYS_REMEMBERED) keys.clear();
  keys.set(ip, key);
  return key;
}

/**
 * Per-source budget of failed authentications (a token bucket per address, see `sourceKey`).
 * Checked before any lookup, so a flood of bogus credentials from one address costs a Map lookup
 * once its budget is spent.
 */
export class FailureBudget extends RateBuckets {
  constructor(opts: { perMinute: number; burst: number; maxSources?: number; now?: () => number }) {
    super({ perMinute: opts.perMinute, burst: opts.burst, maxKeys: opts.maxSources, now: opts.now, keyOf: sourceKey });
  }

  static key(ip: string): string {
    return sourceKey(ip);
  }

  /** Records one failed authentication from `ip`. */
  fail(ip: string): void {
    this.take(ip);
  }
}
