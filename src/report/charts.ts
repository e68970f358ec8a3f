/**
 * Vega-Lite specifications for the report's figures. Each builder is pure: it
 * turns checked input into a spec whose data are inline (`data.values`), so a
 * spec can be inspected in tests, rendered headlessly ({@link renderSvg}) or
 * pasted into any Vega-Lite editor. Accuracies are proportions in [0, 1]; a
 * NaN from the input (an interval over no images) becomes `null`, which
 * Vega-Lite leaves out of lines and bands.
 */
import type { Config, TopLevelSpec } from 'vega-lite';
import type { SweepEntry, SweepResult } from '../evaluation/sweep-types.js';
import type { TransferCell } from '../evaluation/transfer.js';
import type { ExampleGrid } from './attack-input.js';
import { pngDataUri, upscale } from './raster.js';
import type { EvalInput } from './inputs.js';

/** The font stack of every chart; the PNG renderer loads DejaVu Sans for it. */
export const CHART_FONT = 'DejaVu Sans, Verdana, Helvetica, Arial, sans-serif';

/** Colour of label-leaking marks. */
export const LEAK_COLOR = '#d62728';

/** Colours of methods and training regimes (Tableau 10 without its red, kept for label leaking). */
export const SERIES_COLORS = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#72b7b2', '#9d755d', '#eeca3b', '#ff9da6', '#17becf', '#bab0ac'];

/** Shared look: font, sizes, white background. */
export const CHART_CONFIG: Config = {
  font: CHART_FONT,
  background: 'white',
  padding: 12,
  title: { fontSize: 16, anchor: 'start', subtitleFontSize: 12, subtitleColor: '#444', offset: 12 },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', gridColor: '#e8e8e8' },
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 360 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  view: { stroke: '#ccc' },
};

const num = (v: number): number | null => (Number.isFinite(v) ? v : null);
const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(v >= 0.995 || v < 0.1 ? 1 : 0)}%` : 'n/a');

/** The legend name of an attack line: its method and the label it used. */
export function seriesName(method: string, labelSource: string): string {
  return `${method} (label: ${labelSource})`;
}

/** The legend name of the clean reference line. */
export const CLEAN_SERIES = 'clean (no attack)';

/** One row of {@link accuracySpec}'s data. */
export interface AccuracyDatum {
  /** 'top-1' or 'top-5': the facet column. */
  panel: string;
  kind: 'clean' | 'attack';
  series: string;
  method: string | null;
  labelSource: string | null;
  eps: number | null;
  value: number | null;
  low: number | null;
  high: number | null;
  /** The cell is flagged for label leaking; set on top-1 rows only (the test compares top-1 accuracies). */
  labelLeaking: boolean;
  tiedWithStrongest: boolean;
}

/** Options of {@link accuracySpec}. */
export interface AccuracySpecOptions {
  /** Which accuracies get a panel (default both, top-1 first). */
  metrics?: ('top1' | 'top5')[];
  /** Width of one panel in pixels (default 340). */
  width?: number;
}

/**
 * Accuracy against eps for one evaluation: per metric a panel with the clean
 * accuracy as a dashed horizontal line over its 95% band, one line per method
 * (legend: method and label source) over its 95% band, and cells flagged for
 * label leaking circled in red with a note on the top-1 panel (the flag tests top-1).
 */
export function accuracySpec(input: EvalInput, opts: AccuracySpecOptions = {}): TopLevelSpec {
  const metrics = opts.metrics ?? ['top1', 'top5'];
  const width = opts.width ?? 340;
  const r = input.result;
  const panelName = (m: 'top1' | 'top5'): string => (m === 'top1' ? 'top-1' : 'top-5');
  const values: AccuracyDatum[] = [];
  const series: string[] = [];
  for (const c of r.cells) {
    const s = seriesName(c.method, c.labelSource);
    if (!series.includes(s)) series.push(s);
  }
  for (const m of metrics) {
    const clean = r.clean[m];
    values.push({
      panel: panelName(m), kind: 'clean', series: CLEAN_SERIES, method: null, labelSource: null, eps: null,
      value: num(clean.value), low: num(clean.low), high: num(clean.high), labelLeaking: false, tiedWithStrongest: false,
    });
    for (const c of r.cells) {
      const i = c[m];
      values.push({
        panel: panelName(m), kind: 'attack', series: seriesName(c.method, c.labelSource), method: c.method, labelSource: c.labelSource, eps: c.eps,
        value: num(i.value), low: num(i.low), high: num(i.high), labelLeaking: m === 'top1' && c.labelLeaking, tiedWithStrongest: c.tiedWithStrongest,
      });
    }
  }
  const eps = [...new Set(r.cells.map((c) => c.eps))].sort((a, b) => a - b);
  const maxEps = Math.max(...eps);
  const x = {
    field: 'eps', type: 'quantitative' as const, title: 'eps (pixel units, 0-255)',
    scale: { domain: [0, maxEps > 0 ? maxEps : 1], nice: false }, axis: { values: eps, grid: true },
  };
  const color = {
    field: 'series', type: 'nominal' as const, title: 'method (label source)',
    scale: { domain: [...series, CLEAN_SERIES], range: [...series.map((_, i) => SERIES_COLORS[i % SERIES_COLORS.length] as string), '#222'] },
    legend: { orient: 'bottom' as const, direction: 'vertical' as const, columns: 2, symbolType: 'stroke', symbolStrokeWidth: 3, symbolSize: 400, symbolOpacity: 1, titleLimit: 400 },
  };
  const y = { field: 'value', type: 'quantitative' as const, title: 'accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } };
  const leaking = r.cells.some((c) => c.labelLeaking);
  const subtitle = [
    `${r.images} images${input.data ? ` of ${input.data}` : ''}. Shaded bands: 95% confidence intervals. Dashed: clean accuracy.`,
  ];
  if (leaking) subtitle.push('Red circles: label leaking (adversarial accuracy above clean beyond the interval).');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Accuracy under attack: ${input.name}`, subtitle },
    config: CHART_CONFIG,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: metrics.map(panelName), header: { labelFontWeight: 'bold' } } },
    spec: {
      width,
      height: 260,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'clean'" }],
          mark: { type: 'rect', color: '#000', opacity: 0.1 },
          encoding: { x: { value: 0 }, x2: { value: 'width' }, y: { ...y, field: 'low' }, y2: { field: 'high' } },
        },
        {
          transform: [{ filter: "datum.kind === 'clean'" }],
          mark: { type: 'rule', strokeDash: [6, 4], strokeWidth: 2 },
          encoding: { y, color },
        },
        {
          transform: [{ filter: "datum.kind === 'attack'" }],
          mark: { type: 'area', opacity: 0.16 },
          encoding: { x, y: { ...y, field: 'low' }, y2: { field: 'high' }, color },
        },
        {
          transform: [{ filter: "datum.kind === 'attack'" }],
          mark: { type: 'line', strokeWidth: 2.2, point: { filled: true, size: 45 } },
          encoding: { x, y, color },
        },
        {
          transform: [{ filter: "datum.kind === 'attack' && datum.labelLeaking" }],
          mark: { type: 'point', shape: 'circle', size: 380, filled: false, strokeWidth: 2.5, color: LEAK_COLOR },
          encoding: { x, y },
        },
        {
          transform: [{ filter: "datum.kind === 'attack' && datum.labelLeaking" }],
          mark: { type: 'text', text: 'label leaking', dy: -18, color: LEAK_COLOR, fontWeight: 'bold', fontSize: 11 },
          encoding: { x, y },
        },
      ],
    },
  } as TopLevelSpec;
}

/** One row of {@link transferSpec}'s data. */
export interface TransferDatum {
  /** 'transfer rate' or 'error rate': the facet column. */
  metric: string;
  source: string;
  target: string;
  value: number | null;
  low: number | null;
  high: number | null;
  /** The value as shown in the cell ('63%' or 'n/a'). */
  text: string;
  /** Numerator/denominator ('41/65'). */
  counts: string;
}

/** The models of a transfer matrix, in order of first appearance (sources, then targets). */
export function transferModels(cells: TransferCell[]): string[] {
  const models: string[] = [];
  for (const c of cells) for (const m of [c.source, c.target]) if (!models.includes(m)) models.push(m);
  return models;
}

/**
 * Heatmaps of one method and eps: source model (rows, attacked) by target model
 * (columns, classifying), transfer rate on the left and error rate on the right,
 * each cell labelled with its percentage and counts, colour scale fixed to 0-100%.
 */
export function transferSpec(cells: TransferCell[], method: string, eps: number): TopLevelSpec {
  const chosen = cells.filter((c) => c.method === method && c.eps === eps);
  if (chosen.length === 0) throw new Error(`transferSpec: no cells for method ${method} at eps ${eps}`);
  const models = transferModels(chosen);
  const values: TransferDatum[] = [];
  for (const c of chosen) {
    values.push({ metric: 'transfer rate', source: c.source, target: c.target, value: num(c.transferRate.value), low: num(c.transferRate.low), high: num(c.transferRate.high), text: pct(c.transferRate.value), counts: `${c.transferred}/${c.sourceFooled}` });
  }
  for (const c of chosen) {
    values.push({ metric: 'error rate', source: c.source, target: c.target, value: num(c.errorRate.value), low: num(c.errorRate.low), high: num(c.errorRate.high), text: pct(c.errorRate.value), counts: `${c.targetErrors}/${c.n}` });
  }
  const side = Math.max(150, 72 * models.length);
  const x = { field: 'target', type: 'nominal' as const, sort: models, title: 'target model (classifies)', axis: { labelAngle: 0, labelLimit: 120 } };
  const y = { field: 'source', type: 'nominal' as const, sort: models, title: 'source model (attacked)', axis: { labelLimit: 140 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Transfer: ${method}, eps ${eps}`, subtitle: ['Transfer rate: of the adversarial images the source misclassifies, the share the target misclassifies too.', 'Error rate: of all adversarial images, the share the target misclassifies. Cells: rate and counts.'] },
    config: CHART_CONFIG,
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['transfer rate', 'error rate'], header: { labelFontWeight: 'bold' } } },
    spec: {
      width: side,
      height: side,
      layer: [
        { mark: { type: 'rect', color: '#f0f0f0' }, encoding: { x, y } },
        {
          mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
          encoding: { x, y, color: { field: 'value', type: 'quantitative', title: 'rate', scale: { domain: [0, 1], scheme: 'blues' }, legend: { format: '.0%' } } },
        },
        {
          mark: { type: 'text', fontSize: 14, fontWeight: 'bold', dy: -7 },
          encoding: { x, y, text: { field: 'text' }, color: { condition: { test: 'datum.value > 0.55', value: 'white' }, value: '#111' } },
        },
        {
          mark: { type: 'text', fontSize: 10, dy: 10 },
          encoding: { x, y, text: { field: 'counts' }, color: { condition: { test: 'datum.value > 0.55', value: 'white' }, value: '#333' } },
        },
      ],
    },
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec;
}

/** The legend name of a sweep entry's training: plain or adversarial, with the activation when several are present. */
function trainingName(e: SweepEntry, withActivation: boolean): string {
  const t = e.adversarial ? 'adversarial training' : 'plain training';
  return withActivation ? `${t} (${e.activation})` : t;
}

/** Orders training regimes: plain before adversarial, then by name (so plain is always the first colour). */
function bySeries(a: string, b: string): number {
  return Number(a.startsWith('adversarial')) - Number(b.startsWith('adversarial')) || a.localeCompare(b, 'en', { numeric: true });
}

/** The methods a sweep evaluated, in order of first appearance. */
export function sweepMethods(sweep: SweepResult): string[] {
  const out: string[] = [];
  for (const e of sweep.entries) for (const c of e.result.cells) if (!out.includes(c.method)) out.push(c.method);
  return out;
}

/** One row of {@link capacitySpec}'s data. */
export interface CapacityDatum {
  eps: number;
  /** Column: 'accuracy (top-1)' or 'adversarial / clean'. */
  panel: string;
  /** 'clean', 'adversarial' or 'ratio'. */
  kind: string;
  series: string;
  rho: number | null;
  value: number | null;
  low: number | null;
  high: number | null;
}

/**
 * Capacity curves for one method: per eps (rows of a vertical concatenation), clean (dashed) and
 * adversarial (solid) top-1 accuracy against rho with 95% bands, and their
 * ratio against rho with a reference line at 1; one colour per training regime
 * (plain, adversarial). rho is on a log2 axis when it spans a factor 4 or more.
 */
export function capacitySpec(sweep: SweepResult, method: string): TopLevelSpec {
  const activations = new Set(sweep.entries.map((e) => e.activation));
  const withAct = activations.size > 1;
  const eps = [...new Set(sweep.entries.flatMap((e) => e.result.cells.filter((c) => c.method === method).map((c) => c.eps)))].sort((a, b) => a - b);
  if (eps.length === 0) throw new Error(`capacitySpec: no entry of the sweep evaluated method ${method}`);
  const entries = [...sweep.entries].sort((a, b) => a.rho - b.rho);
  const series: string[] = [];
  for (const e of entries) {
    const s = trainingName(e, withAct);
    if (!series.includes(s)) series.push(s);
  }
  series.sort(bySeries);
  const ACC = 'accuracy (top-1)';
  const RATIO = 'adversarial / clean';
  const values: CapacityDatum[] = [];
  for (const e of eps) {
    for (const entry of entries) {
      const s = trainingName(entry, withAct);
      const clean = entry.result.clean.top1;
      values.push({ eps: e, panel: ACC, kind: 'clean', series: s, rho: entry.rho, value: num(clean.value), low: num(clean.low), high: num(clean.high) });
      const cell = entry.result.cells.find((c) => c.method === method && c.eps === e);
      if (!cell) continue;
      values.push({ eps: e, panel: ACC, kind: 'adversarial', series: s, rho: entry.rho, value: num(cell.top1.value), low: num(cell.top1.low), high: num(cell.top1.high) });
      values.push({ eps: e, panel: RATIO, kind: 'ratio', series: s, rho: entry.rho, value: num(cell.ratio), low: null, high: null });
    }
  }
  const rhos = [...new Set(entries.map((e) => e.rho))].sort((a, b) => a - b);
  const minRho = rhos[0] as number;
  const maxRho = rhos[rhos.length - 1] as number;
  const logScale = minRho > 0 && maxRho / minRho >= 4;
  const x = {
    field: 'rho', type: 'quantitative' as const, title: 'rho (width multiplier)',
    scale: logScale ? { type: 'log' as const, base: 2, domain: [minRho, maxRho], nice: false } : { domain: [Math.min(0, minRho), maxRho], nice: false },
    axis: { values: rhos },
  };
  const color = {
    field: 'series', type: 'nominal' as const, title: 'training', scale: { domain: series, range: series.map((_, i) => SERIES_COLORS[i % SERIES_COLORS.length] as string) },
    legend: { orient: 'bottom' as const, symbolType: 'stroke', symbolStrokeWidth: 3, symbolSize: 400, symbolOpacity: 1 },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Capacity: ${method}${sweep.preset ? ` (${sweep.preset})` : ''}`,
      subtitle: ['Left: clean (dashed) and adversarial (solid) top-1 accuracy with 95% bands. Right: adversarial / clean; above 1 the attack helps the model.'],
    },
    config: CHART_CONFIG,
    data: { values },
    spacing: 18,
    vconcat: eps.map((e) => ({
      hconcat: [
        {
          title: { text: `eps ${e}: ${ACC}`, fontSize: 13 },
          width: 300,
          height: 180,
          transform: [{ filter: `datum.eps === ${e} && datum.panel === '${ACC}'` }],
          layer: [
            {
              mark: { type: 'area', opacity: 0.13 },
              encoding: { x, y: { field: 'low', type: 'quantitative', title: 'top-1 accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } }, y2: { field: 'high' }, color, detail: { field: 'kind' } },
            },
            {
              mark: { type: 'line', strokeWidth: 2.2, point: { filled: true, size: 40 } },
              encoding: {
                x, y: { field: 'value', type: 'quantitative' }, color,
                strokeDash: {
                  field: 'kind', type: 'nominal', title: 'curve', scale: { domain: ['clean', 'adversarial'], range: [[6, 4], [1, 0]] },
                  legend: { orient: 'bottom', symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400, symbolStrokeColor: '#333', symbolFillColor: '#333' },
                },
              },
            },
          ],
        },
        {
          title: { text: `eps ${e}: ${RATIO}`, fontSize: 13 },
          width: 300,
          height: 180,
          layer: [
            { data: { values: [{ reference: 1 }] }, mark: { type: 'rule', color: '#888', strokeDash: [2, 3] }, encoding: { y: { field: 'reference', type: 'quantitative' } } },
            {
              transform: [{ filter: `datum.eps === ${e} && datum.kind === 'ratio'` }],
              mark: { type: 'line', strokeWidth: 2.2, point: { filled: true, size: 40 } },
              encoding: { x, y: { field: 'value', type: 'quantitative', title: RATIO, scale: { zero: true } }, color },
            },
          ],
        },
      ],
    })),
  } as TopLevelSpec;
}

/** One row of {@link activationSpec}'s data. */
export interface ActivationDatum {
  /** Facet: 'clean' or 'METHOD, eps E'. */
  measure: string;
  activation: string;
  series: string;
  value: number | null;
  low: number | null;
  high: number | null;
}

/**
 * The activation study as grouped bars: one panel for clean top-1 and one per
 * method and eps (adversarial top-1), activations on the x axis, one bar per
 * training regime with its 95% interval as an error bar.
 */
export function activationSpec(sweep: SweepResult): TopLevelSpec {
  const activations = [...new Set(sweep.entries.map((e) => e.activation))];
  const rhoSet = new Set(sweep.entries.map((e) => e.rho));
  const nameOf = (e: SweepEntry): string => trainingName(e, false) + (rhoSet.size > 1 ? `, rho ${e.rho}` : '');
  const used = [...new Set(sweep.entries.map(nameOf))].sort(bySeries);
  const measures = ['clean'];
  const values: ActivationDatum[] = [];
  for (const e of sweep.entries) {
    const s = nameOf(e);
    const c = e.result.clean.top1;
    values.push({ measure: 'clean', activation: e.activation, series: s, value: num(c.value), low: num(c.low), high: num(c.high) });
    for (const cell of e.result.cells) {
      const m = `${cell.method}, eps ${cell.eps}`;
      if (!measures.includes(m)) measures.push(m);
      values.push({ measure: m, activation: e.activation, series: s, value: num(cell.top1.value), low: num(cell.top1.low), high: num(cell.top1.high) });
    }
  }
  const x = { field: 'activation', type: 'nominal' as const, sort: activations, title: null, axis: { labelAngle: 0 } };
  const color = { field: 'series', type: 'nominal' as const, title: 'training', scale: { domain: used, range: used.map((_, i) => SERIES_COLORS[i % SERIES_COLORS.length] as string) }, legend: { orient: 'bottom' as const } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Activation study${sweep.preset ? `: ${sweep.preset}` : ''}`, subtitle: ['Top-1 accuracy, clean and under each attack, per activation function; error bars: 95% confidence intervals.'] },
    config: CHART_CONFIG,
    data: { values },
    facet: { field: 'measure', type: 'nominal', title: null, sort: measures, header: { labelFontWeight: 'bold' } },
    columns: Math.min(4, measures.length),
    spec: {
      width: Math.max(160, 50 * activations.length * Math.max(1, used.length)),
      height: 180,
      layer: [
        { mark: { type: 'bar' }, encoding: { x, xOffset: { field: 'series', sort: used }, y: { field: 'value', type: 'quantitative', title: 'top-1 accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } }, color } },
        { mark: { type: 'rule', color: '#222', strokeWidth: 1.5 }, encoding: { x, xOffset: { field: 'series', sort: used }, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } } },
      ],
    },
  } as TopLevelSpec;
}

/** One row of {@link exampleGridSpec}'s data. */
export interface ExampleDatum {
  /** 'clean', 'perturbation xK' or 'adversarial': the facet row. */
  row: string;
  /** '#INDEX': the facet column. */
  column: string;
  order: number;
  url: string;
  caption: string;
  /** The prediction shown differs from the true label. */
  wrong: boolean;
}

/** Options of {@link exampleGridSpec}. */
export interface ExampleGridSpecOptions {
  /** Displayed image size in pixels (default 84: MNIST's 28 x 3); images are upscaled by whole factors. */
  size?: number;
}

/**
 * A grid of examples for one method and eps: one column per image; rows clean
 * (caption: true label and prediction), perturbation (magnified around
 * mid-gray; caption: its L-inf norm) and adversarial (caption: prediction, red
 * when it is wrong).
 */
export function exampleGridSpec(grid: ExampleGrid, opts: ExampleGridSpecOptions = {}): TopLevelSpec {
  const first = grid.examples[0];
  if (!first) throw new Error(`exampleGridSpec: the grid of ${grid.method} at eps ${grid.eps} has no examples`);
  const factor = Math.max(1, Math.round((opts.size ?? 84) / first.clean.width));
  const size = first.clean.width * factor;
  const height = first.clean.height * factor;
  const name = (k: number): string => grid.classNames?.[k] ?? String(k);
  const rows = ['clean', `perturbation x${grid.magnification}`, 'adversarial'];
  const values: ExampleDatum[] = [];
  grid.examples.forEach((e, order) => {
    const column = `#${e.index}`;
    values.push({ row: rows[0] as string, column, order, url: pngDataUri(upscale(e.clean, factor)), caption: `${name(e.label)} / ${name(e.cleanPrediction)}`, wrong: e.cleanPrediction !== e.label });
    values.push({ row: rows[1] as string, column, order, url: pngDataUri(upscale(e.perturbation, factor)), caption: `L-inf ${e.linf.toFixed(1)}`, wrong: false });
    values.push({ row: rows[2] as string, column, order, url: pngDataUri(upscale(e.adversarial, factor)), caption: `pred ${name(e.adversarialPrediction)}`, wrong: e.adversarialPrediction !== e.label });
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Examples: ${grid.method}, eps ${grid.eps} (label: ${grid.labelSource})`,
      subtitle: [`Clean captions: true label / prediction. Perturbation: adversarial minus clean, x${grid.magnification}, mid-gray = 0.`, 'Red captions: the prediction is wrong.'],
    },
    config: { ...CHART_CONFIG, view: { stroke: null } },
    data: { values },
    spacing: { row: 4, column: 8 },
    facet: {
      row: { field: 'row', type: 'nominal', title: null, sort: rows, header: { labelAngle: 0, labelAlign: 'left', labelFontWeight: 'bold', labelFontSize: 12 } },
      column: { field: 'column', type: 'nominal', title: null, sort: { field: 'order', op: 'min' }, header: { labelFontSize: 11, labelColor: '#555' } },
    },
    spec: {
      width: size,
      height: height + 18,
      layer: [
        { mark: { type: 'image', width: size, height, aspect: false, smooth: false, aria: false }, encoding: { url: { field: 'url', type: 'nominal' }, x: { value: size / 2 }, y: { value: height / 2 } } },
        {
          mark: { type: 'text', baseline: 'bottom', fontSize: 11, limit: size + 6 },
          encoding: {
            text: { field: 'caption' }, x: { value: size / 2 }, y: { value: height + 16 },
            color: { condition: { test: 'datum.wrong', value: LEAK_COLOR }, value: '#222' },
          },
        },
      ],
    },
  } as TopLevelSpec;
}
