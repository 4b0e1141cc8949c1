import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotFunctions } from '../lib/cpu-profile.ts';
import { seedHubcast } from '../lib/hubcast-seed.ts';
import { startHubcast } from '../lib/hubcast-server.ts';
import { hasConfigKey } from '../lib/hubcast.ts';
import type { Contender } from './types.ts';

/**
 * The contender under test: the real `hubcast start` (src/cli/main.ts) on a fresh data dir, default
 * config. One client whose subscribe rule is `bench.>` (ACL checked on every subscribe), one ingest
 * key; every subscriber is an authenticated consumer with its own token. Publishing is `POST /entity`
 * with the ingest key: durable history append, then fan-out of the real envelope.
 *
 * Tokens: the first `REGISTERED` subscribers get theirs from `POST /consumers` (the load generator
 * registers them); the others are seeded into the store before the server starts
 * (bench/lib/hubcast-seed.ts: the same rows `TokenService.issue()` writes, without the ≈ 45 ms scrypt
 * check of the client secret per registration, which would make a 5,000-subscriber setup take minutes).
 * All of them belong to one client, so `tokens.maxPerClient` (default 1,000) is raised to hold them:
 * otherwise the first registration would revoke the seeded tokens beyond the cap that are not yet
 * connected (a state the cap never lets a real server reach).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGISTERED = 4;

/** The real `hubcast start` with `config` on top of the defaults (e.g. ws.writeDelayMs). */
function hubcastWith(name: string, label: string, description: string, config: Record<string, string | number>): Contender {
  return {
    name,
    label,
    description,
    async unavailable() {
      return null;
    },
    async start({ children, dir, subscribers, profile }) {
      const dataDir = join(dir, 'data');
      const seeded = await seedHubcast(dataDir, { tokens: subscribers, subscribe: ['bench.>'], name: 'bench-compare' });
      const profDir = join(dir, 'cpu-prof');
      const proc = await startHubcast(children, {
        name,
        dataDir,
        logFile: join(dir, 'server.log'),
        cpu: 0,
        config: {
          ...(hasConfigKey('tokens.maxPerClient') ? { 'tokens.maxPerClient': subscribers + REGISTERED } : {}),
          ...config,
        },
        ...(profile ? { cpuProfDir: profDir } : {}),
      });
      const child = proc.child;
      return {
        pid: child.pid,
        target: {
          kind: 'hubcast',
          port: proc.port,
          tokens: seeded.tokens,
          clientId: seeded.clientId,
          clientSecret: seeded.clientSecret,
          register: Math.min(REGISTERED, subscribers),
          ingestKey: seeded.ingestKey,
        },
        running: () => child.running,
        // Graceful: --cpu-prof writes the profile at exit.
        stop: async () => void (await child.stop(15_000)),
        profile: (window) => (profile ? hotFunctions(profDir, ROOT, 15, window) : undefined),
        notes: [
          `${subscribers.toLocaleString('en-US')} consumer tokens (${Math.min(REGISTERED, subscribers)} of them replaced through POST /consumers by the load generator) seeded in ${seeded.ms} ms`,
        ],
      };
    },
  };
}

export const hubcast: Contender = hubcastWith(
  'hubcast',
  'Hubcast',
  'The real `hubcast start`, default config, fresh data dir: authenticated consumers (Bearer tokens), subscriptions checked against the ' +
    "client's `bench.>` rule, publishing through `POST /entity` with an ingest key (durable history append), the real message envelope.",
  {},
);

/** Hubcast with the opt-in adaptive write delay (issue 12): the same server, `ws.writeDelayMs: 2`. */
export const hubcastWriteDelay: Contender = hubcastWith(
  'hubcast-write-delay',
  'Hubcast, write delay 2 ms',
  'The same `hubcast start` as Hubcast with `ws.writeDelayMs: 2` (adaptive: under load each connection is written at most once per ' +
    '2 ms, gathering the messages meanwhile into one write; an idle hub writes at once).',
  { 'ws.writeDelayMs': 2 },
);
