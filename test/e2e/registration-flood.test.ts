import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startServer, type ClientCreds, type Harness } from '../helpers/server.ts';
import { withDb } from '../helpers/upgrade.ts';

/**
 * Resource test for registration floods (issue item 3): one valid client loops POST /consumers with
 * an attacker's concurrency while a backend publishes. Ingest latency must stay near the baseline
 * measured in the same test, and the tokens minted must stay capped. Bounded: at most FLOOD_MS and
 * MAX_REQUESTS registrations, on loopback; the bounds are generous (the machine is shared).
 */

const FLOOD_MS = 6000;
const MAX_REQUESTS = 4000;
const CONCURRENCY = 16;
/**
 * p99 under the flood must stay below 5× the baseline p99, or this floor: generous because the test
 * machine is shared (p99s of 50–160 ms were seen here under other suites' load). Before the fixes
 * the same flood gave 400–530 ms with the defaults, and ≈ 990 ms with hashing allowed on the whole
 * libuv pool.
 */
const LATENCY_FLOOR_MS = 250;

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!;
}

describe('registration flood (resource test)', () => {
  let h: Harness | undefined;
  const children = new Set<ChildProcess>();
  afterEach(async () => {
    for (const c of children) c.kill('SIGKILL');
    children.clear();
    const harness = h;
    h = undefined;
    await harness?.close();
  });

  async function ingestLatencies(until: () => boolean, max: number): Promise<number[]> {
    const out: number[] = [];
    while (out.length < max && !until()) {
      const t0 = performance.now();
      const r = await h!.ingest('flood.probe', { n: out.length });
      out.push(performance.now() - t0);
      expect(r.status).toBe(202);
    }
    return out;
  }

  /**
   * The attacker runs in a child process, so that its own HTTP client work does not share the
   * server's event loop (the server runs in this process, as in every e2e test).
   */
  async function flood(creds: ClientCreds): Promise<{ codes: Map<string, number>; ms: number; tokens: string[] }> {
    const script = `
      const [base, body, floodMs, max, concurrency] = process.argv.slice(1);
      const codes = {}; const tokens = []; let sent = 0; const start = Date.now();
      const worker = async () => {
        while (sent < Number(max) && Date.now() - start < Number(floodMs)) {
          sent++;
          try {
            const r = await fetch(base + '/consumers', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
            const j = await r.json();
            const code = r.status === 201 ? 'created' : String(j && j.error && j.error.code);
            codes[code] = (codes[code] || 0) + 1;
            if (j && j.token) tokens.push(j.token);
          } catch { codes.network = (codes.network || 0) + 1; }
        }
      };
      await Promise.all(Array.from({ length: Number(concurrency) }, worker));
      process.stdout.write(JSON.stringify({ codes, tokens, ms: Date.now() - start }));
    `;
    const args = [
      '--input-type=module',
      '-e',
      script,
      h!.base,
      JSON.stringify(creds),
      String(FLOOD_MS),
      String(MAX_REQUESTS),
      String(CONCURRENCY),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await new Promise((resolve) => child.once('exit', resolve));
    children.delete(child);
    const r = JSON.parse(out) as { codes: Record<string, number>; tokens: string[]; ms: number };
    h!.remember(...r.tokens);
    return { codes: new Map(Object.entries(r.codes)), ms: r.ms, tokens: r.tokens };
  }

  async function run(config: ConfigInput) {
    h = await startServer(config);
    const creds = await h.createClient();
    // Warm up (JIT, connections, the store), then the baseline.
    await ingestLatencies(() => false, 50);
    const baseline = await ingestLatencies(() => false, 200);
    let done = false;
    const attack = flood(creds).finally(() => (done = true));
    const under = await ingestLatencies(() => done, 100_000);
    const result = await attack;
    const tokens = withDb(
      h.dataDir,
      (db) => (db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE client_id = ?').get(creds.client_id) as { n: number }).n,
    );
    const figures = {
      baselineP99Ms: Math.round(p99(baseline) * 10) / 10,
      underFloodP99Ms: Math.round(p99(under) * 10) / 10,
      ingestSamplesUnderFlood: under.length,
      floodMs: Math.round(result.ms),
      answers: Object.fromEntries(result.codes),
      tokensStored: tokens,
    };
    console.info(`registration flood: ${JSON.stringify(figures)}`);
    return { ...figures, minted: result.codes.get('created') ?? 0 };
  }

  it('with the defaults: ingest p99 stays near its baseline; registrations past the per-client rate get 429 and tokens stay capped', async () => {
    const f = await run({});
    expect(f.ingestSamplesUnderFlood).toBeGreaterThan(20);
    expect(f.underFloodP99Ms).toBeLessThan(Math.max(LATENCY_FLOOR_MS, 5 * f.baselineP99Ms));
    // Default per-client allowance: a burst of 30, then 60 a minute.
    expect(f.minted).toBeLessThanOrEqual(60 + Math.ceil(f.floodMs / 1000) + 2);
    // The per-client allowance is reached only when the flood mints more than its burst within the
    // flood (on a machine whose scrypt is slow, the hashing cap — 503 — binds first): then 429s follow.
    if (f.minted >= 60) expect(f.answers.registration_rate_limited).toBeGreaterThan(0);
    else expect(f.answers.unavailable).toBeGreaterThan(0);
    expect(f.tokensStored).toBe(f.minted);
  }, 60_000);

  it('with the registration rate limits lifted: hashing never takes the pool from the store, and the token cap holds', async () => {
    const lifted = { perClientBurst: 1_000_000, perClientPerMinute: 1_000_000, perIpBurst: 1_000_000, perIpPerMinute: 1_000_000 };
    const f = await run({ tokens: { maxPerClient: 20 }, limits: { registerConcurrency: 8, registrations: lifted } });
    expect(f.ingestSamplesUnderFlood).toBeGreaterThan(20);
    expect(f.underFloodP99Ms).toBeLessThan(Math.max(LATENCY_FLOOR_MS, 5 * f.baselineP99Ms));
    expect(f.minted).toBeGreaterThan(20);
    expect(f.tokensStored).toBe(20);
  }, 60_000);
});
