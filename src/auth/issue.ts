import { randomId, randomSecret, sha256 } from '../core/ids.ts';
import { isValidPattern } from '../core/topics.ts';
import type { ClientRecord, KeyRecord, Store } from '../store/store.ts';
import { hashSecret } from './secrets.ts';

/**
 * Issuing clients and keys: the one place, for `hubcast clients create` / `hubcast keys create` and
 * the admin API (`POST /admin/api/clients`, `POST /admin/api/keys`). A secret is returned once, here,
 * and only its hash reaches the store (scrypt for client secrets, SHA-256 for keys).
 */

/** Longest client or key name. */
export const MAX_NAME = 200;
/** The doc of a topic pattern, for messages. */
export const PATTERN_RULE = 'segments of [A-Za-z0-9_-], * or a final >';

/** Trimmed, de-duplicated patterns, in order; `bad` names the first invalid one. */
export function normalizePatterns(list: readonly string[]): { ok: true; patterns: string[] } | { ok: false; bad: string } {
  const out = list.map((p) => p.trim()).filter(Boolean);
  const bad = out.find((p) => !isValidPattern(p));
  return bad === undefined ? { ok: true, patterns: [...new Set(out)] } : { ok: false, bad };
}

export interface NewClient {
  name: string;
  subscribe: string[];
  publish: string[];
  presence: string[];
}

/** Creates a client (patterns already normalized); resolves once it is durable. */
export async function issueClient(store: Store, c: NewClient, now: number): Promise<{ client: ClientRecord; secret: string }> {
  const secret = randomSecret();
  const client: ClientRecord = {
    id: randomId('c_'),
    name: c.name,
    secretHash: await hashSecret(secret),
    subscribe: c.subscribe,
    publish: c.publish,
    presence: c.presence,
    createdAt: now,
    revokedAt: null,
  };
  await store.createClient(client);
  return { client, secret };
}

/** Creates an ingest or admin key; resolves once it is durable. */
export async function issueKey(
  store: Store,
  k: { name: string; scope: KeyRecord['scope'] },
  now: number,
): Promise<{ key: KeyRecord; secret: string }> {
  const secret = randomSecret();
  const key: KeyRecord = { id: randomId('k_'), name: k.name, scope: k.scope, hash: sha256(secret), createdAt: now, revokedAt: null };
  await store.createKey(key);
  return { key, secret };
}

/** ms since the epoch → ISO 8601; null stays null. */
export const isoTime = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
