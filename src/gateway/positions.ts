import type { Publication } from '../broker/broker.ts';
import type { Logger } from '../logger.ts';
import type { History } from '../store/store.ts';

/**
 * Positioning (after Centrifuge's): the node's guarantee that what it hands to its hub is, per topic,
 * every offset once, in increasing order — whatever order the broker brings publications in, whether
 * it drops some, and whether the node's own publications come back through it.
 *
 * - Per topic the node delivers, it keeps the last offset delivered (and the epoch). A publication at
 *   or below it is an echo or a duplicate: dropped. The next offset is delivered at once, then any
 *   held ones that follow it.
 * - One ahead of a missing offset is held back; when the missing one has not come within
 *   `cluster.gapWaitMs` (or too much is held), the gap is read from History — publications are only
 *   sent after their commit, so the gap is there.
 * - After a broker reconnect, shortly after the node starts delivering a topic, and every
 *   `cluster.positionCheckMs` (`checkAll`), tracked topics are compared with History and whatever is
 *   missing is read from it: a publication the broker dropped — on this node's link or on the
 *   publishing node's — is recovered, not lost, even when nothing is published after it.
 * - A topic is tracked from the first offset the node delivers (a subscription gives its baseline,
 *   `track`); it is forgotten when no connection of this node wants it any more (`forget`), or after
 *   it stayed idle for a while when it came through a pattern.
 */
export interface PositionsDeps {
  history: History;
  /** Hands a publication, in order, to the hub (frames once, writes to every local subscriber). */
  deliver: (pub: Publication) => void;
  /** Does this node have a subscriber for the topic? Untracked topics without one are ignored. */
  wanted: (topic: string) => boolean;
  gapWaitMs: number;
  log: Logger;
  onGapFilled?: (messages: number) => void;
  onGapLost?: (messages: number) => void;
}

interface Tracked {
  last: number;
  epoch: string;
  pending: Map<number, Publication> | undefined;
  pendingBytes: number;
  timer: NodeJS.Timeout | undefined;
  filling: boolean;
  /** A fill was asked for while one was running: run again after it. */
  again: boolean;
  touchedAt: number;
}

/** Held-back bytes per topic past which the gap is read at once instead of waiting. */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** Topics per `History.latest` query in `checkAll`. */
const LATEST_BATCH = 1000;
/** Messages read from History per page when filling a gap. */
const FILL_PAGE = 500;
/** Topics tracked only through patterns are forgotten after this long without a publication. */
const IDLE_MS = 5 * 60_000;

export class Positions {
  readonly #d: PositionsDeps;
  readonly #topics = new Map<string, Tracked>();
  #closed = false;
  #checking = false;

  constructor(deps: PositionsDeps) {
    this.#d = deps;
  }

  get tracked(): number {
    return this.#topics.size;
  }

  /** The last offset delivered for a topic (tests, presence of state). */
  lastOf(topic: string): number | undefined {
    return this.#topics.get(topic)?.last;
  }

  /** The epoch of the offsets `lastOf` counts. */
  epochOf(topic: string): string | undefined {
    return this.#topics.get(topic)?.epoch;
  }

  /** A subscription to `topic` saw History at `offset`: start there if the topic is not tracked yet. */
  track(topic: string, offset: number, epoch: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.set(topic, this.#entry(offset, epoch));
  }

  /** No connection of this node wants `topic` any more. */
  forget(topic: string): void {
    const t = this.#topics.get(topic);
    if (!t) return;
    clearTimeout(t.timer);
    this.#topics.delete(topic);
  }

  /** A publication from this node's publisher or from the broker. */
  accept(pub: Publication): void {
    let t = this.#topics.get(pub.topic);
    if (!t) {
      if (!this.#d.wanted(pub.topic)) return;
      this.#topics.set(pub.topic, (t = this.#entry(pub.offset - 1, pub.epoch)));
    } else if (pub.epoch !== t.epoch) {
      // The topic's history was lost and started again: follow the new numbering.
      this.#d.log.warn({ topic: pub.topic, epoch: pub.epoch }, 'topic epoch changed; following the new history');
      this.#reset(t, pub.offset - 1, pub.epoch);
    }
    if (pub.offset <= t.last) return;
    t.touchedAt = Date.now();
    if (pub.offset === t.last + 1 && !t.filling) {
      t.last = pub.offset;
      this.#d.deliver(pub);
      if (t.pending) this.#drain(t);
      return;
    }
    this.#hold(pub.topic, t, pub);
  }

  /** A publication exists at `offset` but its bytes did not travel: read it (and any gap) from History. */
  position(topic: string, offset: number, epoch: string): void {
    let t = this.#topics.get(topic);
    if (!t) {
      if (!this.#d.wanted(topic)) return;
      this.#topics.set(topic, (t = this.#entry(offset - 1, epoch)));
    } else if (epoch !== t.epoch) {
      this.#reset(t, offset - 1, epoch);
    }
    if (offset <= t.last) return;
    void this.#fill(topic, t, offset);
  }

  /** Compare every tracked topic with History and read what is missing (after a broker reconnect). */
  resync(): void {
    for (const [topic, t] of this.#topics) void this.#check(topic, t);
  }

  /**
   * Compares every tracked topic with History (a batched query per 1,000 topics) and reads what is
   * missing: a publication the broker lost — even the last one of a topic, with nothing after it to
   * reveal the gap — reaches the consumers within one check interval.
   */
  async checkAll(): Promise<void> {
    if (this.#checking || this.#topics.size === 0) return;
    this.#checking = true;
    try {
      const topics = [...this.#topics.keys()];
      for (let i = 0; i < topics.length && !this.#closed; i += LATEST_BATCH) {
        const chunk = topics.slice(i, i + LATEST_BATCH);
        const latest = await this.#d.history.latest(chunk);
        for (const [topic, l] of latest) {
          const t = this.#topics.get(topic);
          if (!t || t.filling) continue;
          if (l.epoch !== t.epoch) this.#reset(t, l.offset, l.epoch);
          else if (l.offset > t.last) void this.#fill(topic, t, l.offset);
        }
      }
    } catch (err) {
      this.#d.log.warn({ err }, 'positions: could not compare topics with history; next check soon');
    } finally {
      this.#checking = false;
    }
  }

  /** Compare one topic with History (shortly after the node started delivering it). */
  check(topic: string): void {
    const t = this.#topics.get(topic);
    if (t) void this.#check(topic, t);
  }

  /** Forget idle pattern-only topics; the gateway's heartbeat calls it. */
  sweep(keep: (topic: string) => boolean): void {
    const old = Date.now() - IDLE_MS;
    for (const [topic, t] of this.#topics) {
      if (!t.filling && !t.pending && (t.touchedAt < old || !this.#d.wanted(topic)) && !keep(topic)) this.forget(topic);
    }
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#topics.values()) clearTimeout(t.timer);
    this.#topics.clear();
  }

  #entry(last: number, epoch: string): Tracked {
    return { last, epoch, pending: undefined, pendingBytes: 0, timer: undefined, filling: false, again: false, touchedAt: Date.now() };
  }

  #reset(t: Tracked, last: number, epoch: string): void {
    clearTimeout(t.timer);
    t.timer = undefined;
    t.last = last;
    t.epoch = epoch;
    t.pending = undefined;
    t.pendingBytes = 0;
  }

  #hold(topic: string, t: Tracked, pub: Publication): void {
    const pending = (t.pending ??= new Map());
    if (pending.has(pub.offset)) return;
    pending.set(pub.offset, pub);
    t.pendingBytes += pub.payload.length;
    if (t.filling) return;
    if (t.pendingBytes > MAX_PENDING_BYTES) {
      void this.#fill(topic, t);
      return;
    }
    t.timer ??= setTimeout(() => {
      t.timer = undefined;
      void this.#fill(topic, t);
    }, this.#d.gapWaitMs).unref();
  }

  /** Delivers held publications that now follow in order. */
  #drain(t: Tracked): void {
    const pending = t.pending;
    if (!pending) return;
    for (;;) {
      const next = pending.get(t.last + 1);
      if (!next) break;
      pending.delete(next.offset);
      t.pendingBytes -= next.payload.length;
      t.last = next.offset;
      this.#d.deliver(next);
    }
    if (pending.size === 0) {
      t.pending = undefined;
      t.pendingBytes = 0;
      clearTimeout(t.timer);
      t.timer = undefined;
    }
  }

  async #check(topic: string, t: Tracked): Promise<void> {
    try {
      const state = await this.#d.history.topicState(topic);
      if (this.#topics.get(topic) !== t || this.#closed) return;
      if (state.epoch !== t.epoch) this.#reset(t, state.offset, state.epoch);
      else if (state.offset > t.last) await this.#fill(topic, t, state.offset);
    } catch (err) {
      this.#d.log.warn({ err, topic }, 'positions: could not compare a topic with history; will retry on the next publication');
    }
  }

  /**
   * Reads the missing offsets from History and delivers them, then what was held. `through`: read at
   * least this far (a position notice, a resync); otherwise up to the first held offset.
   */
  async #fill(topic: string, t: Tracked, through?: number): Promise<void> {
    if (t.filling) {
      // Compared with History again once this fill ends (a position notice may lie beyond it).
      t.again = true;
      return;
    }
    clearTimeout(t.timer);
    t.timer = undefined;
    t.filling = true;
    let target = through ?? 0;
    try {
      for (;;) {
        if (t.pending?.size) target = Math.max(target, Math.min(...t.pending.keys()) - 1);
        if (target <= t.last) break;
        const page = await this.#d.history.readHistory(topic, t.last, Math.min(FILL_PAGE, target - t.last));
        if (this.#topics.get(topic) !== t || this.#closed) return;
        let filled = 0;
        for (const m of page) {
          if (m.offset <= t.last) continue;
          if (m.offset !== t.last + 1) {
            // Trimmed meanwhile (history.size or ttlS): those offsets are gone for good.
            this.#d.onGapLost?.(m.offset - t.last - 1);
            this.#d.log.warn({ topic, from: t.last + 1, to: m.offset - 1 }, 'positions: offsets no longer in history were skipped');
          }
          t.last = m.offset;
          filled++;
          this.#d.deliver({ topic, offset: m.offset, epoch: t.epoch, ts: m.ts, kind: m.kind, payload: m.payload });
          this.#drain(t);
        }
        if (filled) this.#d.onGapFilled?.(filled);
        if (page.length === 0) {
          // Nothing retained in the gap (history.size 0, or expired): skip to what is held.
          const lost = target - t.last;
          this.#d.onGapLost?.(lost);
          this.#d.log.warn({ topic, from: t.last + 1, to: target }, 'positions: offsets missing from history were skipped');
          t.last = target;
          this.#drain(t);
        }
      }
    } catch (err) {
      this.#d.log.warn({ err, topic }, 'positions: could not read a gap from history; retrying');
      // Try again later: the held publications stay held (bounded by MAX_PENDING_BYTES per fill).
      if (this.#topics.get(topic) === t && !this.#closed) {
        t.timer ??= setTimeout(
          () => {
            t.timer = undefined;
            void this.#fill(topic, t, through);
          },
          Math.max(this.#d.gapWaitMs, 500),
        ).unref();
      }
    } finally {
      t.filling = false;
    }
    this.#drain(t);
    if (t.again && this.#topics.get(topic) === t && !this.#closed) {
      t.again = false;
      void this.#check(topic, t);
    }
  }
}
