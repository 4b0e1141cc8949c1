import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertEvent, Alerts } from '../../src/alerts/alerts.ts';
import { GatewaySink } from '../../src/connectors/gateway-sink.ts';
import { ConnectorDb } from '../../src/connectors/local-db.ts';
import { eventually, startServer, tempDir, type Harness } from '../helpers/server.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

class RecordingAlerts implements Alerts {
  readonly events: AlertEvent[] = [];
  raise(e: AlertEvent) {
    this.events.push(e);
  }
  async start() {}
  async close() {}
}

describe('standalone mode: the gateway sink spools, alerts, drains in order', () => {
  let h: Harness | undefined;
  let proxy: TcpProxy | undefined;
  let sink: GatewaySink | undefined;
  let db: ConnectorDb | undefined;
  /** A sink straight to the gateway of `server` (no proxy), with a fresh spool and quick retries. */
  const startDirectSink = (server: Harness): GatewaySink => {
    db = new ConnectorDb(tempDir());
    const s = new GatewaySink({
      gateway: server.base,
      key: server.ingestKey,
      db,
      retry: { attempts: 2, initialMs: 10, maxMs: 50 },
      alerts: new RecordingAlerts(),
      log: pino({ level: 'silent' }),
    });
    s.start();
    return s;
  };
  afterEach(async () => {
    await sink?.stop();
    db?.close();
    await proxy?.close();
    await h?.close();
    h = proxy = sink = db = undefined;
  });

  it('gateway down: records are accepted into the spool, gateway_unreachable is alerted, and they drain in order once it is back', async () => {
    h = await startServer();
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['sensors.>'] })));
    await c.subscribe('sensors.a');
    proxy = await TcpProxy.start(h.port);
    proxy.refuse();
    const alerts = new RecordingAlerts();
    db = new ConnectorDb(tempDir());
    sink = new GatewaySink({
      gateway: `http://127.0.0.1:${proxy.port}`,
      key: h.ingestKey,
      db,
      retry: { attempts: 2, initialMs: 10, maxMs: 50 },
      alerts,
      log: pino({ level: 'silent' }),
    });
    sink.start();
    for (let i = 1; i <= 20; i++)
      await sink.publish({
        topic: 'sensors.a',
        kind: 'json',
        payload: Buffer.from(JSON.stringify({ i })),
        key: `src:${i}`,
        source: 'connector',
      });
    // The same record again (a source redelivery): delivered once.
    await sink.publish({ topic: 'sensors.a', kind: 'json', payload: Buffer.from('{"i":20}'), key: 'src:20', source: 'connector' });
    expect(db.spooled).toBe(21);
    await eventually(() => alerts.events.some((e) => e.kind === 'gateway_unreachable'), 5000, 'gateway_unreachable alert');
    expect(alerts.events.filter((e) => e.kind === 'gateway_unreachable')).toHaveLength(1);
    proxy.accept();
    const got: number[] = [];
    while (got.length < 20) got.push(((await c.next('message', 5000)).data as { i: number }).i);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await eventually(() => db!.spooled === 0, 5000, 'spool drained');
    await h.ingest('sensors.a', 'marker');
    expect(await c.next('message')).toMatchObject({ data: 'marker', offset: 21 });
  });

  it('a record the gateway refuses for good (4xx) is dead-lettered and does not block the rest', async () => {
    h = await startServer({ limits: { maxMessageBytes: 64 } });
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['t.>'] })));
    await c.subscribe('t.x');
    sink = startDirectSink(h);
    await sink.publish({ topic: 't.x', kind: 'text', payload: Buffer.from('x'.repeat(100)), key: 'big', source: 'c' });
    await sink.publish({ topic: 't.x', kind: 'text', payload: Buffer.from('small'), key: 'small', source: 'c' });
    expect(await c.next('message')).toMatchObject({ data: 'small' });
    expect(db!.listDeadLetters()).toEqual([expect.objectContaining({ key: 'big', reason: 'gateway answered 413' })]);
  });

  it('a redelivered record whose payload differs (409 idempotency_key_conflict) is not dead-lettered: the first stands', async () => {
    h = await startServer();
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['t.>'] })));
    await c.subscribe('t.y');
    sink = startDirectSink(h);
    await sink.publish({ topic: 't.y', kind: 'json', payload: Buffer.from('{"at":1}'), key: 'src:1', source: 'c' });
    await sink.publish({ topic: 't.y', kind: 'json', payload: Buffer.from('{"at":2}'), key: 'src:1', source: 'c' });
    await sink.publish({ topic: 't.y', kind: 'text', payload: Buffer.from('after'), key: 'src:2', source: 'c' });
    expect(await c.next('message')).toMatchObject({ offset: 1, data: { at: 1 } });
    expect(await c.next('message')).toMatchObject({ offset: 2, data: 'after' });
    await eventually(() => db!.spooled === 0, 3000, 'spool drained');
    expect(db!.listDeadLetters()).toEqual([]);
  });
});
