/** A small SVG line chart, drawn with the DOM (no library, nothing fetched). */

const SVG = 'http://www.w3.org/2000/svg';

/** One line of the chart. */
export interface Series {
  name: string;
  values: number[];
  color: string;
}

/** What to draw. */
export interface ChartSpec {
  x: number[];
  series: Series[];
  xLabel: string;
  yLabel: string;
  /** Fixed y range (default [0, 1]). */
  yRange?: [number, number];
  /** Formats a y tick (default: as a percentage). */
  yFormat?: (v: number) => string;
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Draws the chart as an SVG element (responsive: it scales to its container's width). */
export function lineChart(spec: ChartSpec): SVGSVGElement {
  const width = 640;
  const height = 320;
  const m = { left: 56, right: 150, top: 16, bottom: 44 };
  const [y0, y1] = spec.yRange ?? [0, 1];
  const xs = spec.x;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const px = (v: number): number => m.left + ((v - x0) / (x1 - x0 || 1)) * (width - m.left - m.right);
  const py = (v: number): number => height - m.bottom - ((v - y0) / (y1 - y0 || 1)) * (height - m.top - m.bottom);
  const fmt = spec.yFormat ?? ((v: number) => `${Math.round(v * 100)}%`);
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', 'aria-label': `${spec.yLabel} against ${spec.xLabel}` });

  for (let i = 0; i <= 5; i++) {
    const v = y0 + ((y1 - y0) * i) / 5;
    svg.append(el('line', { x1: m.left, x2: width - m.right, y1: py(v), y2: py(v), class: 'grid' }));
    svg.append(el('text', { x: m.left - 8, y: py(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
  }
  let lastLabel = -Infinity;
  for (const v of xs) {
    svg.append(el('line', { x1: px(v), x2: px(v), y1: height - m.bottom, y2: height - m.bottom + 5, class: 'axis' }));
    // Crowded ticks (0, 2, 4 on a 0-64 axis) keep their marks but not all their numbers.
    if (px(v) - lastLabel < 18) continue;
    lastLabel = px(v);
    svg.append(el('text', { x: px(v), y: height - m.bottom + 18, 'text-anchor': 'middle', class: 'tick' }, String(v)));
  }
  svg.append(el('line', { x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom, class: 'axis' }));
  svg.append(el('line', { x1: m.left, x2: m.left, y1: m.top, y2: height - m.bottom, class: 'axis' }));
  svg.append(el('text', { x: (m.left + width - m.right) / 2, y: height - 6, 'text-anchor': 'middle', class: 'label' }, spec.xLabel));
  svg.append(el('text', { x: 14, y: (m.top + height - m.bottom) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 14 ${(m.top + height - m.bottom) / 2})` }, spec.yLabel));

  spec.series.forEach((s, k) => {
    const points = s.values.map((v, i) => `${px(xs[i] as number).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    svg.append(el('polyline', { points, fill: 'none', stroke: s.color, 'stroke-width': 2.5, class: 'series' }));
    s.values.forEach((v, i) => {
      const dot = el('circle', { cx: px(xs[i] as number), cy: py(v), r: 3.5, fill: s.color });
      dot.append(el('title', {}, `${s.name}: ${fmt(v)} at ${spec.xLabel.split(' ')[0]} ${xs[i]}`));
      svg.append(dot);
    });
    const ly = m.top + 10 + k * 22;
    svg.append(el('line', { x1: width - m.right + 14, x2: width - m.right + 34, y1: ly, y2: ly, stroke: s.color, 'stroke-width': 3 }));
    svg.append(el('text', { x: width - m.right + 40, y: ly + 4, class: 'legend' }, s.name));
  });
  return svg;
}
