import { createServer, type Server } from 'node:net';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { FatalSourceError, type Connector, type SourceRecord } from '../../src/connectors/connector.ts';
import { create, settings, topicDots, type MqttSettings } from '../../src/connectors/mqtt.ts';
import { recordingContext, type RecordingContext, runInBackground as start, commonFields } from '../helpers/connector-context.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const URL_OK = 'mqtt://127.0.0.1:1883';
const up = await requireService('Mosquitto', 1883);

let seq = 0;
const unique = () => `${process.pid}-${Date.now().toString(36)}-${seq++}`;

function connector(s: Partial<MqttSettings>): Connector {
  const parsed = settings.parse({ url: URL_OK, ...s });
  const common = commonFields('mqtt-test', 'mqtt', 'iot.{{path:$meta.topicDots}}');
  return create({ ...common, ...parsed }, { log: recordingContext().ctx.log });
}

/** Runs once to create the persistent session and its subscriptions, then stops. */
async function establishSession(c: Connector, rc: RecordingContext) {
  const run = start(c, rc);
  await rc.waitFor(() => rc.connectedCount >= 1, 5000, 'subscribed');
  await run.stop();
  rc.renew();
}

const uniqueKeys = (records: SourceRecord[]) => [...new Set(records.map((r) => r.key))];

describe.skipIf(!up)('mqtt connector (real Mosquitto on 127.0.0.1:1883)', () => {
  let pub: mqtt.MqttClient;
  const clientIds: string[] = [];
  const newClientId = () => {
    const id = `hubcast-test-${unique()}`;
    clientIds.push(id);
    return id;
  };
  const send = (topic: string, payload: string | Buffer, retain = false) => pub.publishAsync(topic, payload, { qos: 1, retain });

  beforeAll(async () => {
    pub = await mqtt.connectAsync(URL_OK, { clientId: `hubcast-test-pub-${unique()}`, reconnectPeriod: 0 });
  });
  afterAll(async () => {
    await pub?.endAsync();
  });
  afterEach(async () => {
    // Drop the persistent sessions the tests created.
    for (const clientId of clientIds.splice(0)) {
      const c = await mqtt.connectAsync(URL_OK, { clientId, clean: true, reconnectPeriod: 0 });
      await c.endAsync();
    }
  });

  it('persistent session: messages published while stopped arrive in order after a restart, with keys, kinds and meta', async () => {
    const base = `ht/${unique()}`;
    const c = connector({ topics: [`${base}/#`], clientId: newClientId() });
    const rc = recordingContext();
    let run = start(c, rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'subscribed');
    await send(`${base}/a`, JSON.stringify({ id: 'a1', n: 1 }));
    await send(`${base}/b`, 'hello');
    await rc.waitFor(() => rc.records.length === 2, 5000, '2 live messages');
    await run.stop();

    await send(`${base}/c`, JSON.stringify({ id: 'c1' }));
    await send(`${base}/d`, Buffer.from([0xff, 0xfe, 0x00]));
    await send(`${base}/b`, 'hello'); // same topic and payload as #2: same key (documented)
    rc.renew();
    run = start(c, rc);
    await rc.waitFor(() => rc.records.length === 5, 5000, '3 queued messages');
    await run.stop();

    const [r1, r2, r3, r4, r5] = rc.records as [SourceRecord, SourceRecord, SourceRecord, SourceRecord, SourceRecord];
    expect(r1).toMatchObject({ kind: 'json', value: { id: 'a1', n: 1 } });
    expect(r1.key).toMatch(/^a1:[0-9a-f]{32}$/);
    expect(r1.meta).toEqual({ topic: `${base}/a`, topicDots: topicDots(`${base}/a`), qos: 1, retain: false });
    expect(r2).toMatchObject({ kind: 'text', value: 'hello' });
    expect(r2.key).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r3.key).toMatch(/^c1:/);
    expect(r4.kind).toBe('binary');
    expect(Buffer.isBuffer(r4.value) && [...r4.value]).toEqual([0xff, 0xfe, 0x00]);
    expect(r5.key).toBe(r2.key);
    expect(rc.connectedCount).toBe(2);
    expect(rc.state.get('mqtt.subscriptions')).toContain(`${base}/#`);
  });

  it('acks only after emit resolved: a rejected emit throws, and the broker redelivers the message', async () => {
    const base = `ht/${unique()}`;
    const c = connector({ topics: [`${base}/#`], clientId: newClientId() });
    const rc = recordingContext();
    await establishSession(c, rc);
    for (let i = 1; i <= 3; i++) await send(`${base}/n`, JSON.stringify({ i }));

    rc.failNextEmit();
    await expect(c.run(rc.ctx)).rejects.toThrow('store unavailable');
    expect(rc.records).toHaveLength(0);
    const failedKey = rc.attempts[0]![0]!.key;

    rc.renew();
    const run = start(c, rc);
    await rc.waitFor(() => rc.records.length === 3, 5000, '3 messages after the retry');
    await run.stop();
    expect(rc.records.map((r) => (r.value as { i: number }).i)).toEqual([1, 2, 3]);
    expect(rc.records[0]!.key).toBe(failedKey);
  });

  it('QoS 2: the message held between PUBREC and PUBREL is kept in ctx.state, so a rejected emit is retried', async () => {
    const base = `ht/${unique()}`;
    const c = connector({ topics: [`${base}/#`], qos: 2, clientId: newClientId() });
    const rc = recordingContext();
    await establishSession(c, rc);
    for (let i = 1; i <= 2; i++) await pub.publishAsync(`${base}/q2`, JSON.stringify({ i }), { qos: 2 });

    rc.failNextEmit();
    await expect(c.run(rc.ctx)).rejects.toThrow('store unavailable');
    expect([...rc.state.keys()].some((k) => k.startsWith('mqtt.qos2.'))).toBe(true);

    rc.renew();
    const run = start(c, rc);
    await rc.waitFor(() => rc.records.length === 2, 5000, '2 messages after the retry');
    await run.stop();
    expect(rc.records.map((r) => (r.value as { i: number }).i)).toEqual([1, 2]);
    expect(rc.records[0]!.meta?.qos).toBe(2);
    expect(rc.records[0]!.key).toBe(rc.attempts[0]![0]!.key);
    expect([...rc.state.keys()].filter((k) => k.startsWith('mqtt.qos2.'))).toEqual([]);
  });

  it('topic filters with + and #, retained messages, and meta.topicDots', async () => {
    const u = unique();
    const base = `ht/${u}`;
    await send(`${base}/room0/temp`, '20.5', true);
    const c = connector({ topics: [`${base}/+/temp`, `${base}/plant/#`], clientId: newClientId() });
    const rc = recordingContext();
    const run = start(c, rc);
    try {
      await rc.waitFor(() => rc.connectedCount === 1, 5000, 'subscribed');
      await send(`${base}/room1/temp`, '21');
      await send(`${base}/room1/hum`, '40');
      await send(`${base}/plant/a/b c`, '{"id":7}');
      await send(`${base}/plant`, 'p');
      await rc.waitFor(() => rc.records.length === 4, 5000, '4 matching messages');
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await run.stop();
      await send(`${base}/room0/temp`, '', true); // clear the retained message
    }
    expect(rc.records.map((r) => r.meta?.topicDots)).toEqual([
      `ht.${u}.room0.temp`,
      `ht.${u}.room1.temp`,
      `ht.${u}.plant.a.b_c`,
      `ht.${u}.plant`,
    ]);
    expect(rc.records.map((r) => r.value)).toEqual([20.5, 21, { id: 7 }, 'p']);
    expect(rc.records.map((r) => r.meta?.retain)).toEqual([true, false, false, false]);
    expect(rc.records[2]!.key).toMatch(/^7:/);
    expect(topicDots('/a//b+c/é')).toBe('_.a._.b_c._');
  });

  it('QoS 0 subscriptions deliver too (at most once)', async () => {
    const base = `ht/${unique()}`;
    const rc = recordingContext();
    const run = start(connector({ topics: [`${base}/x`], qos: 0, cleanSession: true, format: 'text' }), rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'subscribed');
    await send(`${base}/x`, '{"not":"parsed"}');
    await rc.waitFor(() => rc.records.length === 1, 5000, '1 message');
    await run.stop();
    expect(rc.records[0]).toMatchObject({ kind: 'text', value: '{"not":"parsed"}', meta: { qos: 0 } });
  });

  it('a changed topic list unsubscribes dropped filters from the persistent session', async () => {
    const base = `ht/${unique()}`;
    const clientId = newClientId();
    const rc = recordingContext();
    await establishSession(connector({ topics: [`${base}/old`], clientId }), rc);
    const run = start(connector({ topics: [`${base}/new`], clientId }), rc);
    await rc.waitFor(() => rc.connectedCount === 2, 5000, 'subscribed again');
    await send(`${base}/old`, 'old');
    await send(`${base}/new`, 'new');
    await rc.waitFor(() => rc.records.length >= 1, 5000, 'a message');
    await new Promise((r) => setTimeout(r, 100));
    await run.stop();
    expect(rc.records.map((r) => r.value)).toEqual(['new']);
  });

  it('throws FatalSourceError for CONNACK "bad user name or password" and "not authorized"', async () => {
    // The shared Mosquitto allows anonymous clients, so a refusing broker is faked on loopback.
    for (const code of [4, 5]) {
      const fake: Server = createServer((s) => s.once('data', () => s.write(Buffer.from([0x20, 0x02, 0x00, code]))));
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
      const port = (fake.address() as { port: number }).port;
      try {
        const rc = recordingContext();
        const c = connector({ url: `mqtt://127.0.0.1:${port}`, topics: ['x'], username: 'u', password: 'sekrit' });
        const err = await c.run(rc.ctx).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FatalSourceError);
        expect((err as Error).message).toMatch(code === 4 ? /bad user name or password/ : /not authorized/);
        expect(JSON.stringify(rc.logs)).not.toContain('sekrit');
      } finally {
        await new Promise<void>((r) => fake.close(() => r()));
      }
    }
  });

  it('validates topic filters and impossible settings', () => {
    expect(() => settings.parse({ topics: ['a/#/b'] })).toThrow();
    expect(() => settings.parse({ topics: ['a/b+'] })).toThrow();
    expect(() => settings.parse({ topics: [] })).toThrow();
    expect(settings.parse({ topics: ['+/a/#', '#'] })).toMatchObject({ qos: 1, cleanSession: false, format: 'auto' });
    expect(() => connector({ topics: ['a'], password: 'p' })).toThrow(TypeError);
  });

  it('a connection cut mid-stream: run throws, re-runs emit every message, none missing', async () => {
    const N = 150;
    const base = `ht/${unique()}`;
    const proxy = await TcpProxy.start(1883);
    const c = connector({ url: `mqtt://127.0.0.1:${proxy.port}`, topics: [`${base}/#`], clientId: newClientId() });
    const rc = recordingContext();
    await establishSession(c, rc);
    for (let i = 0; i < N; i++) await send(`${base}/m`, JSON.stringify({ id: `m${i}` }));

    let cut = false;
    const poll = setInterval(() => {
      if (!cut && rc.records.length >= 40) {
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
    expect(proxy.connections).toBeGreaterThanOrEqual(3);
    const ids = uniqueKeys(rc.records).map((k) => k.split(':')[0]);
    expect(ids).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
  });
});
