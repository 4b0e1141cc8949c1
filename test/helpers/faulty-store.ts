import type { Store } from '../../src/store/store.ts';

/**
 * A real store with switchable faults, for the failure paths (a full disk, a locked database, a
 * buggy implementation): `fail.add('append')` makes that method reject (like an I/O error);
 * `throwing.add('addConnection')` makes it throw synchronously; `slow.set('getToken', 2000)` delays
 * its answer (a store under load). Everything else reaches the real store.
 */
export class FaultyStore {
  readonly fail = new Set<keyof Store>();
  readonly throwing = new Set<keyof Store>();
  readonly slow = new Map<keyof Store, number>();
  readonly store: Store;

  constructor(real: Store) {
    this.store = new Proxy(real, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        const name = prop as keyof Store;
        return (...args: unknown[]) => {
          if (this.throwing.has(name)) throw new Error(`injected fault: ${String(name)} threw`);
          if (this.fail.has(name))
            return Promise.reject(Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' }));
          const ms = this.slow.get(name);
          if (ms !== undefined)
            return new Promise((r) => setTimeout(r, ms)).then(() => (v as (...a: unknown[]) => unknown).apply(target, args));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
}
