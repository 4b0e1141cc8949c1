import { connect as tcpConnect, type Socket } from 'node:net';
import { LeanWs } from '../lib/lean-ws.ts';
import { sleep } from '../lib/time.ts';
import { HttpPipeline } from './http-pipeline.ts';
import type { Target } from './types.ts';

/**
 * The load side of each contender's protocol: how a subscriber connects and subscribes, where a
 * delivered message's payload sits in what arrives, and how the publisher publishes. Every WebSocket
 * goes through the same lean client (bench/lib/lean-ws.ts).
 */

export interface Sink {
  /** A delivered message: its payload is somewhere in `buf[start, end)`. Valid during the call only. */
  deliver(sub: number, buf: Buffer, start: number, end: number): void;
  /** The server closed a subscriber after it was subscribed. */
  closed(sub: number, code: number): void;
}

export interface SubscriberConn {
  destroy(): void;
}

export interface Publisher {
  /** Publishes one message; `done(ok)` once the server accepted it (HTTP answer) or it was written (NATS, MQTT). */
  publish(topic: string, payload: Buffer, done: (ok: boolean, why?: string) => void): void;
  /** Publishes not answered yet. */
  readonly inFlight: number;
  close(): void;
}

export interface Adapter {
  /** Connects subscriber `sub` and subscribes it to `topics`; resolves once every subscription is confirmed. */
  subscribe(sub: number, topics: string[], sink: Sink, timeoutMs: number): Promise<SubscriberConn>;
  publisher(): Promise<Publisher>;
  /** How this contender spells the scenario's topic names (`bench.t12`). */
  topicName(name: string): string;
}

const HOST = '127.0.0.1';

/** A promise with its settle functions, bounded by a timer. */
function deferred<T>(timeoutMs: number, what: string) {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
  void promise.then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  );
  return { promise, resolve, reject };
}

/** What a subscriber's protocol code reports while it sets up (see `subscribing`). */
interface Setup {
  /** Every subscription is confirmed: the subscriber is ready. */
  ready(): void;
  fail(err: Error): void;
  /** The connection's close callback: before `ready` a close fails the set-up, after it the sink hears of it. */
  onClose(code: number, reason: string): void;
}

/**
 * One subscriber's set-up, the same for every protocol: `open` connects and subscribes, reporting
 * through `setup`; resolves with the connection once `ready()`, and destroys it when the set-up fails,
 * closes early or takes longer than `timeoutMs`.
 */
async function subscribing<C extends { destroy(): void }>(
  label: string,
  sub: number,
  sink: Sink,
  timeoutMs: number,
  open: (setup: Setup) => Promise<C>,
): Promise<C> {
  let subscribed = false;
  const pending = deferred<void>(timeoutMs, label);
  const setup: Setup = {
    ready() {
      subscribed = true;
      pending.resolve();
    },
    fail: (err) => pending.reject(err),
    onClose(code, reason) {
      if (subscribed) sink.closed(sub, code);
      else pending.reject(new Error(`${label}: closed ${code} ${reason} before subscribed`));
    },
  };
  let conn: C;
  try {
    conn = await open(setup);
  } catch (err) {
    pending.promise.catch(() => undefined);
    pending.reject(err as Error);
    throw err;
  }
  try {
    await pending.promise;
  } catch (err) {
    conn.destroy();
    throw err;
  }
  return conn;
}

// ---------------------------------------------------------------- Hubcast

function hubcastAdapter(t: Extract<Target, { kind: 'hubcast' }>): Adapter {
  const pipeline = new HttpPipeline(t.port, 4);
  const auth = { authorization: `Bearer ${t.ingestKey}`, 'content-type': 'application/json' };
  return {
    topicName: (n) => n,
    subscribe: (sub, topics, sink, timeoutMs) =>
      subscribing(`hubcast subscriber ${sub}`, sub, sink, timeoutMs, (setup) => {
        let confirmed = 0;
        return LeanWs.connect({
          host: HOST,
          port: t.port,
          path: '/ws',
          headers: { authorization: `Bearer ${t.tokens[sub]}` },
          timeoutMs,
          onMessage(data, _binary, ws) {
            // Message frames: `{"type":"message",…`; everything else is a control frame.
            if (data[9] === 0x6d /* m */ && data[2] === 0x74 /* t */) return sink.deliver(sub, data, 0, data.length);
            let m: { type?: string; code?: string; message?: string };
            try {
              m = JSON.parse(data.toString('utf8')) as typeof m;
            } catch {
              return;
            }
            if (m.type === 'welcome') {
              topics.forEach((topic, i) => ws.send(JSON.stringify({ type: 'subscribe', topic, id: i })));
            } else if (m.type === 'subscribed') {
              if (++confirmed === topics.length) setup.ready();
            } else if (m.type === 'error') setup.fail(new Error(`hubcast subscriber ${sub}: ${m.code} ${m.message}`));
          },
          onClose: setup.onClose,
        });
      }),
    async publisher() {
      return {
        publish(topic, payload, done) {
          const body = Buffer.concat([Buffer.from(`{"topic":"${topic}","data":`), payload, Buffer.from('}')]);
          pipeline.post('/entity', auth, body, (status) => done(status === 202, `http_${status}`));
        },
        get inFlight() {
          return pipeline.inFlight;
        },
        close: () => pipeline.close(),
      };
    },
  };
}

/** POST /consumers for one subscriber's token (bounded retries on 503/429: the server's scrypt concurrency cap). */
export async function registerHubcast(port: number, clientId: string, clientSecret: string): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const res = await fetch(`http://${HOST}:${port}/consumers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, client_secret: clientSecret }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { token?: string };
    if (res.status === 201 && body.token) return body.token;
    if (res.status !== 503 && res.status !== 429) throw new Error(`POST /consumers answered ${res.status}: ${JSON.stringify(body)}`);
    await sleep(100);
  }
  throw new Error('POST /consumers kept answering 503/429');
}

// ---------------------------------------------------------------- HTTP-published bare servers

function httpPublisher(port: number): Publisher {
  const pipeline = new HttpPipeline(port, 4);
  const headers = { 'content-type': 'text/plain' };
  return {
    publish(topic, payload, done) {
      pipeline.post(`/publish?topic=${encodeURIComponent(topic)}`, headers, payload, (status) => done(status === 204, `http_${status}`));
    },
    get inFlight() {
      return pipeline.inFlight;
    },
    close: () => pipeline.close(),
  };
}

function wsFrameOnceAdapter(t: Extract<Target, { kind: 'ws-frame-once' }>): Adapter {
  return {
    topicName: (n) => n,
    subscribe: (sub, topics, sink, timeoutMs) =>
      subscribing(`ws subscriber ${sub}`, sub, sink, timeoutMs, async (setup) => {
        let confirmed = 0;
        const ws = await LeanWs.connect({
          host: HOST,
          port: t.port,
          path: '/',
          timeoutMs,
          onMessage(data) {
            if (data[0] === 0x7b /* { */) return sink.deliver(sub, data, 0, data.length);
            if (data[0] === 0x6f /* o */ && ++confirmed === topics.length) setup.ready();
          },
          onClose: setup.onClose,
        });
        for (const topic of topics) ws.send(`sub ${topic}`);
        return ws;
      }),
    publisher: async () => httpPublisher(t.port),
  };
}

// ---------------------------------------------------------------- Socket.IO (Engine.IO 4, Socket.IO 5 protocol)

function socketioAdapter(t: Extract<Target, { kind: 'socketio' }>): Adapter {
  return {
    topicName: (n) => n,
    subscribe: (sub, topics, sink, timeoutMs) =>
      subscribing(`socket.io subscriber ${sub}`, sub, sink, timeoutMs, (setup) =>
        LeanWs.connect({
          host: HOST,
          port: t.port,
          path: '/socket.io/?EIO=4&transport=websocket',
          timeoutMs,
          onMessage(data, _binary, ws) {
            const c0 = data[0];
            // 4 = message, 2 = EVENT: `42["m","…"]`.
            if (c0 === 0x34 && data[1] === 0x32) return sink.deliver(sub, data, 0, data.length);
            if (c0 === 0x32 /* 2: ping */ && data.length === 1) return void ws.send('3');
            if (c0 === 0x30 /* 0: open */) return void ws.send('40');
            if (c0 === 0x34 && data[1] === 0x30 /* 40: connected */) return void ws.send(`420${JSON.stringify(['sub', topics])}`);
            if (c0 === 0x34 && data[1] === 0x33 /* 43: ack */) setup.ready();
            else if (c0 === 0x34 && data[1] === 0x34 /* 44: connect error */) setup.fail(new Error(`socket.io: ${data.toString()}`));
          },
          onClose: setup.onClose,
        }),
      ),
    publisher: async () => httpPublisher(t.port),
  };
}

// ---------------------------------------------------------------- byte-stream protocols (NATS, MQTT)

/** A byte stream over the lean WebSocket client (binary frames) or plain TCP. */
interface Stream {
  write(b: Buffer): void;
  destroy(): void;
}

async function openStream(
  port: number,
  transport: 'ws' | 'tcp',
  protocols: string[] | undefined,
  timeoutMs: number,
  onBytes: (b: Buffer) => void,
  onClose: (code: number, reason: string) => void,
): Promise<Stream> {
  if (transport === 'ws') {
    const ws = await LeanWs.connect({
      host: HOST,
      port,
      path: '/',
      ...(protocols ? { protocols } : {}),
      timeoutMs,
      onMessage: (data) => onBytes(data),
      onClose,
    });
    return { write: (b) => void ws.send(b, true), destroy: () => ws.destroy() };
  }
  const s: Socket = await new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: HOST, port });
    const timer = setTimeout(() => sock.destroy(new Error('connect timeout')), timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  s.setNoDelay(true);
  s.on('data', onBytes);
  s.on('error', () => {
    // 'close' follows
  });
  s.on('close', () => onClose(1006, ''));
  return { write: (b) => void s.write(b), destroy: () => s.destroy() };
}

/** Joins stream chunks: `take(chunk)` returns the bytes to parse (earlier leftovers first). */
class Carry {
  #rest: Buffer | null = null;
  take(chunk: Buffer): Buffer {
    if (!this.#rest) return chunk;
    const b = Buffer.concat([this.#rest, chunk]);
    this.#rest = null;
    return b;
  }
  keep(buf: Buffer, from: number): void {
    if (from < buf.length) this.#rest = Buffer.from(buf.subarray(from));
  }
}

const CRLF = Buffer.from('\r\n');

/** Parses a NATS server stream: MSG → `onMsg(buf, start, end)`, PING → PONG, PONG → `onPong`, -ERR → `onErr`. */
function natsParser(
  stream: () => Stream | undefined,
  onMsg: (buf: Buffer, s: number, e: number) => void,
  onPong: () => void,
  onErr: (line: string) => void,
) {
  const carry = new Carry();
  return (chunk: Buffer) => {
    const buf = carry.take(chunk);
    let i = 0;
    for (;;) {
      const eol = buf.indexOf(CRLF, i);
      if (eol === -1) break;
      const c0 = buf[i];
      if (c0 === 0x4d /* MSG */) {
        // MSG <subject> <sid> [reply-to] <#bytes>
        let size = 0;
        let mul = 1;
        for (let k = eol - 1; k > i && buf[k] !== 0x20; k--, mul *= 10) size += (buf[k]! - 48) * mul;
        const start = eol + 2;
        if (start + size + 2 > buf.length) break;
        i = start + size + 2;
        onMsg(buf, start, start + size);
        continue;
      }
      const line = buf.subarray(i, eol).toString('latin1');
      i = eol + 2;
      if (line === 'PING') stream()?.write(Buffer.from('PONG\r\n'));
      else if (line === 'PONG') onPong();
      else if (line.startsWith('-ERR')) onErr(line);
      // INFO, +OK: nothing to do.
    }
    carry.keep(buf, i);
  };
}

function natsAdapter(t: Extract<Target, { kind: 'nats' }>): Adapter {
  const CONNECT = Buffer.from('CONNECT {"verbose":false,"pedantic":false,"protocol":1,"echo":false,"name":"bench"}\r\n');
  return {
    topicName: (n) => n,
    subscribe: (sub, topics, sink, timeoutMs) =>
      subscribing(`nats subscriber ${sub}`, sub, sink, timeoutMs, async (setup) => {
        // Set once open: the parser answers PINGs through it.
        const io: { stream?: Stream } = {};
        const parse = natsParser(
          () => io.stream,
          (buf, s, e) => sink.deliver(sub, buf, s, e),
          () => setup.ready(),
          (line) => setup.fail(new Error(`nats: ${line}`)),
        );
        const stream = (io.stream = await openStream(t.port, 'ws', undefined, timeoutMs, parse, setup.onClose));
        const subs = topics.map((topic, k) => `SUB ${topic} ${k + 1}\r\n`).join('');
        // The PONG to this PING proves the SUBs were processed.
        stream.write(Buffer.concat([CONNECT, Buffer.from(subs + 'PING\r\n')]));
        return stream;
      }),
    async publisher() {
      const io: { stream?: Stream } = {};
      const ready = deferred<void>(10_000, 'nats publisher');
      const parse = natsParser(
        () => io.stream,
        () => undefined,
        () => ready.resolve(),
        (line) => ready.reject(new Error(`nats publisher: ${line}`)),
      );
      const s = (io.stream = await openStream(t.port, 'ws', undefined, 10_000, parse, () =>
        ready.reject(new Error('nats publisher closed')),
      ));
      s.write(Buffer.concat([CONNECT, Buffer.from('PING\r\n')]));
      await ready.promise;
      return {
        publish(topic, payload, done) {
          s.write(Buffer.concat([Buffer.from(`PUB ${topic} ${payload.length}\r\n`), payload, CRLF]));
          done(true);
        },
        inFlight: 0,
        close: () => s.destroy(),
      };
    },
  };
}

// ---------------------------------------------------------------- MQTT 3.1.1, QoS 0

function mqttString(s: string): Buffer {
  const b = Buffer.from(s);
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function mqttPacket(type: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    len.push(d);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...len]), body]);
}

function mqttConnect(clientId: string): Buffer {
  // Protocol "MQTT", level 4 (3.1.1), clean session, keep-alive 0 (off).
  return mqttPacket(0x10, Buffer.concat([mqttString('MQTT'), Buffer.from([4, 0x02, 0, 0]), mqttString(clientId)]));
}

/** Parses an MQTT server stream: PUBLISH → `onPublish(buf, payloadStart, end)`, other packets → `onPacket(type, body)`. */
function mqttParser(onPublish: (buf: Buffer, s: number, e: number) => void, onPacket: (type: number, body: Buffer) => void) {
  const carry = new Carry();
  return (chunk: Buffer) => {
    const buf = carry.take(chunk);
    let i = 0;
    while (i + 2 <= buf.length) {
      const type = buf[i]!;
      let len = 0;
      let mul = 1;
      let k = i + 1;
      let complete = false;
      for (let n = 0; n < 4 && k < buf.length; n++, k++) {
        len += (buf[k]! & 0x7f) * mul;
        mul *= 128;
        if ((buf[k]! & 0x80) === 0) {
          complete = true;
          k++;
          break;
        }
      }
      if (!complete || k + len > buf.length) break;
      const end = k + len;
      if (type >> 4 === 3) {
        // PUBLISH: topic (length-prefixed), a packet id only for QoS > 0, then the payload.
        const qos = (type >> 1) & 3;
        const start = k + 2 + buf.readUInt16BE(k) + (qos ? 2 : 0);
        onPublish(buf, start, end);
      } else onPacket(type >> 4, buf.subarray(k, end));
      i = end;
    }
    carry.keep(buf, i);
  };
}

function mqttAdapter(t: Extract<Target, { kind: 'mqtt' }>): Adapter {
  const protocols = t.transport === 'ws' ? ['mqtt'] : undefined;
  return {
    topicName: (n) => n.replace(/\./g, '/'),
    subscribe: (sub, topics, sink, timeoutMs) =>
      subscribing(`mqtt subscriber ${sub}`, sub, sink, timeoutMs, async (setup) => {
        const io: { stream?: Stream } = {};
        const parse = mqttParser(
          (buf, s, e) => sink.deliver(sub, buf, s, e),
          (type, body) => {
            if (type === 2 /* CONNACK */) {
              if (body[1] !== 0) return setup.fail(new Error(`mqtt CONNACK return code ${body[1]}`));
              const filters = Buffer.concat(topics.map((topic) => Buffer.concat([mqttString(topic), Buffer.from([0])])));
              io.stream?.write(mqttPacket(0x82, Buffer.concat([Buffer.from([0, 1]), filters])));
            } else if (type === 9 /* SUBACK */) {
              if (body.subarray(2).some((rc) => rc === 0x80)) return setup.fail(new Error('mqtt SUBACK refused'));
              setup.ready();
            }
          },
        );
        const stream = (io.stream = await openStream(t.port, t.transport, protocols, timeoutMs, parse, setup.onClose));
        stream.write(mqttConnect(`bench-sub-${sub}`));
        return stream;
      }),
    async publisher() {
      const ready = deferred<void>(10_000, 'mqtt publisher');
      const stream = await openStream(
        t.port,
        t.transport,
        protocols,
        10_000,
        mqttParser(
          () => undefined,
          (type, body) => (type === 2 && body[1] === 0 ? ready.resolve() : undefined),
        ),
        () => ready.reject(new Error('mqtt publisher closed')),
      );
      stream.write(mqttConnect('bench-pub'));
      await ready.promise;
      return {
        publish(topic, payload, done) {
          stream.write(mqttPacket(0x30, Buffer.concat([mqttString(topic), payload])));
          done(true);
        },
        inFlight: 0,
        close: () => stream.destroy(),
      };
    },
  };
}

export function adapterFor(t: Target): Adapter {
  switch (t.kind) {
    case 'hubcast':
      return hubcastAdapter(t);
    case 'ws-frame-once':
      return wsFrameOnceAdapter(t);
    case 'socketio':
      return socketioAdapter(t);
    case 'nats':
      return natsAdapter(t);
    case 'mqtt':
      return mqttAdapter(t);
  }
}
