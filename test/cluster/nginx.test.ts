import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesUp, CONTRACT, killAll, startCluster, takeMessages, until, within, type Cluster } from '../helpers/cluster.ts';
import { barrier } from '../helpers/e2e.ts';
import { serviceUp } from '../helpers/tcp-proxy.ts';
import { TestClient } from '../helpers/ws-client.ts';

/**
 * examples/nginx/hubcast-cluster.conf, as shipped (only its ports replaced), in front of three nodes
 * (PostgreSQL store and broker: the smallest cluster): registration, WebSockets, ingest, 409 and a
 * drained node, all through nginx, round robin without stickiness.
 */

const NGINX = '/usr/sbin/nginx';
const CONF = new URL('../../examples/nginx/hubcast-cluster.conf', import.meta.url);

async function haveNginx(): Promise<boolean> {
  if (existsSync(NGINX)) return true;
  if (process.env.HUBCAST_REQUIRE_SERVICES === '1')
    throw new Error(`${NGINX} is missing and HUBCAST_REQUIRE_SERVICES=1 (apt-get install nginx-light)`);
  process.stdout.write(`skipping the nginx test: ${NGINX} is missing (apt-get install nginx-light)\n`);
  return false;
}

const up = (await haveNginx()) && (await clusterServicesUp('postgres'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The example config with the node ports and the listening port replaced, nothing else. */
function render(nodePorts: number[], listen: number): string {
  let text = readFileSync(CONF, 'utf8');
  nodePorts.forEach((p, i) => {
    const from = `server 127.0.0.1:${8081 + i} `;
    if (!text.includes(from)) throw new Error(`the example no longer has "${from}"`);
    text = text.replace(from, `server 127.0.0.1:${p} `);
  });
  if (!text.includes('listen 127.0.0.1:8080;')) throw new Error('the example no longer listens on 127.0.0.1:8080');
  return text.replace('listen 127.0.0.1:8080;', `listen 127.0.0.1:${listen};`);
}

describe.skipIf(!up)('three nodes behind nginx (examples/nginx/hubcast-cluster.conf)', () => {
  let cluster: Cluster;
  let nginx: ChildProcess | undefined;
  let nginxErr = '';
  let prefix: string;
  let lb: string;

  beforeAll(async () => {
    cluster = await startCluster({ broker: 'postgres', nodes: 3, leaseS: 2, extraConfig: { ingest: { trustProxy: ['127.0.0.1/32'] } } });
    prefix = mkdtempSync(join(tmpdir(), 'hubcast-nginx-'));
    // nginx started as root runs its workers as nobody: they must reach the temp dirs in the prefix.
    chmodSync(prefix, 0o755);
    const port = await freePort();
    const conf = join(prefix, 'hubcast-cluster.conf');
    writeFileSync(
      conf,
      render(
        cluster.nodes.map((n) => n.port),
        port,
      ),
    );
    nginx = spawn(NGINX, ['-p', prefix, '-e', 'stderr', '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    nginx.stderr!.on('data', (d: Buffer) => void (nginxErr += d.toString()));
    await until(() => serviceUp(port, 200), 10_000, `nginx listening (${nginxErr})`, 100);
    lb = `http://127.0.0.1:${port}`;
  }, 90_000);

  afterAll(async () => {
    if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
      const gone = new Promise((r) => nginx!.once('exit', r));
      nginx.kill('SIGTERM');
      await within(gone, 10_000, 'nginx exit').catch(() => nginx!.kill('SIGKILL'));
    }
    await cluster?.close();
    await killAll();
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  }, 30_000);

  it('balances HTTP round robin over every node (no stickiness)', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const r = await cluster.fetchJson(lb, CONTRACT.healthPath);
      expect(r.status).toBe(200);
      seen.add(r.body.node as string);
    }
    expect([...seen].sort()).toEqual(['a', 'b', 'c']);
  });

  it('registers, connects and publishes through nginx; every consumer gets every message once, in order; a duplicate is 409', async () => {
    const creds = await cluster.createClient({ subscribe: ['lb.>'] });
    const tokens = await Promise.all([1, 2, 3].map(() => cluster.register(lb, creds)));
    const consumers = [];
    for (const t of tokens) consumers.push(await cluster.connect(lb, t));
    for (const c of consumers) await c.subscribe('lb.news');

    // Through nginx, the consumers sit on more than one node (presence names them).
    const nodes = await until(
      async () => {
        const r = await cluster.presence(lb, 'lb.news');
        const list = (r.body.subscribers ?? []) as { node: string }[];
        return list.length === 3 ? new Set(list.map((s) => s.node)) : undefined;
      },
      3000,
      'three subscribers in presence',
      100,
    );
    expect(nodes.size).toBeGreaterThan(1);

    for (let i = 1; i <= 10; i++) expect((await cluster.ingest(lb, 'lb.news', { i })).status).toBe(202);
    for (const c of consumers) expect((await takeMessages(c, 10, 10_000)).map((f) => f.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // The same token again, wherever nginx sends it: 409, passed through as is.
    for (let i = 0; i < 3; i++) expect((await cluster.tryConnect(lb, tokens[0]!)).status).toBe(CONTRACT.duplicateStatus);
    await barrier(consumers[0]!);
  }, 60_000);

  it('passes the credential headers whose names hold an underscore (client_id, client_secret, token)', async () => {
    const creds = await cluster.createClient({ subscribe: ['lb.>'] });
    const reg = await cluster.fetchJson(lb, '/consumers', { method: 'POST', headers: { ...creds } });
    expect(reg.status).toBe(201);
    const ws = new TestClient(lb.replace('http', 'ws') + '/ws', {
      headers: { client_id: creds.client_id, token: reg.body.token as string },
    });
    try {
      await ws.opened;
      expect((await ws.next('welcome')).client_id).toBe(creds.client_id);
    } finally {
      ws.ws.terminate();
    }
  });

  it('ingest is judged on the address nginx forwards, not on one a client claims', async () => {
    const r = await cluster.fetchJson(lb, '/entity', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.ingestKey}`, 'x-forwarded-for': '203.0.113.9' },
      body: JSON.stringify({ topic: 'lb.xff', data: 1 }),
    });
    expect(r.status).toBe(202);
  });

  it('draining a node (SIGTERM → 1001): its consumers reconnect through nginx with since and miss nothing', async () => {
    const creds = await cluster.createClient({ subscribe: ['lb.>'] });
    const token = await cluster.register(lb, creds);
    const c = await cluster.connect(lb, token);
    const sub = await c.subscribe('lb.drain');
    expect((await cluster.ingest(lb, 'lb.drain', { i: 1 })).status).toBe(202);
    expect((await c.next('message', 5000)).offset).toBe(1);

    // Presence is written within ~100 ms of the subscribe: it names the node nginx chose.
    const holder = await until(
      async () => {
        const list = ((await cluster.presence(lb, 'lb.drain')).body.subscribers ?? []) as { connection_id: string; node: string }[];
        return list.find((s) => s.connection_id === c.connectionId)?.node;
      },
      3000,
      'the consumer in presence',
      100,
    );
    const node = cluster.node(holder);
    const [closed] = await Promise.all([within(c.closed, 10_000, 'consumer closed by the drain'), node.stop()]);
    expect(closed.code).toBe(CONTRACT.close.goingAway);

    for (let i = 2; i <= 6; i++) expect((await cluster.ingest(lb, 'lb.drain', { i })).status).toBe(202);
    const again = await until(
      async () => {
        const r = await cluster.tryConnect(lb, token);
        return r.status === 101 ? (r as { client: Awaited<ReturnType<Cluster['connect']>> }).client : undefined;
      },
      5000,
      'reconnect through nginx',
      100,
    );
    expect(await again.subscribe('lb.drain', { offset: 1, epoch: sub.epoch as string })).toMatchObject({ recovered: true, offset: 6 });
    expect((await takeMessages(again, 5)).map((f) => f.offset)).toEqual([2, 3, 4, 5, 6]);
    await node.start();
  }, 60_000);
});
