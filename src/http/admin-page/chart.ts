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

  constructor(el: HTMLElement, series: { label: string; color: string }[]) {
    this.#el = el;
    this.#data = [[], ...series.map(() => [])];
    const fg = cssVar('--muted', '#555');
    const grid = cssVar('--line', '#ddd');
    const axis: uPlot.Axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    this.#plot = new uPlot(
      {
        width: this.#width(),
        height: HEIGHT,
        // Room on the right for the last time label (centred on the newest sample).
        padding: [8, 36, 0, 0],
        scales: {
          // At least the last minute, so that the first samples do not spread over the whole width.
          x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] },
          y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
        },
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            points: { show: false },
          })),
        ],
        axes: [
          {
            ...axis,
            space: 80,
            values: (_u, splits) =>
              splits.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })),
          },
          { ...axis, size: 48 },
        ],
        cursor: { drag: { x: false, y: false } },
        // The legend names the series; the current values are the overview's figures above the charts.
        legend: { live: false },
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
