import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';

/** scrypt parameters for client secrets: slow on purpose (≈ 50 ms), run on the libuv pool. */
const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

/**
 * libuv's thread pool size: `UV_THREADPOOL_SIZE` as libuv reads it when the pool starts (default 4,
 * at most 1024). It must be set in the process's environment (`UV_THREADPOOL_SIZE=8 hubcast start`):
 * the pool is started while modules load, so setting it from code is too late.
 */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/**
 * Most scrypt computations at once, whatever the load on POST /consumers and whatever
 * `limits.registerConcurrency` says: half of libuv's pool, and one core fewer than the machine has
 * (at least one). The pool is shared with the store's fdatasync (wal-sync.ts), file reads, DNS
 * lookups and compression: were every thread hashing, each ingest commit would wait for a hash
 * (≈ 50 ms of CPU each). And scrypt is pure CPU: hashing on every core starves the event loop.
 */
export const MAX_CONCURRENT_HASHES = Math.max(1, Math.min(Math.floor(threadPoolSize() / 2), availableParallelism() - 1));

let running = 0;
const queued: (() => void)[] = [];

async function scryptAsync(secret: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  if (running >= MAX_CONCURRENT_HASHES) await new Promise<void>((go) => queued.push(go));
  else running++;
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(secret, salt, KEYLEN, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
    );
  } finally {
    // The slot passes straight to the next waiter (running stays the same), or is given back.
    const next = queued.shift();
    if (next) next();
    else running--;
  }
}

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

let dummy: Promise<string> | undefined;

/**
 * Constant-time check of a secret against a stored hash. With no stored hash (unknown client) it
 * still spends the same time, so timing does not tell which client ids exist.
 */
export async function verifySecret(secret: string, stored: string | undefined): Promise<boolean> {
  const target = stored ?? (await (dummy ??= hashSecret('dummy-secret-for-unknown-clients')));
  const parts = target.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64url');
  const key = await scryptAsync(secret, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return stored !== undefined && key.length === expected.length && timingSafeEqual(key, expected);
}
