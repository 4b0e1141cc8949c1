import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../core/errors.ts';

/** The PEM bytes behind `tls.cert` and `tls.key`. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

function read(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Reads and checks the certificate and key files of `tls.cert` / `tls.key`: both readable, a PEM
 * certificate, a PEM private key (unencrypted), and a pair that belongs together. Undefined when TLS
 * is off (both empty). Throws ConfigError naming the key; the message never contains key material.
 * Used at start-up and on every reload (SIGHUP), so a bad file on reload keeps the old certificate.
 */
export function readTlsFiles(tls: { readonly cert: string; readonly key: string }): TlsFiles | undefined {
  if (tls.cert === '' && tls.key === '') return undefined;
  if (tls.cert === '' || tls.key === '') throw new ConfigError('tls: tls.cert and tls.key go together: set both or neither');
  const cert = read('tls.cert', tls.cert);
  const key = read('tls.key', tls.key);
  try {
    new X509Certificate(cert);
  } catch {
    throw new ConfigError(`tls.cert: ${tls.cert} does not hold a PEM certificate`);
  }
  try {
    createPrivateKey(key);
  } catch {
    throw new ConfigError(`tls.key: ${tls.key} does not hold an unencrypted PEM private key`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    // OpenSSL's reason ("key values mismatch") names no key material.
    throw new ConfigError(`tls.key: ${tls.key} does not belong to the certificate in tls.cert (${(err as Error).message})`);
  }
  return { cert, key };
}
