import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { barrier, mapLimit, metricsText, metricValue, postRaw, subscriber } from '../helpers/e2e.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import { decodeBinary, type TestClient } from '../helpers/ws-client.ts';

/**
 * Issue item 2: replay is paged (bounded pages, paced by the consumer), stops when its connection is
 * cut, is capped node-wide, and keeps replay → live without gap or duplicate even when the live
 * messages held meanwhile overflow.
 */

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Offsets of the binary message frames `c` has received so far. */
function binaryOffsets(c: TestClient): number[] {
  return c
    .all()
    .filter((f): f is Buffer => Buffer.isBuffer(f))
    .map((b) => decodeBinary(b).header.offset as number);
}

async function fill(h: Harness, topic: string, count: number, bytes: number): Promise<void> {
  const body = Buffer.alloc(bytes, 0x42);
  await mapLimit(range(1, count), 8, async () => expect((await postRaw(h, topic, body, 'application/octet-stream')).status).toBe(202));
}

describe('paged replay', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('a consumer that reads nothing during its replay is cut with 4001 after ws.replay.stallMs, and its replay stops at once', async () => {
    h = await startServer({ ws: { replay: { stallMs: 500 } } });
    const total = 200;
    await fill(h, 'rp.t', total, 64 * 1024); // 12.5 MiB: far more than the socket buffers take
    const c = await subscriber(h, []);
    c.ws.pause();
    c.send({ type: 'subscribe', topic: 'rp.t', since: { offset: 0 }, id: 'r' });
    await eventually(async () => metricValue(await metricsText(h), 'hubcast_slow_consumers_total') === 1, 10_000, 'the cut');
    const line = h.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('slow consumer'));
    expect(line?.msg).toBe('slow consumer: replay: the consumer read nothing for 500 ms; closing 4001');
    const replayed = metricValue(await metricsText(h), 'hubcast_messages_replayed_total')!;
    // Only what the socket buffers took was read and framed; nothing more after the cut.
    expect(replayed).toBeLessThan(total);
    await new Promise((r) => setTimeout(r, 300));
    expect(metricValue(await metricsText(h), 'hubcast_messages_replayed_total')).toBe(replayed);
    c.ws.resume();
    expect((await c.closed).code).toBe(4001);
    // What it got is a gap-free prefix: everything written, nothing else.
    expect(binaryOffsets(c)).toEqual(range(1, replayed));
  }, 60_000);

  it('live messages held during a long replay overflow the hold: the replay catches up from history, every offset once, in order', async () => {
    h = await startServer({ limits: { maxBufferedBytes: 65536 }, ws: { replay: { stallMs: 30_000 } } });
    const history = 150;
    await fill(h, 'lv.t', history, 64 * 1024);
    const c = await subscriber(h, []);
    c.ws.pause(); // the replay stalls on a full socket while live messages arrive
    c.send({ type: 'subscribe', topic: 'lv.t', since: { offset: 0 }, id: 'lv' });
    await eventually(async () => (metricValue(await metricsText(h), 'hubcast_messages_replayed_total') ?? 0) > 0, 5000, 'replay started');
    const live = 100; // 100 KiB of live messages: past the 64 KiB hold
    await fill(h, 'lv.t', live, 1024);
    c.ws.resume();
    await eventually(() => binaryOffsets(c).length >= history + live, 20_000, 'replay and live');
    expect(c.all()[0]).toMatchObject({ type: 'subscribed', id: 'lv', recovered: true });
    expect(binaryOffsets(c)).toEqual(range(1, history + live));
    expect(h.logs.some((l) => l.msg === 'replay: live messages past the hold cap; catching up from history')).toBe(true);
    // And live after that, still once.
    expect((await postRaw(h, 'lv.t', Buffer.from('x'), 'application/octet-stream')).body.offset).toBe(history + live + 1);
    await eventually(() => binaryOffsets(c).length === history + live + 1, 5000, 'the live message');
    await barrier(c);
    expect(binaryOffsets(c)).toEqual(range(1, history + live + 1));
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  }, 60_000);

  it('with ws.replay.concurrency 1, eight consumers replaying at once each get every message once, in order', async () => {
    h = await startServer({ ws: { replay: { concurrency: 1, pageMessages: 7 } } });
    await fill(h, 'cc.t', 300, 100);
    const cs: TestClient[] = [];
    for (let i = 0; i < 8; i++) cs.push(await subscriber(h, []));
    for (const c of cs) c.send({ type: 'subscribe', topic: 'cc.t', since: { offset: 0 }, id: 'cc' });
    await eventually(() => cs.every((c) => binaryOffsets(c).length >= 300), 20_000, 'every replay');
    for (const c of cs) {
      await barrier(c);
      expect(binaryOffsets(c)).toEqual(range(1, 300));
    }
    expect(metricValue(await metricsText(h), 'hubcast_messages_replayed_total')).toBe(8 * 300);
  }, 60_000);

  it('with permessage-deflate, a paged replay and the live messages after it arrive once, in order', async () => {
    h = await startServer({ ws: { perMessageDeflate: true, replay: { pageMessages: 10 } } });
    await fill(h, 'df.t', 300, 2048);
    const c = await subscriber(h, []);
    expect(c.ws.extensions).toContain('permessage-deflate');
    c.send({ type: 'subscribe', topic: 'df.t', since: { offset: 0 }, id: 'df' });
    const live = fill(h, 'df.t', 50, 100);
    await live;
    await eventually(() => binaryOffsets(c).length >= 350, 20_000, 'replay and live');
    await barrier(c);
    expect(binaryOffsets(c)).toEqual(range(1, 350));
  }, 60_000);

  it('a replay stops when its connection closes', async () => {
    h = await startServer({ ws: { replay: { pageMessages: 5 } } });
    await fill(h, 'cl.t', 400, 64 * 1024);
    const c = await subscriber(h, []);
    c.ws.pause();
    c.send({ type: 'subscribe', topic: 'cl.t', since: { offset: 0 }, id: 'cl' });
    await eventually(async () => (metricValue(await metricsText(h), 'hubcast_messages_replayed_total') ?? 0) > 0, 5000, 'replay started');
    c.ws.terminate();
    await eventually(async () => (await h.connections()).length === 0, 5000, 'connection gone');
    const replayed = metricValue(await metricsText(h), 'hubcast_messages_replayed_total');
    await new Promise((r) => setTimeout(r, 300));
    expect(metricValue(await metricsText(h), 'hubcast_messages_replayed_total')).toBe(replayed);
    expect(replayed).toBeLessThan(400);
  }, 60_000);
});
