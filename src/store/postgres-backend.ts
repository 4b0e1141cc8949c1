import type { Leases } from '../cluster/leases.ts';
import type { Presence } from '../cluster/presence.ts';
import type { Clock } from '../core/clock.ts';
import type { HistoryLimits, Store } from './store.ts';

export interface PostgresBackendOptions {
  url: string;
  schema: string;
  poolSize: number;
  history: HistoryLimits;
  clock?: Clock | undefined;
}

/** PLACEHOLDER — replaced by the PostgreSQL implementation (one pool shared by the three roles). */
export class PostgresBackend {
  readonly store: Store;
  readonly presence: Presence;
  readonly leases: Leases;

  constructor(opts: PostgresBackendOptions) {
    void opts;
    throw new Error('store.type postgres is not implemented yet');
  }
}
