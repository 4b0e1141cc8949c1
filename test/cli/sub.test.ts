import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, startServer, tempDir, type ClientCreds, type Harness } from '../helpers/server.ts';
import { startCli, stopAll, type CliProcess } from './process.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** `hubcast sub` as a real process against a real server: what it prints, where it resumes, how it ends. */
describe('hubcast sub', { timeout: 60_000 }, () => {
  let h: Harness;
  let creds: ClientCreds;
  let n = 0;
  const fresh = () => `sub.t${++n}`;
  const sub = (args: string[], server: Harness = h): CliProcess => startCli(['sub', '--url', server.base, ...args]);
  const asClient = (c: ClientCreds = creds) => ['--client-id', c.client_id, '--client-secret', c.client_secret];
  /** Publishes a raw body to POST /entity/<topic>. */
  const post = async (topic: string, body: string | Uint8Array<ArrayBuffer>, contentType: string) => {
    const res = await fetch(`${h.base}/entity/${topic}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.ingestKey}`, 'content-type': contentType },
      body,
    });
    expect(res.status).toBe(202);
  };
  const publish = async (topic: string, ...data: unknown[]) => {
    for (const d of data) expect((await h.ingest(topic, d)).status).toBe(202);
  };
  const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l) as { topic: string; offset: number; data?: unknown; base64?: string });

  beforeAll(async () => {
    h = await startServer();
    creds = await h.createClient({ subscribe: ['sub.>'] });
  });
  afterEach(stopAll);
  afterAll(async () => h.close());

  it('prints one JSON line per message (JSON, text, binary as base64); status goes to stderr; --count N exits 0 after N', async () => {
    const t = fresh();
    const p = sub([t, '--count', '3', ...asClient()]);
    await p.waitForStderr(new RegExp(`${t.replace('.', '\\.')}: subscribed, latest offset 0`));
    await publish(t, { order: 42, status: 'paid' });
    await post(t, 'order 42 packed', 'text/plain');
    await post(t, new Uint8Array([0x52, 0x41, 0x57, 0xff]), 'application/octet-stream');
    expect((await p.exited).code).toBe(0);
    const lines = parsed(p.lines());
    expect(lines).toMatchObject([
      { topic: t, offset: 1, data: { order: 42, status: 'paid' } },
      { topic: t, offset: 2, data: 'order 42 packed' },
      { topic: t, offset: 3, base64: Buffer.from([0x52, 0x41, 0x57, 0xff]).toString('base64') },
    ]);
    expect(lines[2]).not.toHaveProperty('data');
    expect(p.stderr()).toMatch(/^hubcast sub: connected to http:\/\/127\.0\.0\.1:\d+ \(connection cn_/);
  });

  it('--raw prints the data only: a string as is, JSON as JSON, binary bytes as they are', async () => {
    const t = fresh();
    await publish(t, { a: 1 }, 'a "quoted" string');
    await post(t, new Uint8Array([0x00, 0xfe, 0x41]), 'application/octet-stream');
    const token = await h.register(creds);
    const p = sub([t, '--since', '0', '--raw', '--count', '3', '--quiet', '--token', token]);
    expect((await p.exited).code).toBe(0);
    expect(
      p.stdoutBytes().equals(Buffer.concat([Buffer.from('{"a":1}\na "quoted" string\n'), Buffer.from([0x00, 0xfe, 0x41, 0x0a])])),
    ).toBe(true);
    expect(p.stderr()).toBe('');
  });

  it('--position-file: stopped (SIGTERM, exit 0), run again, it prints exactly what it missed, then live messages', async () => {
    const t = fresh();
    const file = join(tempDir(), 'position.json');
    await publish(t, { i: 1 }); // before the first run, without --since: not printed
    const first = sub([t, '--position-file', file, ...asClient()]);
    await first.waitForStderr(/subscribed, latest offset 1/);
    await publish(t, { i: 2 }, { i: 3 });
    await first.waitForLines(2);
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(parsed(first.lines()).map((m) => m.data)).toEqual([{ i: 2 }, { i: 3 }]);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { offset: number; epoch: string }>;
    expect(saved[t]).toEqual({ offset: 3, epoch: expect.any(String) });

    await publish(t, { i: 4 }, { i: 5 }); // missed while stopped
    const second = sub([t, '--position-file', file, '--since', '0', ...asClient()]); // the file wins over --since
    await second.waitForLines(2);
    await second.waitForStderr(/resuming after offset 3 \(recovered\)/);
    await publish(t, { i: 6 });
    await second.waitForLines(3);
    second.child.kill('SIGINT');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(parsed(second.lines()).map((m) => [m.offset, m.data])).toEqual([
      [4, { i: 4 }],
      [5, { i: 5 }],
      [6, { i: 6 }],
    ]);
    expect(JSON.parse(readFileSync(file, 'utf8'))[t].offset).toBe(6);
  });

  it('--since N replays after offset N; a pattern is live only and gets every matching topic', async () => {
    const t = fresh();
    await publish(t, { i: 1 }, { i: 2 }, { i: 3 });
    const file = join(tempDir(), 'position.json');
    const replay = sub([t, '--since', '1', '--count', '2', '--position-file', file, ...asClient()]);
    expect((await replay.exited).code).toBe(0);
    expect(parsed(replay.lines()).map((m) => m.offset)).toEqual([2, 3]);
    expect(JSON.parse(readFileSync(file, 'utf8'))[t].offset).toBe(3); // saved before --count ended it

    const pattern = sub(['sub.*', '--count', '2', ...asClient()]);
    await pattern.waitForStderr(/sub\.\*: subscribed \(a pattern: live only\)/);
    const [a, b] = [fresh(), fresh()];
    await publish(a, 'to a');
    await publish(b, 'to b');
    expect((await pattern.exited).code).toBe(0);
    expect(parsed(pattern.lines()).map((m) => [m.topic, m.data])).toEqual([
      [a, 'to a'],
      [b, 'to b'],
    ]);
  });

  it('keeps going through a server restart: nothing lost, nothing printed twice', async () => {
    // A server of its own on a fixed port, so that the restarted server is where the CLI reconnects.
    const port = await freePort();
    const own = await startServer({ port });
    const t = fresh();
    const client = await own.createClient({ subscribe: ['sub.>'] });
    // A keep-alive socket to the stopped server fails once: retried under an idempotency key.
    const publish = async (topic: string, ...data: { i: number }[]) => {
      for (const d of data) {
        const once = () => own.ingest(topic, d, { 'idempotency-key': `i-${d.i}` });
        expect((await once().catch(once)).status).toBe(202);
      }
    };
    const p = sub([t, ...asClient(client)], own);
    await p.waitForStderr(/subscribed, latest offset 0/);
    await publish(t, { i: 1 }, { i: 2 });
    await p.waitForLines(2);
    await own.restart();
    await publish(t, { i: 3 }, { i: 4 }); // while it reconnects
    await p.waitForStderr(/disconnected \(closed with 1001 \(going away\)/);
    await p.waitForLines(4, 20_000);
    await publish(t, { i: 5 });
    await p.waitForLines(5);
    expect(parsed(p.lines()).map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);
    expect(p.stderr()).toMatch(/resuming after offset 2 \(recovered\)/);
    p.child.kill('SIGTERM');
    await p.exited;
    await own.close();
  });

  it('a terminal refusal ends it with exit 1 and says why: revoked (4500), forbidden topic, bad token, wrong secret', async () => {
    const doomed = await h.createClient({ subscribe: ['sub.>'], name: 'doomed' });
    const t = fresh();
    const revoked = sub([t, ...asClient(doomed)]);
    await revoked.waitForStderr(/subscribed/);
    const r = await cli(['clients', 'revoke', doomed.client_id, '--data-dir', h.dataDir]);
    expect(r.code).toBe(0);
    expect((await revoked.exited).code).toBe(1);
    expect(revoked.stderr()).toMatch(/hubcast sub: stopped: closed with 4500 \(revoked\)/);

    const forbidden = sub(['other.topic', ...asClient()]);
    expect((await forbidden.exited).code).toBe(1);
    expect(forbidden.stderr()).toMatch(/hubcast sub: other\.topic: forbidden: not allowed to subscribe to other\.topic\n/);

    const badToken = sub([t, '--token', 'x'.repeat(43)]);
    expect((await badToken.exited).code).toBe(1);
    expect(badToken.stderr()).toMatch(/hubcast sub: stopped: HTTP 401 unauthorized: the token is unknown, expired or revoked\n/);

    const wrongSecret = sub([t, '--client-id', creds.client_id, '--client-secret', 'wrong']);
    expect((await wrongSecret.exited).code).toBe(1);
    expect(wrongSecret.stderr()).toMatch(/hubcast sub: stopped: HTTP 401 invalid_client: unknown client, wrong secret or revoked client\n/);
    expect(wrongSecret.stdout()).toBe('');
  });

  it('usage errors exit 2 before connecting', async () => {
    const cases: [string[], RegExp][] = [
      [[], /needs at least one TOPIC_OR_PATTERN/],
      [['sub.a'], /needs credentials/],
      [['sub.a', '--token', 't', '--client-id', 'c'], /not both/],
      [['sub.*', '--since', '0', '--token', 't'], /--since applies to topics, not patterns/],
      [['sub..a', '--token', 't'], /is not a topic or pattern/],
      [['sub.a', '--since', 'x', '--token', 't'], /--since is an integer/],
    ];
    for (const [args, re] of cases) {
      const p = sub(args);
      expect((await p.exited).code, args.join(' ')).toBe(2);
      expect(p.stderr()).toMatch(re);
    }
  });
});
