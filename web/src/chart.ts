/** A small SVG line chart and its data table, drawn with the DOM (no library, nothing fetched). */

const SVG = 'http://www.w3.org/2000/svg';

/** One line of the chart. */
export interface Series {
  name: string;
  values: number[];
  color: string;
  /** SVG stroke-dasharray (a second method of the same model: dashed). */
  dash?: string;
}

/** What to draw. */
export interface ChartSpec {
  x: number[];
  series: Series[];
  xLabel: string;
  yLabel: string;
  /** Width in CSS pixels the chart is drawn for: text keeps its size at any width. */
  width: number;
  /** Fixed y range (default [0, 1]). */
  yRange?: [number, number];
  /** Formats a y value (default: as a percentage). */
  yFormat?: (v: number) => string;
}

/** Below this width the legend goes under the plot instead of beside it. */
const NARROW = 560;

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const percent = (v: number): string => `${Math.round(v * 100)}%`;

/** Draws the chart as an SVG element, one CSS pixel per unit at `spec.width`. */
export function lineChart(spec: ChartSpec): SVGSVGElement {
  const width = Math.max(280, Math.round(spec.width));
  const narrow = width < NARROW;
  const legendRows = narrow ? spec.series.length : 0;
  const plotHeight = narrow ? 220 : 260;
  const m = { left: 48, right: narrow ? 12 : 190, top: 14, bottom: 44 + legendRows * 20 };
  const height = plotHeight + m.top + m.bottom;
  const [y0, y1] = spec.yRange ?? [0, 1];
  const xs = spec.x;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const px = (v: number): number => m.left + ((v - x0) / (x1 - x0 || 1)) * (width - m.left - m.right);
  const py = (v: number): number => m.top + plotHeight - ((v - y0) / (y1 - y0 || 1)) * plotHeight;
  const fmt = spec.yFormat ?? percent;
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart', 'aria-label': `${spec.yLabel} against ${spec.xLabel}: ${spec.series.map((s) => s.name).join(', ')} (the table below has the figures)` });
  const base = m.top + plotHeight;

  for (let i = 0; i <= 5; i++) {
    const v = y0 + ((y1 - y0) * i) / 5;
    svg.append(el('line', { x1: m.left, x2: width - m.right, y1: py(v), y2: py(v), class: 'grid' }));
    svg.append(el('text', { x: m.left - 6, y: py(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
  }
  let lastLabel = -Infinity;
  for (const v of xs) {
    svg.append(el('line', { x1: px(v), x2: px(v), y1: base, y2: base + 5, class: 'axis' }));
    // Crowded ticks (0, 2, 4 on a 0-64 axis) keep their marks but not all their numbers.
    if (px(v) - lastLabel < 20) continue;
    lastLabel = px(v);
    svg.append(el('text', { x: px(v), y: base + 18, 'text-anchor': 'middle', class: 'tick' }, String(v)));
  }
  svg.append(el('line', { x1: m.left, x2: width - m.right, y1: base, y2: base, class: 'axis' }));
  svg.append(el('line', { x1: m.left, x2: m.left, y1: m.top, y2: base, class: 'axis' }));
  svg.append(el('text', { x: (m.left + width - m.right) / 2, y: base + 36, 'text-anchor': 'middle', class: 'label' }, spec.xLabel));
  svg.append(el('text', { x: 12, y: m.top + plotHeight / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 12 ${m.top + plotHeight / 2})` }, spec.yLabel));

  spec.series.forEach((s, k) => {
    const points = s.values.map((v, i) => `${px(xs[i] as number).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    svg.append(el('polyline', { points, fill: 'none', stroke: s.color, 'stroke-width': 2.5, class: 'series', ...(s.dash ? { 'stroke-dasharray': s.dash } : {}) }));
    s.values.forEach((v, i) => {
      const dot = el('circle', { cx: px(xs[i] as number), cy: py(v), r: 3.5, fill: s.color });
      dot.append(el('title', {}, `${s.name}: ${fmt(v)} at ${spec.xLabel.split(' ')[0]} ${xs[i]}`));
      svg.append(dot);
    });
    const lx = narrow ? m.left : width - m.right + 14;
    const ly = narrow ? base + 56 + k * 20 : m.top + 10 + k * 22;
    svg.append(el('line', { x1: lx, x2: lx + 22, y1: ly, y2: ly, stroke: s.color, 'stroke-width': 3, ...(s.dash ? { 'stroke-dasharray': s.dash } : {}) }));
    svg.append(el('text', { x: lx + 28, y: ly + 4, class: 'legend' }, s.name));
  });
  return svg;
}

/** The chart's figures as a table: a row per series, a column per x. */
export function chartTable(spec: Pick<ChartSpec, 'x' | 'series' | 'xLabel' | 'yLabel' | 'yFormat'>): HTMLTableElement {
  const fmt = spec.yFormat ?? percent;
  const table = document.createElement('table');
  const caption = table.createCaption();
  caption.textContent = `${spec.yLabel} at each ${spec.xLabel}`;
  const head = table.createTHead().insertRow();
  const corner = document.createElement('th');
  corner.scope = 'col';
  corner.textContent = 'series';
  head.append(corner);
  for (const v of spec.x) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = String(v);
    head.append(th);
  }
  const body = table.createTBody();
  for (const s of spec.series) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = s.name;
    row.append(th);
    for (const v of s.values) row.insertCell().textContent = fmt(v);
  }
  return table;
}
