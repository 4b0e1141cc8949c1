import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Store, StoredMessage } from '../store/store.ts';
import { messageFrame } from './frames.ts';
import type { Hold, Peer } from './peer.ts';
import { ReplaySlots } from './replay-slots.ts';

export interface ReplayDeps {
  config: Config;
  store: Store;
  metrics: Metrics;
  log: Logger;
}

/**
 * Paged replay (docs/websocket.md#replay-paging). History is read a bounded page at a time (at most
 * `ws.replay.pageMessages` messages and `pageBytes` payload bytes), written, and the next page is read
 * only once the consumer's queue is below a quarter of `limits.maxBufferedBytes`. So a replay never
 * holds more than a page in memory, never takes the event loop for more than a page, and is paced by
 * the consumer: one that does not read for `ws.replay.stallMs` is closed with 4001. A replay stops at
 * once when its connection closes or is cut (the peer's abort signal).
 */
export class Replayer {
  readonly #d: ReplayDeps;
  readonly #slots: ReplaySlots;

  constructor(deps: ReplayDeps) {
    this.#d = deps;
    this.#slots = new ReplaySlots(deps.config.ws.replay.concurrency);
  }

  /**
   * Writes the retained messages of `topic` after `from` through `to`, then catches up from history with
   * whatever live messages the hold dropped meanwhile (see `Hold`). Returns the offset the consumer now
   * has every message through — the held messages above it are to be released — or undefined when the
   * replay stopped: the connection closed, was unsubscribed, or was cut with 4001.
   */
  async run(peer: Peer, topic: string, hold: Hold, from: number, to: number): Promise<number | undefined> {
    const { config, store, metrics } = this.#d;
    const maxBuffered = peer.maxBufferedBytes;
    const lowWater = Math.floor(maxBuffered / 4);
    const pageBytes = Math.min(config.ws.replay.pageBytes, lowWater);
    const { pageMessages, stallMs } = config.ws.replay;
    let last = from;
    let target = to;
    // Offsets are gap-free: once a message was written, the next one must follow it. At the start a gap
    // is normal (trimmed history: `recovered: false`); later it means history moved past this replay.
    let contiguous = false;
    let waitFor = lowWater;
    for (;;) {
      while (last < target) {
        const drained = await peer.drained(waitFor, stallMs);
        if (drained === 'stalled') peer.slow(`replay: the consumer read nothing for ${stallMs} ms`);
        if (drained !== 'ok' || !peer.isCurrentHold(topic, hold)) return undefined;
        if (!(await this.#slots.acquire(peer.signal))) return undefined;
        let page: StoredMessage[];
        try {
          page = await store.readHistory(topic, last, Math.min(pageMessages, target - last), pageBytes);
        } finally {
          this.#slots.release();
        }
        if (!peer.isCurrentHold(topic, hold)) return undefined;
        if (page.length === 0) {
          if (!contiguous) break; // nothing retained after `last` any more (expired meanwhile)
          peer.slow('replay: history moved past the replay');
          return undefined;
        }
        let written = 0;
        for (const m of page) {
          if (m.offset > target) break;
          if (contiguous && m.offset !== last + 1) {
            peer.slow('replay: history moved past the replay');
            return undefined;
          }
          const frame = messageFrame(m);
          // What does not fit under the outbound cap now waits for the next page (re-read then).
          if (!peer.fits(frame.frame.length)) break;
          peer.writeMessage(frame);
          last = m.offset;
          contiguous = true;
          written++;
        }
        if (written) metrics.replayed.inc(written);
        // A message too large to fit next to anything waits for an empty queue.
        waitFor = written ? lowWater : 0;
        if (!peer.open) return undefined;
      }
      last = target;
      // Live messages the hold had to drop are in history: replay them too, then hold again.
      if (hold.droppedTo <= target) return target;
      this.#d.log.debug(
        { connection_id: peer.id, topic, from: target, to: hold.droppedTo },
        'replay: live messages past the hold cap; catching up from history',
      );
      target = hold.droppedTo;
      hold.rearm();
      contiguous = true;
    }
  }
}
