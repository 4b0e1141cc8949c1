import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS } from '../../src/config/load.ts';
import { NODE_TSX } from './procs.ts';

/** Paths and helpers for running Hubcast itself from the bench. */

export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const SLOW_HASH_SERVER = fileURLToPath(new URL('./slow-hash-server.ts', import.meta.url));

/** Runs `hubcast <args> --data-dir DIR --json` and parses its JSON answer (bounded: 60 s). */
export function hubcastCli<T = Record<string, unknown>>(args: string[], dataDir: string, env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...NODE_TSX, CLI_MAIN, ...args, '--data-dir', dataDir, '--json'],
      { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`hubcast ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as T);
        } catch {
          reject(new Error(`hubcast ${args.join(' ')}: not JSON: ${stdout.slice(0, 500)}`));
        }
      },
    );
  });
}

/** Does this build's config schema know `path` (keys added by work in progress)? */
export function hasConfigKey(path: string): boolean {
  return CONFIG_KEYS.some((k) => k.path === path);
}

/** The environment variable of a config key (`alerts.groupWaitS` → `HUBCAST_ALERTS_GROUP_WAIT_S`). */
export function envOf(path: string): string {
  const key = CONFIG_KEYS.find((k) => k.path === path);
  if (!key) throw new Error(`no config key ${path}`);
  return key.env;
}
