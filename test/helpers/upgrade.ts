import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as netConnect } from 'node:net';
import Database from 'better-sqlite3';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { ClientOptions } from 'ws';
import { TestClient } from './ws-client.ts';
import { handshakeLines } from './raw-http.ts';

/**
 * Helpers for the auth/connection e2e tests: raw upgrade requests, WebSocket attempts that report
 * either the accepted connection or the plain HTTP rejection, store rows read straight from SQLite,
 * and Prometheus metric values.
 */

export interface RawResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  body: string;
  /** Everything the server wrote (status line, headers, body). */
  raw: string;
}

/**
 * Writes a WebSocket upgrade request on a raw TCP socket and reads the answer: the whole response
 * for a rejection (the server closes the socket), the header block for a 101 (then the socket is
 * destroyed). Bounded by `timeoutMs`.
 */
export function rawUpgrade(
  port: number,
  opts: { path?: string; headers?: Record<string, string>; upgrade?: boolean } = {},
  timeoutMs = 3000,
): Promise<RawResponse> {
  const { path = '/ws', headers = {}, upgrade = true } = opts;
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    let raw = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      const sep = raw.indexOf('\r\n\r\n');
      const head = sep === -1 ? raw : raw.slice(0, sep);
      const body = sep === -1 ? '' : raw.slice(sep + 4);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(statusLine);
      if (!m) return reject(new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`));
      const hs: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers: hs, body, raw });
    };
    const timer = setTimeout(
      () => finish(new Error(`no complete answer to the upgrade within ${timeoutMs} ms: ${JSON.stringify(raw)}`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      raw += chunk;
      // A 101 keeps the socket open: stop once its header block is complete.
      if (/^HTTP\/1\.1 101 /.test(raw) && raw.includes('\r\n\r\n')) finish();
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', (err) => finish(err));
    sock.on('connect', () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
      if (upgrade) {
        lines.push(...handshakeLines());
      }
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      sock.write(lines.join('\r\n') + '\r\n\r\n');
    });
  });
}

export type Attempt =
  | { status: 101; client: TestClient; headers: IncomingHttpHeaders; rawHeaders: string[] }
  | { status: number; client: TestClient; headers: IncomingHttpHeaders; rawHeaders: string[]; body: string; json: any };

/**
 * Opens a real `ws` client and reports what the handshake gave: `status: 101` with the open client
 * and the 101 response headers, or the HTTP status, headers and body of a rejection (read through
 * the client's `unexpected-response` event). Bounded by `timeoutMs`.
 */
export function tryConnect(url: string, opts: ClientOptions & { protocols?: string[] } = {}, timeoutMs = 3000): Promise<Attempt> {
  const client = new TestClient(url, opts);
  client.opened.catch(() => {});
  return new Promise<Attempt>((resolve, reject) => {
    let upgradeRes: IncomingMessage | undefined;
    const timer = setTimeout(() => {
      client.ws.terminate();
      reject(new Error(`no handshake answer from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.ws.on('upgrade', (res: IncomingMessage) => {
      upgradeRes = res;
    });
    client.ws.once('open', () => {
      clearTimeout(timer);
      resolve({ status: 101, client, headers: upgradeRes?.headers ?? {}, rawHeaders: upgradeRes?.rawHeaders ?? [] });
    });
    client.ws.once('unexpected-response', (req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, client, headers: res.headers, rawHeaders: res.rawHeaders, body, json });
      });
    });
    client.ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Runs `fn` on a read-only handle of `<dataDir>/hubcast.db` (the server's live store). */
export function withDb<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, 'hubcast.db'), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The stored row of a token (looked up by the SHA-256 of the token), or undefined. */
export function dbToken(
  dataDir: string,
  token: string,
): { hash: string; client_id: string; created_at: number; last_used_at: number } | undefined {
  return withDb(
    dataDir,
    (db) =>
      db.prepare('SELECT * FROM tokens WHERE hash = ?').get(sha256Hex(token)) as
        { hash: string; client_id: string; created_at: number; last_used_at: number } | undefined,
  );
}

/**
 * The value of one Prometheus sample in `text` (the body of GET /metrics), or undefined when the
 * series is absent. `labels` must match the sample's labels exactly.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const part of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[part[1]!] = part[2]!;
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(got).length || keys.some((k) => got[k] !== labels[k])) continue;
    return Number(m[3]);
  }
  return undefined;
}

/** GET `<base>/metrics` as text. */
export async function fetchMetrics(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  return res.text();
}

export interface SpawnedServer {
  child: ChildProcess;
  port: number;
  /** What the process wrote to stderr (its JSON log lines). */
  stderr: () => string;
  /** SIGKILL (a crash: nothing is cleaned up) and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Runs `hubcast start` as a real child process on an ephemeral loopback port (for crash tests);
 * resolves once it logs "hubcast listening". Bounded by `timeoutMs`.
 */
export function spawnServer(dataDir: string, timeoutMs = 15_000): Promise<SpawnedServer> {
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`hubcast start did not listen within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"port":(\d+)[^\n]*"msg":"hubcast listening"/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => err, kill });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hubcast start exited ${code}: ${err}`));
    });
  });
}
