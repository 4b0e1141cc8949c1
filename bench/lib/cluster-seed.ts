import pg from 'pg';
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
 * Tokens: on SQLite through `Store.createToken` (50,000 in < 1 s). On PostgreSQL, a shortcut:
 * `PostgresRegistry.createToken` is one INSERT and one commit per token, and 54,000 of them took
 * 22 s here (≈ 2,400/s, whether 32 or 64 run at once on a pool of 64: bound by the per-statement
 * round trip and commit, not by the pool) — a third of the run's budget, per broker. So the client
 * and the key go through the Store (which also creates and migrates the schema), and the tokens are
 * inserted with `pg` straight into the schema's `tokens` table, 5,000 rows per statement: exactly the
 * row `createToken` writes (hash = SHA-256 of the token, client id, created = last used = now).
 * A change to that table's columns breaks this loudly (an SQL error), never silently.
 */

const SEED_CONCURRENCY = 32;
const PG_BATCH = 5000;

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
    const pgStore = (config.store as { type?: string; url?: string; schema?: string } | undefined) ?? {};
    if (pgStore.type === 'postgres') {
      await insertTokensPg(pgStore.url!, pgStore.schema!, plan, now);
      return Math.round(monoMs() - started);
    }
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

/** The rows `PostgresRegistry.createToken` writes, PG_BATCH per statement (see the header for why). */
async function insertTokensPg(url: string, schema: string, plan: SeedPlan, now: number): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    for (let i = 0; i < plan.tokens.length; i += PG_BATCH) {
      const hashes = plan.tokens.slice(i, i + PG_BATCH).map(sha256);
      await client.query(
        `INSERT INTO "${schema}".tokens (hash, client_id, created_at, last_used_at)
         SELECT h, $2, $3, $3 FROM unnest($1::text[]) AS h`,
        [hashes, plan.clientId, now],
      );
    }
  } finally {
    await client.end();
  }
}
