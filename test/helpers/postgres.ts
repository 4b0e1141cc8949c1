import pg from 'pg';
import { onTestFinished } from 'vitest';
import { PostgresBackend, type PostgresBackendOptions } from '../../src/store/postgres-backend.ts';

/** The test PostgreSQL server (trust auth, database `test`); `requireService('PostgreSQL', PG_PORT)` first. */
export const PG_PORT = 5432;
export const pgUrl = (port = PG_PORT) => `postgres://postgres@127.0.0.1:${port}/test`;

let seq = 0;

/** A schema name no other test (nor another run) uses. */
export function uniqueSchema(prefix = 'hct'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${seq++}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgUrl() });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

/**
 * A unique schema for the current test, dropped when it finishes, and a way to open backends on it
 * (several = several nodes); each backend is closed when the test finishes, before the drop.
 */
export function testSchema(): {
  schema: string;
  backend: (opts?: Partial<PostgresBackendOptions>) => PostgresBackend;
} {
  const schema = uniqueSchema();
  const backends: PostgresBackend[] = [];
  onTestFinished(async () => {
    for (const b of backends) {
      await b.presence.close().catch(() => undefined);
      await b.leases.close().catch(() => undefined);
      await b.store.close().catch(() => undefined);
    }
    await dropSchema(schema);
  });
  return {
    schema,
    backend: (opts = {}) => {
      const b = new PostgresBackend({
        url: pgUrl(),
        schema,
        poolSize: 4,
        history: { size: 1000, ttlS: 86400, dedupeS: 300 },
        ...opts,
      });
      backends.push(b);
      return b;
    },
  };
}
