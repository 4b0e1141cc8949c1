import { expect } from 'vitest';
import type { Hubcast, Message, State, StateInfo, Subscription } from '../../../packages/client/src/index.ts';

/**
 * What the application saw, per topic, checked against what the publisher was told was committed:
 * every acknowledged message delivered, none twice, none out of order. Offsets of one topic must be
 * exactly 1..N in delivery order (Hubcast numbers a topic's messages without gaps), and the data at
 * each acknowledged offset must be the data that was acknowledged there.
 */
export class Checker {
  readonly seen = new Map<string, Message[]>();
  readonly acked = new Map<string, Map<number, unknown>>();
  gaps = 0;

  /** Records every message and gap of `sub`. */
  watch(sub: Subscription): Subscription {
    sub.on('message', (m) => {
      const list = this.seen.get(m.topic) ?? [];
      list.push(m);
      this.seen.set(m.topic, list);
    });
    sub.on('gap', () => void this.gaps++);
    return sub;
  }

  /** The publisher got a 202 (or ack) for `data` at `offset`. */
  ack(topic: string, offset: number, data: unknown): void {
    const m = this.acked.get(topic) ?? new Map<number, unknown>();
    m.set(offset, data);
    this.acked.set(topic, m);
  }

  /** Delivered count of `topic`. */
  count(topic: string): number {
    return this.seen.get(topic)?.length ?? 0;
  }

  /** Whether every acknowledged message of every topic has been delivered. */
  caughtUp(): boolean {
    for (const [topic, acked] of this.acked) if (this.count(topic) < Math.max(...acked.keys())) return false;
    return true;
  }

  /** Fails unless: nothing lost, nothing duplicated, nothing reordered, no gap reported. */
  assertExact(): void {
    expect(this.acked.size).toBeGreaterThan(0);
    for (const [topic, acked] of this.acked) {
      const offsets = (this.seen.get(topic) ?? []).map((m) => m.offset);
      const top = Math.max(...acked.keys());
      expect(offsets.slice(0, top), `${topic}: delivered offsets`).toEqual(Array.from({ length: top }, (_, i) => i + 1));
      expect(new Set(offsets).size, `${topic}: no duplicates`).toBe(offsets.length);
      for (let i = 1; i < offsets.length; i++) expect(offsets[i]!, `${topic}: in order`).toBe(offsets[i - 1]! + 1);
      const byOffset = new Map((this.seen.get(topic) ?? []).map((m) => [m.offset, m.data]));
      for (const [offset, data] of acked) expect(byOffset.get(offset), `${topic}@${offset}`).toEqual(data);
    }
    expect(this.gaps, 'gap events').toBe(0);
  }
}

/** Records a client's state changes (state + info). */
export function recordStates(hub: Hubcast): { state: State; info: StateInfo }[] {
  const out: { state: State; info: StateInfo }[] = [];
  hub.on('state', (state, info) => out.push({ state, info }));
  return out;
}
