import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type Harness } from '../helpers/server.ts';
import { decodeBinary, type TestClient } from '../helpers/ws-client.ts';
import { runCli, stopAll } from './process.ts';

/** `hubcast pub` as a real process against a real server; what consumers receive is checked on a WebSocket. */
describe('hubcast pub', { timeout: 60_000 }, () => {
  let h: Harness;
  let c: TestClient;
  let n = 0;
  /** A fresh topic per test, with the consumer subscribed to it from its start. */
  const topic = async () => {
    const t = `pub.t${++n}`;
    await c.subscribe(t, { offset: 0 });
    return t;
  };
  const pub = (args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}) =>
    runCli(['pub', '--url', h.base, ...args], opts);
  const answer = (line: string) => JSON.parse(line) as { topic: string; offset: number; id: string };

  beforeAll(async () => {
    h = await startServer();
    c = await h.connect(await h.register(await h.createClient({ subscribe: ['pub.>'] })));
  });
  afterEach(stopAll);
  afterAll(async () => h.close());

  it('publishes DATA: JSON when it parses, else text; --content-type decides when given', async () => {
    const t = await topic();
    const r1 = await pub([t, '{"order":42}', '--key', h.ingestKey]);
    expect(r1.err).toBe('');
    expect(r1.code).toBe(0);
    expect(answer(r1.out)).toMatchObject({ topic: t, offset: 1 });
    expect(answer(r1.out).id).toMatch(/^m_/);
    expect((await c.next('message')).data).toEqual({ order: 42 });

    const r2 = await pub([t, 'order 42 packed'], { env: { HUBCAST_KEY: h.ingestKey } });
    expect(r2.code).toBe(0);
    expect(answer(r2.out).offset).toBe(2);
    expect((await c.next('message')).data).toBe('order 42 packed');

    const r3 = await pub([t, '42', '--content-type', 'text/plain', '--key', h.ingestKey]);
    expect(r3.code).toBe(0);
    expect((await c.next('message')).data).toBe('42');
  });

  it('- reads stdin byte for byte: bytes that are not UTF-8 go out as a binary message', async () => {
    const t = await topic();
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x52, 0x41, 0x57, 0x0a]);
    const r = await pub([t, '-', '--key', h.ingestKey], { input: bytes });
    expect(r.code).toBe(0);
    expect(answer(r.out)).toMatchObject({ topic: t, offset: 1 });
    const { header, payload } = decodeBinary(await c.nextBinary());
    expect(header).toMatchObject({ topic: t, offset: 1 });
    expect(payload.equals(bytes)).toBe(true);

    const json = await pub([t, '--key', h.ingestKey], { input: '{"status":"paid"}\n' });
    expect(json.code).toBe(0);
    expect((await c.next('message')).data).toEqual({ status: 'paid' });
  });

  it('--lines: one message per non-empty line, in order, one answer each', async () => {
    const t = await topic();
    const r = await pub([t, '--lines', '--key', h.ingestKey], { input: '{"i":1}\nsecond line\n\n{"i":3}\r\n{"i":4}' });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(
      r.out
        .trim()
        .split('\n')
        .map((l) => answer(l).offset),
    ).toEqual([1, 2, 3, 4]);
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await c.next('message')).data);
    expect(got).toEqual([{ i: 1 }, 'second line', { i: 3 }, { i: 4 }]);
  });

  it('--lines --concurrency N: every line is published once and the answers come in line order', async () => {
    const t = await topic();
    const input = Array.from({ length: 40 }, (_, i) => JSON.stringify({ i: i + 1 })).join('\n');
    const r = await pub([t, '--lines', '--concurrency', '8', '--idempotency-key', 'batch', '--key', h.ingestKey], { input });
    expect(r.code).toBe(0);
    const ids = r.out
      .trim()
      .split('\n')
      .map((l) => answer(l).id);
    expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => `batch-${i + 1}`));
    const got = new Set<number>();
    for (let i = 0; i < 40; i++) got.add(((await c.next('message')).data as { i: number }).i);
    expect(got.size).toBe(40);
  });

  it('--lines stops at the first refusal, names the line and exits 1; with --idempotency-key a rerun stores nothing twice', async () => {
    const t = await topic();
    const args = [t, '--lines', '--content-type', 'application/json', '--idempotency-key', 'import-7', '--key', h.ingestKey];
    const bad = await pub(args, { input: '{"i":1}\n\n{"i":2}\n{broken\n{"i":4}\n' });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^hubcast pub: line 4: 400 invalid_json: /);
    expect(bad.out.trim().split('\n').map(answer)).toEqual([
      { topic: t, offset: 1, id: 'import-7-1' },
      { topic: t, offset: 2, id: 'import-7-3' },
    ]);

    // The input fixed and sent again: the lines already stored are answered with their first offsets.
    const fixed = await pub(args, { input: '{"i":1}\n\n{"i":2}\n{"i":3}\n{"i":4}\n' });
    expect(fixed.err).toBe('');
    expect(fixed.code).toBe(0);
    expect(
      fixed.out
        .trim()
        .split('\n')
        .map((l) => answer(l).offset),
    ).toEqual([1, 2, 3, 4]);
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await c.next('message')).data);
    expect(got).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
    await expect(c.next('message', 300)).rejects.toThrow();
  });

  it('--idempotency-key: the same request twice is one message; the key on another body is a conflict', async () => {
    const t = await topic();
    const first = await pub([t, '{"status":"shipped"}', '--idempotency-key', 'order-42-shipped', '--key', h.ingestKey]);
    const again = await pub([t, '{"status":"shipped"}', '--idempotency-key', 'order-42-shipped', '--key', h.ingestKey]);
    expect(answer(first.out)).toEqual({ topic: t, offset: 1, id: 'order-42-shipped' });
    expect(answer(again.out)).toEqual({ topic: t, offset: 1, id: 'order-42-shipped' });
    const conflict = await pub([t, '{"status":"lost"}', '--idempotency-key', 'order-42-shipped', '--key', h.ingestKey]);
    expect(conflict.code).toBe(1);
    expect(conflict.out).toBe('');
    expect(conflict.err).toMatch(/^hubcast pub: 409 idempotency_key_conflict: /);
    expect((await c.next('message')).data).toEqual({ status: 'shipped' });
    await expect(c.next('message', 300)).rejects.toThrow();
  });

  it('refusals say what the server said: no key, a wrong key, an invalid topic; usage errors exit 2', async () => {
    const noKey = await pub(['pub.x', '1']);
    expect(noKey.code).toBe(1);
    expect(noKey.err).toMatch(/^hubcast pub: 401 invalid_key: .*\(give the ingest key: --key KEY or HUBCAST_KEY\)\n$/);
    const wrong = await pub(['pub.x', '1', '--key', 'not-a-key']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/^hubcast pub: 401 invalid_key: /);
    expect(wrong.err).not.toContain('give the ingest key');
    const pattern = await pub(['pub.*', '1', '--key', h.ingestKey]);
    expect(pattern.code).toBe(1);
    expect(pattern.err).toMatch(/^hubcast pub: 400 invalid_topic: /);
    const usage = await runCli(['pub']);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/^hubcast: pub needs a TOPIC/);
    const both = await pub(['pub.x', 'data', '--lines']);
    expect(both.code).toBe(2);
  });

  it('a server that is not there: a clear message and exit 1; without --url the configured port is used', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const down = await runCli(['pub', '--url', `http://127.0.0.1:${port}`, 'pub.x', '1', '--key', h.ingestKey]);
    expect(down.code).toBe(1);
    expect(down.err).toBe(`hubcast pub: cannot reach http://127.0.0.1:${port}/entity/pub.x: ECONNREFUSED\n`);

    const t = await topic();
    const viaConfig = await runCli(['pub', '--host', '127.0.0.1', '--port', String(h.port), t, '"hi"', '--key', h.ingestKey]);
    expect(viaConfig.code).toBe(0);
    expect((await c.next('message')).data).toBe('hi');
  });
});
