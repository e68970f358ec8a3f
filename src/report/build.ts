/**
 * `buildReport`: from evaluation grids, transfer matrices, capacity or
 * activation sweeps and attack output folders to DIR/index.html (one
 * self-contained page: inline SVG charts, tables, explanations) and one PNG per
 * chart beside it (DIR/NAME.png, with its Vega-Lite spec as DIR/NAME.vl.json).
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Cell } from '../evaluation/evaluate.js';
import type { Interval } from '../evaluation/stats.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { type AttackInput, type ExampleGrid, loadExampleGrids, readAttackInput } from './attack-input.js';
import { CLEAN_SERIES, accuracySpec, activationSpec, capacitySpec, exampleGridSpec, sweepMethods, transferModels, transferSpec } from './charts.js';
import { type HtmlSection, escapeHtml, htmlFigure, htmlPage, htmlTable, inlineSvg } from './html.js';
import { type EvalInput, type SweepInput, type TransferInput, readEvalInput, readSweepInput, readTransferInput } from './inputs.js';
import { renderChart } from './render.js';
import { makeDirectorySync } from '../io/index.js';

/** Everything a report can show; every list may be empty, but not all of them. */
export interface ReportInputs {
  evals?: EvalInput[];
  transfers?: TransferInput[];
  sweeps?: SweepInput[];
  attacks?: AttackInput[];
}

/** File and folder names of report inputs, as the CLI takes them. */
export interface ReportInputPaths {
  /** `advml eval --json` files. */
  evals?: string[];
  /** Transfer JSON files (`{ cells: TransferCell[] }`). */
  transfers?: string[];
  /** Sweep JSON files (`SweepResult`). */
  sweeps?: string[];
  /** `advml attack --out` folders. */
  attacks?: string[];
}

/** Reads and checks every input; the first bad one throws a `ReportInputError` naming it. */
export function readReportInputs(paths: ReportInputPaths): ReportInputs {
  return {
    evals: (paths.evals ?? []).map(readEvalInput),
    transfers: (paths.transfers ?? []).map(readTransferInput),
    sweeps: (paths.sweeps ?? []).map(readSweepInput),
    attacks: (paths.attacks ?? []).map(readAttackInput),
  };
}

/** Options of {@link buildReport}. */
export interface ReportOptions {
  /** Page title (default 'advml report'). */
  title?: string;
  /** Examples per method and eps in the image grids (default 8). */
  examples?: number;
  /** Dataset for the clean images of attack folders, overriding each summary's `data` (e.g. 'mnist:test'). */
  data?: string;
  /** PNG pixels per chart pixel (default 2). */
  pngScale?: number;
  /** Write each chart's Vega-Lite spec as NAME.vl.json beside its PNG (default true). */
  writeSpecs?: boolean;
  /** The time printed on the page (default now). */
  generated?: Date;
  /** Called with the file name of each chart as it is written. */
  onChart?: (file: string) => void;
  /** Receives chart warnings of Vega-Lite and Vega (see `renderSvg`). */
  onWarning?: (message: string) => void;
}

/** One chart of a built report. */
export interface ReportFigure {
  /** Anchor on the page, also the file stem. */
  id: string;
  section: 'accuracy' | 'transfer' | 'capacity' | 'activation' | 'examples';
  title: string;
  /** PNG file name inside the report folder. */
  png: string;
  spec: TopLevelSpec;
}

/** What {@link buildReport} wrote. */
export interface ReportOutput {
  dir: string;
  /** Path of index.html. */
  html: string;
  figures: ReportFigure[];
}

const pct = (v: number, digits = 1): string => (Number.isFinite(v) ? `${(v * 100).toFixed(digits)}%` : 'n/a');
const points = (v: number): string => (v * 100).toFixed(1);
/** A value with its interval underneath, in percent. */
const ci = (i: Interval): string => (Number.isFinite(i.value) ? `${pct(i.value)}<br><span class="ci">${points(i.low)}&ndash;${points(i.high)}</span>` : 'n/a');
/** A signed difference in percentage points with its interval. */
const signed = (i: Interval): string =>
  Number.isFinite(i.value) ? `${i.value >= 0 ? '+' : '&minus;'}${points(Math.abs(i.value))}<br><span class="ci">${points(i.low)} to ${points(i.high)}</span>` : 'n/a';

/** A file-name-safe stem. */
function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '') || 'chart';
}

const EXPLAIN = {
  accuracy: `<p>Each chart plots top-1 and top-5 accuracy on adversarial images against <b>eps</b>, the largest change to any pixel, in pixel units (0&ndash;255). The dashed black line is the accuracy on the clean images; each coloured line is one attack method, named in the legend with the <b>label source</b> it used (<code>true</code>: the correct label, <code>predicted</code>: the model's own prediction, <code>leastLikely</code>: the least likely class, <code>none</code>: no label, as in random noise). Shaded bands are 95% confidence intervals (normal approximation over the test images): where two bands overlap, the difference is within chance.</p>
<div class="note"><p><b>Ratio</b> (in the tables) is adversarial accuracy divided by clean accuracy. 1 means the attack changed nothing; lower means a stronger attack. <b>A ratio above 1</b> means the model is <em>more</em> accurate on the adversarial images than on the clean ones.</p></div>
<div class="note leak"><p><b>Label leaking</b>: a one-step attack that builds its perturbation from the true label can leave a pattern that reveals that label, and a model trained adversarially on such examples learns to read it, so its accuracy rises under attack. Cells whose adversarial accuracy is above clean beyond the paired 95% interval are flagged: circled in red on the charts and highlighted in the tables. Use a label source that does not know the answer (<code>predicted</code>, <code>leastLikely</code>) to measure such a model.</p></div>`,
  transfer: `<p>Adversarial images made on a <b>source</b> model (rows, the one attacked) from randomly sampled clean test images, classified by a <b>target</b> model (columns).</p>
<div class="note"><p><b>Transfer rate</b>: of the adversarial images that fool the source model, the share that fool the target too. It measures how well an attack made on one model carries over to another (a black-box attack). <b>Error rate</b>: of all adversarial images, the share the target gets wrong, including images it would get wrong anyway. On the diagonal the source is the target, so the transfer rate is 100% by definition. Cells read <i>rate</i> and <i>counts</i> (numerator/denominator); grey cells have no images to measure.</p></div>`,
  capacity: `<p>The capacity study trains the same architecture at several widths: <b>rho</b> multiplies the number of filters of every convolution. Each chart shows, for one attack method and each eps, the clean and adversarial top-1 accuracy against rho (left, with 95% bands) and their ratio (right), for models trained plainly and with adversarial training. A ratio closer to 1 means a more robust model; above 1 the model does better under attack than without it (see label leaking above).</p>`,
  activation: `<p>The activation study trains the same model with different activation functions, plainly and adversarially, and compares top-1 accuracy on clean images and under each attack. Bars are grouped by activation; error bars are 95% confidence intervals.</p>`,
  examples: `<p>Images from an <code>advml attack</code> run, the first ones of the set. Each column is one image: the clean image (caption: true label / prediction), the perturbation (adversarial minus clean, magnified by the factor in the row name, mid-grey meaning no change) and the adversarial image (caption: the prediction on it). Red captions mark wrong predictions.</p>`,
};

function evalTable(input: EvalInput): string {
  const r = input.result;
  const rows: string[][] = [
    ['<b>clean</b>', '&ndash;', '&ndash;', ci(r.clean.top1), ci(r.clean.top5), '1.00', '&ndash;', ''],
  ];
  const classes: (string | undefined)[] = ['clean'];
  const order = [...new Set(r.cells.map((c) => c.method))];
  const byMethod = [...r.cells].sort((a, b) => order.indexOf(a.method) - order.indexOf(b.method) || a.eps - b.eps);
  for (const c of byMethod) {
    const notes = [c.labelLeaking ? '<span class="badge leak">label leaking</span>' : '', c.tiedWithStrongest ? '<span class="badge tied">strongest (tied)</span>' : ''].join('');
    rows.push([escapeHtml(c.method), escapeHtml(c.labelSource), String(c.eps), ci(c.top1), ci(c.top5), Number.isFinite(c.ratio) ? c.ratio.toFixed(2) : 'n/a', signed(c.difference), notes]);
    classes.push(c.labelLeaking ? 'leak' : undefined);
  }
  return htmlTable({
    headers: ['method', 'label source', 'eps', 'top-1<br><span class="ci">95% CI</span>', 'top-5<br><span class="ci">95% CI</span>', 'ratio', 'adv &minus; clean<br><span class="ci">points, 95% CI</span>', 'notes'],
    rows,
    rowClasses: classes,
    numeric: [2, 3, 4, 5, 6],
  });
}

/** The suite's robust accuracy per eps and what each attack broke. */
function suiteTable(input: EvalInput): string {
  const suite = input.result.suite;
  if (!suite) return '';
  return `<h4>Suite ${escapeHtml(suite.name)} (${escapeHtml(suite.norm)})</h4>${htmlTable({
    headers: ['eps', 'robust accuracy<br><span class="ci">95% CI</span>', ...suite.attacks.map((a) => `${escapeHtml(a)}<br><span class="ci">broken / attacked, seconds</span>`)],
    rows: suite.rows.map((r) => [String(r.eps), ci(r.robustAccuracy), ...r.attacks.map((a) => `${a.broken} / ${a.attacked}, ${a.seconds.toFixed(1)} s`)]),
    numeric: [0, 1],
  })}`;
}

/** Median and quantiles of the minimal perturbation sizes. */
function minimalTable(input: EvalInput): string {
  const list = input.result.minimal;
  if (!list.length) return '';
  const size = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'not found');
  const qs = [...new Set(list.flatMap((m) => m.quantiles.map((q) => q.q)))];
  return `<h4>Minimal perturbation sizes (pixel units)</h4>${htmlTable({
    headers: ['method', 'norm', 'found / searched', ...qs.map((q) => (q === 0.5 ? 'median' : `q${Math.round(q * 100)}`))],
    rows: list.map((m) => [escapeHtml(m.method), escapeHtml(m.norm), `${m.found} / ${m.n}`, ...qs.map((q) => { const v = m.quantiles.find((x) => x.q === q); return v ? size(v.value) : '&ndash;'; })]),
    numeric: [2, ...qs.map((_, i) => 3 + i)],
  })}`;
}

/** Every check of the gradient-masking audit with its status and evidence. */
function auditTable(input: EvalInput): string {
  const a = input.result.audit;
  const badge = (status: string): string => (status === 'fired' ? '<span class="badge leak">fired</span>' : status === 'passed' ? 'passed' : 'not run');
  return `<h4>Gradient-masking audit: ${a.flagged ? 'flagged' : 'no flag fired'}</h4>${htmlTable({
    headers: ['check', 'question', 'status', 'evidence'],
    rows: a.checks.map((c) => [escapeHtml(c.id), escapeHtml(c.question), badge(c.status), escapeHtml(c.evidence)]),
    rowClasses: a.checks.map((c) => (c.status === 'fired' ? 'fired' : undefined)),
  })}`;
}

function transferTable(cells: TransferInput['cells']): string {
  return `<details><summary>All ${cells.length} transfer cells as a table</summary>${htmlTable({
    headers: ['method', 'eps', 'source', 'target', 'transfer rate<br><span class="ci">95% CI</span>', 'transferred / source fooled', 'error rate<br><span class="ci">95% CI</span>', 'target errors / images'],
    rows: cells.map((c) => [escapeHtml(c.method), String(c.eps), escapeHtml(c.source), escapeHtml(c.target), ci(c.transferRate), `${c.transferred} / ${c.sourceFooled}`, ci(c.errorRate), `${c.targetErrors} / ${c.n}`]),
    numeric: [1, 4, 5, 6, 7],
  })}</details>`;
}

function sweepTable(s: SweepInput): string {
  const sweep = s.sweep;
  const keys: { method: string; eps: number }[] = [];
  for (const e of sweep.entries) for (const c of e.result.cells) if (!keys.some((k) => k.method === c.method && k.eps === c.eps)) keys.push({ method: c.method, eps: c.eps });
  const find = (cells: Cell[], k: { method: string; eps: number }): Cell | undefined => cells.find((c) => c.method === k.method && c.eps === k.eps);
  return htmlTable({
    headers: ['rho', 'activation', 'training', 'parameters', 'train time', 'clean top-1', ...keys.map((k) => `${escapeHtml(k.method)} eps ${k.eps}<br>top-1 (ratio)`)],
    rows: [...sweep.entries]
      .sort((a, b) => a.rho - b.rho || a.activation.localeCompare(b.activation) || Number(a.adversarial) - Number(b.adversarial))
      .map((e) => [
        String(e.rho), escapeHtml(e.activation), e.adversarial ? 'adversarial' : 'plain',
        Number.isFinite(e.parameters) ? e.parameters.toLocaleString('en-US') : 'n/a',
        Number.isFinite(e.trainSeconds) ? `${(e.trainSeconds / 60).toFixed(1)} min` : 'n/a',
        pct(e.result.clean.top1.value),
        ...keys.map((k) => {
          const c = find(e.result.cells, k);
          if (!c) return '&ndash;';
          const text = `${pct(c.top1.value)} (${Number.isFinite(c.ratio) ? c.ratio.toFixed(2) : 'n/a'})`;
          return c.labelLeaking ? `<span class="badge leak">leak</span>${text}` : text;
        }),
      ]),
    numeric: [0, 3, 4, 5, ...keys.map((_, i) => 6 + i)],
    caption: `Study: ${escapeHtml(sweep.study)}${sweep.preset ? `, preset ${escapeHtml(sweep.preset)}` : ''}. From ${escapeHtml(s.source)}.`,
  });
}

function attackTable(a: AttackInput): string {
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((p, q) => p + q, 0) / xs.length : NaN);
  return htmlTable({
    headers: ['method', 'label source', 'eps', 'accuracy', 'mean L-inf', 'mean L2', 'flipped (clean right, adversarial wrong)'],
    rows: a.results.map((r) => [
      escapeHtml(r.method), escapeHtml(r.labelSource), String(r.eps), pct(r.accuracy),
      mean(r.perImage.map((p) => p.linf)).toFixed(2), mean(r.perImage.map((p) => p.l2)).toFixed(1),
      `${r.perImage.filter((p) => p.clean === p.label && p.adversarial !== p.label).length} / ${r.perImage.length}`,
    ]),
    numeric: [2, 3, 4, 5, 6],
    caption: `${a.images} images${a.data ? ` of ${escapeHtml(a.data)}` : ''}, clean accuracy ${pct(a.cleanAccuracy)}${a.model ? `, model ${escapeHtml(a.model)}` : ''}. Norms in pixel units.`,
  });
}

/**
 * Renders every chart, writes DIR/NAME.png (and NAME.vl.json) for each and
 * DIR/index.html, and returns what it wrote. Throws when `inputs` holds
 * nothing, or (naming the file, before writing anything) when an attack
 * folder's images cannot be read.
 */
export async function buildReport(inputs: ReportInputs, outDir: string, opts: ReportOptions = {}): Promise<ReportOutput> {
  const evals = inputs.evals ?? [];
  const transfers = inputs.transfers ?? [];
  const sweeps = inputs.sweeps ?? [];
  const attacks = inputs.attacks ?? [];
  if (evals.length + transfers.length + sweeps.length + attacks.length === 0) {
    throw new Error('buildReport: nothing to report: give at least one evaluation, transfer, sweep or attack input');
  }
  // Every image of the attack folders is read before anything is written: a bad input leaves no half report.
  const attackGrids: ExampleGrid[][] = [];
  for (const a of attacks) attackGrids.push(await loadExampleGrids(a, { count: opts.examples, data: opts.data }));
  makeDirectorySync(outDir);
  const figures: ReportFigure[] = [];
  // Section anchors are taken: a chart must not share an id with one.
  const used = new Set<string>(['accuracy', 'transfer', 'capacity', 'activation', 'examples']);
  const uniqueId = (stem: string): string => {
    let id = slug(stem);
    for (let k = 2; used.has(id); k++) id = `${slug(stem)}-${k}`;
    used.add(id);
    return id;
  };
  const figure = async (section: ReportFigure['section'], stem: string, title: string, spec: TopLevelSpec, caption: string): Promise<string> => {
    const id = uniqueId(stem);
    const { svg, png } = await renderChart(spec, { scale: opts.pngScale, onWarning: opts.onWarning });
    const file = `${id}.png`;
    writeFileAtomicSync(join(outDir, file), png);
    if (opts.writeSpecs ?? true) writeFileAtomicSync(join(outDir, `${id}.vl.json`), JSON.stringify(spec, null, 1) + '\n');
    opts.onChart?.(file);
    figures.push({ id, section, title, png: file, spec });
    return htmlFigure({ id, title, svg: inlineSvg(svg, id, title), png: file, caption });
  };

  const sections: HtmlSection[] = [];
  if (evals.length) {
    const blocks: string[] = [];
    for (const e of evals) {
      blocks.push(`<h3>${escapeHtml(e.name)}</h3>`);
      blocks.push(`<p class="meta">${e.result.images} images${e.data ? ` of <code>${escapeHtml(e.data)}</code>` : ''}${e.model ? `, model <code>${escapeHtml(e.model)}</code>` : ''}; from <code>${escapeHtml(e.source)}</code>.</p>`);
      const leaks = e.result.cells.filter((c) => c.labelLeaking);
      const caption = `Accuracy against eps for ${escapeHtml(e.name)}. Dashed: ${CLEAN_SERIES}.${leaks.length ? ` <b>Label leaking</b> in ${leaks.length} cell${leaks.length > 1 ? 's' : ''}: ${leaks.map((c) => `${escapeHtml(c.method)} at eps ${c.eps}`).join(', ')}.` : ' No cell shows label leaking.'}`;
      blocks.push(await figure('accuracy', `accuracy-${e.name}`, `Accuracy under attack: ${e.name}`, accuracySpec(e), caption));
      blocks.push(evalTable(e), suiteTable(e), minimalTable(e), auditTable(e));
    }
    sections.push({ id: 'accuracy', title: 'Accuracy under attack', intro: EXPLAIN.accuracy, blocks });
  }
  if (transfers.length) {
    const blocks: string[] = [];
    for (const [k, t] of transfers.entries()) {
      const models = transferModels(t.cells);
      const modelText = (m: string): string => `<code>${escapeHtml(m)}</code>${t.models?.[m] ? ` (${escapeHtml(t.models[m] as string)})` : ''}`;
      blocks.push(`<p class="meta">From <code>${escapeHtml(t.source)}</code>: models ${models.map(modelText).join(', ')}${t.samples !== undefined ? `; ${t.samples} sampled images` : ''}${t.data ? ` of <code>${escapeHtml(t.data)}</code>` : ''}.</p>`);
      const combos: { method: string; eps: number }[] = [];
      for (const c of t.cells) if (!combos.some((x) => x.method === c.method && x.eps === c.eps)) combos.push({ method: c.method, eps: c.eps });
      combos.sort((a, b) => (a.method === b.method ? a.eps - b.eps : 0));
      for (const { method, eps } of combos) {
        const stem = `transfer-${transfers.length > 1 ? `${k + 1}-` : ''}${method}-eps${eps}`;
        blocks.push(await figure('transfer', stem, `Transfer: ${method}, eps ${eps}`, transferSpec(t.cells, method, eps), `Transfer and error rates of ${escapeHtml(method)} at eps ${eps}, source models in rows, target models in columns.`));
      }
      blocks.push(transferTable(t.cells));
    }
    sections.push({ id: 'transfer', title: 'Transfer between models', intro: EXPLAIN.transfer, blocks });
  }
  const capacity = sweeps.filter((s) => s.sweep.study === 'capacity');
  const activation = sweeps.filter((s) => s.sweep.study === 'activation');
  if (capacity.length) {
    const blocks: string[] = [];
    for (const [k, s] of capacity.entries()) {
      for (const method of sweepMethods(s.sweep)) {
        const stem = `capacity-${capacity.length > 1 ? `${k + 1}-` : ''}${method}`;
        blocks.push(await figure('capacity', stem, `Capacity: ${method}`, capacitySpec(s.sweep, method), `Clean and adversarial accuracy and their ratio against rho for ${escapeHtml(method)}, with and without adversarial training.`));
      }
      blocks.push(sweepTable(s));
    }
    sections.push({ id: 'capacity', title: 'Capacity (rho)', intro: EXPLAIN.capacity, blocks });
  }
  if (activation.length) {
    const blocks: string[] = [];
    for (const [k, s] of activation.entries()) {
      blocks.push(await figure('activation', `activation-study${activation.length > 1 ? `-${k + 1}` : ''}`, 'Activation study', activationSpec(s.sweep), 'Top-1 accuracy per activation function, clean and under each attack, plain and adversarial training.'));
      blocks.push(sweepTable(s));
    }
    sections.push({ id: 'activation', title: 'Activation functions', intro: EXPLAIN.activation, blocks });
  }
  if (attacks.length) {
    const blocks: string[] = [];
    for (const [k, a] of attacks.entries()) {
      blocks.push(`<p class="meta">From <code>${escapeHtml(a.dir)}</code>.</p>`);
      blocks.push(attackTable(a));
      const grids = attackGrids[k] as ExampleGrid[];
      for (const g of grids) {
        const stem = `examples-${attacks.length > 1 ? `${k + 1}-` : ''}${g.method}-eps${g.eps}`;
        blocks.push(await figure('examples', stem, `Examples: ${g.method}, eps ${g.eps}`, exampleGridSpec(g), `${escapeHtml(g.method)} at eps ${g.eps} (label source ${escapeHtml(g.labelSource)}); perturbation magnified ${g.magnification} times.`));
      }
      if (!grids.length) blocks.push('<p>The attack run wrote no images (<code>--no-images</code>), so there are no example grids.</p>');
    }
    sections.push({ id: 'examples', title: 'Adversarial examples', intro: EXPLAIN.examples, blocks });
  }

  const title = opts.title ?? 'advml report';
  const inputsList = [
    ...evals.map((e) => e.source), ...transfers.map((t) => t.source), ...sweeps.map((s) => s.source), ...attacks.map((a) => a.dir),
  ].map((p) => `<code>${escapeHtml(p)}</code>`);
  const html = htmlPage({
    title,
    meta: [`Generated ${escapeHtml((opts.generated ?? new Date()).toISOString().replace('T', ' ').slice(0, 16))} UTC by <code>advml report</code> from ${inputsList.join(', ')}.`, `${figures.length} chart${figures.length === 1 ? '' : 's'}; each is also saved as a PNG beside this page.`],
    sections,
  });
  const htmlPath = join(outDir, 'index.html');
  writeFileAtomicSync(htmlPath, html);
  return { dir: outDir, html: htmlPath, figures };
}
