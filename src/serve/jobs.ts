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
import { PRESETS, type Preset, type TrainConfig, runTraining } from '../training/index.js';
import type { AttackJob, AttackResult, AttackTarget, CurveJob, CurveResult, DemoRole, ModelInfo, ModelRef, Prediction, PreparedImage, TrainJob } from './protocol.js';

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

/** Softmax probabilities of a one-image batch, one per class. */
function probabilities(model: Classifier, x: Tensor): Float32Array {
  return noGrad(() => scope(() => Float32Array.from(model.logits(x).softmax(1).dataSync() as Float32Array)));
}

function top5(p: Float32Array, names: string[]): Prediction[] {
  const order = Array.from(p.keys()).sort((a, b) => (p[b] as number) - (p[a] as number));
  return order.slice(0, 5).map((index) => ({ index, name: names[index] ?? String(index), probability: p[index] as number }));
}

type Aim = NonNullable<AttackResult['target']>['source'];

/**
 * A targeted method's target class: the user's choice, else its label
 * source's (least likely, random), chosen here once so that the result can
 * name it; null for untargeted methods.
 */
function chooseTarget(model: Classifier, x: Tensor, method: A.MethodName, source: string, chosen: number | undefined, generator: Generator): { index: number; source: Aim } | null {
  if (!A.isTargeted(method)) return null;
  if (chosen !== undefined) return { index: chosen, source: 'chosen' };
  if (source !== 'leastLikely' && source !== 'random') return null;
  return { index: scope(() => A.chooseLabels(model, x, source, { generator }).item()), source };
}

/** Attacks one image on one model; see {@link AttackResult}. `check` runs between iterative steps and throws to cancel. */
export function attackOne(
  model: Classifier,
  name: string,
  target: AttackTarget,
  job: Pick<AttackJob, 'method' | 'eps' | 'label' | 'seed' | 'steps' | 'stepSize' | 'target'>,
  check: () => void = () => {},
): AttackResult {
  const t0 = performance.now();
  const names = describe(model).classNames;
  const { override, source } = effectiveLabel(job.method, job.label, target.trueLabel !== undefined);
  return scope(() => {
    const x = imageTensor(model, target.image);
    const label = (c: number): Tensor => tensor(BigInt64Array.of(BigInt(c)));
    const generator = new Generator(job.seed);
    const aim = chooseTarget(model, x, job.method, source, job.target, generator);
    // With a target chosen, the attack takes it as its given label: a targeted method descends towards its label.
    const labels = aim ? { y: label(aim.index), label: 'true' as const } : { y: target.trueLabel === undefined ? undefined : label(target.trueLabel), label: override };
    const spec = A.attackSpec(job.method);
    const opts = A.declaredOptions(spec, { eps: job.eps, ...labels, generator, steps: job.steps, stepSize: job.stepSize, onProgress: check });
    const adv = spec.run(model, x, opts).detach();
    const delta = adv.sub(x).mul(1 / model.pixelScale); // pixel units
    const linf = delta.abs().max().item();
    const l2 = delta.flatten().norm(2, 0).item();
    const magnification = linf > 0 ? 127.5 / linf : 0;
    const shown = delta.mul(magnification).add(127.5).select(0, 0);
    const before = probabilities(model, x);
    const after = probabilities(model, adv);
    const follow = (index: number): { index: number; clean: number; adversarial: number } => ({ index, clean: before[index] as number, adversarial: after[index] as number });
    const result: AttackResult = {
      model: name,
      labelSource: aim?.source === 'chosen' ? 'chosen target' : source,
      clean: { png: tensorToPng(x.select(0, 0), model.inputRange), top5: top5(before, names) },
      adversarial: { png: tensorToPng(adv.select(0, 0), model.inputRange), top5: top5(after, names) },
      perturbation: { png: tensorToPng(shown, [0, 255]), magnification, linf, l2 },
      trueLabel: target.trueLabel === undefined ? null : follow(target.trueLabel),
      target: aim ? { ...follow(aim.index), source: aim.source } : null,
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
 * Top-1 accuracy against eps for each model and method, on the first `job.images` test
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
    const hits = job.methods.map(() => positive.map(() => 0));
    await forEachBatch(data, Array.from({ length: n }, (_, i) => i), batchSize, (batch) => scope(() => {
      const x = model.fromData(batch.images, data.range, `the ${job.dataset} test images`);
      const y = batch.labels;
      clean += correct(model, x, y);
      const grid = A.attackGrid(model, x, y, job.methods, positive, { label: job.label, seed: job.seed, onProgress: check });
      job.methods.forEach((method, j) => {
        const row = hits[j] as number[];
        (grid.get(method) as Tensor[]).forEach((adv, i) => (row[i] = (row[i] as number) + correct(model, adv, y)));
      });
    }), {
      onProgress: (done) => {
        check();
        onProgress?.(k * n + done, total, ref.name);
      },
    });
    const ms = performance.now() - t0;
    job.methods.forEach((method, j) => {
      let next = 0;
      const accuracy = job.eps.map((e) => (e > 0 ? ((hits[j] as number[])[next++] as number) : clean) / n);
      out.push({ model: ref.name, method, labelSource: A.labelSourceOf(method, job.label), accuracy, ms });
    });
  }
  return out;
}

/** eps of the demo's fast-AT model, pixel units: the middle of the page's MNIST slider (0-64). */
export const DEMO_FAST_AT_EPS = 48;

/**
 * How each demo model is trained on the first N MNIST training images:
 * plain and the paper's step l.l. training (the `mnist` preset, k 32 of m 64)
 * for 3 epochs, fast adversarial training (the `mnist-fast-at` preset at eps
 * 48) for 5. A few seconds each at N = 10,000 on two cores, enough for the
 * plain model to fall under PGD where the fast-AT one holds.
 */
function demoRecipe(role: DemoRole): { spec: Preset['spec']; config: TrainConfig } {
  const preset = (name: string): Preset => {
    const p = PRESETS[name];
    if (!p) throw new Error(`the '${name}' training preset is missing`);
    return p;
  };
  const common = { checkpointEvery: 0, evalEvery: 0 };
  if (role === 'fast-at') {
    const { guard: _guard, ...config } = preset('mnist-fast-at').config;
    return { spec: preset('mnist-fast-at').spec, config: { ...config, ...common, epochs: 5, adversarial: { ...config.adversarial, eps: { kind: 'fixed', value: DEMO_FAST_AT_EPS } } } };
  }
  const { spec, config } = preset('mnist');
  const k = role === 'plain' ? 0 : config.adversarial.k;
  return { spec, config: { ...config, ...common, epochs: 3, adversarial: { ...config.adversarial, k } } };
}

/**
 * Trains the demo models `job.roles` (see {@link demoRecipe}) into
 * dir/ROLE.safetensors (atomically). `check` runs after every step and throws
 * to cancel.
 */
export async function trainDemoModels(job: TrainJob, onProgress?: ProgressHandler, check: () => void = () => {}): Promise<Partial<Record<DemoRole, string>>> {
  const train = TensorDataset.from(loadMnist('train', { limit: job.images }));
  const paths: Partial<Record<DemoRole, string>> = {};
  try {
    for (const role of job.roles) {
      const { spec, config } = demoRecipe(role);
      const model = models.buildClassifier(spec);
      const path = join(job.dir, `${role}.safetensors`);
      try {
        await runTraining({
          model,
          train,
          config,
          checkpoint: path,
          onEvent: (e) => {
            // Throwing here abandons the run without writing a checkpoint (a cancelled run must not look finished).
            check();
            if (e.type === 'step') onProgress?.(e.step, e.totalSteps, `training mnist-${role}`);
          },
        });
      } finally {
        model.dispose();
      }
      paths[role] = path;
    }
  } finally {
    train.dispose();
  }
  return paths;
}
