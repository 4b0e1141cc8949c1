import { describe, expect, it } from 'vitest';
import { ReplaySlots } from '../../src/gateway/replay-slots.ts';
import { RequestQueue } from '../../src/gateway/request-queue.ts';
import { RequestRate } from '../../src/gateway/request-rate.ts';

const nextCheckPhase = () => new Promise<void>((r) => setImmediate(r));

describe('ReplaySlots', () => {
  it('hands a released slot on only in a later event-loop turn, in arrival order; an aborted wait gives up', async () => {
    const slots = new ReplaySlots(2);
    const signal = new AbortController().signal;
    expect(await slots.acquire(signal)).toBe(true);
    expect(await slots.acquire(signal)).toBe(true);
    const got: string[] = [];
    const a = slots.acquire(signal).then((ok) => ok && got.push('a'));
    const gone = new AbortController();
    const b = slots.acquire(gone.signal).then((ok) => got.push(ok ? 'b' : 'b gave up'));
    const c = slots.acquire(signal).then((ok) => ok && got.push('c'));
    expect(slots.waiting).toBe(3);
    slots.release();
    slots.release();
    // Not in this turn: the work of one turn stays bounded by the number of slots.
    await Promise.resolve();
    expect(got).toEqual([]);
    gone.abort();
    await b;
    await nextCheckPhase();
    await Promise.all([a, c]);
    expect(got).toEqual(['b gave up', 'a', 'c']);
    expect(slots.waiting).toBe(0);
  });
});

describe('RequestQueue', () => {
  it('handles requests one at a time in arrival order, pauses reading at 512 waiting and resumes at 128', async () => {
    const io = { paused: 0, resumed: 0, errors: [] as unknown[] };
    const q = new RequestQueue({
      pauseRequests: () => io.paused++,
      resumeRequests: () => io.resumed++,
      requestFailed: (e) => io.errors.push(e),
    });
    const done: number[] = [];
    let release!: () => void;
    q.push(() => void done.push(0));
    q.push(
      () =>
        new Promise<void>((r) => {
          release = () => {
            done.push(1);
            r();
          };
        }),
    );
    for (let i = 2; i < 600; i++) q.push(() => void done.push(i));
    q.push(() => {
      throw new Error('boom');
    });
    q.push(() => void done.push(600));
    expect(done).toEqual([0]);
    expect(io.paused).toBe(1);
    release();
    await nextCheckPhase();
    expect(done).toEqual(Array.from({ length: 601 }, (_, i) => i));
    expect(io.resumed).toBe(1);
    expect(io.errors).toHaveLength(1);
    // Idle again: the next request runs at once.
    q.push(() => void done.push(601));
    expect(done.at(-1)).toBe(601);
  });
});

describe('RequestRate', () => {
  it('allows a burst, then refuses until tokens come back', () => {
    let t = 1_000;
    const r = new RequestRate(1000, 5, () => t);
    for (let i = 0; i < 5; i++) expect(r.take()).toBe(true);
    expect(r.take()).toBe(false);
    t += 0.5;
    expect(r.take()).toBe(false);
    t += 20;
    for (let i = 0; i < 5; i++) expect(r.take()).toBe(true);
    expect(r.take()).toBe(false);
  });
});
