import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { requireService, TcpProxy } from './tcp-proxy.ts';
import { TestClient, type Frame } from './ws-client.ts';

/**
 * Several `hubcast start` processes as one cluster on loopback ports: the three-node tests
 * (test/cluster/) and the Jepsen-style checker (scripts/cluster-check.ts) both run on it, so nothing
 * here imports vitest.
 *
 * Each node is a child process with its own config file, data dir (alerts.db, connectors.db stay
 * node-local) and, in front of its store and broker connections, its own `TcpProxy`: a test cuts one
 * node's link (`node.cut('broker', ms)`) without touching the shared servers. The CLI (`clients
 * create`, `keys create`, `clients revoke`) runs as a child process too, against the store directly
 * (not through a node's proxy, which a test may have cut).
 *
 * Isolation: a unique PostgreSQL schema (`hc_<random>`, dropped by `close()`) and broker prefix per
 * cluster. With `broker: 'memory'` the nodes are independent single nodes on SQLite (a harness
 * self-test that needs no server; the CLI then works on the first node's data dir).
 *
 * Environment: HUBCAST_CLUSTER_ROOT runs another checkout's src/cli/main.ts; HUBCAST_CLUSTER_LOG_LEVEL
 * sets the nodes' logLevel (default info); HUBCAST_CLUSTER_KEEP=1 keeps the temp dir (configs, one
 * log file per node) and prints where it is.
 */

// ---------------------------------------------------------------------------------------------------
// The contract with the server, in ONE place: what the lead may rename at integration is here.
// ---------------------------------------------------------------------------------------------------

export const CONTRACT = {
  /** The log line a node writes once it listens (with `port`). */
  listeningLog: 'hubcast listening',
  healthPath: '/healthz',
  metricsPath: '/metrics',
  /** A Prometheus label every sample of a node's /metrics carries. */
  nodeLabel: (nodeId: string) => `node="${nodeId}"`,
  /** GET with `Authorization: Bearer <admin key>` → `{topic, subscribers:[{connection_id, client_id, node, since}]}`. */
  presencePath: (topic: string) => `/topics/${encodeURIComponent(topic)}/presence`,
  /** The WebSocket request for a client with presence rights; answered `{type:'presence', id, topic, subscribers:[{client_id, connection_id}]}`. */
  presenceRequest: (topic: string, id: number | string) => ({ type: 'presence', topic, id }),
  /** `hubcast clients create` flag giving presence rights (patterns, like --subscribe). */
  presenceFlag: '--presence',
  /** `hubcast keys create` arguments for an admin key. */
  adminScope: ['--scope', 'admin'],
  /** HTTP status of a second connection for a live token, on any node. */
  duplicateStatus: 409,
  close: { revoked: 4500, replaced: 4502, goingAway: 1001, tryAgain: 1013 },
} as const;

export type BrokerType = 'memory' | 'redis' | 'nats' | 'postgres';
/** The broker types of a real cluster (each needs PostgreSQL for the store). */
export const CLUSTER_BROKERS = ['redis', 'nats', 'postgres'] as const;

/** The shared servers on this machine (tests never start or stop them). */
export const SERVICES = {
  postgres: { name: 'PostgreSQL', port: 5432, url: (port: number) => `postgres://postgres@127.0.0.1:${port}/test` },
  redis: { name: 'Redis', port: 6379, url: (port: number) => `redis://127.0.0.1:${port}` },
  nats: { name: 'NATS', port: 4222, url: (port: number) => `nats://127.0.0.1:${port}` },
} as const;

/** The config one node starts with: every cluster key the harness sets, in one place. */
export function nodeConfig(o: {
  nodeId: string;
  port: number;
  dataDir: string;
  broker: BrokerType;
  leaseS: number;
  schema: string;
  prefix: string;
  /** PostgreSQL URL through this node's store proxy (unused with the memory broker: SQLite in dataDir). */
  storeUrl?: string | undefined;
  /** Broker URL through this node's broker proxy (for postgres too: its own link, cut separately). */
  brokerUrl?: string | undefined;
  extra?: Record<string, unknown> | undefined;
}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    nodeId: o.nodeId,
    host: '127.0.0.1',
    port: o.port,
    dataDir: o.dataDir,
    logLevel: process.env.HUBCAST_CLUSTER_LOG_LEVEL ?? 'info',
    shutdown: { graceS: 5 },
  };
  // Independent single nodes (memory broker) keep the embedded defaults: store sqlite, broker memory.
  if (o.broker !== 'memory') {
    base.store = { type: 'postgres', url: o.storeUrl, schema: o.schema, poolSize: 4 };
    base.broker = { type: o.broker, url: o.brokerUrl, prefix: o.prefix };
    base.cluster = { leaseS: o.leaseS };
  }
  const merged = deepMerge(base, o.extra ?? {});
  // The harness waits for the info-level "hubcast listening" line (with the port).
  if (['warn', 'error', 'fatal', 'silent'].includes(merged.logLevel as string))
    throw new Error(
      `logLevel ${String(merged.logLevel)}: the cluster harness needs info or lower (it waits for "${CONTRACT.listeningLog}")`,
    );
  return merged;
}

/** The config of the CLI: the same store, reached directly (a node's proxy may be cut). */
function cliConfig(o: { broker: BrokerType; schema: string; dataDir: string }): Record<string, unknown> {
  return o.broker === 'memory'
    ? { dataDir: o.dataDir, logLevel: 'silent' }
    : {
        dataDir: o.dataDir,
        logLevel: 'silent',
        store: { type: 'postgres', url: SERVICES.postgres.url(SERVICES.postgres.port), schema: o.schema, poolSize: 2 },
      };
}

// ---------------------------------------------------------------------------------------------------

const ROOT = resolve(process.env.HUBCAST_CLUSTER_ROOT ?? fileURLToPath(new URL('../..', import.meta.url)));
const MAIN = join(ROOT, 'src/cli/main.ts');
const MAX_LINES = 100_000;
const live = new Set<ChildProcess>();

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `b` over `a`, objects merged key by key (arrays and scalars replaced). */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k], v) : v;
  return out;
}

/** The child's environment: ours without HUBCAST_* config variables, which would override its file. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HUBCAST_') || k === 'HUBCAST_REQUIRE_SERVICES' || k.startsWith('HUBCAST_CLUSTER_')) env[k] = v;
  return env;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

/** Polls `fn` until it returns truthy (bounded). */
export async function until<T>(
  fn: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<Exclude<T, undefined | null | false>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as Exclude<T, undefined | null | false>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const randomName = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

/** One `hubcast start` process: its JSON log lines, its exit. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #lines: Record<string, unknown>[] = [];
  #partial = '';
  #listeners = new Set<() => void>();

  constructor(args: string[], log?: WriteStream) {
    this.child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    live.add(this.child);
    this.child.stderr!.on('data', (d: Buffer) => {
      log?.write(d);
      const text = this.#partial + d.toString();
      const parts = text.split('\n');
      this.#partial = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.trim()) continue;
        try {
          this.#lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.#lines.push({ msg: line });
        }
      }
      if (this.#lines.length > MAX_LINES) this.#lines.splice(0, this.#lines.length - MAX_LINES);
      this.#notify();
    });
    this.exited = new Promise((r) =>
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        r({ code, signal });
        this.#notify();
      }),
    );
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Parsed log lines so far (the last 100,000). */
  logs(): Record<string, unknown>[] {
    return this.#lines;
  }

  /** The last `n` log lines as text, for error messages. */
  tail(n = 30): string {
    return this.#lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  /** Waits (bounded) for a log line whose `msg` matches; rejects when the process exits first. */
  waitForLog(msg: string | RegExp, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const match = (m: unknown) => typeof m === 'string' && (typeof msg === 'string' ? m === msg : msg.test(m));
    return new Promise((resolveLine, reject) => {
      const check = () => {
        const hit = this.#lines.find((l) => match(l.msg));
        if (hit) return done(() => resolveLine(hit));
        if (!this.running) done(() => reject(new Error(`exited before logging ${String(msg)}:\n${this.tail()}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no log line ${String(msg)} within ${timeoutMs} ms:\n${this.tail()}`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        f();
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Sends `signal` and waits for the exit (bounded; SIGKILL after `timeoutMs`). No-op once exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      this.child.kill(signal);
      const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    return this.exited;
  }
}

/** Runs a CLI command (`hubcast clients create …`) as a child process; resolves with what it printed. */
export async function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(t);
  live.delete(child);
  return { code, out, err };
}

/** SIGKILLs every process this module started that still runs (a test's afterAll, the script's exit). */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...live].map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }),
  );
}

/** A test client that keeps its `welcome` frame (connection_id, client_id). */
export class ClusterClient extends TestClient {
  welcome: Frame = { type: 'none' };

  get connectionId(): string {
    return this.welcome.connection_id as string;
  }
}

export interface Creds {
  client_id: string;
  client_secret: string;
}

export interface ClusterOptions {
  broker: BrokerType;
  /** Default 3 (ids a, b, c, …). */
  nodes?: number;
  /** cluster.leaseS; default 2 (a killed node frees its tokens within 2 × leaseS). */
  leaseS?: number;
  /** Merged into every node's config (e.g. `{ duplicates: { policy: 'replace' } }`). */
  extraConfig?: Record<string, unknown>;
  /** Merged into one node's config, by node id. */
  nodeConfig?: Record<string, Record<string, unknown>>;
  /** Bound on starting every node, ms (default 60 s: generous, for a loaded machine). */
  startTimeoutMs?: number;
}

/** One node of a cluster: a process that can be killed, restarted and cut off its backends. */
export class ClusterNode {
  readonly id: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** In front of this node's PostgreSQL connection (undefined on SQLite). */
  readonly storeProxy: TcpProxy | undefined;
  /** In front of this node's broker connection (undefined for the memory broker). */
  readonly brokerProxy: TcpProxy | undefined;
  /** The port it listens on: chosen at its first start (port 0), kept across restarts. */
  port = 0;
  /** The current process (a new one after `restart()`). */
  proc: NodeProcess | undefined;
  /** How many processes were started for this node. */
  starts = 0;
  readonly #config: Record<string, unknown>;
  readonly #logFile: string;
  readonly #leaseS: number;
  #killedAt: number | undefined;

  constructor(o: {
    id: string;
    dir: string;
    config: Record<string, unknown>;
    storeProxy: TcpProxy | undefined;
    brokerProxy: TcpProxy | undefined;
    leaseS: number;
  }) {
    this.id = o.id;
    this.dataDir = join(o.dir, o.id);
    mkdirSync(this.dataDir, { recursive: true });
    this.configFile = join(o.dir, `${o.id}.json`);
    this.#logFile = join(o.dir, `${o.id}.log`);
    this.#config = o.config;
    this.storeProxy = o.storeProxy;
    this.brokerProxy = o.brokerProxy;
    this.#leaseS = o.leaseS;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Starts a process once; rejects (after killing it) when it exits or is not listening in time. */
  async #startOnce(timeoutMs: number): Promise<void> {
    writeFileSync(this.configFile, JSON.stringify({ ...this.#config, port: this.port }, null, 2));
    const log = createWriteStream(this.#logFile, { flags: 'a' });
    const p = new NodeProcess(['start', '--config', this.configFile], log);
    void p.exited.then(() => log.end());
    this.starts++;
    this.proc = p;
    try {
      const line = await p.waitForLog(CONTRACT.listeningLog, timeoutMs);
      this.port = line.port as number;
    } catch (err) {
      await p.kill();
      throw err;
    }
  }

  /**
   * Starts the node. A node killed with -9 may still hold its lease under its id (a second process
   * with one nodeId is refused until it expires): after a kill, failed starts are retried until about
   * three leases have passed.
   */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error(`node ${this.id} is already running`);
    const deadline = this.#killedAt === undefined ? 0 : this.#killedAt + this.#leaseS * 3000 + 10_000;
    for (;;) {
      try {
        return await this.#startOnce(timeoutMs);
      } catch (err) {
        if (Date.now() + 500 > deadline) throw new Error(`node ${this.id} did not start: ${(err as Error).message}`);
        await sleep(300);
      }
    }
  }

  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    if (signal === 'SIGKILL' && this.running) this.#killedAt = Date.now();
    return this.proc?.kill(signal);
  }

  /** SIGTERM (graceful: consumers closed with 1001) and wait for the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    return this.kill('SIGTERM');
  }

  /** Stops the node if it runs (SIGTERM), then starts a new process on the same port and config. */
  async restart(timeoutMs?: number): Promise<void> {
    if (this.running) await this.stop();
    await this.start(timeoutMs);
  }

  /**
   * Cuts this node's link to its store or broker: live connections destroyed, new ones refused for
   * `ms`, then accepted again. Resolves when the link is accepted again.
   */
  async cut(link: 'store' | 'broker', ms: number): Promise<void> {
    const proxy = link === 'store' ? this.storeProxy : this.brokerProxy;
    if (!proxy) throw new Error(`node ${this.id} has no ${link} proxy (broker ${link === 'store' ? 'sqlite' : 'memory'})`);
    proxy.refuse();
    proxy.cut();
    await sleep(ms);
    proxy.accept();
  }

  logs(): Record<string, unknown>[] {
    return this.proc?.logs() ?? [];
  }
}

/** N nodes sharing one store and broker, and the credentials the tests use. */
export class Cluster {
  readonly broker: BrokerType;
  readonly leaseS: number;
  readonly dir: string;
  readonly schema: string;
  readonly prefix: string;
  readonly nodes: ClusterNode[];
  /** An ingest-scope key (POST /entity) and an admin-scope key (presence, /connectors). */
  ingestKey = '';
  adminKey = '';
  readonly #cliFile: string;
  readonly #clients: TestClient[] = [];
  #closed = false;

  private constructor(o: { broker: BrokerType; leaseS: number; dir: string; schema: string; prefix: string; nodes: ClusterNode[] }) {
    this.broker = o.broker;
    this.leaseS = o.leaseS;
    this.dir = o.dir;
    this.schema = o.schema;
    this.prefix = o.prefix;
    this.nodes = o.nodes;
    this.#cliFile = join(o.dir, 'cli.json');
    const cliDataDir = o.broker === 'memory' ? o.nodes[0]!.dataDir : join(o.dir, 'cli');
    writeFileSync(this.#cliFile, JSON.stringify(cliConfig({ broker: o.broker, schema: o.schema, dataDir: cliDataDir }), null, 2));
  }

  /** Starts the cluster: proxies, the schema (through the first CLI command), the keys, then every node at once. */
  static async start(opts: ClusterOptions): Promise<Cluster> {
    const count = opts.nodes ?? 3;
    const leaseS = opts.leaseS ?? 2;
    const dir = mkdtempSync(join(tmpdir(), 'hubcast-cluster-'));
    const schema = randomName('hc_');
    const prefix = randomName('hc_');
    const shared = opts.broker !== 'memory';
    const nodes: ClusterNode[] = [];
    let cluster: Cluster | undefined;
    try {
      for (let i = 0; i < count; i++) {
        const id = String.fromCharCode(97 + i);
        const storeProxy = shared ? await TcpProxy.start(SERVICES.postgres.port) : undefined;
        const brokerProxy = shared ? await TcpProxy.start(SERVICES[opts.broker as Exclude<BrokerType, 'memory'>].port) : undefined;
        const config = nodeConfig({
          nodeId: id,
          port: 0,
          dataDir: join(dir, id),
          broker: opts.broker,
          leaseS,
          schema,
          prefix,
          storeUrl: storeProxy && SERVICES.postgres.url(storeProxy.port),
          brokerUrl: brokerProxy && SERVICES[opts.broker as Exclude<BrokerType, 'memory'>].url(brokerProxy.port),
          extra: deepMerge(opts.extraConfig ?? {}, opts.nodeConfig?.[id] ?? {}),
        });
        nodes.push(new ClusterNode({ id, dir, config, storeProxy, brokerProxy, leaseS }));
      }
      cluster = new Cluster({ broker: opts.broker, leaseS, dir, schema, prefix, nodes });
      // The first CLI command creates (migrates) the schema before the nodes race to.
      cluster.ingestKey = await cluster.createKey('ingest');
      const admin = cluster.createKey('admin');
      await Promise.all(nodes.map((n) => n.start(opts.startTimeoutMs ?? 60_000)));
      cluster.adminKey = await admin;
      return cluster;
    } catch (err) {
      if (cluster) await cluster.close();
      else {
        for (const n of nodes) await Promise.all([n.kill(), n.storeProxy?.close(), n.brokerProxy?.close()]);
        rmSync(dir, { recursive: true, force: true });
      }
      throw err;
    }
  }

  node(id: string): ClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** A node picked at random (among the running ones when `running`). */
  randomNode(running = false): ClusterNode {
    const pool = running ? this.nodes.filter((n) => n.running) : this.nodes;
    const from = pool.length > 0 ? pool : this.nodes;
    return from[Math.floor(Math.random() * from.length)]!;
  }

  /** Runs a CLI command against the cluster's store; throws unless it exits 0. */
  async cli(args: string[]): Promise<string> {
    const r = await runCli([...args, '--config', this.#cliFile]);
    if (r.code !== 0) throw new Error(`hubcast ${args.slice(0, 2).join(' ')} exited ${r.code}: ${r.err.slice(-2000)}`);
    return r.out;
  }

  async createKey(scope: 'ingest' | 'admin' = 'ingest', name = `${scope}-${randomName('')}`): Promise<string> {
    const args = ['keys', 'create', '--name', name, '--json'];
    if (scope === 'admin') args.push(...CONTRACT.adminScope);
    return (JSON.parse(await this.cli(args)) as { key: string }).key;
  }

  /** `hubcast clients create`; `presence` patterns give the presence right (CONTRACT.presenceFlag). */
  async createClient(o: { subscribe?: string[]; publish?: string[]; presence?: string[]; name?: string } = {}): Promise<Creds> {
    const args = ['clients', 'create', '--name', o.name ?? randomName('client-'), '--json'];
    for (const s of o.subscribe ?? ['>']) args.push('--subscribe', s);
    for (const p of o.publish ?? []) args.push('--publish', p);
    for (const p of o.presence ?? []) args.push(CONTRACT.presenceFlag, p);
    const created = JSON.parse(await this.cli(args)) as Creds;
    return { client_id: created.client_id, client_secret: created.client_secret };
  }

  async revokeClient(clientId: string): Promise<void> {
    await this.cli(['clients', 'revoke', clientId, '--json']);
  }

  async fetchJson(node: ClusterNode | string, path: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
    const base = typeof node === 'string' ? node : node.url;
    const res = await fetch(base + path, { signal: AbortSignal.timeout(10_000), ...init });
    const raw = await res.text();
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body, headers: res.headers };
  }

  /** POST /consumers on `node` (or a base URL, e.g. a load balancer's); returns the token. */
  async register(node: ClusterNode | string, creds: Creds): Promise<string> {
    const r = await this.fetchJson(node, '/consumers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(creds),
    });
    if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token as string;
  }

  /** Opens a WebSocket with the token; resolves after `welcome`, or rejects with `.status` (e.g. 409). */
  async connect(
    node: ClusterNode | string,
    token: string,
    o: { query?: string; timeoutMs?: number; autoPong?: boolean } = {},
  ): Promise<ClusterClient> {
    const base = typeof node === 'string' ? node.replace(/^http/, 'ws') + '/ws' : node.wsUrl;
    const c = new ClusterClient(`${base}${o.query ?? ''}`, {
      headers: { authorization: `Bearer ${token}` },
      handshakeTimeout: o.timeoutMs ?? 5000,
      autoPong: o.autoPong ?? true,
    });
    this.#clients.push(c);
    await c.opened;
    c.welcome = await c.next('welcome', o.timeoutMs ?? 5000);
    return c;
  }

  /** Like `connect`, but answers the HTTP status of a refused upgrade instead of throwing. */
  async tryConnect(node: ClusterNode | string, token: string): Promise<{ client: ClusterClient; status: 101 } | { status: number }> {
    try {
      return { client: await this.connect(node, token), status: 101 };
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === undefined) throw err;
      return { status };
    }
  }

  /** POST /entity with the cluster's ingest key (`id` = idempotency key). */
  async ingest(node: ClusterNode | string, topic: string, data: unknown, id?: string): Promise<{ status: number; body: any }> {
    const r = await this.fetchJson(node, '/entity', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.ingestKey}` },
      body: JSON.stringify({ topic, data, ...(id === undefined ? {} : { id }) }),
    });
    return { status: r.status, body: r.body };
  }

  /** GET /topics/<topic>/presence with the admin key (or `key`). */
  async presence(node: ClusterNode | string, topic: string, key = this.adminKey): Promise<{ status: number; body: any }> {
    const r = await this.fetchJson(node, CONTRACT.presencePath(topic), { headers: { authorization: `Bearer ${key}` } });
    return { status: r.status, body: r.body };
  }

  /** Terminates every client, SIGKILLs every node, closes the proxies, drops the schema, removes the dir. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#clients.splice(0)) c.ws.terminate();
    await Promise.all(this.nodes.map((n) => n.kill()));
    await Promise.all(this.nodes.flatMap((n) => [n.storeProxy?.close(), n.brokerProxy?.close()]));
    if (this.broker !== 'memory') await dropSchema(this.schema);
    if (process.env.HUBCAST_CLUSTER_KEEP === '1') process.stderr.write(`cluster files kept in ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

export const startCluster = (opts: ClusterOptions) => Cluster.start(opts);

/** Drops a test schema (and everything in it). */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^hc_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop schema ${schema}`);
  const client = new pg.Client({ connectionString: SERVICES.postgres.url(SERVICES.postgres.port) });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * For a test file or the checker: true when PostgreSQL and the broker's server are reachable. When
 * not, `npm test` skips with a printed reason; with HUBCAST_REQUIRE_SERVICES=1 it throws.
 */
export async function clusterServicesUp(broker: BrokerType): Promise<boolean> {
  if (broker === 'memory') return true;
  const store = await requireService(SERVICES.postgres.name, SERVICES.postgres.port);
  if (broker === 'postgres') return store;
  return (await requireService(SERVICES[broker].name, SERVICES[broker].port)) && store;
}

/** `p`, or a rejection naming `what` after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Waits for `n` `message` frames, removing them from the client's buffer, in arrival order. */
export async function takeMessages(c: TestClient, n: number, timeoutMs = 5000): Promise<Frame[]> {
  const deadline = Date.now() + timeoutMs;
  const out: Frame[] = [];
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} messages: ${JSON.stringify(out.map((f) => f.offset))}`);
    out.push(await c.next('message', left));
  }
  return out;
}
