import { hashSecret } from '../../src/auth/secrets.ts';
import { parseConfig } from '../../src/config/load.ts';
import { randomId, randomSecret, sha256 } from '../../src/core/ids.ts';
import { createStore } from '../../src/store/index.ts';
import { monoMs } from './time.ts';

/**
 * BENCH ONLY: the cluster scenario's seed — one client, one ingest key and N consumer tokens —
 * written through the Store interface into any store (a SQLite data dir, a PostgreSQL schema)
 * before the nodes start. Why not `POST /consumers`: see bench/lib/hubcast-seed.ts (a deliberate
 * ≈ 50 ms scrypt check per registration: 50,000 would take ~40 minutes on one core). The secrets
 * are drawn once (`planSeed`) so that several stores can hold the same rows (three independent
 * SQLite nodes in the plumbing mode).
 *
 * Tokens go through `Store.createToken`, SEED_CONCURRENCY at once: each call is its own durable
 * write (a PostgreSQL commit), and concurrent commits share their WAL flushes, so 50,000 take a
 * few seconds — no shortcut past the Store interface is needed (measured: see the scenario's notes).
 */

const SEED_CONCURRENCY = 32;

export interface SeedPlan {
  clientId: string;
  clientSecret: string;
  secretHash: string;
  ingestKey: string;
  tokens: string[];
  subscribe: string[];
  name: string;
}

export async function planSeed(opts: { tokens: number; subscribe: string[]; name: string }): Promise<SeedPlan> {
  const clientSecret = randomSecret();
  return {
    clientId: randomId('c_'),
    clientSecret,
    secretHash: await hashSecret(clientSecret),
    ingestKey: randomSecret(),
    tokens: Array.from({ length: opts.tokens }, () => randomSecret()),
    subscribe: opts.subscribe,
    name: opts.name,
  };
}

/**
 * Writes the plan into the store that `config` (raw, as for parseConfig: `{dataDir, store}`)
 * describes; the store creates its schema on open. Resolves with the time it took, ms.
 */
export async function writeSeed(config: Record<string, unknown>, plan: SeedPlan): Promise<number> {
  const started = monoMs();
  const store = createStore(parseConfig(config));
  await store.open();
  try {
    const now = Date.now();
    await store.createClient({
      id: plan.clientId,
      name: plan.name,
      secretHash: plan.secretHash,
      subscribe: plan.subscribe,
      publish: [],
      createdAt: now,
      revokedAt: null,
    });
    await store.createKey({
      id: randomId('k_'),
      name: `${plan.name}-ingest`,
      scope: 'ingest',
      hash: sha256(plan.ingestKey),
      createdAt: now,
      revokedAt: null,
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(SEED_CONCURRENCY, plan.tokens.length) }, async () => {
        while (next < plan.tokens.length) {
          const token = plan.tokens[next++]!;
          await store.createToken({ hash: sha256(token), clientId: plan.clientId, createdAt: now, lastUsedAt: now });
        }
      }),
    );
    return Math.round(monoMs() - started);
  } finally {
    await store.close();
  }
}
