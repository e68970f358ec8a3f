/**
 * The work behind `advml serve`, run inside a worker thread: loading models,
 * attacking one image on several models, accuracy-against-eps curves on test
 * images, and the quick training of the demo's two MNIST models.
 */
import { join } from 'node:path';
import * as A from '../attacks/index.js';
import { Generator, type Tensor, noGrad, scope, tensor } from '../engine/index.js';
import { TensorDataset, forEachBatch, loadFashionMnist, loadMnist } from '../data/index.js';
import { tensorToPng } from '../io/index.js';
import * as models from '../models/index.js';
import type { Classifier } from '../models/index.js';
import { PRESETS, runTraining } from '../training/index.js';
import type { AttackJob, AttackResult, AttackTarget, CurveJob, CurveResult, ModelInfo, ModelRef, Prediction, PreparedImage, TrainJob } from './protocol.js';

/** Reports progress of a long job. */
export type ProgressHandler = (done: number, total: number, what: string) => void;

/**
 * The label source an attack uses and the override to pass it: the method's
 * own unless `label` is given, except that a method whose source would be the
 * true label falls back to the model's prediction when the true label is
 * unknown (an uploaded photo). An explicit 'true' without a label is the
 * caller's error, checked before the job starts.
 */
export function effectiveLabel(method: A.MethodName, label: A.LabelSource | undefined, haveTrueLabel: boolean): { override: A.LabelSource | undefined; source: string } {
  const source = A.labelSourceOf(method, label);
  if (source === 'true' && !haveTrueLabel) return { override: 'predicted', source: 'predicted' };
  return { override: label, source };
}

/** Loaded models of one worker, by source. */
export class ModelCache {
  private readonly models = new Map<string, Classifier>();

  /** The classifier `ref` names, loaded on first use and kept. */
  async get(ref: ModelRef): Promise<Classifier> {
    const key = JSON.stringify(ref.source);
    const found = this.models.get(key);
    if (found) return found;
    const model = await loadModel(ref);
    this.models.set(key, model);
    return model;
  }

  /** Frees every model. */
  dispose(): void {
    for (const m of this.models.values()) m.dispose();
    this.models.clear();
  }
}

async function loadModel(ref: ModelRef): Promise<Classifier> {
  const s = ref.source;
  if (s.kind === 'checkpoint') return models.loadClassifier(s.path);
  const made = models.loadResNet50ImageNet();
  made.module.eval();
  return made;
}

/** Describes a loaded model for the page. */
export function describe(model: Classifier): ModelInfo {
  return {
    inputShape: [...model.inputShape],
    inputRange: [...model.inputRange],
    classes: model.classes,
    classNames: model.classNames ? [...model.classNames] : Array.from({ length: model.classes }, (_, i) => String(i)),
  };
}

/** An 8-bit [H][W][C] image as a batch [1, C, H, W] in the model's input range. */
export function imageTensor(model: Classifier, image: PreparedImage): Tensor {
  const { channels: c, height: h, width: w } = image;
  return scope(() => {
    const pixels = tensor(image.pixels, { shape: [1, h, w, c], dtype: 'uint8' }).to('float32').permute([0, 3, 1, 2]).contiguous();
    return model.fromData(pixels, [0, 255], 'the image');
  });
}

function top5(model: Classifier, x: Tensor, names: string[]): Prediction[] {
  const k = Math.min(5, model.classes);
  const { values, indices } = noGrad(() => scope(() => model.logits(x).softmax(1).topk(k, { dim: 1 })));
  try {
    const p = Array.from(values.dataSync() as Float32Array);
    const ix = (indices.toArray() as number[][])[0] as number[];
    return ix.map((index, i) => ({ index, name: names[index] ?? String(index), probability: p[i] as number }));
  } finally {
    values.dispose();
    indices.dispose();
  }
}

/** Attacks one image on one model; see {@link AttackResult}. `check` runs between iterative steps and throws to cancel. */
export function attackOne(
  model: Classifier,
  name: string,
  target: AttackTarget,
  job: Pick<AttackJob, 'method' | 'eps' | 'label' | 'seed' | 'steps'>,
  check: () => void = () => {},
): AttackResult {
  const t0 = performance.now();
  const names = describe(model).classNames;
  const { override, source } = effectiveLabel(job.method, job.label, target.trueLabel !== undefined);
  return scope(() => {
    const x = imageTensor(model, target.image);
    const y = target.trueLabel === undefined ? undefined : tensor(BigInt64Array.of(BigInt(target.trueLabel)));
    const spec = A.attackSpec(job.method);
    const opts = A.declaredOptions(spec, { eps: job.eps, y, label: override, generator: new Generator(job.seed), steps: job.steps, onProgress: check });
    const adv = spec.run(model, x, opts).detach();
    const delta = adv.sub(x).mul(1 / model.pixelScale); // pixel units
    const linf = delta.abs().max().item();
    const l2 = delta.flatten().norm(2, 0).item();
    const magnification = linf > 0 ? 127.5 / linf : 0;
    const shown = delta.mul(magnification).add(127.5).select(0, 0);
    const result: AttackResult = {
      model: name,
      labelSource: source,
      clean: { png: tensorToPng(x.select(0, 0), model.inputRange), top5: top5(model, x, names) },
      adversarial: { png: tensorToPng(adv.select(0, 0), model.inputRange), top5: top5(model, adv, names) },
      perturbation: { png: tensorToPng(shown, [0, 255]), magnification, linf, l2 },
      ms: 0,
    };
    result.ms = performance.now() - t0;
    return result;
  });
}

const datasets = new Map<string, TensorDataset>();

/**
 * At least the first `n` test images of a dataset, kept per worker: one
 * dataset per name, reloaded only when a larger `n` is asked for.
 */
function testImages(name: CurveJob['dataset'], n: number): TensorDataset {
  const cached = datasets.get(name);
  if (cached && cached.length >= n) return cached;
  cached?.dispose();
  const d = TensorDataset.from(name === 'mnist' ? loadMnist('test', { limit: n }) : loadFashionMnist('test', { limit: n }));
  datasets.set(name, d);
  return d;
}

/** Thrown by a job's `check` when the job was cancelled (past its deadline). */
export class CancelledError extends Error {
  override name = 'CancelledError';
}

/** Number of images of `x` whose top-1 prediction is `y`. */
function correct(model: Classifier, x: Tensor, y: Tensor): number {
  return noGrad(() => scope(() => model.logits(x).argmax(1).eq(y).sum().item()));
}

/**
 * Top-1 accuracy against eps for each model, on the first `job.images` test
 * images: one-step methods make every eps from one gradient (the many-eps
 * grid), iterative ones run per eps. `check` is called between steps and
 * batches and throws to cancel.
 */
export async function accuracyCurves(cache: ModelCache, job: CurveJob, onProgress?: ProgressHandler, check: () => void = () => {}): Promise<CurveResult[]> {
  const data = testImages(job.dataset, job.images);
  const n = job.images;
  const positive = job.eps.filter((e) => e > 0);
  const batchSize = 100;
  const out: CurveResult[] = [];
  const total = job.models.length * n;
  for (const [k, ref] of job.models.entries()) {
    const t0 = performance.now();
    const model = await cache.get(ref);
    let clean = 0;
    const hits = positive.map(() => 0);
    await forEachBatch(data, Array.from({ length: n }, (_, i) => i), batchSize, (batch) => scope(() => {
      const x = model.fromData(batch.images, data.range, `the ${job.dataset} test images`);
      const y = batch.labels;
      clean += correct(model, x, y);
      const advs = A.attackGrid(model, x, y, [job.method], positive, { label: job.label, seed: job.seed, onProgress: check }).get(job.method) as Tensor[];
      advs.forEach((adv, i) => (hits[i] = (hits[i] as number) + correct(model, adv, y)));
    }), {
      onProgress: (done) => {
        check();
        onProgress?.(k * n + done, total, ref.name);
      },
    });
    let next = 0;
    const accuracy = job.eps.map((e) => (e > 0 ? (hits[next++] as number) : clean) / n);
    out.push({ model: ref.name, labelSource: A.labelSourceOf(job.method, job.label), accuracy, ms: performance.now() - t0 });
  }
  return out;
}

/**
 * Trains the demo's two MNIST models with the `mnist` preset (the recipe of
 * `advml demo`), one epoch over the first `job.images` training images each:
 * plain (k = 0) and adversarial (step l.l., k = 32 of m = 64). Writes
 * dir/plain.safetensors and dir/adversarial.safetensors (atomically).
 * `check` runs after every step and throws to cancel.
 */
export async function trainDemoModels(job: TrainJob, onProgress?: ProgressHandler, check: () => void = () => {}): Promise<{ plain: string; adversarial: string }> {
  const preset = PRESETS.mnist;
  if (!preset) throw new Error("the 'mnist' training preset is missing");
  const train = TensorDataset.from(loadMnist('train', { limit: job.images }));
  const paths = { plain: join(job.dir, 'plain.safetensors'), adversarial: join(job.dir, 'adversarial.safetensors') };
  try {
    for (const [name, k] of [['plain', 0], ['adversarial', preset.config.adversarial.adversarial]] as const) {
      const model = models.buildClassifier(preset.spec);
      try {
        await runTraining({
          model,
          train,
          config: { ...preset.config, epochs: 1, adversarial: { ...preset.config.adversarial, adversarial: k }, checkpointEvery: 0, evalEvery: 0 },
          checkpoint: paths[name],
          onEvent: (e) => {
            // Throwing here abandons the run without writing a checkpoint (a cancelled run must not look finished).
            check();
            if (e.type === 'step') onProgress?.(e.step, e.totalSteps, `training mnist-${name}`);
          },
        });
      } finally {
        model.dispose();
      }
    }
  } finally {
    train.dispose();
  }
  return paths;
}
