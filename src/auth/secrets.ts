import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt parameters for client secrets: slow on purpose (≈ 50 ms), run on the libuv pool. */
const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

function scryptAsync(secret: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEYLEN, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
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
