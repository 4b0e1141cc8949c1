import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { startHubcast, subdir, type HubcastProc } from './hubcast-server.ts';
import type { Children } from './procs.ts';

/**
 * Hubcast nodes of a cluster, as bench children: the config keys of each topology (a PostgreSQL
 * store in a fresh schema and a broker under a fresh prefix, or — the plumbing mode — independent
 * SQLite nodes on the in-memory broker), the servers they need, and the schema dropped afterwards.
 * The backends are the machine's own servers on loopback (never mocked): PostgreSQL, Redis, NATS.
 */

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const SERVICES = {
  postgres: { port: 5432, url: PG_URL },
  redis: { port: 6379, url: 'redis://127.0.0.1:6379' },
  nats: { port: 4222, url: 'nats://127.0.0.1:4222' },
} as const;

export type BrokerKind = 'redis' | 'nats' | 'postgres';
export const BROKERS: readonly BrokerKind[] = ['redis', 'nats', 'postgres'];

export type Topology =
  /** Several nodes, one hub: PostgreSQL store (`schema`), a cluster broker (`prefix`). */
  | { store: 'postgres'; broker: BrokerKind | 'memory'; schema: string; prefix: string }
  /** Each node its own SQLite data dir and in-memory broker: no cross-node delivery (plumbing). */
  | { store: 'sqlite' };

/** A fresh lower-case identifier (`bench_cluster_3f9a…`) for a schema or a broker prefix. */
export const uniqueName = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

/** The raw config (for parseConfig) of the store a node of `t` opens; `dataDir` for SQLite. */
export function storeConfig(t: Topology, dataDir: string): Record<string, unknown> {
  if (t.store === 'sqlite') return { dataDir, store: { synchronous: 'normal' } };
  return { dataDir, store: { type: 'postgres', url: PG_URL, schema: t.schema } };
}

/** The config keys (→ HUBCAST_* variables) of node `nodeId` of `t`. */
export function nodeConfig(t: Topology, nodeId: string): Record<string, string | number> {
  if (t.store === 'sqlite') return { nodeId };
  const c: Record<string, string | number> = {
    nodeId,
    'store.type': 'postgres',
    'store.url': PG_URL,
    'store.schema': t.schema,
    'broker.type': t.broker,
  };
  if (t.broker !== 'memory') {
    c['broker.prefix'] = t.prefix;
    if (t.broker !== 'postgres') c['broker.url'] = SERVICES[t.broker].url;
  }
  return c;
}

export interface StartNodes {
  topology: Topology;
  count: number;
  /** `dir/node-<i>/` holds each node's log, data dir and CPU profiles. */
  dir: string;
  /** Node i's data dir (the seeded SQLite dir in the plumbing mode). */
  dataDir: (i: number) => string;
  nofile: number;
  /** Pin every node to this CPU; null: not pinned. */
  cpu: number | null;
  cpuProf: boolean;
  /** Extra config keys for every node. */
  config?: Record<string, string | number>;
}

export interface ClusterNode extends HubcastProc {
  nodeId: string;
  logFile: string;
  profDir: string | undefined;
}

/** Starts the nodes one after the other (each registers its lease before the next boots). */
export async function startNodes(children: Children, s: StartNodes): Promise<ClusterNode[]> {
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < s.count; i++) {
    const dir = subdir(s.dir, `node-${i}`);
    const nodeId = `bench-${String.fromCharCode(97 + i)}`;
    const profDir = s.cpuProf ? join(dir, 'cpu-prof') : undefined;
    const logFile = join(dir, 'server.log');
    const proc = await startHubcast(children, {
      name: `hubcast(${nodeId})`,
      dataDir: s.dataDir(i),
      logFile,
      config: { ...nodeConfig(s.topology, nodeId), ...(s.config ?? {}) },
      nofile: s.nofile,
      cpu: s.cpu,
      ...(profDir ? { cpuProfDir: profDir } : {}),
    });
    nodes.push({ ...proc, nodeId, logFile, profDir });
  }
  return nodes;
}

/** Rejects with a precise message when a backend server does not accept TCP connections (2 s bound). */
export function requireService(name: keyof typeof SERVICES): Promise<void> {
  const { port } = SERVICES[name];
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const fail = (why: string) => {
      s.destroy();
      reject(new Error(`${name} is not reachable on 127.0.0.1:${port} (${why}): the cluster scenario needs it`));
    };
    const timer = setTimeout(() => fail('timeout'), 2000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.end();
      resolve();
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(err.code ?? err.message);
    });
  });
}

/** Drops a bench schema and everything in it (idempotent; bounded by the client's timeouts). */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^bench_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop schema ${schema}: not a bench schema`);
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000, statement_timeout: 60_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

const BACKEND_COMMANDS = new Set(['postgres', 'redis-server', 'nats-server']);

/** Pids of the machine's PostgreSQL, Redis and NATS processes (their CPU is the cluster's too). */
export function backendPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (BACKEND_COMMANDS.has(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
