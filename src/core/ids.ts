import { createHash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

/** 32 random bytes as base64url (43 characters): tokens, tickets, ingest keys, client secrets. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolAt = POOL_BYTES;

/**
 * A short random id (connection, client and message ids): not a secret, so it is cut from a pool of
 * random bytes refilled 4 KiB at a time instead of asking the CSPRNG once per id.
 */
export function randomId(prefix: string, bytes = 12): string {
  if (bytes > POOL_BYTES) return prefix + randomBytes(bytes).toString('base64url');
  if (poolAt + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += bytes;
  return prefix + pool.toString('base64url', poolAt - bytes, poolAt);
}

const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
/** `randomId('c_')`: what `hubcast clients create` issues. Never the shape of a secret (43 characters). */
const CLIENT_ID_RE = /^c_[A-Za-z0-9_-]{16}$/;

/** Is `value` shaped like a client id? Only such values may be logged as a client id. */
export function isClientIdFormat(value: unknown): value is string {
  return typeof value === 'string' && CLIENT_ID_RE.test(value);
}

/** Cheap shape check done before any lookup: a 256-bit base64url value. */
export function isSecretFormat(value: unknown): value is string {
  return typeof value === 'string' && SECRET_RE.test(value);
}

/** SHA-256 of a high-entropy secret, hex. Tokens, tickets and keys are stored only as this. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ba.length !== bb.length) {
    timingSafeEqual(ba, ba);
    return false;
  }
  return timingSafeEqual(ba, bb);
}
