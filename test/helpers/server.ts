import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { main } from '../../src/cli/main.ts';
import type { Clock } from '../../src/core/clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createServer, type HubcastServer } from '../../src/server.ts';
import { createBackend } from '../../src/store/index.ts';
import type { Presence } from '../../src/cluster/presence.ts';
import type { Store } from '../../src/store/store.ts';
import { TestClient } from './ws-client.ts';

/** A clock tests can move: `clock.advance(ms)`. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = Date.now()) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

export function tempDir(prefix = 'hubcast-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs a CLI command in-process; returns exit code and what it printed. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

export interface ClientCreds {
  client_id: string;
  client_secret: string;
}

/** A live connection as `Harness.connections()` lists it. */
export interface ConnectionRow {
  id: string;
  client_id: string;
  token_hash: string;
  node_id: string;
  connected_at: number;
  remote_address: string;
}

export interface Harness {
  server: HubcastServer;
  dataDir: string;
  base: string;
  wsBase: string;
  port: number;
  /** Parsed JSON log lines written so far. */
  logs: Record<string, unknown>[];
  /** Raw log text (to check that no secret is ever logged). */
  logText: () => string;
  /** The live connections the server's store records (rows named as in the HTTP/JSON style). */
  connections(): Promise<ConnectionRow[]>;
  createClient(opts?: { subscribe?: string[]; publish?: string[]; presence?: string[]; name?: string }): Promise<ClientCreds>;
  createKey(name?: string, scope?: 'ingest' | 'admin'): Promise<string>;
  /** POST /consumers with the client's credentials; returns the token. */
  register(c: ClientCreds): Promise<string>;
  /** Opens a WebSocket with `Authorization: Bearer` and waits for `welcome`. */
  connect(token: string, opts?: { path?: string; query?: string; headers?: Record<string, string> }): Promise<TestClient>;
  /** POST /entity with the harness's ingest key. */
  ingest(topic: string, data: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  fetchJson(path: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }>;
  ingestKey: string;
  /** Secrets the test handled beyond those the harness issued itself (tickets, Basic values…). */
  remember(...values: string[]): void;
  restart(): Promise<void>;
  /** Stops the server, then fails if any secret, token, ticket or key it saw was logged. */
  close(): Promise<void>;
}

/**
 * Starts a real server on an ephemeral loopback port with its own data dir. Creates one ingest key.
 * Call `close()` in afterEach/afterAll.
 */
export async function startServer(
  config: ConfigInput = {},
  opts: {
    clock?: Clock;
    dataDir?: string;
    wrapStore?: (store: Store) => Store;
    wrapPresence?: (p: Presence) => Presence;
    /** The built admin dashboard to serve (default dist/admin-page). */
    adminPageDir?: string;
  } = {},
): Promise<Harness> {
  const dataDir = opts.dataDir ?? tempDir();
  let text = '';
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const full: ConfigInput = { host: '127.0.0.1', port: 0, dataDir, ...config };
  let presence: Presence;
  const make = () => {
    const backend = createBackend(parseConfig(full), opts.clock);
    presence = backend.presence;
    return createServer(full, {
      logger,
      changePollMs: 100,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.adminPageDir ? { adminPageDir: opts.adminPageDir } : {}),
      backend: {
        store: opts.wrapStore ? opts.wrapStore(backend.store) : backend.store,
        presence: opts.wrapPresence ? opts.wrapPresence(backend.presence) : backend.presence,
        leases: backend.leases,
      },
    });
  };
  let server = make();
  let addr = await server.listen();
  const clients: TestClient[] = [];
  const keyOut = await cli(['keys', 'create', '--name', 'test-ingest', '--json', '--data-dir', dataDir]);
  const ingestKey = (JSON.parse(keyOut.out) as { key: string }).key;
  const secrets = new Set<string>([ingestKey]);

  const h: Harness = {
    get server() {
      return server;
    },
    dataDir,
    get base() {
      return `http://127.0.0.1:${addr.port}`;
    },
    get wsBase() {
      return `ws://127.0.0.1:${addr.port}`;
    },
    get port() {
      return addr.port;
    },
    logs,
    logText: () => text,
    async connections() {
      return (await presence.listConnections()).map((c) => ({
        id: c.id,
        client_id: c.clientId,
        token_hash: c.tokenHash,
        node_id: c.nodeId,
        connected_at: c.connectedAt,
        remote_address: c.remoteAddress,
      }));
    },
    ingestKey,
    async createClient({ subscribe = ['>'], publish = [], presence = [], name = 'test' } = {}) {
      const args = ['clients', 'create', '--name', name, '--json', '--data-dir', dataDir];
      for (const s of subscribe) args.push('--subscribe', s);
      for (const p of publish) args.push('--publish', p);
      for (const p of presence) args.push('--presence', p);
      const r = await cli(args);
      if (r.code !== 0) throw new Error(`clients create failed: ${r.err}`);
      const created = JSON.parse(r.out) as ClientCreds;
      secrets.add(created.client_secret);
      return created;
    },
    async createKey(name = 'k', scope = 'ingest') {
      const r = await cli(['keys', 'create', '--name', name, '--scope', scope, '--json', '--data-dir', dataDir]);
      const key = (JSON.parse(r.out) as { key: string }).key;
      secrets.add(key);
      return key;
    },
    async register(c) {
      const r = await h.fetchJson('/consumers', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(c),
      });
      if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
      secrets.add(r.body.token as string);
      return r.body.token as string;
    },
    async connect(token, { path = '/ws', query = '', headers = {} } = {}) {
      const c = new TestClient(`${h.wsBase}${path}${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
      clients.push(c);
      await c.opened;
      await c.next('welcome');
      return c;
    },
    async ingest(topic, data, headers = {}) {
      const r = await h.fetchJson('/entity', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}`, ...headers },
        body: JSON.stringify({ topic, data }),
      });
      return { status: r.status, body: r.body };
    },
    async fetchJson(path, init) {
      const res = await fetch(h.base + path, init);
      const raw = await res.text();
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body, headers: res.headers };
    },
    async restart() {
      await server.close();
      server = make();
      addr = await server.listen();
    },
    remember(...values) {
      for (const v of values) if (v) secrets.add(v);
    },
    async close() {
      for (const c of clients) c.ws.terminate();
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
      for (const s of secrets) if (text.includes(s)) throw new Error(`a secret was logged (${s.slice(0, 4)}…)`);
    },
  };
  return h;
}

/** Polls `fn` until it returns truthy (bounded). */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 3000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
