/**
 * BENCH ONLY: a deliberately broken Hubcast build for the flood scenario. It is Hubcast as
 * `hubcast start` runs it, except that every token lookup first runs a synchronous scrypt
 * (N = 16384, ~16 MiB, tens of ms of CPU) — the "slow hash on the upgrade path" that issue 3 forbids.
 * The scenario must catch it.
 *
 *   node --import tsx bench/lib/slow-hash-server.ts [--host H] [--port N] [--data-dir D] [--<any config key>]
 *
 * Config comes from flags and HUBCAST_* variables exactly as for `hubcast start`. SIGTERM/SIGINT:
 * graceful close, exit 0 (forced after shutdown.graceS).
 */
import { scryptSync } from 'node:crypto';
import { configFrom, parse } from '../../src/cli/options.ts';
import { createServer } from '../../src/server.ts';
import { createStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';

const SALT = Buffer.from('hubcast-bench-slow-hash');

/** The real store, with a slow synchronous hash in front of `getToken`. */
function slowTokenStore(real: Store): Store {
  const getToken: Store['getToken'] = (hash) => {
    scryptSync(hash, SALT, 32, { N: 16384, r: 8, p: 1 });
    return real.getToken(hash);
  };
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'getToken') return getToken;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const { values } = parse(process.argv.slice(2));
const config = configFrom(values);
const server = createServer(config, { store: slowTokenStore(createStore(config)) });
await server.listen();
server.log.warn('BENCH BUILD: slow hash (scrypt N=16384) on every token lookup');

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), config.shutdown.graceS * 1000).unref();
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
