import type { Config } from '../config/schema.ts';
import { createStore } from '../store/index.ts';
import type { Store } from '../store/store.ts';

/** Opens the configured store for one CLI command (safe while the server runs), then closes it. */
export async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = createStore(config);
  await store.open();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
