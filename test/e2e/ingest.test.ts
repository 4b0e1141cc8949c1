import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { barrier, buffered, metricsText, metricValue, postEnvelope, postRaw, subscriber } from '../helpers/e2e.ts';
import { cli, eventually, ManualClock, startServer, type Harness } from '../helpers/server.ts';
import { decodeBinary } from '../helpers/ws-client.ts';

/** Asserts the documented HTTP error shape: exactly `{"error":{"code","message"}}`. */
function expectError(r: { status: number; body: any }, status: number, code: string): void {
  expect({ status: r.status, body: r.body }).toEqual({ status, body: { error: { code, message: expect.any(String) } } });
  expect(r.body.error.message.length).toBeGreaterThan(0);
}

/** A valid topic of exactly `n` characters (for n ≤ 200 it is valid; segments of 10 characters). */
const topicOf = (n: number) => 'segment-09.'.repeat(20).slice(0, n);

describe('ingest: POST /entity (JSON envelope)', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('answers 202 {topic, offset, id} with offsets 1, 2, 3 per topic and delivers data as JSON', async () => {
    h = await startServer();
    const c = await subscriber(h, ['orders.eu', 'orders.us']);
    const results = [];
    for (const [topic, n] of [
      ['orders.eu', 1],
      ['orders.us', 1],
      ['orders.eu', 2],
      ['orders.eu', 3],
      ['orders.us', 2],
    ] as const) {
      const r = await h.ingest(topic, { topic, n });
      expect(r.status).toBe(202);
      expect(Object.keys(r.body).sort()).toEqual(['id', 'offset', 'topic']);
      expect(r.body).toMatchObject({ topic, offset: n });
      expect(typeof r.body.id).toBe('string');
      expect(r.body.id.length).toBeGreaterThan(0);
      results.push(r.body);
    }
    // Generated message ids are distinct.
    expect(new Set(results.map((r) => r.id)).size).toBe(results.length);
    for (const b of results) {
      const m = await c.next('message');
      expect(m).toEqual({
        type: 'message',
        topic: b.topic,
        offset: b.offset,
        ts: expect.any(Number),
        data: { topic: b.topic, n: b.offset },
      });
    }
  });

  it('delivers any JSON value as data (string, number, array, null, nested)', async () => {
    h = await startServer();
    const c = await subscriber(h, ['json.values']);
    const values = ['plain string', 42, -1.5, [1, 'two', { three: 3 }], null, false, { a: { b: { c: ['d'] } }, ü: 'ñ' }];
    for (const v of values) expect((await h.ingest('json.values', v)).status).toBe(202);
    for (const [i, v] of values.entries()) expect(await c.next('message')).toMatchObject({ offset: i + 1, data: v });
  });

  it('echoes the body id as the message id', async () => {
    h = await startServer();
    const r = await postEnvelope(h, { topic: 'ids.t', data: 1, id: 'order-123' });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ topic: 'ids.t', offset: 1, id: 'order-123' });
  });

  it('415 unsupported_media_type for text/plain, 400 invalid_json for a bad envelope, 400 bad_request without data', async () => {
    h = await startServer();
    const c = await subscriber(h, ['env.t']);
    const text = await h.fetchJson('/entity', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${h.ingestKey}` },
      body: JSON.stringify({ topic: 'env.t', data: 1 }),
    });
    expectError(text, 415, 'unsupported_media_type');
    const none = await h.fetchJson('/entity', {
      method: 'POST',
      headers: { authorization: `Bearer ${h.ingestKey}` },
      body: Buffer.from(JSON.stringify({ topic: 'env.t', data: 1 })),
    });
    expectError(none, 415, 'unsupported_media_type');
    expectError(await postEnvelope(h, '{"topic":"env.t","data":'), 400, 'invalid_json');
    expectError(await postEnvelope(h, "{'topic':'env.t'}"), 400, 'invalid_json');
    expectError(await postEnvelope(h, { topic: 'env.t' }), 400, 'bad_request');
    expectError(await postEnvelope(h, [{ topic: 'env.t', data: 1 }]), 400, 'bad_request');
    // Nothing of the above was stored or delivered: the next message is offset 1.
    expect((await h.ingest('env.t', 'ok')).body.offset).toBe(1);
    expect(await c.next('message')).toMatchObject({ offset: 1, data: 'ok' });
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });
});

describe('ingest: POST /entity/<topic> (raw body)', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('application/json: valid JSON is delivered as JSON data', async () => {
    h = await startServer();
    const c = await subscriber(h, ['raw.json']);
    const r1 = await postRaw(h, 'raw.json', '{"a":[1,2,{"b":null}],"s":"é"}', 'application/json');
    expect(r1.status).toBe(202);
    expect(r1.body).toEqual({ topic: 'raw.json', offset: 1, id: expect.any(String) });
    const r2 = await postRaw(h, 'raw.json', '[1,2,3]', 'application/json; charset=utf-8');
    expect(r2.status).toBe(202);
    expect(r2.body.offset).toBe(2);
    expect(await c.next('message')).toEqual({
      type: 'message',
      topic: 'raw.json',
      offset: 1,
      ts: expect.any(Number),
      data: { a: [1, 2, { b: null }], s: 'é' },
    });
    expect(await c.next('message')).toMatchObject({ offset: 2, data: [1, 2, 3] });
  });

  it('text/*: delivered as a JSON string, non-ASCII intact', async () => {
    h = await startServer();
    const c = await subscriber(h, ['raw.text']);
    const text = 'héllo wörld — ✓ 日本語 🎉 "quoted" \\ back\nnew line';
    const r = await postRaw(h, 'raw.text', text, 'text/plain; charset=utf-8');
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ topic: 'raw.text', offset: 1, id: expect.any(String) });
    expect((await postRaw(h, 'raw.text', '{"looks":"like json"}', 'text/plain')).status).toBe(202);
    expect((await postRaw(h, 'raw.text', 'a,b\n1,2', 'text/csv')).status).toBe(202);
    expect(await c.next('message')).toEqual({ type: 'message', topic: 'raw.text', offset: 1, ts: expect.any(Number), data: text });
    expect(await c.next('message')).toMatchObject({ offset: 2, data: '{"looks":"like json"}' });
    expect(await c.next('message')).toMatchObject({ offset: 3, data: 'a,b\n1,2' });
  });

  it.each([
    ['application/octet-stream', 'application/octet-stream'],
    ['no content type', null],
    ['image/png', 'image/png'],
  ])('%s: delivered as a binary frame (length, JSON header, exact bytes)', async (_name, contentType) => {
    h = await startServer();
    const c = await subscriber(h, ['raw.bin']);
    const payload = Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x7b, 0x22]), randomBytes(300)]);
    const r = await postRaw(h, 'raw.bin', payload, contentType);
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ topic: 'raw.bin', offset: 1, id: expect.any(String) });
    const buf = await c.nextBinary();
    const n = buf.readUInt32BE(0);
    const { header, payload: got } = decodeBinary(buf);
    expect(buf.length).toBe(4 + n + payload.length);
    expect(header).toEqual({ type: 'message', topic: 'raw.bin', offset: 1, ts: expect.any(Number) });
    expect(Buffer.compare(got, payload)).toBe(0);
    await barrier(c);
    expect(buffered(c, 'message')).toEqual([]);
  });

  it('an empty binary body is delivered as a binary frame with no payload bytes', async () => {
    h = await startServer();
    const c = await subscriber(h, ['raw.empty']);
    const r = await postRaw(h, 'raw.empty', Buffer.alloc(0), 'application/octet-stream');
    expect(r.status).toBe(202);
    const { header, payload } = decodeBinary(await c.nextBinary());
    expect(header).toMatchObject({ type: 'message', topic: 'raw.empty', offset: 1 });
    expect(payload.length).toBe(0);
  });

  it('400 invalid_json for malformed JSON with application/json; 400 invalid_text for invalid UTF-8 text', async () => {
    h = await startServer();
    const c = await subscriber(h, ['raw.err']);
    expectError(await postRaw(h, 'raw.err', '{"a":', 'application/json'), 400, 'invalid_json');
    expectError(await postRaw(h, 'raw.err', 'not json', 'application/json'), 400, 'invalid_json');
    expectError(await postRaw(h, 'raw.err', '', 'application/json'), 400, 'invalid_json');
    expectError(await postRaw(h, 'raw.err', Buffer.from([0x68, 0x69, 0xc3, 0x28]), 'text/plain'), 400, 'invalid_text');
    expectError(await postRaw(h, 'raw.err', Buffer.from([0xff, 0xfe, 0xfd]), 'text/plain; charset=utf-8'), 400, 'invalid_text');
    // The same invalid bytes are fine as binary.
    expect((await postRaw(h, 'raw.err', Buffer.from([0xff, 0xfe, 0xfd]), 'application/octet-stream')).body.offset).toBe(1);
    const { header } = decodeBinary(await c.nextBinary());
    expect(header.offset).toBe(1);
    await barrier(c);
    expect(buffered(c)).toEqual([]);
  });
});

describe('ingest: topics', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  const invalid = [
    ['bad character $', 'orders$eu'],
    ['a space', 'orders eu'],
    ['a non-ASCII letter', 'ordérs'],
    ['empty middle segment', 'orders..eu'],
    ['empty first segment', '.orders'],
    ['empty last segment', 'orders.'],
    ['a wildcard', 'orders.*'],
    ['201 characters', topicOf(201)],
  ];

  it.each(invalid)('POST /entity with %s → 400 invalid_topic', async (_name, topic) => {
    h = await startServer();
    expectError(await h.ingest(topic, { x: 1 }), 400, 'invalid_topic');
  });

  it.each(invalid)('POST /entity/<topic> with %s → 400 invalid_topic', async (_name, topic) => {
    h = await startServer();
    expectError(await postRaw(h, encodeURIComponent(topic), '{}', 'application/json'), 400, 'invalid_topic');
  });

  it('POST /entity/<topic> with broken percent-encoding → 400 with the documented error body', async () => {
    h = await startServer();
    const r = await postRaw(h, 'orders%E0%A4%A', 'x', 'text/plain');
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
    expect(['invalid_topic', 'bad_request']).toContain(r.body.error.code);
  });

  it('POST /entity with a non-string or empty topic → 400 invalid_topic', async () => {
    h = await startServer();
    expectError(await postEnvelope(h, { topic: '', data: 1 }), 400, 'invalid_topic');
    expectError(await postEnvelope(h, { topic: 5, data: 1 }), 400, 'invalid_topic');
    expectError(await postEnvelope(h, { data: 1 }), 400, 'invalid_topic');
  });

  it('a 200-character topic is accepted on both routes', async () => {
    h = await startServer();
    const topic = topicOf(200);
    expect(topic.length).toBe(200);
    const c = await subscriber(h, [topic]);
    const a = await h.ingest(topic, 'envelope');
    expect(a.status).toBe(202);
    expect(a.body).toMatchObject({ topic, offset: 1 });
    const b = await postRaw(h, topic, 'raw', 'text/plain');
    expect({ status: b.status, body: b.body }).toEqual({ status: 202, body: { topic, offset: 2, id: expect.any(String) } });
    expect(await c.next('message')).toMatchObject({ topic, offset: 1, data: 'envelope' });
    expect(await c.next('message')).toMatchObject({ topic, offset: 2, data: 'raw' });
  });

  it('segments may use letters, digits, "_" and "-"', async () => {
    h = await startServer();
    for (const t of ['a', 'A_b-C.0.z9', '-._.-']) {
      const r = await h.ingest(t, 1);
      expect(r.status, t).toBe(202);
      expect(r.body).toMatchObject({ topic: t, offset: 1 });
    }
  });
});

describe('ingest: payload size limit', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('413 payload_too_large on both routes past limits.maxMessageBytes; nothing stored or delivered', async () => {
    h = await startServer({ limits: { maxMessageBytes: 1024 } });
    const c = await subscriber(h, ['big.t']);
    // Envelope: the payload is the data as JSON; 1025 bytes is one too many.
    expectError(await h.ingest('big.t', 'x'.repeat(1023)), 413, 'payload_too_large');
    expectError(await h.ingest('big.t', { blob: 'y'.repeat(100_000) }), 413, 'payload_too_large');
    expectError(await postRaw(h, 'big.t', Buffer.alloc(1025, 1), 'application/octet-stream'), 413, 'payload_too_large');
    expectError(await postRaw(h, 'big.t', 'z'.repeat(200_000), 'text/plain'), 413, 'payload_too_large');
    expectError(await postRaw(h, 'big.t', JSON.stringify('j'.repeat(2000)), 'application/json'), 413, 'payload_too_large');
    await barrier(c);
    expect(buffered(c)).toEqual([]);
    const ok = await h.ingest('big.t', 'small');
    expect(ok.body.offset).toBe(1);
    expect(await c.next('message')).toMatchObject({ offset: 1, data: 'small' });
    await barrier(c);
    expect(buffered(c)).toEqual([]);
  });

  it('accepts a payload of exactly limits.maxMessageBytes on both routes', async () => {
    h = await startServer({ limits: { maxMessageBytes: 1024 } });
    const c = await subscriber(h, ['edge.t']);
    const data = 'x'.repeat(1022); // JSON: 1024 bytes
    expect((await h.ingest('edge.t', data)).status).toBe(202);
    const raw = Buffer.alloc(1024, 7);
    expect((await postRaw(h, 'edge.t', raw, 'application/octet-stream')).status).toBe(202);
    expect(await c.next('message')).toMatchObject({ offset: 1, data });
    const { header, payload } = decodeBinary(await c.nextBinary());
    expect(header.offset).toBe(2);
    expect(Buffer.compare(payload, raw)).toBe(0);
  });
});

describe('ingest: idempotency', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('a repeated Idempotency-Key on the same topic returns the first offset and is delivered once', async () => {
    h = await startServer();
    const c = await subscriber(h, ['idem.t', 'idem.other']);
    const first = await h.ingest('idem.t', { v: 1 }, { 'idempotency-key': 'key-1' });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ topic: 'idem.t', offset: 1, id: 'key-1' });
    for (let i = 0; i < 3; i++) {
      const again = await h.ingest('idem.t', { v: 1 }, { 'idempotency-key': 'key-1' });
      expect({ status: again.status, body: again.body }).toEqual({ status: 202, body: { topic: 'idem.t', offset: 1, id: 'key-1' } });
    }
    // The raw route honours the header too.
    const raw = await postRaw(h, 'idem.t', 'r', 'text/plain', { 'idempotency-key': 'key-raw' });
    expect(raw.body).toEqual({ topic: 'idem.t', offset: 2, id: 'key-raw' });
    const rawAgain = await postRaw(h, 'idem.t', 'r', 'text/plain', { 'idempotency-key': 'key-raw' });
    expect({ status: rawAgain.status, body: rawAgain.body }).toEqual({ status: 202, body: { topic: 'idem.t', offset: 2, id: 'key-raw' } });
    // Another key on another topic is another message.
    const other = await h.ingest('idem.other', { v: 9 }, { 'idempotency-key': 'key-2' });
    expect(other.body).toEqual({ topic: 'idem.other', offset: 1, id: 'key-2' });
    const next = await h.ingest('idem.t', { v: 2 });
    expect(next.body.offset).toBe(3);

    await barrier(c);
    const got = buffered(c, 'message').map((m) => [m.topic, m.offset, m.data]);
    expect(got).toEqual([
      ['idem.t', 1, { v: 1 }],
      ['idem.t', 2, 'r'],
      ['idem.other', 1, { v: 9 }],
      ['idem.t', 3, { v: 2 }],
    ]);
  });

  it('a key reused with another body, kind or topic is 409 idempotency_key_conflict: nothing stored, no offset disclosed', async () => {
    h = await startServer();
    const c = await subscriber(h, ['idem.c', 'idem.d']);
    const key = { 'idempotency-key': 'order-42' };
    expect((await h.ingest('idem.c', { v: 1 }, key)).body).toEqual({ topic: 'idem.c', offset: 1, id: 'order-42' });
    const conflicts = [
      await h.ingest('idem.c', { v: 2 }, key), // another body
      await h.ingest('idem.d', { v: 1 }, key), // another topic
      await postRaw(h, 'idem.c', '{"v":1}', 'text/plain', key), // same bytes, another kind
      await postEnvelope(h, { topic: 'idem.c', data: { v: 3 }, id: 'order-42' }), // the body id is the same key
    ];
    for (const r of conflicts) expectError(r, 409, 'idempotency_key_conflict');
    // The identical retry still answers the first offset.
    expect((await h.ingest('idem.c', { v: 1 }, key)).body).toEqual({ topic: 'idem.c', offset: 1, id: 'order-42' });
    expect((await postRaw(h, 'idem.c', '{"v":1}', 'application/json', key)).body).toEqual({ topic: 'idem.c', offset: 1, id: 'order-42' });
    await h.ingest('idem.c', 'marker');
    await barrier(c);
    expect(buffered(c, 'message').map((m) => [m.topic, m.offset, m.data])).toEqual([
      ['idem.c', 1, { v: 1 }],
      ['idem.c', 2, 'marker'],
    ]);
  });

  it('idempotency keys are scoped per ingest key (and per WebSocket client): one publisher cannot suppress another', async () => {
    h = await startServer();
    const c = await subscriber(h, ['idem.s']);
    const other = await h.createKey('second');
    const key = { 'idempotency-key': 'evt-1' };
    expect((await h.ingest('idem.s', 'from the first', key)).body.offset).toBe(1);
    const second = await postRaw(h, 'idem.s', '"from the second"', 'application/json', { ...key, authorization: `Bearer ${other}` });
    expect({ status: second.status, body: second.body }).toEqual({ status: 202, body: { topic: 'idem.s', offset: 2, id: 'evt-1' } });
    // Each publisher's own retry is still a duplicate of its own message.
    const retry = await postRaw(h, 'idem.s', '"from the second"', 'application/json', { ...key, authorization: `Bearer ${other}` });
    expect(retry.body.offset).toBe(2);
    // WebSocket publishes: scoped per client.
    const talkers = await Promise.all(
      [0, 1].map(async () => h.connect(await h.register(await h.createClient({ subscribe: ['idem.>'], publish: ['idem.>'] })))),
    );
    talkers[0]!.send({ type: 'publish', topic: 'idem.s', data: 'ws one', key: 'evt-1', id: 'a' });
    expect(await talkers[0]!.next('ack')).toMatchObject({ id: 'a', offset: 3 });
    talkers[1]!.send({ type: 'publish', topic: 'idem.s', data: 'ws two', key: 'evt-1', id: 'b' });
    expect(await talkers[1]!.next('ack')).toMatchObject({ id: 'b', offset: 4 });
    talkers[1]!.send({ type: 'publish', topic: 'idem.s', data: 'ws two, changed', key: 'evt-1', id: 'c' });
    expect(await talkers[1]!.next('error')).toMatchObject({ code: 'idempotency_key_conflict', id: 'c' });
    await barrier(c);
    expect(buffered(c, 'message').map((m) => m.data)).toEqual(['from the first', 'from the second', 'ws one', 'ws two']);
  });

  it('a repeated body id is deduplicated the same way, also when retried concurrently', async () => {
    h = await startServer();
    const c = await subscriber(h, ['idem.body']);
    const a = await postEnvelope(h, { topic: 'idem.body', data: 'a', id: 'evt-7' });
    expect(a.body).toEqual({ topic: 'idem.body', offset: 1, id: 'evt-7' });
    const retries = await Promise.all(Array.from({ length: 5 }, () => postEnvelope(h, { topic: 'idem.body', data: 'a', id: 'evt-7' })));
    for (const r of retries)
      expect({ status: r.status, body: r.body }).toEqual({ status: 202, body: { topic: 'idem.body', offset: 1, id: 'evt-7' } });
    const burst = await Promise.all(Array.from({ length: 5 }, () => postEnvelope(h, { topic: 'idem.body', data: 'b', id: 'evt-8' })));
    expect(new Set(burst.map((r) => r.body.offset))).toEqual(new Set([2]));
    await barrier(c);
    expect(buffered(c, 'message').map((m) => [m.offset, m.data])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
  });

  it('after history.dedupeS the same key is a new message', async () => {
    const clock = new ManualClock();
    h = await startServer({ history: { dedupeS: 60 } }, { clock });
    const c = await subscriber(h, ['idem.ttl']);
    const key = { 'idempotency-key': 'k-ttl' };
    expect((await h.ingest('idem.ttl', 1, key)).body.offset).toBe(1);
    clock.advance(59_000);
    expect((await h.ingest('idem.ttl', 1, key)).body.offset).toBe(1);
    clock.advance(2_000);
    const later = await h.ingest('idem.ttl', 2, key);
    expect(later.body).toEqual({ topic: 'idem.ttl', offset: 2, id: 'k-ttl' });
    // The new message starts a new window.
    expect((await h.ingest('idem.ttl', 2, key)).body.offset).toBe(2);
    await barrier(c);
    expect(buffered(c, 'message').map((m) => [m.offset, m.data])).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });
});

describe('ingest: source allow-list', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('403 ip_not_allowed when the socket peer is not in ingest.allow (both routes)', async () => {
    h = await startServer({ ingest: { allow: ['10.0.0.0/8'] } });
    expectError(await h.ingest('acl.t', 1), 403, 'ip_not_allowed');
    expectError(await postRaw(h, 'acl.t', 'x', 'text/plain'), 403, 'ip_not_allowed');
    // Also without a key: the address is judged (and refused) either way.
    expectError(await postRaw(h, 'acl.t', 'x', 'text/plain', { authorization: '' }), 403, 'ip_not_allowed');
  });

  it('X-Forwarded-For is ignored when the peer is not a trusted proxy', async () => {
    h = await startServer({ ingest: { allow: ['10.0.0.0/8'] } });
    expectError(await h.ingest('acl.t', 1, { 'x-forwarded-for': '10.1.2.3' }), 403, 'ip_not_allowed');
    await h.close();
    // Default allow-list (loopback): a forwarded outside address from an untrusted peer changes nothing.
    h = await startServer();
    const r = await h.ingest('acl.t', 1, { 'x-forwarded-for': '203.0.113.9' });
    expect(r.status).toBe(202);
  });

  it('X-Forwarded-For from a trusted proxy is judged instead of the peer', async () => {
    h = await startServer({ ingest: { allow: ['10.0.0.0/8'], trustProxy: ['127.0.0.1/32'] } });
    const ok = await h.ingest('acl.t', 1, { 'x-forwarded-for': '10.1.2.3' });
    expect({ status: ok.status, body: ok.body }).toEqual({ status: 202, body: { topic: 'acl.t', offset: 1, id: expect.any(String) } });
    expect((await postRaw(h, 'acl.t', 'x', 'text/plain', { 'x-forwarded-for': '10.200.0.1' })).status).toBe(202);
    expectError(await h.ingest('acl.t', 1, { 'x-forwarded-for': '192.168.1.1' }), 403, 'ip_not_allowed');
    // No header: the proxy itself (127.0.0.1) is judged, and it is not allowed.
    expectError(await h.ingest('acl.t', 1), 403, 'ip_not_allowed');
    // Several hops: the right-most address that is not a trusted proxy is judged...
    expect((await h.ingest('acl.t', 1, { 'x-forwarded-for': '10.1.2.3, 127.0.0.1' })).status).toBe(202);
    // ...so a client cannot smuggle an allowed address in front of its own.
    expectError(await h.ingest('acl.t', 1, { 'x-forwarded-for': '10.1.2.3, 198.51.100.7' }), 403, 'ip_not_allowed');
    // A header that is not an address list is not believed.
    expectError(await h.ingest('acl.t', 1, { 'x-forwarded-for': 'garbage' }), 403, 'ip_not_allowed');
  });
});

describe('ingest: key', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('401 invalid_key for a missing, malformed, unknown or non-Bearer key', async () => {
    h = await startServer();
    const c = await subscriber(h, ['key.t']);
    const send = (authorization?: string) =>
      h.fetchJson('/entity', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
        body: JSON.stringify({ topic: 'key.t', data: 1 }),
      });
    expectError(await send(), 401, 'invalid_key');
    expectError(await send('Bearer'), 401, 'invalid_key');
    expectError(await send('Bearer not-a-key'), 401, 'invalid_key');
    expectError(await send(`Bearer ${randomBytes(32).toString('base64url')}`), 401, 'invalid_key');
    expectError(await send(`Bearer ${h.ingestKey}x`), 401, 'invalid_key');
    expectError(await send(`Basic ${Buffer.from(`k:${h.ingestKey}`).toString('base64')}`), 401, 'invalid_key');
    expectError(await postRaw(h, 'key.t', 'x', 'text/plain', { authorization: '' }), 401, 'invalid_key');
    // Identical bodies whatever the reason.
    const bodies = new Set(
      [await send(), await send('Bearer not-a-key'), await send(`Bearer ${h.ingestKey}x`)].map((r) => JSON.stringify(r.body)),
    );
    expect(bodies.size).toBe(1);
    await barrier(c);
    expect(buffered(c)).toEqual([]);
    expect((await h.ingest('key.t', 1)).body.offset).toBe(1);
  });

  it('a revoked key is refused with 401 invalid_key while the server runs', async () => {
    h = await startServer();
    const key = await h.createKey('short-lived');
    const auth = { authorization: `Bearer ${key}` };
    expect((await h.ingest('key.r', 1, auth)).status).toBe(202);
    const revoked = await cli(['keys', 'revoke', 'short-lived', '--data-dir', h.dataDir]);
    expect(revoked.code).toBe(0);
    // Refused within about a second (the revocation poll; a remembered key is re-checked every second).
    let acceptedMeanwhile = 0;
    await eventually(
      async () => {
        const r = await h.ingest('key.r', 1, auth);
        if (r.status === 202) acceptedMeanwhile++;
        return r.status === 401;
      },
      3000,
      'revoked key refused',
    );
    expectError(await h.ingest('key.r', 1, auth), 401, 'invalid_key');
    expectError(await postRaw(h, 'key.r', 'x', 'text/plain', auth), 401, 'invalid_key');
    // Other keys still work; nothing was stored for the refused requests.
    expect((await h.ingest('key.r', 2)).body.offset).toBe(2 + acceptedMeanwhile);
  });

  it('ingest.requireKey: false accepts requests without a key (the allow-list still applies)', async () => {
    h = await startServer({ ingest: { requireKey: false } });
    const c = await subscriber(h, ['nokey.t']);
    const r = await h.fetchJson('/entity', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'nokey.t', data: 'no key' }),
    });
    expect({ status: r.status, body: r.body }).toEqual({ status: 202, body: { topic: 'nokey.t', offset: 1, id: expect.any(String) } });
    expect((await postRaw(h, 'nokey.t', 'raw', 'text/plain', { authorization: '' })).status).toBe(202);
    expect(await c.next('message')).toMatchObject({ offset: 1, data: 'no key' });
    expect(await c.next('message')).toMatchObject({ offset: 2, data: 'raw' });
    await h.close();
    h = await startServer({ ingest: { requireKey: false, allow: ['10.0.0.0/8'] } });
    expectError(
      await h.fetchJson('/entity', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'nokey.t', data: 1 }),
      }),
      403,
      'ip_not_allowed',
    );
  });
});

describe('client publish of bytes (data_base64)', () => {
  let h: Harness;
  afterEach(() => h?.close());

  it('is delivered as a binary frame with the exact bytes; malformed or ambiguous frames get bad_request', async () => {
    h = await startServer();
    const c = await subscriber(h, ['bin.ws']);
    const p = await h.connect(await h.register(await h.createClient({ subscribe: ['bin.>'], publish: ['bin.>'] })));
    const bytes = Buffer.from([0, 1, 2, 250, 255, 10]);
    p.send({ type: 'publish', topic: 'bin.ws', data_base64: bytes.toString('base64'), id: 1 });
    expect(await p.next('ack')).toMatchObject({ id: 1, offset: 1 });
    const { header, payload } = decodeBinary(await c.nextBinary());
    expect(header).toMatchObject({ type: 'message', topic: 'bin.ws', offset: 1 });
    expect(payload.equals(bytes)).toBe(true);
    for (const [frame, id] of [
      [{ data_base64: 'not base64!' }, 2],
      [{ data_base64: 'AAE' }, 3], // unpadded
      [{ data_base64: 42 }, 4],
      [{ data: 'x', data_base64: 'AA==' }, 5],
      [{}, 6],
    ] as const) {
      p.send({ type: 'publish', topic: 'bin.ws', ...frame, id });
      expect(await p.next('error')).toMatchObject({ code: 'bad_request', id });
    }
    // Nothing of those was stored: the next one is offset 2.
    p.send({ type: 'publish', topic: 'bin.ws', data_base64: '', id: 7 });
    expect(await p.next('ack')).toMatchObject({ id: 7, offset: 2 });
  });
});

describe('health, metrics, unknown routes', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('GET /healthz → 200 {"status":"ok"} with the node and its backends', async () => {
    h = await startServer({ nodeId: 'n1' });
    const r = await h.fetchJson('/healthz');
    expect({ status: r.status, body: r.body }).toEqual({
      status: 200,
      body: {
        status: 'ok',
        node: 'n1',
        store: { type: 'sqlite', ok: true },
        broker: { type: 'memory', connected: true },
        presence: { nodes: 1 },
      },
    });
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('GET /metrics counts messages in and deliveries out', async () => {
    h = await startServer();
    const a1 = await subscriber(h, ['m.a']);
    const a2 = await subscriber(h, ['m.a', 'm.b']);
    const before = await metricsText(h);
    expect(before).toMatch(/^# TYPE hubcast_messages_in_total counter$/m);
    expect(before).toMatch(/^# TYPE hubcast_messages_out_total counter$/m);
    expect(metricValue(before, 'hubcast_messages_out_total')).toBe(0);
    for (let i = 0; i < 3; i++) expect((await h.ingest('m.a', i)).status).toBe(202);
    for (let i = 0; i < 2; i++) expect((await postRaw(h, 'm.b', `b${i}`, 'text/plain')).status).toBe(202);
    expect((await h.ingest('m.nobody', 0)).status).toBe(202);
    // A deduplicated retry is neither a message in nor a delivery.
    expect((await h.ingest('m.a', 'k', { 'idempotency-key': 'once' })).body.offset).toBe(4);
    expect((await h.ingest('m.a', 'k', { 'idempotency-key': 'once' })).body.offset).toBe(4);
    await barrier(a1);
    await barrier(a2);
    expect(buffered(a1, 'message')).toHaveLength(4);
    expect(buffered(a2, 'message')).toHaveLength(6);
    const text = await metricsText(h);
    expect(metricValue(text, 'hubcast_messages_in_total', { source: 'http' })).toBe(7);
    expect(metricValue(text, 'hubcast_messages_out_total')).toBe(4 + 6);
    expect(metricValue(text, 'hubcast_connections')).toBe(2);
  });

  it('an unknown route → 404 {"error":{"code":"not_found"}}', async () => {
    h = await startServer();
    expectError(await h.fetchJson('/nope'), 404, 'not_found');
    expectError(await h.fetchJson('/entity/a/b', { method: 'POST', body: 'x' }), 404, 'not_found');
    expectError(await h.fetchJson('/entities/x', { method: 'POST', body: '{}' }), 404, 'not_found');
  });
});
