import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

/** Self-signed certificates made in the test with the system openssl, and HTTPS/TLS probes. */

export interface Cert {
  cert: string;
  key: string;
  /** The certificate's PEM (trust it as `ca`). */
  pem: Buffer;
  fingerprint256: string;
}

let seq = 0;

/**
 * A fresh self-signed P-256 certificate for localhost and 127.0.0.1, valid one day. Written to
 * `<dir>/<name>.crt` / `.key` (atomically, by rename, so a reload never reads half a file).
 */
export function makeCert(dir: string, name = 'server'): Cert {
  const n = ++seq;
  const tmpCert = join(dir, `.tmp-${n}.crt`);
  const tmpKey = join(dir, `.tmp-${n}.key`);
  execFileSync(
    '/usr/bin/openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      tmpKey,
      '-out',
      tmpCert,
    ],
    { stdio: 'ignore', timeout: 10_000 },
  );
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  renameSync(tmpKey, key);
  renameSync(tmpCert, cert);
  const pem = readFileSync(cert);
  return { cert, key, pem, fingerprint256: new X509Certificate(pem).fingerprint256 };
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to the port is served. */
export function servedFingerprint(port: number, ca: Buffer[], timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no TLS handshake within the time limit'));
    }, timeoutMs);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      const fp = sock.getPeerCertificate().fingerprint256;
      sock.destroy();
      resolve(fp);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** An HTTPS request to 127.0.0.1 trusting `ca`; the body parsed as JSON when it is JSON. */
export function httpsJson(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; ca: Buffer[] },
  timeoutMs = 5000,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        ca: opts.ca,
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
