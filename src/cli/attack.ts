/**
 * `advml attack`: adversarial images for a model and a set of images, for a
 * list of methods and eps values, written as PNG files plus a JSON summary.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type ConcretePrecision, type Tensor, noGrad, scope, withPrecision } from '../engine/index.js';
import * as A from '../attacks/index.js';
import { forEachBatch } from '../data/index.js';
import { tensorToPng, writeFileAtomicSync, makeDirectorySync } from '../io/index.js';
import type { Classifier } from '../models/index.js';
import { type Command, STEPS_HELP, UsageError, nonNegativeInt, parseOptions, positiveInt, stepsOption } from './command.js';
import { CONTRACT_HELP, CONTRACT_OPTIONS, loadModel, openData, parseEpsList, parseLabelSource, parseMethods, parseNorm, parsePrecision } from './common.js';

interface Result {
  method: string;
  eps: number;
  labelSource: string;
  accuracy: number;
  perImage: { index: number; label: number; clean: number; adversarial: number; linf: number; l2: number; file: string; cleanFile: string }[];
}

export const attack: Command = {
  name: 'attack',
  help: `Usage: advml attack --model MODEL --data DATA --out DIR [options]

Makes adversarial images with each method and eps, and writes them as PNG
files (DIR/METHOD/eps-E/INDEX.png, the clean images in DIR/clean/) with
DIR/summary.json: the clean and adversarial prediction of every image, its
label, the perturbation's L-inf and L2 norms in pixel units, and the accuracy
for each method and eps.

Options:
${CONTRACT_HELP}
  --data DATA       mnist or fashion-mnist, with :test (default) or :train, or
                    folder:PATH (JPEG/PNG images, one sub-folder per class,
                    resized and cropped to the model's input size)
  --limit N         number of images, from the start of the split (default 16)
  --method LIST     comma-separated methods (default fgsm); one of:
                    ${A.METHOD_NAMES.join(', ')}
  --eps LIST        comma-separated eps in pixel units (default 2,4,8,16): 0-255
                    in L-inf; the L2 or L1 size with --norm
  --norm N          linf (default), l2 or l1, for the methods that take a norm
  --label SOURCE    label source for gradient methods: true, predicted, leastLikely,
                    random (default: each method's own)
  --seed N          seed for random methods and targets (default 0)
  ${STEPS_HELP}
  --precision P     precision of the attacks and of the clean and adversarial
                    predictions: auto (default: bf16-autocast where the CPU
                    has bfloat16 instructions, else fp32), fp32, or
                    bf16-autocast (bfloat16 convolutions, float32 loss); see
                    docs/precision.md
  --batch N         images per batch (default 128)
  --no-images       write only the summary
  --out DIR         output directory (created)
  -h, --help        show this help`,
  async run(argv) {
    const { values: o } = parseOptions('attack', argv, {
      model: { type: 'string' },
      data: { type: 'string', default: 'mnist:test' },
      limit: { type: 'string' },
      method: { type: 'string', default: 'fgsm' },
      eps: { type: 'string', default: '2,4,8,16' },
      norm: { type: 'string' },
      label: { type: 'string' },
      seed: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      'no-images': { type: 'boolean' },
      out: { type: 'string' },
      precision: { type: 'string', default: 'auto' },
      ...CONTRACT_OPTIONS,
    });
    const precision = parsePrecision(o.precision, 'attack');
    if (!o.model) throw new UsageError("advml attack: --model is required (a checkpoint or model file); see 'advml attack --help'");
    if (!o.out) throw new UsageError("advml attack: --out is required (a directory for the images and summary.json)");
    const methods = parseMethods(o.method, 'attack');
    const label = parseLabelSource(o.label, 'attack');
    const norm = o.norm === undefined ? undefined : parseNorm(o.norm, 'attack');
    const epsList = parseEpsList(o.eps, 'attack', norm);
    for (const m of methods) if (norm !== undefined && A.attackSpec(m).options.includes('norm') && !A.attackSpec(m).norms.includes(norm)) throw new UsageError(`advml attack: ${m} works in ${A.attackSpec(m).norms.join(', ')}, not ${norm}`);
    const limit = positiveInt('attack', 'limit', o.limit, 16);
    const batch = positiveInt('attack', 'batch', o.batch, 128);
    const seed = nonNegativeInt('attack', 'seed', o.seed, 0);
    const steps = stepsOption('attack', o.steps);
    const model = await loadModel(o.model, 'attack', o);
    const data = await openData(o.data, 'attack', { limit, imageSize: [model.inputShape[1], model.inputShape[2]] }).catch((e: unknown) => {
      model.dispose();
      throw e;
    });
    const results = new Map<string, Result>();
    const key = (m: string, e: number): string => `${m}@${e}`;
    try {
      for (const m of methods) {
        for (const e of epsList) {
          results.set(key(m, e), { method: m, eps: e, labelSource: A.labelSourceOf(m, label), accuracy: 0, perImage: [] });
        }
      }
      const n = Math.min(limit, data.dataset.length);
      let cleanCorrect = 0;
      let seen = 0;
      // Unreadable files are reported and left out; a batch of them only is skipped.
      await forEachBatch(data.dataset, Array.from({ length: n }, (_, i) => i), batch, (b) => scope(() => {
        const x = model.fromData(b.images, data.dataset.range, data.label);
        const y = b.labels;
        const clean = predict(model, x, precision);
        cleanCorrect += clean.eq(y).sum().item();
        seen += y.shape[0] as number;
        const advs = A.attackGrid(model, x, y, methods, epsList, { label, seed, precision, steps, norm });
        for (const m of methods) {
          epsList.forEach((e, i) => record(results.get(key(m, e)) as Result, { model, x, y, indices: b.indices, cleanPredictions: clean, precision }, (advs.get(m) as Tensor[])[i] as Tensor, { out: o.out as string, images: !o['no-images'] }));
        }
      }), { onWarning: (w) => console.error(`warning: ${w.message}`) });
      if (seen === 0) throw new Error(`no readable image among the first ${n} of ${data.label}`);
      for (const r of results.values()) r.accuracy = r.perImage.filter((p) => p.adversarial === p.label).length / r.perImage.length;
      const summary = {
        model: o.model,
        data: data.label,
        images: seen,
        cleanAccuracy: cleanCorrect / seen,
        results: [...results.values()],
      };
      makeDirectorySync(o.out);
      writeFileAtomicSync(join(o.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
      console.log(`${seen} images of ${data.label}, clean accuracy ${(summary.cleanAccuracy * 100).toFixed(1)}%`);
      for (const r of results.values()) {
        console.log(`  ${r.method.padEnd(15)} eps ${String(r.eps).padStart(5)}  label ${r.labelSource.padEnd(11)}  accuracy ${(r.accuracy * 100).toFixed(1)}%`);
      }
      console.log(`wrote ${join(o.out, 'summary.json')}`);
    } finally {
      data.dispose();
      model.dispose();
    }
    return 0;
  },
};

/** Predicted classes, at the precision the images were attacked at (clean and adversarial alike). */
function predict(model: Classifier, x: Tensor, precision: ConcretePrecision): Tensor {
  return noGrad(() => scope(() => withPrecision(precision, () => model.logits(x), x.device).argmax(1)));
}

/** One batch as the model saw it: the images x, their labels y, their dataset indices and the clean predictions. */
interface BatchSeen {
  model: Classifier;
  x: Tensor;
  y: Tensor;
  indices: number[];
  cleanPredictions: Tensor;
  precision: ConcretePrecision;
}

/** Adds each image of `adv` to the result of its method and eps; with `images`, writes it (and its clean image) under `out`. */
function record(r: Result, batch: BatchSeen, adv: Tensor, write: { out: string; images: boolean }): void {
  const { model, x, y, indices, cleanPredictions: clean, precision } = batch;
  const { out, images } = write;
  const pred = predict(model, adv, precision);
  const scale = 1 / model.pixelScale;
  const delta = adv.sub(x).flatten(1).mul(scale);
  const linf = Array.from(delta.abs().max(1).dataSync() as Float32Array);
  const l2 = Array.from(delta.norm(2, 1).dataSync() as Float32Array);
  const labels = y.toArray() as number[];
  const cleanPred = clean.toArray() as number[];
  const advPred = pred.toArray() as number[];
  const dir = join(out, r.method, `eps-${r.eps}`);
  if (images) {
    makeDirectorySync(dir);
    makeDirectorySync(join(out, 'clean'));
  }
  for (let i = 0; i < labels.length; i++) {
    const index = indices[i] as number;
    const file = join(r.method, `eps-${r.eps}`, `${index}.png`);
    const cleanFile = join('clean', `${index}.png`);
    if (images) {
      writeFileAtomicSync(join(out, file), tensorToPng(adv.select(0, i), model.inputRange));
      // Each clean image once, so the folder is self-contained for advml report.
      if (!existsSync(join(out, cleanFile))) writeFileAtomicSync(join(out, cleanFile), tensorToPng(x.select(0, i), model.inputRange));
    }
    r.perImage.push({ index, label: labels[i] as number, clean: cleanPred[i] as number, adversarial: advPred[i] as number, linf: linf[i] as number, l2: l2[i] as number, file: images ? file : '', cleanFile: images ? cleanFile : '' });
  }
}
