import type { Config } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

export type * from './store.ts';

/** The one place that picks a Store implementation from config. */
export function createStore(config: Config, clock?: Clock): Store {
  switch (config.store.type) {
    case 'sqlite':
      return new SqliteStore({ dataDir: config.dataDir, synchronous: config.store.synchronous, history: config.history, clock });
  }
}
