import type { Leases } from '../cluster/leases.ts';
import { MemoryLeases } from '../cluster/memory-leases.ts';
import { MemoryPresence } from '../cluster/memory-presence.ts';
import type { Presence } from '../cluster/presence.ts';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../logger.ts';
import { PostgresBackend } from './postgres-backend.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

export type * from './store.ts';

/** The roles one storage backend provides (see store.ts, cluster/presence.ts, cluster/leases.ts). */
export interface Backend {
  store: Store;
  presence: Presence;
  leases: Leases;
}

/** The one place that picks the storage backend from config. */
export function createBackend(config: Config, clock?: Clock, log?: Logger): Backend {
  switch (config.store.type) {
    case 'sqlite': {
      const presence = new MemoryPresence();
      const store = new SqliteStore({
        dataDir: config.dataDir,
        synchronous: config.store.synchronous,
        history: config.history,
        clock,
        liveTokens: (clientId) => presence.liveTokensOf(clientId),
      });
      return { store, presence, leases: new MemoryLeases() };
    }
    case 'postgres':
      return new PostgresBackend({
        url: config.store.url,
        schema: config.store.schema,
        poolSize: config.store.poolSize,
        log,
        history: config.history,
        clock,
      });
  }
}

/** Just the store (the CLI, which needs no presence). */
export function createStore(config: Config, clock?: Clock): Store {
  return createBackend(config, clock).store;
}
