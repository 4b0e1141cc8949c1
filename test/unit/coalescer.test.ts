import { describe, expect, it } from 'vitest';
import { Coalescer, type Flushable } from '../../src/gateway/coalescer.ts';

/** A connection stand-in: records what each flush wrote (what a socket write would carry). */
class Conn implements Flushable {
  frames: Buffer[] = [];
  writes: { buf: Buffer; at: number }[] = [];
  constructor(readonly c: Coalescer) {}
  send(frame: Buffer): void {
    if (this.frames.length === 0) this.c.queue(this);
    this.frames.push(frame);
  }
  flush(join: (frames: Buffer[], bytes: number) => Buffer): void {
    const f = this.frames;
    if (f.length === 0) return;
    this.frames = [];
    const bytes = f.reduce((n, b) => n + b.length, 0);
    this.writes.push({ buf: f.length === 1 ? f[0]! : join(f, bytes), at: performance.now() });
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const frame = (s: string) => Buffer.from(s);

describe('Coalescer', () => {
  it("writes a turn's frames as one write per connection, in order, right after the turn", async () => {
    const c = new Coalescer();
    const a = new Conn(c);
    const m = [frame('one'), frame('two'), frame('three')];
    for (const f of m) a.send(f);
    expect(a.writes).toHaveLength(0);
    await tick();
    expect(a.writes.map((w) => w.buf.toString())).toEqual(['onetwothree']);
    a.send(frame('four'));
    await tick();
    expect(a.writes.map((w) => w.buf.toString())).toEqual(['onetwothree', 'four']);
  });

  it('connections that got the same frames share one joined buffer; others get their own', async () => {
    const c = new Coalescer();
    const [a, b, d] = [new Conn(c), new Conn(c), new Conn(c)];
    const m1 = frame('m1');
    const m2 = frame('m2');
    const m3 = frame('m3');
    for (const conn of [a, b, d]) conn.send(m1);
    a.send(m2);
    b.send(m2);
    d.send(m3); // same count and bytes as a's and b's, different frame
    await tick();
    expect(a.writes[0]!.buf).toBe(b.writes[0]!.buf);
    expect(d.writes[0]!.buf).not.toBe(a.writes[0]!.buf);
    expect(d.writes[0]!.buf.toString()).toBe('m1m3');
    expect(a.writes[0]!.buf.toString()).toBe('m1m2');
  });

  it('with a write delay: an idle hub writes at once; under load writes wait until the delay since the last flush', async () => {
    const delay = 60;
    const c = new Coalescer(delay);
    const a = new Conn(c);
    const t0 = performance.now();
    a.send(frame('a'));
    await tick();
    expect(a.writes).toHaveLength(1); // idle: no delay
    expect(a.writes[0]!.at - t0).toBeLessThan(delay / 2);
    // Load: three more turns of messages within the delay go out together, once the delay has passed.
    for (const s of ['b', 'c', 'd']) {
      a.send(frame(s));
      await tick();
    }
    expect(a.writes).toHaveLength(1);
    await new Promise((r) => setTimeout(r, delay + 20));
    expect(a.writes.map((w) => w.buf.toString())).toEqual(['a', 'bcd']);
    expect(a.writes[1]!.at - a.writes[0]!.at).toBeGreaterThanOrEqual(delay - 2);
    // Idle again (longer than the delay since the last flush): at once.
    await new Promise((r) => setTimeout(r, delay + 10));
    const t1 = performance.now();
    a.send(frame('e'));
    await tick();
    expect(a.writes).toHaveLength(3);
    expect(a.writes[2]!.at - t1).toBeLessThan(delay / 2);
  });
});
