import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { FatalSourceError, type Connector, type SourceRecord } from '../../src/connectors/connector.ts';
import { create, settings, type AmqpSettings } from '../../src/connectors/amqp.ts';
import { recordingContext, runInBackground as start, commonFields } from '../helpers/connector-context.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const URL_OK = 'amqp://guest:guest@127.0.0.1:5672';
const up = await requireService('RabbitMQ', 5672);

let seq = 0;
const unique = (prefix: string) => `${prefix}.${process.pid}.${Date.now().toString(36)}.${seq++}`;

function connector(s: Partial<AmqpSettings>): Connector {
  const parsed = settings.parse({ url: URL_OK, ...s });
  const common = commonFields('amqp-test', 'amqp', 'orders');
  return create({ ...common, ...parsed }, { log: recordingContext().ctx.log });
}

const uniqueKeys = (records: SourceRecord[]) => [...new Set(records.map((r) => r.key))];

describe.skipIf(!up)('amqp connector (real RabbitMQ on 127.0.0.1:5672)', () => {
  let admin: amqp.ChannelModel;
  let ch: amqp.Channel;
  const queues: string[] = [];
  const exchanges: string[] = [];

  beforeAll(async () => {
    admin = await amqp.connect(URL_OK);
    ch = await admin.createChannel();
  });
  afterAll(async () => {
    await admin?.close();
  });
  afterEach(async () => {
    for (const q of queues.splice(0)) await ch.deleteQueue(q);
    for (const x of exchanges.splice(0)) await ch.deleteExchange(x);
  });

  const newQueue = async () => {
    const q = unique('hubcast.test.q');
    queues.push(q);
    await ch.assertQueue(q, { durable: true });
    return q;
  };
  const send = (q: string, body: string | Buffer, opts: amqp.Options.Publish = {}) =>
    ch.sendToQueue(q, typeof body === 'string' ? Buffer.from(body) : body, opts);

  it('emits messages sent before and after start in order, with stable keys, kinds and meta; acks them', async () => {
    const q = await newQueue();
    send(q, JSON.stringify({ n: 1 }), { messageId: 'm-1', contentType: 'application/json', headers: { region: 'eu', n: 7 } });
    send(q, 'plain text', { timestamp: 1_700_000_000 });
    send(q, Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    const rc = recordingContext();
    const run = start(connector({ queue: q }), rc);
    await rc.waitFor(() => rc.records.length === 3, 5000, '3 messages');
    send(q, '[1,2]', { messageId: 'm-4' });
    send(q, 'plain text', { timestamp: 1_700_000_000 }); // same content as #2: same key (documented)
    await rc.waitFor(() => rc.records.length === 5, 5000, '5 messages');
    await run.stop();

    const [r1, r2, r3, r4, r5] = rc.records as [SourceRecord, SourceRecord, SourceRecord, SourceRecord, SourceRecord];
    expect(r1).toMatchObject({ key: 'm-1', kind: 'json', value: { n: 1 } });
    expect(r1.meta).toEqual({ exchange: '', routingKey: q, queue: q, headers: { region: 'eu' }, redelivered: false, messageId: 'm-1' });
    expect(r2).toMatchObject({ kind: 'text', value: 'plain text' });
    expect(r2.key).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r3.kind).toBe('binary');
    expect(Buffer.isBuffer(r3.value) && [...r3.value]).toEqual([0xff, 0xfe, 0x00, 0x01]);
    expect(r4).toMatchObject({ key: 'm-4', kind: 'json', value: [1, 2] });
    expect(r5.key).toBe(r2.key);
    expect(rc.connectedCount).toBe(1);
    expect(JSON.stringify(rc.logs)).not.toContain('guest:guest');
    expect((await ch.checkQueue(q)).messageCount).toBe(0); // all acked
  });

  it('acks only after emit resolved: a rejected emit throws, and the message comes back with the same key', async () => {
    const q = await newQueue();
    for (let i = 1; i <= 3; i++) send(q, JSON.stringify({ i }));
    const rc = recordingContext();
    rc.failNextEmit();
    const c = connector({ queue: q, prefetch: 1 });
    await expect(c.run(rc.ctx)).rejects.toThrow('store unavailable');
    expect(rc.records).toHaveLength(0);
    const failedKey = rc.attempts[0]![0]!.key;

    rc.renew();
    const run = start(c, rc);
    await rc.waitFor(() => rc.records.length === 3, 5000, '3 messages after the retry');
    await run.stop();
    expect(rc.records.map((r) => (r.value as { i: number }).i)).toEqual([1, 2, 3]);
    expect(rc.records[0]!.key).toBe(failedKey);
    expect(rc.records[0]!.meta?.redelivered).toBe(true);
    expect((await ch.checkQueue(q)).messageCount).toBe(0);
  });

  it('binds an exclusive queue to an exchange with each routing key', async () => {
    const x = unique('hubcast.test.x');
    exchanges.push(x);
    const rc = recordingContext();
    const run = start(connector({ exchange: x, routingKeys: ['orders.eu.*', 'orders.us.#'] }), rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    for (const rk of ['orders.eu.created', 'orders.ap.created', 'orders.us.x.y', 'orders.eu.a.b'])
      ch.publish(x, rk, Buffer.from(JSON.stringify({ rk })), { messageId: rk });
    await rc.waitFor(() => rc.records.length === 2, 5000, '2 matching messages');
    await new Promise((r) => setTimeout(r, 100));
    await run.stop();
    expect(rc.records.map((r) => r.key)).toEqual(['orders.eu.created', 'orders.us.x.y']);
    expect(rc.records[1]!.meta).toMatchObject({ exchange: x, routingKey: 'orders.us.x.y' });
    expect(String(rc.records[1]!.meta?.queue)).toMatch(/^amq\.gen-/);
  });

  it('binds a named durable queue to an exchange: messages sent while stopped are kept', async () => {
    const x = unique('hubcast.test.x');
    exchanges.push(x);
    const q = unique('hubcast.test.q');
    queues.push(q);
    const c = connector({ exchange: x, queue: q, routingKeys: ['a'], exchangeType: 'direct' });
    const rc = recordingContext();
    let run = start(c, rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    await run.stop();
    ch.publish(x, 'a', Buffer.from('while stopped'));
    ch.publish(x, 'b', Buffer.from('not bound'));
    rc.renew();
    run = start(c, rc);
    await rc.waitFor(() => rc.records.length === 1, 5000, 'the kept message');
    await run.stop();
    expect(rc.records[0]).toMatchObject({ value: 'while stopped', meta: { exchange: x, routingKey: 'a', queue: q } });
  });

  it('throws FatalSourceError for bad credentials and for a missing queue with declare: false', async () => {
    const rc = recordingContext();
    const bad = connector({ url: 'amqp://guest:wrong@127.0.0.1:5672', queue: 'whatever' });
    const err = await bad.run(rc.ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalSourceError);
    expect(String((err as Error).message)).toMatch(/access refused/i);
    expect(String((err as Error).message)).not.toContain('wrong');

    const missing = connector({ queue: unique('hubcast.test.missing'), declare: false });
    const err2 = await missing.run(rc.ctx).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(FatalSourceError);
    expect(String((err2 as Error).message)).toMatch(/NOT_FOUND/);
  });

  it('format json: a body that is not JSON goes on as text with $meta.error', async () => {
    const q = await newQueue();
    send(q, 'not json');
    send(q, '{"ok":true}', { contentType: 'text/plain' });
    const rc = recordingContext();
    const run = start(connector({ queue: q, format: 'json' }), rc);
    await rc.waitFor(() => rc.records.length === 2, 5000, '2 messages');
    await run.stop();
    expect(rc.records[0]).toMatchObject({ kind: 'text', value: 'not json', meta: { error: 'invalid JSON' } });
    expect(rc.records[1]).toMatchObject({ kind: 'json', value: { ok: true } });
    expect(rc.records[1]!.meta).not.toHaveProperty('error');
  });

  it('rejects impossible settings at create', () => {
    expect(() => connector({})).toThrow(TypeError);
    expect(() => connector({ queue: 'q', routingKeys: ['a'] })).toThrow('`routingKeys` needs `exchange`');
    expect(() => settings.parse({ queue: 'q', bogus: 1 })).toThrow();
  });

  it('a connection cut mid-stream: run throws, re-runs emit every message, none missing', async () => {
    const N = 300;
    const q = await newQueue();
    for (let i = 0; i < N; i++) send(q, JSON.stringify({ i }), { messageId: `m${i}` });
    const proxy = await TcpProxy.start(5672);
    const rc = recordingContext();
    const c = connector({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, queue: q, prefetch: 10 });
    let cut = false;
    const poll = setInterval(() => {
      if (!cut && rc.records.length >= 60) {
        cut = true;
        proxy.cut();
      }
      if (uniqueKeys(rc.records).length >= N) rc.abort();
    }, 2);
    const errors: unknown[] = [];
    try {
      for (let attempt = 0; attempt < 10 && uniqueKeys(rc.records).length < N; attempt++) {
        if (attempt > 0) rc.renew();
        await c.run(rc.ctx).catch((e: unknown) => errors.push(e));
      }
    } finally {
      clearInterval(poll);
      await proxy.close();
    }
    expect(cut).toBe(true);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.some((e) => e instanceof FatalSourceError)).toBe(false);
    expect(proxy.connections).toBeGreaterThanOrEqual(2);
    const keys = uniqueKeys(rc.records);
    expect(keys).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
    expect((await ch.checkQueue(q)).messageCount).toBe(0);
  });
});
