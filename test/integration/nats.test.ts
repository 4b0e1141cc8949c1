import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { connect, headers, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FatalSourceError, type ConnectorContext, type SourceRecord } from '../../src/connectors/connector.ts';
import { create, settings, type NatsConnectorConfig } from '../../src/connectors/nats.ts';
import { recordingContext, type RecordingContext } from '../helpers/connector-context.ts';
import { requireService, serviceUp, TcpProxy } from '../helpers/tcp-proxy.ts';

const up = await requireService('NATS', 4222);
const enc = new TextEncoder();
let seq = 0;
/** A name unique to this test run and call, usable in subjects and as a stream or durable name. */
const unique = (prefix: string) => `${prefix}${process.pid}_${Date.now().toString(36)}_${++seq}`;

function config(extra: Record<string, unknown>): NatsConnectorConfig {
  return {
    name: 'nats-test',
    type: 'nats',
    topic: 'nats',
    pipeline: [],
    retry: { attempts: 10, initialMs: 200, maxMs: 30_000 },
    enabled: true,
    ...settings.parse(extra),
  };
}

const keys = (records: SourceRecord[]) => records.map((r) => r.key);

describe.skipIf(!up)('nats connector (real nats-server on 127.0.0.1:4222)', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    jsm = await nc.jetstreamManager();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    for (const s of streams.splice(0)) await jsm.streams.delete(s).catch(() => undefined);
  });
  afterAll(async () => {
    await nc?.close();
  });

  /** Starts `run` and registers an abort + await for the end of the test. */
  function start(conn: { run(ctx: ConnectorContext): Promise<void> }, rc: RecordingContext): Promise<unknown> {
    const done = conn.run(rc.ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    cleanups.push(async () => {
      rc.abort();
      await done;
    });
    return done;
  }

  async function stream(subjects: string[]): Promise<string> {
    const name = unique('S');
    await jsm.streams.add({ name, subjects });
    streams.push(name);
    return name;
  }

  it('core: wildcard subjects, in order, decoded by format auto, keyed by Nats-Msg-Id or content', async () => {
    const base = unique('core');
    const rc = recordingContext();
    const conn = create(config({ subjects: [`${base}.a.*`, `${base}.b.>`] }), { log: rc.ctx.log });
    start(conn, rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');

    const h = headers();
    h.set('Nats-Msg-Id', 'm-1');
    h.append('X-Multi', 'one');
    h.append('X-Multi', 'two');
    nc.publish(`${base}.a.one`, enc.encode('{"n":1}'), { headers: h });
    nc.publish(`${base}.b.x.y`, enc.encode('plain text'));
    nc.publish(`${base}.c.ignored`, enc.encode('{"n":0}'));
    nc.publish(`${base}.a.two.deep`, enc.encode('{"n":0}')); // `*` is one token only
    nc.publish(`${base}.b.w$e#i:rd`, new Uint8Array([0xff, 0xfe, 0x00]));
    nc.publish(`${base}.a.one`, enc.encode('{"n":1}')); // same content, no id: same key as the next
    nc.publish(`${base}.a.one`, enc.encode('{"n":1}'));
    await nc.flush();
    await rc.waitFor(() => rc.records.length === 5, 5000, 'five records');
    await new Promise((r) => setTimeout(r, 100));

    expect(rc.records.map((r) => r.meta?.subject)).toEqual([
      `${base}.a.one`,
      `${base}.b.x.y`,
      `${base}.b.w$e#i:rd`,
      `${base}.a.one`,
      `${base}.a.one`,
    ]);
    const [withId, text, binary, dupA, dupB] = rc.records;
    expect(withId).toMatchObject({
      key: 'm-1',
      value: { n: 1 },
      kind: 'json',
      meta: { headers: { 'Nats-Msg-Id': 'm-1', 'X-Multi': 'one, two' } },
    });
    expect(text).toMatchObject({ value: 'plain text', kind: 'text' });
    expect(text!.key).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(binary).toMatchObject({ value: Buffer.from([0xff, 0xfe, 0x00]), kind: 'binary', meta: { subjectTopic: `${base}.b.w_e_i_rd` } });
    expect(dupA!.key).toBe(dupB!.key);
    expect(dupA!.key).not.toBe(text!.key);
  });

  it('core: a queue group shares messages; format json passes what does not parse on as text with $meta.error', async () => {
    const base = unique('queue');
    const rcs = [recordingContext(), recordingContext()];
    for (const rc of rcs) {
      start(create(config({ subjects: [`${base}.>`], queue: 'hubcast', format: 'json' }), { log: rc.ctx.log }), rc);
      await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    }
    for (let i = 0; i < 20; i++) nc.publish(`${base}.n`, enc.encode(JSON.stringify({ i })));
    nc.publish(`${base}.n`, enc.encode('not json'));
    await nc.flush();
    await rcs[0]!.waitFor(() => rcs[0]!.records.length + rcs[1]!.records.length === 21, 5000, 'twenty-one records');
    const all = [...rcs[0]!.records, ...rcs[1]!.records];
    const got = all
      .filter((r) => r.kind === 'json')
      .map((r) => (r.value as { i: number }).i)
      .sort((a, b) => a - b);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(all.find((r) => r.kind !== 'json')).toMatchObject({ value: 'not json', kind: 'text', meta: { error: 'invalid JSON' } });
    expect(rcs.every((rc) => rc.records.length > 0)).toBe(true);
  });

  it('core: a lost connection makes run throw (retryable)', async () => {
    const proxy = await TcpProxy.start(4222);
    cleanups.push(() => proxy.close());
    const rc = recordingContext();
    const done = start(create(config({ servers: `nats://127.0.0.1:${proxy.port}`, subjects: [unique('lost')] }), { log: rc.ctx.log }), rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    proxy.cut();
    const err = await done;
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(FatalSourceError);
  });

  it('jetstream: delivers what was published before start, acks only after emit, resumes after restart', async () => {
    const base = unique('js');
    const name = await stream([`${base}.>`]);
    const js = nc.jetstream();
    for (let i = 1; i <= 5; i++) await js.publish(`${base}.early`, enc.encode(JSON.stringify({ i })));
    const durable = unique('D');
    const cfg = (ackWaitS: number) => config({ jetstream: { stream: name, durable, ackWaitS } });

    // Emits wait on a gate the test opens, to observe that nothing is acked while emit is pending.
    const rc = recordingContext();
    let open: () => void = () => undefined;
    let gate = new Promise<void>((r) => (open = r));
    const gated: ConnectorContext = {
      get signal() {
        return rc.ctx.signal;
      },
      state: rc.ctx.state,
      log: rc.ctx.log,
      connected: () => rc.ctx.connected(),
      emit: async (b) => {
        await gate;
        return rc.ctx.emit(b);
      },
    };
    const conn = create(cfg(5), { log: rc.ctx.log });
    let done = conn.run(gated).then(
      () => undefined,
      (e: unknown) => e,
    );
    await rc.waitFor(() => rc.attempts.length === 0 && rc.connectedCount === 1, 5000, 'connected');
    await new Promise((r) => setTimeout(r, 200));
    let info = await jsm.consumers.info(name, durable);
    expect(info.num_ack_pending).toBe(5);
    expect(info.config.deliver_policy).toBe('all');
    open();
    await rc.waitFor(() => rc.records.length === 5, 5000, 'five early records');
    expect(keys(rc.records)).toEqual([1, 2, 3, 4, 5].map((s) => `${name}:${s}`));
    expect(rc.records[0]).toMatchObject({
      value: { i: 1 },
      kind: 'json',
      meta: { subject: `${base}.early`, stream: name, seq: 1, redelivered: false },
    });
    expect(Math.abs((rc.records[0]!.meta?.sourceTs as number) - Date.now())).toBeLessThan(60_000);
    await new Promise((r) => setTimeout(r, 200));
    info = await jsm.consumers.info(name, durable);
    expect(info.num_ack_pending).toBe(0);

    // An emit that rejects: run throws, the messages are nak'ed and come back with the same keys.
    gate = Promise.resolve();
    rc.failNextEmit();
    for (let i = 6; i <= 8; i++) await js.publish(`${base}.late`, enc.encode(JSON.stringify({ i })));
    expect(((await done) as Error).message).toBe('store unavailable');
    const rejected = rc.attempts.at(-1)!;
    expect(keys(rejected)[0]).toBe(`${name}:6`);
    rc.renew();
    done = conn.run(gated).then(
      () => undefined,
      (e: unknown) => e,
    );
    await rc.waitFor(() => rc.records.length === 8, 5000, 'the redelivered records');
    // Newer messages may overtake the redelivered one (see the maxAckPending: 1 test for strict order).
    expect(keys(rc.records).slice(5).sort()).toEqual([6, 7, 8].map((s) => `${name}:${s}`).sort());
    expect(rc.records.find((r) => r.key === `${name}:6`)!.meta?.redelivered).toBe(true);
    rc.abort();
    expect(await done).toBeUndefined();

    // A restart with the same durable (and a changed ackWaitS, updated in place) continues after 8.
    for (let i = 9; i <= 10; i++) await js.publish(`${base}.later`, enc.encode(JSON.stringify({ i })));
    const rc2 = recordingContext();
    start(create(cfg(7), { log: rc2.ctx.log }), rc2);
    await rc2.waitFor(() => rc2.records.length === 2, 5000, 'two later records');
    await new Promise((r) => setTimeout(r, 200));
    expect(keys(rc2.records)).toEqual([`${name}:9`, `${name}:10`]);
    info = await jsm.consumers.info(name, durable);
    expect(info.config.ack_wait).toBe(7_000_000_000);
    expect(new Set([...keys(rc.records), ...keys(rc2.records)]).size).toBe(10);
  });

  it('jetstream: with maxAckPending 1, order holds across a failed emit, redelivered at once', async () => {
    const base = unique('order');
    const name = await stream([`${base}.>`]);
    const js = nc.jetstream();
    const rc = recordingContext();
    const conn = create(config({ jetstream: { stream: name, durable: 'ordered', maxAckPending: 1, ackWaitS: 30 } }), { log: rc.ctx.log });
    rc.failNextEmit();
    let done = start(conn, rc);
    for (let i = 1; i <= 4; i++) await js.publish(`${base}.n`, enc.encode(String(i)));
    expect(((await done) as Error).message).toBe('store unavailable');
    rc.renew();
    done = start(conn, rc);
    // Well under ackWaitS: the failed message was handed back (nak), not left to time out.
    await rc.waitFor(() => rc.records.length === 4, 3000, 'four records');
    expect(keys(rc.records)).toEqual([1, 2, 3, 4].map((s) => `${name}:${s}`));
    expect(rc.records.map((r) => r.value)).toEqual([1, 2, 3, 4]);
  });

  it('jetstream: a missing stream is a FatalSourceError; no stream is created', async () => {
    const missing = unique('NOPE');
    const rc = recordingContext();
    const err = await create(config({ jetstream: { stream: missing, durable: 'd' } }), { log: rc.ctx.log })
      .run(rc.ctx)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalSourceError);
    expect((err as Error).message).toBe(`stream not found: ${missing}`);
    await expect(jsm.streams.info(missing)).rejects.toThrow(/stream not found/);
  });

  it('jetstream fault: cuts mid-stream make run throw; re-running delivers all N, exactly N distinct keys', async () => {
    const N = 300;
    const base = unique('fault');
    const name = await stream([`${base}.>`]);
    const proxy = await TcpProxy.start(4222);
    cleanups.push(() => proxy.close());
    const rc = recordingContext();
    const conn = create(
      config({
        servers: `nats://127.0.0.1:${proxy.port}`,
        jetstream: { stream: name, durable: 'fault', ackWaitS: 1, maxAckPending: 50 },
      }),
      { log: rc.ctx.log },
    );
    const distinct = () => new Set(keys(rc.records)).size;

    const js = nc.jetstream();
    const publishing = (async () => {
      for (let i = 1; i <= N; i++) {
        await js.publish(`${base}.n`, enc.encode(JSON.stringify({ i })));
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const cutting = (async () => {
      let cuts = 0;
      for (const at of [N / 4, N / 2, (3 * N) / 4]) {
        await rc.waitFor(() => distinct() >= at, 10_000, `${at} records`);
        // Each cut hits an established connection: one cut, one throw, one reconnect.
        await rc.waitFor(() => rc.connectedCount === cuts + 1, 10_000, 'a reconnect');
        proxy.cut();
        cuts++;
      }
    })();
    let finished = false;
    const all = rc
      .waitFor(() => distinct() >= N, 15_000, 'all records')
      .then(() => {
        finished = true;
        rc.abort();
      });

    const errors: unknown[] = [];
    const until = Date.now() + 15_000;
    while (!finished && Date.now() < until) {
      const err = await conn.run(rc.ctx).catch((e: unknown) => e);
      if (err) errors.push(err);
      if (!finished) {
        rc.renew();
        await new Promise((r) => setTimeout(r, 50)); // the supervisor's backoff, shortened
      }
    }
    await Promise.all([publishing, cutting, all]);

    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors.every((e) => e instanceof Error && !(e instanceof FatalSourceError))).toBe(true);
    expect(proxy.connections).toBeGreaterThanOrEqual(4);
    const byKey = new Map(rc.records.map((r) => [r.key, r.value]));
    expect(byKey.size).toBe(N);
    for (let s = 1; s <= N; s++) expect(byKey.get(`${name}:${s}`)).toEqual({ i: s });
  });

  describe('authorization', () => {
    let child: ChildProcess | undefined;
    let port = 0;

    beforeAll(async () => {
      // A private server with credentials, on its own loopback port: the shared one stays untouched.
      port = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '--user', 'hub', '--pass', 'right'], { stdio: 'ignore' });
      child.on('error', () => undefined);
      const until = Date.now() + 5000;
      while (!(await serviceUp(port, 200)) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    });
    afterAll(() => {
      child?.kill();
    });

    it('bad credentials are a FatalSourceError that does not contain the password', async () => {
      if (!(await serviceUp(port, 200))) return; // nats-server binary not on PATH: nothing to check here
      const rc = recordingContext();
      const bad = create(config({ servers: `nats://127.0.0.1:${port}`, subjects: ['x'], user: 'hub', pass: 'wrong-pw' }), {
        log: rc.ctx.log,
      });
      const err = await bad.run(rc.ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FatalSourceError);
      expect((err as Error).message).toMatch(/authorization/i);
      expect((err as Error).message).not.toContain('wrong-pw');

      const good = create(config({ servers: `nats://127.0.0.1:${port}`, subjects: ['x'], user: 'hub', pass: 'right' }), {
        log: rc.ctx.log,
      });
      start(good, rc);
      await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected with the right password');
    });
  });

  it('settings: either subjects or jetstream', () => {
    const rc = recordingContext();
    expect(() => create(config({}), { log: rc.ctx.log })).toThrow(/needs subjects/);
    expect(() => create(config({ subjects: ['a'], jetstream: { stream: 's', durable: 'd' } }), { log: rc.ctx.log })).toThrow(/not both/);
    expect(() => settings.parse({ jetstream: { stream: 'a.b', durable: 'd' } })).toThrow(/stream name/);
    expect(() => settings.parse({ subjects: ['a'], bogus: 1 })).toThrow();
  });
});
