import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postEnvelope, postRaw } from '../helpers/e2e.ts';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { rawHttp, upgradeHead } from '../helpers/raw-http.ts';
import { clientFrame, parseFrames, rawWebSocket, type RawWs } from '../helpers/raw-ws.ts';
import { startServer, type Harness } from '../helpers/server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

/**
 * Bad input at every entrance (HTTP bodies and headers, the upgrade, WebSocket frames, slow
 * senders): each gets its documented status or close code, and afterwards the process still serves
 * (healthz 200, a normal consumer still receives) and nothing it acknowledged is lost.
 */

const MAX_MESSAGE = 8192;
const MAX_PAYLOAD = 4096;
const HEADERS_TIMEOUT_MS = 1000;
const AUTH_TIMEOUT_MS = 500;
const TEN_GB = '10737418240';

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CONT = 0x0;
const OP_PING = 0x9;

let h: Harness;
let faulty: FaultyStore;
let watcher: TestClient;
let seq = 0;
const acked: { topic: string; offset: number; data: unknown }[] = [];
const raws: RawWs[] = [];

beforeAll(async () => {
  h = await startServer(
    {
      ws: { maxPayload: MAX_PAYLOAD },
      limits: { maxMessageBytes: MAX_MESSAGE, headersTimeoutMs: HEADERS_TIMEOUT_MS, authTimeoutMs: AUTH_TIMEOUT_MS },
    },
    { wrapStore: (s) => (faulty = new FaultyStore(s)).store },
  );
  watcher = await h.connect(await h.register(await h.createClient()));
  await watcher.subscribe('bad.watch');
});

afterEach(async () => {
  faulty.slow.clear();
  for (const r of raws.splice(0)) r.destroy();
  // The process still serves: health, ingest, delivery to a consumer that did nothing wrong.
  expect((await h.fetchJson('/healthz')).status).toBe(200);
  const data = { n: ++seq };
  const r = await h.ingest('bad.watch', data);
  expect(r.status).toBe(202);
  acked.push({ topic: 'bad.watch', offset: r.body.offset as number, data });
  expect((await watcher.next('message')).data).toEqual(data);
});

afterAll(async () => {
  try {
    // Nothing acknowledged was lost: every 202 is in history with its data.
    const reader = await h.connect(await h.register(await h.createClient()));
    for (const topic of new Set(acked.map((a) => a.topic))) {
      reader.send({ type: 'subscribe', topic, since: { offset: 0 } });
      const sub = await reader.next('subscribed');
      const got = new Map<number, unknown>();
      for (let i = 0; i < (sub.offset as number); i++) {
        const m = await reader.next('message');
        got.set(m.offset as number, m.data);
      }
      // Compared as JSON text: a deep structural compare of the deeply nested payloads would overflow the stack.
      for (const a of acked.filter((x) => x.topic === topic)) expect(JSON.stringify(got.get(a.offset))).toBe(JSON.stringify(a.data));
    }
  } finally {
    await h.close();
  }
});

/** A registered consumer on a raw socket, past its `welcome`. */
async function rawConsumer(): Promise<RawWs> {
  const token = await h.register(await h.createClient());
  const r = await rawWebSocket(h.port, { Authorization: `Bearer ${token}` });
  raws.push(r);
  expect(await r.waitText((t) => t.includes('"welcome"'))).toBeDefined();
  return r;
}

/**
 * The server's close frame carries `code`. After a protocol error (1002, 1007, 1009) the server also
 * ends the TCP connection at once, though we never answer its close frame; after an application
 * close (4501) ws waits for the handshake (up to 30 s), so that is not awaited.
 */
async function closedWith(r: RawWs, code: number): Promise<void> {
  expect(await r.waitCloseCode(3000)).toBe(code);
  if (code < 4000) expect(await r.waitClosed(5000)).toBe(true);
}

const ingestHead = (path: string, extra: string[] = []) =>
  [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: Bearer ${h.ingestKey}`, ...extra].join('\r\n') + '\r\n\r\n';

describe('HTTP bodies', () => {
  it('malformed JSON: POST /consumers 400 bad_request, POST /entity and /entity/<topic> 400 invalid_json', async () => {
    for (const body of ['{"client_id":', '{', 'nul', '\u0000', '{"client_id":"a" "client_secret":"b"}']) {
      const r = await h.fetchJson('/consumers', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status, body).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
    }
    for (const body of ['{"topic":"bad.json","data":', '', '{', '[1,', "{'topic':'x'}"]) {
      const r = await postEnvelope(h, body);
      expect(r.status, body).toBe(400);
      expect(r.body.error.code).toBe('invalid_json');
      const raw = await postRaw(h, 'bad.json', body, 'application/json');
      expect(raw.status, body).toBe(400);
      expect(raw.body.error.code).toBe('invalid_json');
    }
    for (const body of ['[]', '"x"', '42', 'null']) {
      const r = await postEnvelope(h, body);
      expect(r.status, body).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
    }
  });

  it('deeply nested JSON is answered 202 or 400, never 500', async () => {
    const depth = 3000;
    const nested = '['.repeat(depth) + ']'.repeat(depth);
    const raw = await postRaw(h, 'bad.deep', nested, 'application/json');
    expect([202, 400]).toContain(raw.status);
    if (raw.status === 202) acked.push({ topic: 'bad.deep', offset: raw.body.offset as number, data: JSON.parse(nested) });
    const env = await postEnvelope(h, `{"topic":"bad.deep","data":${nested}}`);
    expect([202, 400]).toContain(env.status);
    if (env.status === 202) acked.push({ topic: 'bad.deep', offset: env.body.offset as number, data: JSON.parse(nested) });
  });

  it('deeply nested JSON beyond the stack (within the body limit) is answered 202 or 400, never 500', async () => {
    // 12,000 levels fit in the body limit of POST /entity (8 KiB + 16 KiB of envelope) and are deeper
    // than a recursive JSON.stringify goes on Node's default stack.
    const depth = 12_000;
    const nested = '['.repeat(depth) + ']'.repeat(depth);
    const env = await postEnvelope(h, `{"topic":"bad.deep2","data":${nested}}`);
    expect([202, 400, 413], JSON.stringify(env.body)).toContain(env.status);
  });

  it('oversize bodies get 413 payload_too_large', async () => {
    const big = 'x'.repeat(MAX_MESSAGE + 1);
    const raw = await postRaw(h, 'bad.big', big, 'text/plain');
    expect(raw.status).toBe(413);
    expect(raw.body.error.code).toBe('payload_too_large');
    const env = await postEnvelope(h, { topic: 'bad.big', data: 'y'.repeat(MAX_MESSAGE + 20 * 1024) });
    expect(env.status).toBe(413);
    expect(env.body.error.code).toBe('payload_too_large');
    const reg = await h.fetchJson('/consumers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'c', client_secret: 'z'.repeat(MAX_MESSAGE + 70 * 1024) }),
    });
    expect(reg.status).toBe(413);
    expect(reg.body.error.code).toBe('payload_too_large');
  });

  it('a Content-Length of 10 GB with a tiny body is refused at once with 413, without waiting for the body', async () => {
    for (const path of ['/entity/bad.huge', '/entity', '/consumers']) {
      const r = await rawHttp(
        h.port,
        [ingestHead(path, ['Content-Type: application/json', `Content-Length: ${TEN_GB}`]) + '{"a":1}'],
        5000,
      );
      expect(r.timedOut, `${path}: ${r.raw}`).toBe(false);
      expect(r.status, path).toBe(413);
      expect(JSON.parse(r.body).error.code).toBe('payload_too_large');
    }
  });

  it('a chunked body that grows past the limit is cut off with 413', async () => {
    const chunk = Buffer.alloc(4096, 0x61);
    const r = await rawHttp(
      h.port,
      [
        ingestHead('/entity/bad.chunked', ['Content-Type: text/plain', 'Transfer-Encoding: chunked']),
        (sock) => {
          for (let i = 0; i < 8; i++) sock.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
        },
      ],
      5000,
    );
    expect(r.status, r.raw.slice(0, 200)).toBe(413);
  });

  it('invalid UTF-8 in a text/plain ingest: 400 invalid_text', async () => {
    for (const bytes of [[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const r = await postRaw(h, 'bad.text', new Uint8Array([0x61, ...bytes, 0x62]), 'text/plain; charset=utf-8');
      expect(r.status, String(bytes)).toBe(400);
      expect(r.body.error.code).toBe('invalid_text');
    }
  });
});

describe('HTTP headers and request lines', () => {
  const many = (n: number, size = 8) => Array.from({ length: n }, (_, i) => `X-H-${i}: ${'v'.repeat(size)}`);

  it('5,000 headers on a request: 431 (or the connection is closed)', async () => {
    const r = await rawHttp(h.port, [['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', ...many(5000)].join('\r\n') + '\r\n\r\n']);
    expect(r.timedOut).toBe(false);
    if (r.status !== undefined) expect(r.status).toBe(431);
    else expect(r.closed).toBe(true);
  });

  it('5,000 headers on an upgrade request: 431 (or the connection is closed)', async () => {
    const token = await h.register(await h.createClient());
    h.remember(token);
    const r = await rawHttp(h.port, [upgradeHead('/ws', [`Authorization: Bearer ${token}`, ...many(5000)])]);
    expect(r.timedOut).toBe(false);
    if (r.status !== undefined) expect(r.status).toBe(431);
    else expect(r.closed).toBe(true);
  });

  it('3,000 tiny headers (under the size limit): answered normally', async () => {
    const r = await rawHttp(h.port, [
      ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close', ...many(3000, 1)].join('\r\n') + '\r\n\r\n',
    ]);
    expect([200, 431]).toContain(r.status);
  });

  it('garbage instead of a request: 400 (or closed)', async () => {
    for (const junk of [
      randomBytes(512),
      Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'),
      Buffer.from('GET / HTTP/9.9\r\n\r\n'),
    ]) {
      const r = await rawHttp(h.port, [junk]);
      expect(r.timedOut).toBe(false);
      if (r.status !== undefined) expect([400, 505]).toContain(r.status);
      else expect(r.closed).toBe(true);
    }
  });
});

describe('WebSocket frames', () => {
  it('invalid UTF-8 in a text frame: close 1007', async () => {
    const r = await rawConsumer();
    r.sock.write(clientFrame(OP_TEXT, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
    await closedWith(r, 1007);
  });

  it('an unknown frame type: error publish_not_allowed, close 4501 (the receive-only rule)', async () => {
    const r = await rawConsumer();
    r.sock.write(clientFrame(OP_TEXT, JSON.stringify({ type: 'bogus', topic: 'x' })));
    const err = await r.waitText((t) => t.includes('"error"'));
    expect(JSON.parse(err!).code).toBe('publish_not_allowed');
    await closedWith(r, 4501);
  });

  it('a frame header announcing 2^60 bytes: close 1009', async () => {
    const r = await rawConsumer();
    r.sock.write(clientFrame(OP_BINARY, Buffer.alloc(1024, 0x78), { announce: 1n << 60n }));
    await closedWith(r, 1009);
  });

  it('a frame with RSV bits set: close 1002', async () => {
    for (const rsv of [0b100, 0b010, 0b001]) {
      const r = await rawConsumer();
      r.sock.write(clientFrame(OP_TEXT, '{"type":"ping"}', { rsv }));
      await closedWith(r, 1002);
    }
  });

  it('an unmasked client frame: close 1002', async () => {
    const r = await rawConsumer();
    r.sock.write(clientFrame(OP_TEXT, '{"type":"ping"}', { masked: false }));
    await closedWith(r, 1002);
  });

  it('reserved opcodes and malformed control frames: close 1002', async () => {
    const bad = [
      clientFrame(0x3, 'x'),
      clientFrame(0xb, 'x'),
      clientFrame(OP_PING, 'x', { fin: false }),
      clientFrame(OP_PING, Buffer.alloc(126)),
      clientFrame(OP_CONT, 'x'),
    ];
    for (const frame of bad) {
      const r = await rawConsumer();
      r.sock.write(frame);
      await closedWith(r, 1002);
    }
  });

  it('a fragmented message whose total exceeds ws.maxPayload: close 1009', async () => {
    const r = await rawConsumer();
    const part = Buffer.alloc(2000, 0x61);
    r.sock.write(clientFrame(OP_TEXT, part, { fin: false }));
    r.sock.write(clientFrame(OP_CONT, part, { fin: false }));
    r.sock.write(clientFrame(OP_CONT, part, { fin: true }));
    await closedWith(r, 1009);
  });

  it('a single frame over ws.maxPayload: close 1009', async () => {
    const r = await rawConsumer();
    r.sock.write(clientFrame(OP_TEXT, Buffer.alloc(MAX_PAYLOAD + 1, 0x61)));
    await closedWith(r, 1009);
  });

  it('garbage bytes after the handshake (first byte with RSV set): close 1002', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await rawConsumer();
      const junk = randomBytes(256);
      junk[0] = junk[0]! | 0x70;
      r.sock.write(junk);
      await closedWith(r, 1002);
    }
  });

  it('random garbage after the handshake: any close code is a documented one, the server is unharmed', async () => {
    const allowed = new Set([1002, 1007, 1009, 4501]);
    for (let i = 0; i < 10; i++) {
      const r = await rawConsumer();
      const junk = randomBytes(300);
      r.sock.write(junk);
      // Random bytes may also announce a frame that is still incomplete: then nothing happens until we go.
      const code = await r.waitCloseCode(500);
      const frames = parseFrames(r.received());
      const echoedClose = (junk[0]! & 0x0f) === 0x8;
      if (code !== undefined && !echoedClose) expect(allowed, `code ${code} for ${junk.subarray(0, 16).toString('hex')}`).toContain(code);
      for (const f of frames) expect([0x1, 0x8, 0xa]).toContain(f.opcode);
      r.destroy();
    }
  });
});

describe('slow senders', () => {
  it('a partial request line that stalls is dropped within limits.headersTimeoutMs', async () => {
    const r = await rawHttp(h.port, ['GET /heal'], HEADERS_TIMEOUT_MS + 4000, true);
    expect(r.timedOut, 'still open well after headersTimeoutMs').toBe(false);
    expect(r.closed).toBe(true);
    if (r.status !== undefined) expect(r.status).toBe(408);
  });

  it('partial headers that stall (an upgrade in the making) are dropped within limits.headersTimeoutMs', async () => {
    const r = await rawHttp(
      h.port,
      ['GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upg'],
      HEADERS_TIMEOUT_MS + 4000,
      true,
    );
    expect(r.timedOut, 'still open well after headersTimeoutMs').toBe(false);
    expect(r.closed).toBe(true);
    if (r.status !== undefined) expect(r.status).toBe(408);
  });

  it('headers trickled one byte at a time past the deadline are dropped too', async () => {
    const head = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' + 'X-Slow: ' + 'a'.repeat(200);
    let timer: NodeJS.Timeout | undefined;
    const r = await rawHttp(
      h.port,
      [
        (sock) => {
          let i = 0;
          timer = setInterval(() => {
            if (i < head.length && !sock.destroyed) sock.write(head[i++]!);
          }, 50);
        },
      ],
      HEADERS_TIMEOUT_MS + 4000,
      true,
    );
    clearInterval(timer);
    expect(r.timedOut, 'still open well after headersTimeoutMs').toBe(false);
    expect(r.closed).toBe(true);
  });

  it('an upgrade whose authentication stalls is destroyed after limits.authTimeoutMs', async () => {
    const token = await h.register(await h.createClient());
    h.remember(token);
    faulty.slow.set('getToken', 4000);
    const r = await rawHttp(h.port, [upgradeHead('/ws', { Authorization: `Bearer ${token}` })], AUTH_TIMEOUT_MS + 2500, true);
    expect(r.timedOut, 'still open well after authTimeoutMs').toBe(false);
    expect(r.closed).toBe(true);
    expect(r.status).not.toBe(101);
  });
});
