/** Percentiles and small summaries of samples. */

export interface Summary {
  count: number;
  /**
   * Samples that never happened (a delivery that never arrived, a connect that failed), counted as
   * infinitely slow: a percentile that falls among them is null. 0 when not tracked.
   */
  missing: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentile of sorted samples (`q` in 0..1); null for no samples. */
export function percentile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Count, mean and percentiles; `missing` samples count as infinitely slow (see `Summary.missing`). */
export function summarize(samples: readonly number[] | Float64Array, missing = 0): Summary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length + missing;
  const pct = (q: number): number | null => {
    if (n === 0) return null;
    const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
    return rank < sorted.length ? sorted[rank]! : null;
  };
  return {
    count: sorted.length,
    missing,
    p50: pct(0.5),
    p90: pct(0.9),
    p99: pct(0.99),
    p999: pct(0.999),
    max: missing ? null : sorted.length ? sorted[sorted.length - 1]! : null,
    mean: sorted.length ? sum / sorted.length : null,
  };
}

/**
 * A growable Float64Array: millions of samples without an array of boxed numbers. Bounded by
 * `max` (samples past it are counted but not kept).
 */
export class Samples {
  #buf: Float64Array;
  #n = 0;
  dropped = 0;
  readonly #max: number;

  constructor(initial = 1024, max = 5_000_000) {
    this.#buf = new Float64Array(initial);
    this.#max = max;
  }

  push(v: number): void {
    if (this.#n === this.#buf.length) {
      if (this.#n >= this.#max) {
        this.dropped++;
        return;
      }
      const next = new Float64Array(Math.min(this.#max, this.#buf.length * 2));
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = v;
  }

  get length(): number {
    return this.#n;
  }

  summary(missing = 0): Summary {
    return summarize(this.#buf.subarray(0, this.#n), missing);
  }
}

/** Adds `n` to `counts[key]`. */
export function bump(counts: Record<string, number>, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}
