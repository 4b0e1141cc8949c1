import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Points kept per chart: five minutes at one overview a second. */
const MAX_POINTS = 300;
const HEIGHT = 170;

/** A CSS custom property of the page (colours follow the light or dark scheme). */
function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/**
 * A live time-series chart (uPlot, canvas): `push` adds one sample of every series, the oldest
 * fall off after five minutes; the chart follows its container's width.
 */
export class LiveChart {
  readonly #plot: uPlot;
  readonly #data: number[][];
  readonly #el: HTMLElement;

  constructor(el: HTMLElement, series: { label: string; color: string; decimals?: number }[]) {
    this.#el = el;
    this.#data = [[], ...series.map(() => [])];
    const fg = cssVar('--muted', '#555');
    const grid = cssVar('--line', '#ddd');
    const axis: uPlot.Axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    this.#plot = new uPlot(
      {
        width: this.#width(),
        height: HEIGHT,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } },
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            points: { show: false },
            value: (_u: uPlot, v: number | null) => (v === null ? '–' : v.toFixed(s.decimals ?? 0)),
          })),
        ],
        axes: [axis, { ...axis, size: 48 }],
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
      },
      this.#data as uPlot.AlignedData,
      el,
    );
    new ResizeObserver(() => this.#plot.setSize({ width: this.#width(), height: HEIGHT })).observe(el);
  }

  #width(): number {
    return Math.max(200, Math.floor(this.#el.clientWidth));
  }

  /** One sample at `t` (ms) of each series, in the order given to the constructor. */
  push(t: number, values: number[]): void {
    this.#data[0]!.push(t / 1000);
    values.forEach((v, i) => this.#data[i + 1]!.push(v));
    if (this.#data[0]!.length > MAX_POINTS) for (const d of this.#data) d.shift();
    this.#plot.setData(this.#data as uPlot.AlignedData);
  }

  /** Samples so far (tests read it through the page's `data-points`). */
  get points(): number {
    return this.#data[0]!.length;
  }
}
