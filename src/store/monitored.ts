import type { Store } from './store.ts';

/**
 * Wraps a store so that every failing call (rejected or thrown) is reported once through `onFailure`
 * — the server raises `store_unavailable` from it — and then passed on unchanged to the caller.
 */
export function monitorStore(store: Store, onFailure: (method: string, err: unknown) => void): Store {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'open' || prop === 'close') return typeof v === 'function' ? v.bind(target) : v;
      let w = wrapped.get(prop);
      if (!w) {
        const fn = v as (...a: unknown[]) => unknown;
        w = (...args: unknown[]) => {
          try {
            const r = fn.apply(target, args);
            if (r instanceof Promise) {
              return r.catch((err: unknown) => {
                onFailure(String(prop), err);
                throw err;
              });
            }
            return r;
          } catch (err) {
            onFailure(String(prop), err);
            throw err;
          }
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
