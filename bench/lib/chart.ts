/**
 * A dependency-free SVG bar chart: groups of bars (one group per scenario figure, one bar per
 * system), on a log scale around a reference line (1 = Hubcast). Plain SVG 1.1 text, no scripts, no
 * external fonts: it renders the same on GitHub, in a browser, or in an image viewer.
 */

export interface Bar {
  /** The series (system) this bar belongs to: its colour and legend entry. */
  series: string;
  /** null: not measured (drawn as "n/a"). */
  value: number | null;
}

export interface BarGroup {
  /** Under the group (`fan-out N=5,000`). */
  label: string;
  /** Lines under the label (`deliveries/s`, `higher is better`). */
  sublabels?: string[];
  bars: Bar[];
}

export interface ChartSpec {
  title: string;
  subtitle?: string;
  /** Legend order; colours are given in this order. */
  series: string[];
  groups: BarGroup[];
  /** Axis label (`relative to Hubcast (log scale); above 1: better than Hubcast`). */
  axisLabel: string;
  /** Where the reference line is drawn (default 1). */
  reference?: number;
  /** Text on a bar (default `×1.23`). */
  format?: (v: number) => string;
}

const PALETTE = ['#1f6feb', '#8b949e', '#d29922', '#2da44e', '#cf222e', '#8250df', '#bf3989', '#0a7ea4'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function defaultFormat(v: number): string {
  if (v >= 100) return `×${Math.round(v)}`;
  if (v >= 10) return `×${v.toFixed(1)}`;
  return `×${v.toFixed(2)}`;
}

/** Powers of two spanning [lo, hi] (log scale ticks). */
function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log2(lo)); e <= Math.ceil(Math.log2(hi)) && out.length < 40; e++) out.push(2 ** e);
  return out;
}

/** The chart as an SVG document. */
export function barChartSvg(spec: ChartSpec): string {
  const reference = spec.reference ?? 1;
  const format = spec.format ?? defaultFormat;
  const values = spec.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v): v is number => v !== null && v > 0);
  const lo = Math.min(reference / 2, ...values.map((v) => v / 1.2));
  const hi = Math.max(reference * 2, ...values.map((v) => v * 1.2));
  const tickValues = ticks(lo, hi);
  const axisLo = tickValues[0]!;
  const axisHi = tickValues[tickValues.length - 1]!;

  const barW = 22;
  const barGap = 4;
  const groupGap = 34;
  const left = 70;
  const right = 20;
  const top = 70;
  const plotH = 300;
  const bottom = 100;
  const legendRowH = 18;
  const minGroupW = 112;
  const groupWidths = spec.groups.map((g) => Math.max(minGroupW, Math.max(1, g.bars.length) * (barW + barGap) - barGap));
  const plotW = Math.max(
    300,
    groupWidths.reduce((a, b) => a + b + groupGap, groupGap),
  );
  const legendColW = 230;
  const width = left + plotW + right;
  const legendCols = Math.max(1, Math.floor((plotW + right) / legendColW));
  const legendRows = Math.ceil(spec.series.length / legendCols);
  const height = top + plotH + bottom + legendRows * legendRowH + 10;
  const y = (v: number) => {
    const c = Math.min(axisHi, Math.max(axisLo, v));
    return top + plotH - ((Math.log2(c) - Math.log2(axisLo)) / (Math.log2(axisHi) - Math.log2(axisLo))) * plotH;
  };
  const colour = (s: string) => PALETTE[Math.max(0, spec.series.indexOf(s)) % PALETTE.length]!;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="bold" fill="#24292f">${esc(spec.title)}</text>`,
  );
  if (spec.subtitle) out.push(`<text x="${left}" y="44" fill="#57606a">${esc(spec.subtitle)}</text>`);
  // Axis, grid, ticks.
  for (const t of tickValues) {
    const ty = y(t).toFixed(1);
    const isRef = Math.abs(t - reference) < 1e-9;
    out.push(
      `<line x1="${left}" y1="${ty}" x2="${left + plotW}" y2="${ty}" stroke="${isRef ? '#24292f' : '#d0d7de'}" stroke-width="${isRef ? 1.5 : 1}"${isRef ? '' : ' stroke-dasharray="3,3"'}/>`,
      `<text x="${left - 6}" y="${(Number(ty) + 4).toFixed(1)}" text-anchor="end" fill="#57606a">${t >= 1 ? t : `1/${Math.round(1 / t)}`}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#57606a">${esc(spec.axisLabel)}</text>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#24292f"/>`,
  );
  // Bars.
  let x = left + groupGap;
  spec.groups.forEach((g, gi) => {
    const gw = groupWidths[gi]!;
    const barsW = Math.max(1, g.bars.length) * (barW + barGap) - barGap;
    const x0 = x + (gw - barsW) / 2;
    g.bars.forEach((b, bi) => {
      const bx = x0 + bi * (barW + barGap);
      const base = y(reference);
      if (b.value === null || !(b.value > 0)) {
        out.push(`<text x="${bx + barW / 2}" y="${(base - 4).toFixed(1)}" text-anchor="middle" font-size="9" fill="#57606a">n/a</text>`);
        return;
      }
      const vy = y(b.value);
      // A bar at the reference (Hubcast itself) is drawn as a short mark across the line.
      const h = Math.max(3, Math.abs(base - vy));
      const y0 = Math.abs(base - vy) < 3 ? base - 1.5 : Math.min(base, vy);
      out.push(
        `<rect x="${bx}" y="${y0.toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${colour(b.series)}"><title>${esc(`${b.series}: ${format(b.value)}`)}</title></rect>`,
      );
      const ty = vy < base ? vy - 4 : vy + 11;
      out.push(
        `<text x="${bx + barW / 2}" y="${ty.toFixed(1)}" text-anchor="middle" font-size="8.5" fill="#24292f">${esc(format(b.value))}</text>`,
      );
    });
    const cx = x + gw / 2;
    out.push(`<text x="${cx}" y="${top + plotH + 18}" text-anchor="middle" fill="#24292f">${esc(g.label)}</text>`);
    (g.sublabels ?? []).forEach((line, li) =>
      out.push(`<text x="${cx}" y="${top + plotH + 32 + li * 12}" text-anchor="middle" font-size="9.5" fill="#57606a">${esc(line)}</text>`),
    );
    x += gw + groupGap;
  });
  // Legend.
  const ly = top + plotH + 76;
  spec.series.forEach((s, i) => {
    const lx = left + (i % legendCols) * legendColW;
    const row = ly + Math.floor(i / legendCols) * legendRowH;
    out.push(
      `<rect x="${lx}" y="${row - 9}" width="11" height="11" fill="${colour(s)}"/>`,
      `<text x="${lx + 16}" y="${row}" fill="#24292f">${esc(s)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
