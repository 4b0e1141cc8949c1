import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, BrokerHandler, ControlEnvelope, ControlMessage, Publication } from '../../src/broker/broker.ts';
import { MemoryBroker } from '../../src/broker/memory-broker.ts';
import { NatsBroker } from '../../src/broker/nats-broker.ts';
import { PostgresBroker } from '../../src/broker/postgres-broker.ts';
import { RedisBroker } from '../../src/broker/redis-broker.ts';
import { TcpProxy, requireService } from '../helpers/tcp-proxy.ts';

/**
 * The Broker conformance suite: every implementation runs it against its real server. Each test is a
 * small cluster of "nodes" (one broker each, on one server) under a prefix of its own. An
 * implementation that cannot meet a case by design lists it in `skip`, with the reason.
 */

type Case =
  | 'order'
  | 'bytes'
  | 'no delivery without interest'
  | 'patterns'
  | 'disinterest'
  | 'control to one node'
  | 'broadcast'
  | 'close'
  | 'fault'
  | 'boot failure'
  | 'throughput';

interface Impl {
  name: string;
  service?: { name: string; port: number };
  /** A broker for one node, reaching the server on `port` (default: the service's own; a proxy in fault tests). */
  make(prefix: string, port?: number): Broker;
  /** A broker whose URL has the password `secret-pw` and points at `port`. */
  withPassword?(port: number): Broker;
  /** One node per process: every node of a test shares this one broker. */
  single?: boolean;
  /** How a 64 KiB publication arrives. */
  bigPayload: 'publication' | 'position';
  skip: Partial<Record<Case, string>>;
}

const ONE_NODE = 'one node by design: no second node to reach or to keep out';
const NO_SERVER = 'in-process: there is no connection to lose or fail to open';

const implementations: Impl[] = [
  {
    name: 'memory',
    make: () => new MemoryBroker(),
    single: true,
    bigPayload: 'publication',
    skip: {
      'no delivery without interest': 'interest is not tracked: the node filters by its own index at no cost',
      patterns: 'interest is not tracked (every publication is delivered)',
      disinterest: 'interest is not tracked (every publication is delivered)',
      'control to one node': ONE_NODE,
      fault: NO_SERVER,
      'boot failure': NO_SERVER,
    },
  },
  {
    name: 'redis',
    service: { name: 'Redis', port: 6379 },
    make: (prefix, port = 6379) => new RedisBroker({ url: `redis://127.0.0.1:${port}`, prefix }),
    withPassword: (port) => new RedisBroker({ url: `redis://hub:secret-pw@127.0.0.1:${port}`, prefix: 'x' }),
    bigPayload: 'publication',
    skip: {},
  },
  {
    name: 'nats',
    service: { name: 'NATS', port: 4222 },
    make: (prefix, port = 4222) => new NatsBroker({ url: `nats://127.0.0.1:${port}`, prefix }),
    withPassword: (port) => new NatsBroker({ url: `nats://hub:secret-pw@127.0.0.1:${port}`, prefix: 'x' }),
    bigPayload: 'publication',
    skip: {},
  },
  {
    name: 'postgres',
    service: { name: 'PostgreSQL', port: 5432 },
    make: (prefix, port = 5432) => new PostgresBroker({ url: `postgres://postgres@127.0.0.1:${port}/test`, prefix }),
    withPassword: (port) => new PostgresBroker({ url: `postgres://postgres:secret-pw@127.0.0.1:${port}/test`, prefix: 'x' }),
    // NOTIFY payloads are limited to 8000 bytes: a bigger publication travels as its position.
    bigPayload: 'position',
    skip: {},
  },
];

/** A node as the test sees it: its broker and everything its handler received. */
class Node implements BrokerHandler {
  readonly pubs: Publication[] = [];
  readonly positions: { topic: string; offset: number; epoch: string }[] = [];
  readonly controls: ControlEnvelope[] = [];
  readonly states: string[] = [];

  constructor(
    readonly id: string,
    readonly broker: Broker,
  ) {}

  publication(p: Publication): void {
    this.pubs.push(p);
  }

  position(topic: string, offset: number, epoch: string): void {
    this.positions.push({ topic, offset, epoch });
  }

  control(env: ControlEnvelope): void {
    this.controls.push(env);
  }

  state(s: 'up' | 'down'): void {
    this.states.push(s);
  }

  /** Offsets received for `topic`, probes (offset 0) left out. */
  offsets(topic: string): number[] {
    return this.pubs.filter((p) => p.topic === topic && p.offset > 0).map((p) => p.offset);
  }

  topics(): string[] {
    return [...new Set(this.pubs.filter((p) => p.offset > 0).map((p) => p.topic))].sort();
  }
}

const pub = (
  topic: string,
  offset: number,
  payload: string | Buffer = `{"n":${offset}}`,
  kind: Publication['kind'] = 'json',
): Publication => ({
  topic,
  offset,
  epoch: 'ep0ch',
  ts: 1_700_000_000_000 + offset,
  kind,
  payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

let seq = 0;
const opened: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((o) => o.close().catch(() => undefined)));
});

/**
 * `ids.length` nodes under one fresh prefix, each with `interests` given before `start` (so they must
 * hold once it resolves). `port` (per node) points a node at a proxy. A single-node implementation
 * gives every id the same node.
 */
async function cluster(impl: Impl, spec: { id: string; interests?: string[]; port?: number; started?: boolean }[]): Promise<Node[]> {
  const prefix = `bc${process.pid}_${++seq}_${randomBytes(3).toString('hex')}`;
  const nodes: Node[] = [];
  for (const s of spec) {
    if (impl.single && nodes.length > 0) {
      nodes.push(nodes[0]!);
      continue;
    }
    const broker = impl.make(prefix, s.port);
    opened.push(broker);
    const node = new Node(s.id, broker);
    for (const i of s.interests ?? []) broker.interest(i);
    nodes.push(node);
  }
  await Promise.all([...new Set(nodes)].map((n) => n.broker.start(n.id, n)));
  return nodes;
}

/**
 * Makes `b`'s interest in `topic` (given after start) take effect: `a` publishes probes (offset 0)
 * until one arrives. The contract has no completion signal for `interest()`.
 */
async function effective(a: Node, b: Node, topic: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!b.pubs.some((p) => p.topic === topic && p.offset === 0)) {
    if (Date.now() > deadline) throw new Error(`interest in ${topic} not effective within 5 s`);
    a.broker.publish(pub(topic, 0, 'probe'));
    await sleep(20);
  }
}

/** A port where nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A server that accepts connections and never answers. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const s: Server = createServer((c) => {
    sockets.add(c);
    c.on('error', () => undefined).on('close', () => sockets.delete(c));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as { port: number }).port,
    close: async () => {
      for (const c of sockets) c.destroy();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };
}

const ctl = (n: number): ControlMessage => ({ op: 'close', connectionId: `c${n}`, code: 4500, reason: 'revoked' });

for (const impl of implementations) {
  describe(`Broker conformance: ${impl.name}`, () => {
    let available = true;
    const run = (name: Case, fn: () => Promise<void>, timeoutMs = 15_000) => {
      const reason = impl.skip[name];
      if (reason) return it.skip(`${name} (${reason})`, fn);
      return it(
        name,
        async (ctx) => {
          if (impl.service && !(available = available && (await requireService(impl.service.name, impl.service.port)))) return ctx.skip();
          await fn();
        },
        timeoutMs,
      );
    };

    run('order', async () => {
      const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['orders.eu'] }]);
      // The interest was given before start: it holds as soon as start resolved, no probe.
      for (let i = 1; i <= 500; i++) a!.broker.publish(pub('orders.eu', i));
      await until('500 publications on B', () => b!.offsets('orders.eu').length >= 500);
      expect(b!.offsets('orders.eu')).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      expect(b!.pubs[0]).toMatchObject({ topic: 'orders.eu', offset: 1, epoch: 'ep0ch', ts: 1_700_000_000_001, kind: 'json' });
      expect(b!.pubs[499]!.payload.toString()).toBe('{"n":500}');
    });

    run('bytes', async () => {
      const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['bin'] }]);
      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const text = Buffer.from('zürich ✓ 東京 \u0000 end');
      const big = randomBytes(64 * 1024);
      a!.broker.publish(pub('bin', 1, every, 'binary'));
      a!.broker.publish(pub('bin', 2, text, 'text'));
      a!.broker.publish(pub('bin', 3, Buffer.alloc(0), 'binary'));
      a!.broker.publish(pub('bin', 4, big, 'binary'));
      await until('the 64 KiB publication on B', () => b!.offsets('bin').includes(4) || b!.positions.some((p) => p.offset === 4));
      await until('every publication on B', () => b!.offsets('bin').length >= 3);
      const got = new Map(b!.pubs.map((p) => [p.offset, p]));
      expect(got.get(1)).toMatchObject({ kind: 'binary', epoch: 'ep0ch', ts: 1_700_000_000_001 });
      expect(got.get(1)!.payload.equals(every)).toBe(true);
      expect(got.get(2)).toMatchObject({ kind: 'text' });
      expect(got.get(2)!.payload.equals(text)).toBe(true);
      expect(got.get(3)!.payload.length).toBe(0);
      if (impl.bigPayload === 'publication') {
        expect(got.get(4)!.payload.equals(big)).toBe(true);
        expect(b!.positions).toEqual([]);
      } else {
        expect(got.has(4)).toBe(false);
        expect(b!.positions).toEqual([{ topic: 'bin', offset: 4, epoch: 'ep0ch' }]);
      }
    });

    run('no delivery without interest', async () => {
      const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['x'] }]);
      a!.broker.publish(pub('y', 1));
      a!.broker.publish(pub('x.y', 1));
      a!.broker.publish(pub('x', 1));
      await until('x on B', () => b!.offsets('x').length === 1);
      await sleep(100);
      expect(b!.topics()).toEqual(['x']);
      // The publishing node has no interest: it does not get its own publications back.
      expect(a!.pubs).toEqual([]);
    });

    run('patterns', async () => {
      const [a, star, rest, overlap] = await cluster(impl, [
        { id: 'A' },
        { id: 'star', interests: ['a.*'] },
        { id: 'rest', interests: ['a.>'] },
        // Three interests covering a.b: each publication still arrives once.
        { id: 'overlap', interests: ['a.b', 'a.*', 'a.>', '*.b'] },
      ]);
      for (const t of ['a.b', 'a.b.c', 'b.a', 'a', 'a.b.c.d', 'ab.c', 'x.a.b', 'a.end']) a!.broker.publish(pub(t, 1));
      await until('a.end everywhere', () => [star, rest, overlap].every((n) => n!.offsets('a.end').length > 0));
      await sleep(100);
      expect(star!.topics()).toEqual(['a.b', 'a.end']);
      expect(rest!.topics()).toEqual(['a.b', 'a.b.c', 'a.b.c.d', 'a.end']);
      expect(overlap!.topics()).toEqual(['a.b', 'a.b.c', 'a.b.c.d', 'a.end']);
      expect(overlap!.offsets('a.b')).toEqual([1]);
      expect(overlap!.offsets('a.end')).toEqual([1]);
      // Patterns given after start, too.
      star!.broker.interest('c.*.d');
      await effective(a!, star!, 'c.x.d');
      a!.broker.publish(pub('c.y.d', 1));
      a!.broker.publish(pub('c.y.e', 1));
      a!.broker.publish(pub('c.y.y.d', 1));
      a!.broker.publish(pub('c.z.d', 2));
      await until('c.z.d on star', () => star!.offsets('c.z.d').length > 0);
      await sleep(50);
      expect(star!.topics()).toEqual(['a.b', 'a.end', 'c.y.d', 'c.z.d']);
    });

    run('disinterest', async () => {
      const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['t', 's', 'p.*'] }]);
      a!.broker.publish(pub('t', 1));
      a!.broker.publish(pub('p.q', 1));
      await until('t and p.q on B', () => b!.offsets('t').length === 1 && b!.offsets('p.q').length === 1);
      b!.broker.disinterest('t');
      b!.broker.disinterest('p.*');
      a!.broker.publish(pub('t', 2));
      a!.broker.publish(pub('p.q', 2));
      a!.broker.publish(pub('s', 1));
      await until('s on B', () => b!.offsets('s').length === 1);
      await sleep(100);
      expect(b!.offsets('t')).toEqual([1]);
      expect(b!.offsets('p.q')).toEqual([1]);
      // And back.
      b!.broker.interest('t');
      await effective(a!, b!, 't');
      a!.broker.publish(pub('t', 3));
      await until('t 3 on B', () => b!.offsets('t').includes(3));
      expect(b!.offsets('t')).toEqual([1, 3]);
    });

    run('control to one node', async () => {
      // Node ids that could collide with a broadcast channel, or are not channel-safe.
      const [a, b, c] = await cluster(impl, [{ id: 'all' }, { id: 'node b/ü 1' }, { id: '_all' }]);
      a!.broker.control(ctl(1), 'node b/ü 1');
      a!.broker.control(ctl(2), 'all');
      b!.broker.control(ctl(3), 'nobody');
      await until('both messages', () => b!.controls.length >= 1 && a!.controls.length >= 1);
      await sleep(100);
      expect(b!.controls).toEqual([{ from: 'all', msg: ctl(1) }]);
      expect(a!.controls).toEqual([{ from: 'all', msg: ctl(2) }]);
      expect(c!.controls).toEqual([]);
    });

    run('broadcast', async () => {
      const nodes = [...new Set(await cluster(impl, [{ id: 'all' }, { id: 'B' }, { id: '_all' }]))];
      const msg: ControlMessage = { op: 'presence', event: 'join', topic: 'room.1', clientId: 'cl', connectionId: 'co', nodeId: 'B' };
      nodes[1 % nodes.length]!.broker.control(msg);
      await until('the broadcast on every node', () => nodes.every((n) => n.controls.length >= 1));
      await sleep(100);
      for (const n of nodes) expect(n.controls).toEqual([{ from: nodes[1 % nodes.length]!.id, msg }]);
    });

    run('close', async () => {
      const never = impl.make('never');
      await never.close(); // never started
      const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['t'] }]);
      expect(b!.broker.connected).toBe(true);
      await Promise.all([b!.broker.close(), b!.broker.close()]);
      await b!.broker.close();
      expect(b!.broker.connected).toBe(false);
      const before = { pubs: b!.pubs.length, controls: b!.controls.length };
      a!.broker.publish(pub('t', 1));
      a!.broker.control(ctl(1));
      a!.broker.control(ctl(2), 'B');
      expect(() => b!.broker.publish(pub('t', 2))).not.toThrow();
      expect(() => b!.broker.interest('u')).not.toThrow();
      expect(() => b!.broker.control(ctl(3))).not.toThrow();
      await sleep(200);
      expect(b!.pubs.length).toBe(before.pubs);
      expect(b!.controls.length).toBe(before.controls);
      expect(b!.states).toEqual([]);
    });

    run(
      'fault',
      async () => {
        const proxy = await TcpProxy.start(impl.service!.port);
        opened.push(proxy);
        const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['t'], port: proxy.port }]);
        a!.broker.publish(pub('t', 1));
        await until('t 1 on B', () => b!.offsets('t').length === 1);

        proxy.refuse();
        proxy.cut();
        await until("B reports 'down'", () => b!.states.length > 0, 10_000);
        expect(b!.states).toEqual(['down']);
        expect(b!.broker.connected).toBe(false);
        for (let i = 2; i <= 4; i++) a!.broker.publish(pub('t', i));
        const dropped = (b!.broker as unknown as { dropped: number }).dropped;
        expect(() => b!.broker.publish(pub('mine', 1))).not.toThrow();
        expect((b!.broker as unknown as { dropped: number }).dropped).toBe(dropped + 1);
        b!.broker.interest('u'); // given while down: restored with the rest
        await sleep(300);
        expect(b!.offsets('t')).toEqual([1]);

        proxy.accept();
        await until("B reports 'up'", () => b!.states.length > 1, 15_000);
        expect(b!.states).toEqual(['down', 'up']);
        expect(b!.broker.connected).toBe(true);
        // Every interest and the control channel are back without a probe.
        a!.broker.publish(pub('t', 5));
        a!.broker.publish(pub('u', 1));
        a!.broker.control(ctl(9), 'B');
        await until(
          't 5, u 1 and the control message on B',
          () => b!.offsets('t').includes(5) && b!.offsets('u').length === 1 && b!.controls.length === 1,
        );
        expect(b!.offsets('t')).toEqual([1, 5]);
        // B publishes again.
        b!.broker.interest('back');
        a!.broker.interest('back');
        await effective(b!, a!, 'back');
        b!.broker.publish(pub('back', 1));
        await until('back 1 on A', () => a!.offsets('back').length === 1);
      },
      40_000,
    );

    run(
      'boot failure',
      async () => {
        const port = await closedPort();
        const broker = impl.withPassword!(port);
        opened.push(broker);
        const t0 = Date.now();
        const err = (await broker.start('A', new Node('A', broker)).catch((e: unknown) => e)) as Error;
        expect(err).toBeInstanceOf(Error);
        expect(Date.now() - t0).toBeLessThan(6000);
        expect(err.message).toContain(`127.0.0.1:${port}`);
        expect(err.message).not.toContain('secret-pw');
        expect(broker.connected).toBe(false);

        // A server that accepts and never answers: still bounded.
        const silent = await silentServer();
        opened.push(silent);
        const quiet = impl.withPassword!(silent.port);
        opened.push(quiet);
        const t1 = Date.now();
        const err2 = (await quiet.start('A', new Node('A', quiet)).catch((e: unknown) => e)) as Error;
        expect(err2).toBeInstanceOf(Error);
        expect(Date.now() - t1).toBeLessThan(7000);
        expect(err2.message).toContain(`127.0.0.1:${silent.port}`);
        expect(err2.message).not.toContain('secret-pw');
      },
      20_000,
    );

    run(
      'throughput',
      async () => {
        const [a, b] = await cluster(impl, [{ id: 'A' }, { id: 'B', interests: ['bench'] }]);
        const n = 10_000;
        for (let i = 1; i <= 1000; i++) a!.broker.publish(pub('warm', i)); // no interest: only the sending side warms up
        await sleep(100);
        const t0 = performance.now();
        for (let i = 1; i <= n; i++) {
          a!.broker.publish(pub('bench', i));
          // Publish in turns of 100, as the store's group commits hand them over.
          if (i % 100 === 0) await new Promise((r) => setImmediate(r));
        }
        await until(`${n} publications on B`, () => b!.pubs.length >= n, 30_000);
        const ms = performance.now() - t0;
        process.stdout.write(`broker ${impl.name}: ${n} publications A→B in ${ms.toFixed(0)} ms (${Math.round((n / ms) * 1000)}/s)\n`);
        expect(b!.offsets('bench')).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      },
      40_000,
    );
  });
}
