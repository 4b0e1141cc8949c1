import type { Presence } from '../../src/cluster/presence.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * A real role object (a store, a presence registry) with switchable faults, for the failure paths (a
 * full disk, a lost database, a buggy implementation): `fail.add('append')` makes that method reject
 * (like an I/O error); `throwing.add('touchToken')` makes it throw synchronously;
 * `slow.set('getToken', 2000)` delays its answer (a store under load); `late.set('topicState', 300)`
 * runs the method at once and hands its answer over that much later (a read that is stale on
 * arrival). Everything else reaches the real object (`real`).
 */
export class Faulty<T extends object> {
  readonly fail = new Set<keyof T>();
  readonly throwing = new Set<keyof T>();
  readonly slow = new Map<keyof T, number>();
  readonly late = new Map<keyof T, number>();
  readonly target: T;
  readonly real: T;

  constructor(real: T) {
    this.real = real;
    this.target = new Proxy(real, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        const name = prop as keyof T;
        return (...args: unknown[]) => {
          if (this.throwing.has(name)) throw new Error(`injected fault: ${String(name)} threw`);
          if (this.fail.has(name))
            return Promise.reject(Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' }));
          const ms = this.slow.get(name);
          if (ms !== undefined)
            return new Promise((r) => setTimeout(r, ms)).then(() => (v as (...a: unknown[]) => unknown).apply(target, args));
          const out = (v as (...a: unknown[]) => unknown).apply(target, args);
          const lateMs = this.late.get(name);
          if (lateMs !== undefined) return Promise.resolve(out).then((x) => new Promise((r) => setTimeout(() => r(x), lateMs)));
          return out;
        };
      },
    });
  }
}

export class FaultyStore extends Faulty<Store> {
  get store(): Store {
    return this.target;
  }
}

export class FaultyPresence extends Faulty<Presence> {
  get presence(): Presence {
    return this.target;
  }
}
