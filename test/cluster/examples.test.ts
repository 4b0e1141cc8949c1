import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';

/**
 * examples/cluster/node-*.yaml are valid configs for one cluster (same store, schema and broker;
 * distinct node ids, ports and data dirs) and match the upstreams of examples/nginx/hubcast-cluster.conf.
 */

const dir = fileURLToPath(new URL('../../examples/cluster/', import.meta.url));
const files = readdirSync(dir).filter((f) => /^node-.*\.ya?ml$/.test(f));
const configs = files.map((f) => loadConfig({ file: dir + f, env: {} }));
const nginx = readFileSync(new URL('../../examples/nginx/hubcast-cluster.conf', import.meta.url), 'utf8');

describe('examples/cluster', () => {
  it('has three nodes that form one cluster', () => {
    expect(files.length).toBe(3);
    const one = (pick: (c: (typeof configs)[number]) => unknown) => new Set(configs.map((c) => JSON.stringify(pick(c)))).size;
    expect(one((c) => [c.store, c.broker, c.cluster, c.ingest, c.history])).toBe(1);
    expect(configs[0]!.store.type).toBe('postgres');
    expect(configs[0]!.broker.type).not.toBe('memory');
    expect(new Set(configs.map((c) => c.nodeId)).size).toBe(3);
    expect(new Set(configs.map((c) => c.port)).size).toBe(3);
    expect(new Set(configs.map((c) => c.dataDir)).size).toBe(3);
  });

  it('every node is an upstream of the nginx example, which Hubcast trusts for X-Forwarded-For', () => {
    const upstreams = [...nginx.matchAll(/^\s*server\s+([\d.]+):(\d+)\b/gm)].map((m) => `${m[1]}:${m[2]}`);
    expect(upstreams.sort()).toEqual(configs.map((c) => `${c.host}:${c.port}`).sort());
    for (const c of configs) expect(c.ingest.trustProxy).toContain('127.0.0.1/32');
  });

  it('the nginx example balances without stickiness and upgrades WebSockets', () => {
    expect(nginx).not.toMatch(/^\s*(ip_hash|hash|sticky)\b/m);
    expect(nginx).toMatch(/proxy_http_version 1\.1;/);
    expect(nginx).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(nginx).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
    expect(nginx).toMatch(/proxy_set_header X-Forwarded-For /);
    expect(nginx).toMatch(/underscores_in_headers on;/);
  });
});
