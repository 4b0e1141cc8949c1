import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/core/errors.ts';
import { decodeBinary, TestClient, type Frame } from '../helpers/ws-client.ts';
import { startServer, type Harness } from '../helpers/server.ts';

/**
 * Property-based fuzzing of client frames against a live server: arbitrary text, JSON objects with
 * random `type`/`topic`/`since`/`data`/`key`/`id`, binary frames, invalid UTF-8, oversize frames.
 * The server answers only with documented frames and documented close codes, never crashes, and a
 * separate well-behaved consumer keeps receiving throughout.
 */

const MAX_PAYLOAD = 4096;
const RUNS = 300;
/** Close codes a consumer may get for what it sent (docs/websocket.md). */
const CLOSE_CODES = new Set([1007, 1009, 4501]);
const ANSWER_TYPES = new Set(['welcome', 'subscribed', 'unsubscribed', 'message', 'ack', 'pong', 'error']);
const ERROR_CODES = new Set(Object.keys(ERRORS).filter((c) => c !== 'internal_error'));

let h: Harness;
let token: string;
let watcher: TestClient;
let conn: TestClient | undefined;
let barrierSeq = 0;
let watchSeq = 0;
const problems: string[] = [];

beforeAll(async () => {
  h = await startServer({ ws: { maxPayload: MAX_PAYLOAD } });
  token = await h.register(await h.createClient({ subscribe: ['fz.>'], publish: ['fz.pub.>'], name: 'fuzz' }));
  watcher = await h.connect(await h.register(await h.createClient({ subscribe: ['watch.>'], name: 'watcher' })));
  await watcher.subscribe('watch.t');
});

afterAll(async () => {
  conn?.ws.terminate();
  await h.close();
});

/** The fuzzing connection, reopened (bounded retries while the old one's end is processed: 409) when closed. */
async function connection(): Promise<TestClient> {
  if (conn && conn.ws.readyState === conn.ws.OPEN) return conn;
  const deadline = Date.now() + 5000;
  for (;;) {
    const c = new TestClient(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${token}` } });
    try {
      await c.opened;
      await c.next('welcome');
      conn = c;
      return c;
    } catch (err) {
      c.ws.terminate();
      if ((err as { status?: number }).status !== 409 || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Checks one server frame against the documented shapes; records what does not fit. */
function check(f: Frame | Buffer, sent: string): void {
  if (Buffer.isBuffer(f)) {
    const { header } = decodeBinary(f);
    if (header.type !== 'message') problems.push(`binary frame with header ${JSON.stringify(header)} after ${sent}`);
    return;
  }
  const bad = (why: string): void => void problems.push(`${why}: ${JSON.stringify(f).slice(0, 200)} after ${sent}`);
  if (!ANSWER_TYPES.has(f.type)) return bad('undocumented frame type');
  switch (f.type) {
    case 'error':
      if (!ERROR_CODES.has(f.code as string)) bad('undocumented or internal error code');
      if (typeof f.message !== 'string') bad('error without message');
      break;
    case 'subscribed':
    case 'unsubscribed':
      if (typeof f.topic !== 'string') bad(`${f.type} without topic`);
      break;
    case 'message':
      if (typeof f.topic !== 'string' || typeof f.offset !== 'number' || typeof f.ts !== 'number' || !('data' in f))
        bad('malformed message');
      if ('id' in f) bad('message frame with id');
      break;
    case 'ack':
      if (typeof f.topic !== 'string' || typeof f.offset !== 'number') bad('malformed ack');
      break;
  }
}

type Cmd =
  | { kind: 'json'; value: Record<string, unknown> }
  | { kind: 'text'; text: string }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'badUtf8'; bytes: Uint8Array };

const topic = fc.oneof(
  { arbitrary: fc.constantFrom('fz.a', 'fz.b', 'fz.pub.x', 'fz.pub.y', 'fz.*', 'fz.>', 'fz.pub.>'), weight: 6 },
  { arbitrary: fc.constantFrom('>', 'watch.t', 'other.t', '', '.', 'a..b', 'x'.repeat(201)), weight: 2 },
  { arbitrary: fc.string({ maxLength: 30 }), weight: 1 },
  { arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.jsonValue({ maxDepth: 2 })), weight: 1 },
);
const since = fc.oneof(
  { arbitrary: fc.nat(5).map((offset) => ({ offset })), weight: 3 },
  fc.record({ offset: fc.oneof(fc.nat(50), fc.integer(), fc.double(), fc.string({ maxLength: 5 })) }, { requiredKeys: [] }),
  fc.record({ offset: fc.nat(50), epoch: fc.oneof(fc.string({ maxLength: 15 }), fc.integer()) }),
  fc.jsonValue({ maxDepth: 2 }),
);
const jsonFrame = fc
  .record(
    {
      type: fc.oneof(
        { arbitrary: fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'publish'), weight: 6 },
        { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
        { arbitrary: fc.jsonValue({ maxDepth: 1 }), weight: 1 },
      ),
      topic,
      since,
      data: fc.jsonValue({ maxDepth: 4 }),
      key: fc.oneof(
        { arbitrary: fc.string({ minLength: 1, maxLength: 8 }), weight: 3 },
        fc.string({ maxLength: 210 }),
        fc.integer(),
        fc.constant(''),
      ),
      id: fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: ['type'] },
  )
  .map((value): Cmd => ({ kind: 'json', value }));
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: jsonFrame, weight: 12 },
  { arbitrary: fc.string({ maxLength: 200 }).map((text): Cmd => ({ kind: 'text', text })), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 50 }).map((text): Cmd => ({ kind: 'text', text })), weight: 1 },
  {
    arbitrary: fc
      .constantFrom('x'.repeat(MAX_PAYLOAD + 1), '['.repeat(2000) + ']'.repeat(2000), '{}', '[]', 'null', '{"type":"ping"}')
      .map((text): Cmd => ({ kind: 'text', text })),
    weight: 1,
  },
  { arbitrary: fc.uint8Array({ maxLength: 100 }).map((bytes): Cmd => ({ kind: 'binary', bytes })), weight: 1 },
  {
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 20 })
      .map((b): Cmd => ({ kind: 'badUtf8', bytes: new Uint8Array([0x7b, 0xff, ...b]) })),
    weight: 1,
  },
);

async function run(c: Cmd): Promise<void> {
  const ws = await connection();
  const sent = JSON.stringify(c).slice(0, 200);
  if (c.kind === 'json') ws.send(JSON.stringify(c.value));
  else if (c.kind === 'text') ws.ws.send(c.text);
  else ws.ws.send(Buffer.from(c.bytes), { binary: c.kind === 'binary' });
  // A ping behind it: its pong means the frame was handled and the connection is still open.
  const id = `barrier-${++barrierSeq}`;
  if (ws.ws.readyState === ws.ws.OPEN) ws.send({ type: 'ping', id });
  const closed = ws.closed.then((x) => x);
  const answered = (async () => {
    for (;;) {
      const f = await ws.next('pong', 3000);
      if (f.id === id) return 'pong' as const;
    }
  })().catch(() => 'no pong' as const);
  const outcome = await Promise.race([answered, closed]);
  // Every frame received so far, checked and dropped (answers may come after the pong: subscribe, publish).
  for (const f of ws.frames.splice(0)) check(f, sent);
  if (outcome === 'no pong' || typeof outcome === 'object') {
    const { code } =
      typeof outcome === 'object'
        ? outcome
        : await Promise.race([closed, new Promise<{ code: number }>((r) => setTimeout(() => r({ code: -1 }), 3000))]);
    if (!CLOSE_CODES.has(code)) problems.push(`closed with ${code} after ${sent}`);
    conn = undefined;
  }
}

describe('client frames (fast-check, live server)', () => {
  it('answers only with documented frames and close codes; never crashes; others keep receiving', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(cmd, async (c) => {
        await run(c);
        if (++n % 25 === 0) {
          const data = { w: ++watchSeq };
          expect((await h.ingest('watch.t', data)).status).toBe(202);
          expect((await watcher.next('message')).data).toEqual(data);
        }
        expect(problems).toEqual([]);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect((await h.fetchJson('/healthz')).status).toBe(200);
    const data = { w: ++watchSeq };
    expect((await h.ingest('watch.t', data)).status).toBe(202);
    expect((await watcher.next('message')).data).toEqual(data);
    expect(h.logs.filter((l) => (l.level as number) >= 50).map((l) => l.msg)).toEqual([]);
  });
});
