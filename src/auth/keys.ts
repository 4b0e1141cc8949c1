import type { Clock } from '../core/clock.ts';
import { HubcastError } from '../core/errors.ts';
import { isSecretFormat, sha256 } from '../core/ids.ts';
import type { KeyRecord, Store } from '../store/store.ts';

/**
 * Ingest keys presented on `POST /entity`: a format check, SHA-256, then the store — remembered by
 * hash for `ttlMs`, so a steady publisher costs one lookup a second instead of one per request.
 * A revoked key stops working on this node when the change poll reports it (`forgetAll`), and on
 * every node within `ttlMs` at the latest. Only valid keys are remembered (by hash, never the key),
 * at most `max` of them.
 */
export class KeyCheck {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #known = new Map<string, { key: KeyRecord; until: number }>();

  constructor(opts: { store: Store; clock: Clock; ttlMs?: number; max?: number }) {
    this.#store = opts.store;
    this.#clock = opts.clock;
    this.#ttlMs = opts.ttlMs ?? 1000;
    this.#max = opts.max ?? 1024;
  }

  /**
   * The key's record if `presented` is a valid, unrevoked key. A store that cannot be read is
   * `unavailable` (503, retry), never taken for a bad key.
   */
  async find(presented: string | undefined): Promise<KeyRecord | undefined> {
    if (!isSecretFormat(presented)) return undefined;
    const hash = sha256(presented);
    const now = this.#clock.now();
    const hit = this.#known.get(hash);
    if (hit && hit.until > now) return hit.key;
    let key: KeyRecord | undefined;
    try {
      key = await this.#store.findKey(hash);
    } catch (err) {
      throw new HubcastError('unavailable', 'the key store is unavailable; nothing was stored', { cause: err, retryAfterS: 1 });
    }
    if (!key) {
      this.#known.delete(hash);
      return undefined;
    }
    if (this.#known.size >= this.#max) this.#known.clear();
    this.#known.set(hash, { key, until: now + this.#ttlMs });
    return key;
  }

  forgetAll(): void {
    this.#known.clear();
  }
}
