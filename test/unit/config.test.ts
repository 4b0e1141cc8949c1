import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, loadConfig, parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { tempDir } from '../helpers/server.ts';

describe('config', () => {
  it('has the documented defaults and is frozen', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ host: '0.0.0.0', port: 8080, dataDir: './data' });
    expect(c.tokens.idleTtl).toBe(2592000);
    expect(c.tickets.ttlS).toBe(30);
    expect(c.duplicates).toEqual({ policy: 'reject', probeMs: 2000 });
    expect(c.ws.heartbeatS).toBe(25);
    expect(c.ws.perMessageDeflate).toBe(false);
    expect(c.ingest.allow).toEqual(['127.0.0.0/8', '::1/128']);
    expect(c.history).toEqual({ size: 1000, ttlS: 86400, dedupeS: 300 });
    expect(c.limits.maxMessageBytes).toBe(262144);
    expect(Object.isFrozen(c) && Object.isFrozen(c.ingest) && Object.isFrozen(c.ingest.allow)).toBe(true);
  });

  it('names env variables and flags after the key path', () => {
    const byPath = Object.fromEntries(CONFIG_KEYS.map((k) => [k.path, k]));
    expect(byPath['dataDir']).toMatchObject({ env: 'HUBCAST_DATA_DIR', flag: '--data-dir' });
    expect(byPath['ingest.allow']).toMatchObject({ env: 'HUBCAST_INGEST_ALLOW', flag: '--ingest-allow', kind: 'list' });
    expect(byPath['limits.maxBufferedBytes']).toMatchObject({ env: 'HUBCAST_LIMITS_MAX_BUFFERED_BYTES' });
    for (const k of CONFIG_KEYS) expect(k.doc, k.path).not.toBe('');
  });

  it('layers defaults < file < env < flags', () => {
    const dir = tempDir();
    const file = join(dir, 'hubcast.yaml');
    writeFileSync(file, 'port: 9000\nhistory:\n  size: 10\n  ttlS: 60\ningest:\n  allow: [10.0.0.0/8]\n');
    const c = loadConfig({
      file,
      env: {
        HUBCAST_HISTORY_SIZE: '20',
        HUBCAST_INGEST_ALLOW: '10.0.0.0/8,::1/128',
        HUBCAST_INGEST_REQUIRE_KEY: 'false',
        HUBCAST_TOKENS_IDLE_TTL: '12h',
      },
      flags: { 'history.size': '30' },
    });
    expect(c.port).toBe(9000);
    expect(c.history).toMatchObject({ size: 30, ttlS: 60 });
    expect(c.ingest.allow).toEqual(['10.0.0.0/8', '::1/128']);
    expect(c.ingest.requireKey).toBe(false);
    expect(c.tokens.idleTtl).toBe(43200);
    const json = join(dir, 'c.json');
    writeFileSync(json, JSON.stringify({ ws: { heartbeatS: 5 } }));
    expect(loadConfig({ file: json, env: {} }).ws.heartbeatS).toBe(5);
  });

  it('stops with a message naming the key', () => {
    expect(() => loadConfig({ env: { HUBCAST_HISTORY_SIZE: 'lots' } })).toThrow(/history\.size.*HUBCAST_HISTORY_SIZE/);
    expect(() => loadConfig({ env: {}, flags: { port: '70000' } })).toThrow(/port.*--port/);
    expect(() => loadConfig({ env: { HUBCAST_INGEST_ALLOW: '10.0.0.0/99' } })).toThrow(/ingest\.allow/);
    expect(() => loadConfig({ env: { HUBCAST_DUPLICATES_POLICY: 'maybe' } })).toThrow(/duplicates\.policy/);
    expect(() => loadConfig({ env: { HUBCAST_TOKENS_IDLE_TTL: 'soon' } })).toThrow(/tokens\.idleTtl/);
    expect(() => parseConfig({ histroy: { size: 1 } } as never)).toThrow(/unknown key.*histroy/);
    expect(() => parseConfig({ history: { sise: 1 } } as never)).toThrow(ConfigError);
  });

  it('cluster settings: several nodes on SQLite are refused naming the keys; postgres needs a URL', () => {
    expect(() => loadConfig({ env: { HUBCAST_BROKER_TYPE: 'redis' } })).toThrow(
      /store\.type.*broker\.type is redis.*store\.type: postgres/s,
    );
    expect(() => loadConfig({ env: { HUBCAST_STORE_TYPE: 'postgres' } })).toThrow(/store\.url.*set store\.url/s);
    expect(() => loadConfig({ env: { HUBCAST_STORE_TYPE: 'postgres', HUBCAST_STORE_URL: 'mysql://x' } })).toThrow(/store\.url/);
    expect(() =>
      loadConfig({
        env: {
          HUBCAST_STORE_TYPE: 'postgres',
          HUBCAST_STORE_URL: 'postgres://h/db',
          HUBCAST_BROKER_TYPE: 'nats',
          HUBCAST_BROKER_URL: 'redis://x',
        },
      }),
    ).toThrow(/broker\.url.*nats:/s);
    const ok = loadConfig({
      env: {
        HUBCAST_STORE_TYPE: 'postgres',
        HUBCAST_STORE_URL: 'postgres://h/db',
        HUBCAST_BROKER_TYPE: 'redis',
        HUBCAST_CLUSTER_LEASE_S: '4',
      },
    });
    expect(ok.broker.type).toBe('redis');
    expect(ok.cluster.leaseS).toBe(4);
  });

  it('ws.allowedOrigins: each entry must be an origin as a browser sends it; the error names the entry', () => {
    const origins =
      (...list: string[]) =>
      () =>
        parseConfig({ ws: { allowedOrigins: ['https://ok.example.com', ...list] } });
    const cases: [string, RegExp][] = [
      [
        'https://app.example.com/',
        /ws\.allowedOrigins\[1\]: "https:\/\/app\.example\.com\/" has a trailing slash; an origin is exactly https:\/\/app\.example\.com$/,
      ],
      ['https://app.example.com/app', /ws\.allowedOrigins\[1\]: .* has a path/],
      ['example.com', /ws\.allowedOrigins\[1\]: "example\.com" is not an origin/],
      ['null', /ws\.allowedOrigins\[1\]: "null" is not an origin/],
      ['ftp://example.com', /ws\.allowedOrigins\[1\]: .* is not an origin/],
      ['https://App.example.com', /ws\.allowedOrigins\[1\]: .*an origin is exactly https:\/\/app\.example\.com/],
      ['https://app.example.com:443', /ws\.allowedOrigins\[1\]: .*an origin is exactly https:\/\/app\.example\.com/],
      ['', /ws\.allowedOrigins\[1\]: "" is not an origin/],
    ];
    for (const [entry, message] of cases) {
      expect(origins(entry), entry).toThrow(ConfigError);
      expect(origins(entry), entry).toThrow(message);
    }
    expect(() => loadConfig({ env: { HUBCAST_WS_ALLOWED_ORIGINS: 'https://a.example.com/' } })).toThrow(
      /ws\.allowedOrigins\[0\]: .*trailing slash.*\(from HUBCAST_WS_ALLOWED_ORIGINS\)/,
    );
    // Accepted: exact origins with a non-default port, and "*" (any origin, like an empty list).
    expect(
      parseConfig({ ws: { allowedOrigins: ['http://localhost:3000', 'https://app.example.com', '*'] } }).ws.allowedOrigins,
    ).toHaveLength(3);
  });
});
