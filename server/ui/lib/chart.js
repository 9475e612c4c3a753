// @ts-check
// Two small SVG charts, drawn at the pixel width of their container so that
// text stays legible on a narrow screen: a time series (traffic) and
// horizontal grouped bars (benchmark results). Each carries an aria-label
// summing it up; the views also show the numbers as text.
import { s } from './dom.js';

/** The next 1, 2 or 5 × 10^n at or above v. @param {number} v */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * @typedef {{ label: string, cls: string, points: [number, number][] }} Series
 *   points: [time in ms, value]; cls picks the stroke (and dash) from the CSS
 */

/**
 * @param {{ width: number, height?: number, series: Series[], format: (v: number) => string, label: string, now: number, spanMs: number }} o
 */
export function lineChart(o) {
  const width = Math.max(240, Math.round(o.width));
  const height = o.height ?? 170;
  const pad = { l: 78, r: 10, t: 10, b: 24 };
  const pw = width - pad.l - pad.r;
  const ph = height - pad.t - pad.b;
  const max = niceMax(Math.max(0, ...o.series.flatMap((x) => x.points.map((p) => p[1]))));
  const x = (/** @type {number} */ t) => pad.l + Math.max(0, 1 - (o.now - t) / o.spanMs) * pw;
  const y = (/** @type {number} */ v) => pad.t + ph - (v / max) * ph;
  const grid = [0, max / 2, max].map((v) =>
    s(
      'g',
      { class: 'grid' },
      s('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v) }),
      s('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, o.format(v)),
    ),
  );
  const minutes = Math.round(o.spanMs / 60_000);
  const ticks = [
    s('text', { x: pad.l, y: height - 6, 'text-anchor': 'start' }, `−${minutes} min`),
    s('text', { x: width - pad.r, y: height - 6, 'text-anchor': 'end' }, 'now'),
  ];
  const lines = o.series
    .filter((x) => x.points.length > 0)
    .map((ser) =>
      s('path', {
        class: `line ${ser.cls}`,
        d: ser.points.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(''),
      }),
    );
  const dots = o.series
    .filter((x) => x.points.length > 0)
    .map((ser) => {
      const [t, v] = /** @type {[number, number]} */ (ser.points[ser.points.length - 1]);
      return s('circle', { class: `dot ${ser.cls}`, cx: x(t), cy: y(v), r: 3 });
    });
  return s(
    'svg',
    { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': o.label },
    grid,
    ticks,
    lines,
    dots,
  );
}

/**
 * @typedef {{ label: string, bars: { label: string, value: number, cls: string }[] }} BarRow
 *   cls picks the bar's fill and stroke from the CSS
 */

/**
 * Grouped horizontal bars: one group per row, each bar under its own label
 * with its value at its end, all on one scale from zero. The labels sit above
 * the bars so that long ones keep their place on a narrow screen.
 * @param {{ width: number, rows: BarRow[], format: (v: number) => string, label: string }} o
 */
export function barChart(o) {
  const width = Math.max(240, Math.round(o.width));
  const pad = { l: 8, r: 96 };
  const pw = width - pad.l - pad.r;
  const max = niceMax(Math.max(0, ...o.rows.flatMap((r) => r.bars.map((b) => b.value))));
  const kids = [];
  let top = 4;
  for (const row of o.rows) {
    kids.push(s('text', { class: 'row-label', x: pad.l, y: top + 13 }, row.label));
    top += 20;
    for (const b of row.bars) {
      const w = Math.max(1, (b.value / max) * pw);
      kids.push(
        s('text', { class: 'bar-name', x: pad.l, y: top + 11 }, b.label),
        s('rect', { class: `bar ${b.cls}`, x: pad.l, y: top + 15, width: w.toFixed(1), height: 14, rx: 2 }),
        s('text', { class: 'bar-label', x: pad.l + w + 6, y: top + 26 }, o.format(b.value)),
      );
      top += 34;
    }
    top += 10;
  }
  return s('svg', { class: 'chart', width, height: top, viewBox: `0 0 ${width} ${top}`, role: 'img', 'aria-label': o.label }, kids);
}
