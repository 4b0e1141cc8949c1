import type { Leases } from './leases.ts';

/** The embedded Leases: one node holds every lease; a once-claim is remembered for its TTL. */
export class MemoryLeases implements Leases {
  readonly #held = new Map<string, { holder: string; until: number }>();
  readonly #claims = new Map<string, number>();

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const cur = this.#held.get(name);
    if (cur && cur.holder !== holder && cur.until > now) return false;
    this.#held.set(name, { holder, until: now + ttlMs });
    return true;
  }

  async release(name: string, holder: string): Promise<void> {
    if (this.#held.get(name)?.holder === holder) this.#held.delete(name);
  }

  async holder(name: string): Promise<string | undefined> {
    const cur = this.#held.get(name);
    return cur && cur.until > Date.now() ? cur.holder : undefined;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    for (const [k, until] of this.#claims) if (until <= now) this.#claims.delete(k);
    if (this.#claims.has(key)) return false;
    this.#claims.set(key, now + ttlMs);
    return true;
  }

  async unclaim(key: string): Promise<void> {
    this.#claims.delete(key);
  }

  async close(): Promise<void> {
    this.#held.clear();
    this.#claims.clear();
  }
}
