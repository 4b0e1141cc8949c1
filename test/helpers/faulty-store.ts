import type { Store } from '../../src/store/store.ts';

/**
 * A real store with switchable faults, for the failure paths (a full disk, a locked database, a
 * buggy implementation): `fail.add('append')` makes that method reject (like an I/O error);
 * `throwing.add('addConnection')` makes it throw synchronously. Everything else reaches the real store.
 */
export class FaultyStore {
  readonly fail = new Set<keyof Store>();
  readonly throwing = new Set<keyof Store>();
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
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
}
