/**
 * `advml harden`: the hardening table. Per dataset it trains a plain model
 * and one model per recipe at the dataset's eps (0.3 of the range on MNIST,
 * 0.1 on Fashion-MNIST), then measures each: clean accuracy, the paper's
 * attacks, PGD-40 with restarts, the AutoAttack suite, and examples
 * transferred from an independently trained plain model; with training
 * times, the targets of the hardening issue judged, in one Markdown file.
 */
import { join } from 'node:path';
import * as A from '../attacks/index.js';
import type { Dataset } from '../data/dataset.js';
import { type EvalResult, type Interval, evaluate, proportion, transferMatrix } from '../evaluation/index.js';
import { makeDirectorySync } from '../io/index.js';
import { type Classifier, buildClassifier } from '../models/index.js';
import { HARDENING_EPS, PRESETS, type Preset, type SourceModel, runTraining } from '../training/index.js';
import { type Command, UsageError, parseOptions, positiveInt } from './command.js';
import { type ReportSection, loadDataset, writeSectionedReport } from './common.js';
import { progressBar } from './progress.js';

type DatasetName = 'mnist' | 'fashion-mnist';
const ROWS = ['plain', 'step-ll', 'ensemble', 'pgd-at', 'trades', 'fast-at'] as const;
type Row = (typeof ROWS)[number];
const PAPER_ATTACKS: A.MethodName[] = ['fgsm', 'step-ll', 'r-step-ll', 'basic-iter', 'iter-ll'];
const TRANSFER_ATTACKS: A.MethodName[] = ['fgsm', 'step-ll'];

/** The ensemble's static sources: plain models of other seeds (the transfer attacker plain-c has seed 3). */
const ENSEMBLE_SOURCES: readonly [string, number][] = [['plain-b', 2], ['plain-d', 4], ['plain-e', 5]];

/** Steps between the checkpoints a --resume goes on from. */
const CHECKPOINT_EVERY = 500;

export const harden: Command = {
  name: 'harden',
  help: `Usage: advml harden [options]

Trains a plain model and one model per recipe (step-ll: Algorithm 1;
ensemble, pgd-at, trades, fast-at: docs/training.md) on MNIST at eps 76.5
and Fashion-MNIST at eps 25.5, and writes a table per dataset: clean accuracy,
accuracy under the paper's attacks, under PGD-40 with restarts, under the
AutoAttack suite and under transfer from an independently trained plain model,
and the training time. Ensemble training draws from three other plain models.

Options:
  --datasets LIST     mnist,fashion-mnist (default both)
  --recipes LIST      ${ROWS.join(',')} (default all; plain is always trained)
  --epochs N          epochs per model (default: each preset's)
  --train-images N    training images (default all 60,000)
  --eval-images N     test images evaluated (default all 10,000)
  --restarts N        PGD-40 restarts (default 5)
  --queries N         Square's query budget in the suite (default 5000)
  --out FILE          the Markdown table (default docs/hardening.md); JSON beside it
  --checkpoints DIR   where the trained models go (default runs/harden), with
                      a checkpoint every ${CHECKPOINT_EVERY} steps
  --resume            continue from the models in --checkpoints (same options):
                      finished ones are read back, an interrupted one goes on
                      from its last checkpoint
  -h, --help          show this help`,
  async run(argv) {
    const { values: o } = parseOptions('harden', argv, {
      datasets: { type: 'string', default: 'mnist,fashion-mnist' }, recipes: { type: 'string', default: ROWS.join(',') },
      epochs: { type: 'string' }, 'train-images': { type: 'string' }, 'eval-images': { type: 'string' }, restarts: { type: 'string' },
      queries: { type: 'string' }, out: { type: 'string', default: 'docs/hardening.md' }, checkpoints: { type: 'string', default: join('runs', 'harden') },
      resume: { type: 'boolean', default: false },
    });
    const datasets = o.datasets.split(',') as DatasetName[];
    for (const d of datasets) if (!(d in HARDENING_EPS)) throw new UsageError(`advml harden: unknown dataset '${d}' (mnist, fashion-mnist)`);
    const rows = o.recipes.split(',') as Row[];
    for (const r of rows) if (!ROWS.includes(r)) throw new UsageError(`advml harden: unknown recipe '${r}' (${ROWS.join(', ')})`);
    const settings: Settings = {
      rows: ROWS.filter((r) => r === 'plain' || rows.includes(r)),
      epochs: o.epochs === undefined ? undefined : positiveInt('harden', 'epochs', o.epochs, 1),
      trainImages: positiveInt('harden', 'train-images', o['train-images'], 60000),
      evalImages: positiveInt('harden', 'eval-images', o['eval-images'], 10000),
      restarts: positiveInt('harden', 'restarts', o.restarts, 5),
      queries: positiveInt('harden', 'queries', o.queries, 5000),
      workDir: o.checkpoints,
      resume: o.resume,
    };
    makeDirectorySync(settings.workDir);
    const command = `advml harden ${argv.join(' ')}`.trim();
    const sections: ReportSection[] = [];
    for (const d of datasets) sections.push(await hardenDataset(d, settings, command));
    writeSectionedReport(o.out, HEADER, sections, { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST' });
    return 0;
  },
};

const HEADER = `# Hardening: the recipes side by side

Each dataset's section says the command that produced it, how long it took on this machine and how many test
images it evaluated. Accuracies are top-1 in %, with 95% intervals; eps in pixel units (0-255). PGD-40 runs its
restarts on the images still unbroken; AutoAttack is the standard suite; transfer is the accuracy on examples made
on an independently trained plain model (plain-c). Training time leaves out the overfitting guard's evaluations; a
model continued with \`--resume\` counts the time of every run that trained it. The recipes and their settings:
[training](training.md).
`;

interface Settings {
  rows: Row[];
  epochs?: number;
  trainImages: number;
  evalImages: number;
  restarts: number;
  queries: number;
  workDir: string;
  resume: boolean;
}

interface Trained {
  name: string;
  preset: string;
  model: Classifier;
  seconds: number;
  /** The overfitting guard's collapses (recipes with the guard on), as 'step N: robust%'. */
  collapses: string[] | null;
}

/** Test images the overfitting guard's held-out PGD reads (it only reports here: nothing is selected on them). */
const GUARD_IMAGES = 500;

interface Measured {
  clean: Interval;
  paper: Record<string, Interval>;
  pgd: Interval;
  autoattack: Interval;
  transfer: Record<string, Interval>;
}

async function hardenDataset(d: DatasetName, s: Settings, command: string): Promise<ReportSection> {
  const started = performance.now();
  const eps = HARDENING_EPS[d];
  const train = loadDataset(d, 'train', s.trainImages);
  const test = loadDataset(d, 'test', s.evalImages);
  const trained: Trained[] = [];
  try {
    const fit = async (name: string, presetName: string, seed: number, edit: (p: Preset) => void = () => {}, sources: SourceModel[] = []): Promise<Trained> => {
      const p = JSON.parse(JSON.stringify(PRESETS[presetName])) as Preset;
      p.spec.options.seed = seed;
      p.config.seed = seed;
      if (s.epochs !== undefined) p.config.epochs = s.epochs;
      p.config.checkpointEvery = CHECKPOINT_EVERY;
      edit(p);
      const model = buildClassifier(p.spec);
      const bar = progressBar(`${d} ${name}`);
      const guardImages = Array.from({ length: Math.min(GUARD_IMAGES, test.length) }, (_, i) => i);
      const heldOut = p.config.guard
        ? async (m: Classifier) => {
            const r = await evaluate(m, test, { methods: ['pgd'], eps: [eps], indices: guardImages, auditProbes: false });
            return { clean: r.clean.top1.value, adversarial: r.cells[0]!.top1.value, what: `pgd at eps ${eps} on ${guardImages.length} test images` };
          }
        : undefined;
      const result = await runTraining({
        model, train, config: p.config, checkpoint: join(s.workDir, `${d}-${name}.safetensors`), resume: s.resume, sources, heldOut,
        onEvent: (e) => {
          if (e.type === 'step') bar.update(e.step, e.totalSteps, { loss: e.loss });
        },
      });
      bar.done();
      // The guard's own evaluations are not training time; a resumed model's time includes its earlier runs'.
      const t: Trained = { name, preset: presetName, model, seconds: result.trainSeconds,
        collapses: result.collapses?.map((v) => `step ${v.step}: ${pct(v.robust)}% (best ${pct(v.best)}%)`) ?? null };
      trained.push(t);
      return t;
    };
    const plainConfig = (p: Preset): void => { p.config.adversarial.k = 0; };
    const rows = new Map<Row, Trained>();
    rows.set('plain', await fit('plain', d, 1, plainConfig));
    // Independently trained plain models: c is the transfer attacker no recipe saw; b, d and e the ensemble's
    // static sources, three as in the reference's ensembles (there of three other architectures).
    const plainC = await fit('plain-c', d, 3, plainConfig);
    const sources: SourceModel[] = [];
    if (s.rows.includes('ensemble')) {
      for (const [name, seed] of ENSEMBLE_SOURCES) sources.push({ name, model: (await fit(name, d, seed, plainConfig)).model });
    }
    for (const r of s.rows) {
      if (r === 'plain') continue;
      const preset = r === 'step-ll' ? d : `${d}-${r}`;
      rows.set(r, await fit(r, preset, 1, (p) => {
        if (r === 'ensemble') p.config.adversarial.sources = sources.map((x) => x.name);
      }, r === 'ensemble' ? sources : []));
    }
    const measured = new Map<Row, Measured>();
    for (const [r, t] of rows) measured.set(r, await measure(t, test, eps, s, plainC.model, d));
    const minutes = (performance.now() - started) / 60000;
    const produced = `Produced by \`${command}\` in ${minutes.toFixed(1)} minutes, evaluated on the first ${test.length} test images; ` +
      `PGD-40 with ${s.restarts} restarts, Square with ${s.queries} queries in the suite.`;
    return {
      key: d,
      markdown: table(d, eps, rows, measured, produced),
      json: { command, minutes, evalImages: test.length, models: Object.fromEntries([...rows].map(([r, t]) => [r, { seconds: t.seconds, preset: t.preset, collapses: t.collapses, ...measured.get(r) }])) },
    };
  } finally {
    for (const t of trained) t.model.dispose();
    train.dispose();
    test.dispose();
  }
}

async function measure(t: Trained, test: Dataset, eps: number, s: Settings, attacker: Classifier, d: string): Promise<Measured> {
  const bar = progressBar(`${d} eval ${t.name}`);
  const paper: EvalResult = await evaluate(t.model, test, { methods: PAPER_ATTACKS, eps: [eps], suite: 'autoattack', queries: s.queries, auditProbes: false, onProgress: bar.update });
  const pgd: EvalResult = await evaluate(t.model, test, { methods: [], eps: [eps], suite: [{ attack: 'pgd', options: { steps: 40, restarts: s.restarts } }], auditProbes: false, onProgress: bar.update });
  const transfer = await transferMatrix(new Map([['plain-c', attacker], [t.name, t.model]]), test, { methods: TRANSFER_ATTACKS, eps: [eps], samples: s.evalImages, onProgress: bar.update });
  bar.done();
  return {
    clean: paper.clean.top1,
    paper: Object.fromEntries(paper.cells.map((c) => [c.method, c.top1])),
    pgd: pgd.suite!.rows[0]!.robustAccuracy,
    autoattack: paper.suite!.rows[0]!.robustAccuracy,
    transfer: Object.fromEntries(transfer.filter((c) => c.source === 'plain-c' && c.target === t.name).map((c) => [c.method, proportion(c.n - c.targetErrors, c.n)])),
  };
}

const pct = (v: number): string => (v * 100).toFixed(1);
const ci = (c: Interval): string => `${pct(c.value)} ± ${pct(c.halfWidth)}`;

function table(d: DatasetName, eps: number, rows: Map<Row, Trained>, m: Map<Row, Measured>, produced: string): string {
  const lines = [`## ${d === 'mnist' ? 'MNIST' : 'Fashion-MNIST'}, eps ${eps}`, '', produced, '',
    `| model | preset | training | clean | ${PAPER_ATTACKS.join(' | ')} | PGD-40 | AutoAttack | ${TRANSFER_ATTACKS.map((a) => `transfer ${a}`).join(' | ')} |`,
    `|---|---|---|---|${[...PAPER_ATTACKS, 'p', 'a', ...TRANSFER_ATTACKS].map(() => '---').join('|')}|`];
  for (const [r, t] of rows) {
    const x = m.get(r)!;
    lines.push(`| ${r} | ${t.preset} | ${t.seconds.toFixed(0)} s | ${ci(x.clean)} | ${PAPER_ATTACKS.map((a) => ci(x.paper[a]!)).join(' | ')} | ${ci(x.pgd)} | ${ci(x.autoattack)} | ${TRANSFER_ATTACKS.map((a) => ci(x.transfer[a]!)).join(' | ')} |`);
  }
  for (const [r, t] of rows) {
    if (t.collapses === null) continue;
    lines.push('', `The overfitting guard of ${r} (PGD at eps ${eps} on up to ${GUARD_IMAGES} test images after each epoch): ${t.collapses.length ? `**fired**, at ${t.collapses.join('; ')}` : 'silent'}.`);
  }
  lines.push('', ...targets(d, rows, m), '');
  return lines.join('\n');
}

/** The hardening issue's targets, judged on what was measured (the strongest attack: the lower of PGD-40 and AutoAttack). */
function targets(d: DatasetName, rows: Map<Row, Trained>, m: Map<Row, Measured>): string[] {
  const strongest = (r: Row): number => Math.min(m.get(r)!.pgd.value, m.get(r)!.autoattack.value);
  const out: string[] = [];
  const verdict = (ok: boolean): string => (ok ? '**met**' : '**not met**');
  if (rows.has('pgd-at') && d === 'mnist') out.push(`- PGD-AT at least 88% under the strongest attack: ${pct(strongest('pgd-at'))}%, ${verdict(strongest('pgd-at') >= 0.88)}.`);
  if (rows.has('pgd-at') && rows.has('fast-at')) {
    const gap = strongest('pgd-at') - strongest('fast-at');
    const time = rows.get('fast-at')!.seconds / rows.get('pgd-at')!.seconds;
    out.push(`- Fast AT within 3 points of PGD-AT in at most a quarter of its time: ${pct(gap)} points below, ${(time * 100).toFixed(0)}% of the time, ${verdict(gap <= 0.03 && time <= 0.25)}.`);
  }
  if (rows.has('ensemble') && rows.has('step-ll')) {
    const e = m.get('ensemble')!;
    const s = m.get('step-ll')!;
    const above = (a: Interval, b: Interval): boolean => a.value > b.value;
    out.push(`- Ensemble AT above step-l.l. training under R+Step-LL (${pct(e.paper['r-step-ll']!.value)} vs ${pct(s.paper['r-step-ll']!.value)}) and under transfer ` +
      `(FGSM ${pct(e.transfer.fgsm!.value)} vs ${pct(s.transfer.fgsm!.value)}, step l.l. ${pct(e.transfer['step-ll']!.value)} vs ${pct(s.transfer['step-ll']!.value)}), in point estimates: ` +
      verdict(above(e.paper['r-step-ll']!, s.paper['r-step-ll']!) && TRANSFER_ATTACKS.every((a) => above(e.transfer[a]!, s.transfer[a]!))) + '.');
  }
  return out;
}
