import { hashSecret } from '../../src/auth/secrets.ts';
import { parseConfig } from '../../src/config/load.ts';
import { randomId, randomSecret, sha256 } from '../../src/core/ids.ts';
import { createStore } from '../../src/store/index.ts';
import { monoMs } from './time.ts';

/**
 * BENCH ONLY: fills a fresh Hubcast data dir before the server starts — one client, one ingest key
 * and `tokens` consumer tokens — through the Store interface, in this process.
 *
 * Why not `POST /consumers` for each token: registration checks the client secret with scrypt
 * (≈ 50 ms of CPU on purpose, `limits.registerConcurrency` at once), so 10,000 registrations on the
 * server's one pinned core would take ~8 minutes of setup. A token row written here is exactly what
 * `TokenService.issue()` writes after that check (SHA-256 of a 256-bit random token, client id,
 * created/last-used now), so every connect still goes through the full validation path (format
 * check, hash lookup, idle TTL, client lookup, ACL). The rows are written with synchronous=normal
 * (the seeding is not what is measured); the server itself runs with its defaults.
 */

export interface Seeded {
  clientId: string;
  clientSecret: string;
  ingestKey: string;
  tokens: string[];
  /** Time the seeding took, ms. */
  ms: number;
}

export async function seedHubcast(dataDir: string, opts: { tokens: number; subscribe: string[]; name?: string }): Promise<Seeded> {
  const started = monoMs();
  const store = createStore(parseConfig({ dataDir, store: { synchronous: 'normal' } }));
  await store.open();
  try {
    const now = Date.now();
    const clientId = randomId('c_');
    const clientSecret = randomSecret();
    const name = opts.name ?? 'bench';
    await store.createClient({
      id: clientId,
      name,
      secretHash: await hashSecret(clientSecret),
      subscribe: opts.subscribe,
      publish: [],
      createdAt: now,
      revokedAt: null,
    });
    const ingestKey = randomSecret();
    await store.createKey({
      id: randomId('k_'),
      name: `${name}-ingest`,
      scope: 'ingest',
      hash: sha256(ingestKey),
      createdAt: now,
      revokedAt: null,
    });
    const tokens: string[] = new Array(opts.tokens);
    for (let i = 0; i < opts.tokens; i++) {
      const token = randomSecret();
      tokens[i] = token;
      await store.createToken({ hash: sha256(token), clientId, createdAt: now, lastUsedAt: now });
    }
    return { clientId, clientSecret, ingestKey, tokens, ms: Math.round(monoMs() - started) };
  } finally {
    await store.close();
  }
}
