/**
 * The Carlini-Wagner L2 attack ("Towards evaluating the robustness of neural
 * networks", 2017), untargeted: with the change of variables
 *   x' = tanh(w) (hi - lo) / 2 + (hi + lo) / 2
 * over the model's input range [lo, hi] (so x' never leaves the box),
 * minimise per image
 *   ||x' - x||_2^2 + c * max(Z_y(x') - max_{i != y} Z_i(x'), -kappa)
 * (the paper's f6 with the true label y; kappa is the confidence, default 0;
 * the term is written max(., -kappa) + kappa, as in the reference code, which
 * changes no gradient) with Adam (learning rate 0.01) from w = atanh of the
 * clean image, for at most `steps` iterations (default 1000) per value of c.
 * c is found by a binary search per image (9 searches, the first c 1e-3):
 * times 10 while no iterate was adversarial, bisection once one was. Every
 * iterate that is adversarial with confidence kappa (max_{i != y} Z_i > Z_y + kappa)
 * and nearer than the best so far replaces it; the best over all values of c is the answer.
 *
 * Batched: each image has its own c, Adam state and abort rule; misclassified
 * images are not attacked (size 0, returned clean).
 *
 * Departures from the paper and its reference code:
 * - the default of `steps` is 1000 iterations (the reference code's constant is
 *   10000; 1000 is the common evaluation setting and the CLI's step limit);
 * - the abort rule (every steps/10 iterations, stop once the loss is above
 *   0.9999 times its value at the previous check) is applied per image, not to
 *   the batch's summed loss, so an image's result does not depend on its batch;
 *   an aborted image leaves the batch (`earlyExit: false` keeps it there,
 *   frozen, with the same result);
 * - the distance is measured to the clean image itself (the reference code
 *   measures it to tanh(atanh(0.999999 x)), the image shrunk by 1e-6);
 * - Adam is Algorithm 1 of "Adam: a method for stochastic optimization" (2015)
 *   (eps 1e-8 added to the bias-corrected sqrt(v)), where the reference code
 *   used TensorFlow's variant (eps added to the uncorrected sqrt(v)).
 */
import { type Tensor, describeValue, full, scope, tensor, where, zerosLike } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { checkInputs, epsTensor, positiveInteger } from './common.js';
import type { AttackSpec, MinimalResult, RunOptions } from './registry.js';
import { indexTensor, indicesWhere, keepWithinEps, logitsOf, lossAndGradient, margin, mergeRows, normsOf, perImage } from './batch.js';

/** The paper's and reference code's binary search steps over c. */
export const CW_BINARY_STEPS = 9;
/** The reference code's first c. */
export const CW_INITIAL_CONST = 1e-3;
/** The reference code's Adam learning rate. */
export const CW_LEARNING_RATE = 0.01;
/** Iterations per value of c (see the module comment). */
export const CW_STEPS = 1000;

const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPS = 1e-8;
/** Above this, c has no known upper bound (the reference code's 1e9). */
const NO_BOUND = 1e9;

/**
 * Options of {@link carliniWagnerL2}. Of RunOptions it reads `steps`
 * (iterations per value of c, default 1000), `y` (required), `training`,
 * `precision`, `earlyExit` and `onProgress` (and refuses a `norm` other than
 * 'l2'). `binarySteps`, `initialConst`, `learningRate` and `confidence` are
 * library options: RunOptions has no field for them, so the CLI does not set them.
 */
export interface CwOptions extends Omit<RunOptions, 'eps'> {
  /** Binary search steps over c (default 9). */
  binarySteps?: number;
  /** The first c (default 1e-3). */
  initialConst?: number;
  /** Adam's learning rate in tanh space (default 0.01). */
  learningRate?: number;
  /** kappa: the margin, in logits, by which the adversarial must be misclassified (default 0). */
  confidence?: number;
}

interface Settings {
  steps: number;
  binarySteps: number;
  initialConst: number;
  learningRate: number;
  confidence: number;
  y: Tensor;
}

function positiveNumber(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a finite number > 0, got ${describeValue(v)}`);
  return v;
}

function settings(opts: CwOptions): Settings {
  if (opts.norm !== undefined && opts.norm !== 'l2') throw new Error(`cw-l2: norm must be 'l2', got ${describeValue(opts.norm)}`);
  const steps = positiveInteger('steps', opts.steps ?? CW_STEPS);
  const binarySteps = positiveInteger('binarySteps', opts.binarySteps ?? CW_BINARY_STEPS);
  const initialConst = positiveNumber('initialConst', opts.initialConst ?? CW_INITIAL_CONST);
  const learningRate = positiveNumber('learningRate', opts.learningRate ?? CW_LEARNING_RATE);
  const confidence = opts.confidence ?? 0;
  if (typeof confidence !== 'number' || !Number.isFinite(confidence) || confidence < 0) throw new Error(`confidence must be a finite number >= 0, got ${describeValue(confidence)}`);
  if (!opts.y) throw new Error('cw-l2 needs the true labels y: pass y');
  return { steps, binarySteps, initialConst, learningRate, confidence, y: opts.y };
}

/**
 * The C&W L2 search, batched: the nearest adversarial images found (clean
 * where none was) and each image's L2 perturbation size in pixel units
 * (Infinity where no iterate was adversarial, 0 where the clean image is already misclassified).
 */
export function carliniWagnerL2(model: Classifier, x: Tensor, opts: CwOptions): MinimalResult {
  checkInputs(model, x, opts);
  const s = settings(opts);
  return model.inMode(opts.training ?? false, () => scope(() => search(model, x, s, opts)));
}

function search(model: Classifier, x: Tensor, s: Settings, opts: CwOptions): MinimalResult {
  const n = x.shape[0] as number;
  const clean = x.detach();
  const correct = Array.from(logitsOf(model, clean, opts.precision).argmax(1).eq(s.y).dataSync() as Uint8Array, (v) => v !== 0);
  const norms = Float64Array.from(correct, (c) => (c ? Number.POSITIVE_INFINITY : 0));
  const attacked = correct.flatMap((c, i) => (c ? [i] : []));
  const m = attacked.length;
  if (m === 0) return { adversarial: clean.clone(), norms };

  const [lo, hi] = model.inputRange;
  const half = (hi - lo) / 2;
  const mid = (hi + lo) / 2;
  const all = indexTensor(attacked);
  const xs = clean.indexSelect(0, all);
  const ys = s.y.indexSelect(0, all);
  // atanh(u) = (log1p(u) - log1p(-u)) / 2, of the image shrunk by 1e-6 so the box's edges stay finite.
  const u = xs.sub(mid).div(half).clamp(-1, 1).mul(0.999999);
  const w0 = u.log1p().sub(u.neg().log1p()).mul(0.5);
  const toImage = (w: Tensor): Tensor => w.tanh().mul(half).add(mid);

  // The best adversarial so far over every c (squared L2 in model units; Infinity: none yet).
  let bestSq = full([m], Number.POSITIVE_INFINITY, { dtype: x.dtype, device: x.device });
  let bestImage = xs.clone();
  const c = new Float64Array(m).fill(s.initialConst);
  const lower = new Float64Array(m);
  const upper = new Float64Array(m).fill(1e10);
  const checkEvery = Math.max(1, Math.floor(s.steps / 10));
  const earlyExit = opts.earlyExit ?? true;
  const totalSteps = s.binarySteps * s.steps;

  for (let b = 0; b < s.binarySteps; b++) {
    // With 10 or more searches the last one is run at the upper bound found (the reference code's rule).
    if (s.binarySteps >= 10 && b === s.binarySteps - 1) c.set(upper);
    const cs = tensor(Float64Array.from(c), { dtype: x.dtype });
    // Rows (local indices into the attacked images) still optimising at this c, and their state.
    let live = Array.from({ length: m }, (_, i) => i);
    let rows = live;
    let w = w0.clone();
    let mom = zerosLike(w0);
    let vel = zerosLike(w0);
    let hit = full([m], 0, { dtype: 'bool', device: x.device });
    const prev = new Float64Array(m).fill(Number.POSITIVE_INFINITY);
    for (let it = 0; it < s.steps && live.length > 0; it++) {
      const check = it % checkEvery === 0;
      const frozen = rows.length === live.length ? null : new Set(live);
      const out = scope(() => {
        const idx = indexTensor(rows);
        const image = toImage(w);
        const yr = ys.indexSelect(0, idx);
        const cr = cs.indexSelect(0, idx);
        // f = max(Z_y - max_{i != y} Z_i + kappa, 0), times c; its gradient with respect to the image.
        const { logits, loss: cf, grad: gf } = lossAndGradient(model, image, (z) => margin(z, yr).add(s.confidence).clamp(0).mul(cr.to(z.dtype)), opts.precision);
        const delta = image.sub(xs.indexSelect(0, idx));
        const sq = delta.square().flatten(1).sum(1);
        const loss = sq.add(cf.to(sq.dtype));
        const adversarial = margin(logits, yr).add(s.confidence).lt(0);
        const isLive = frozen ? tensor(rows.map((i) => frozen.has(i))) : null;
        const counts = isLive ? adversarial.logicalAnd(isLive) : adversarial;
        const better = counts.logicalAnd(sq.lt(bestSq.indexSelect(0, idx)));
        const nextBestSq = mergeRows(bestSq, idx, where(better, sq, bestSq.indexSelect(0, idx)));
        const nextBestImage = mergeRows(bestImage, idx, where(perImage(better, image), image, bestImage.indexSelect(0, idx)));
        const nextHit = mergeRows(hit, idx, hit.indexSelect(0, idx).logicalOr(counts));
        // Adam on w, through d x' / d w = half (1 - tanh(w)^2).
        const g = delta.mul(2).add(gf.to(delta.dtype)).mul(w.tanh().square().neg().add(1).mul(half));
        const t = it + 1;
        let nextMom = mom.mul(BETA1).add(g.mul(1 - BETA1));
        let nextVel = vel.mul(BETA2).add(g.square().mul(1 - BETA2));
        const stepped = nextMom.div(1 - BETA1 ** t).div(nextVel.div(1 - BETA2 ** t).sqrt().add(ADAM_EPS)).mul(-s.learningRate);
        let nextW = w.add(stepped);
        if (isLive) {
          const keep = perImage(isLive, w);
          nextW = where(keep, nextW, w);
          nextMom = where(keep, nextMom, mom);
          nextVel = where(keep, nextVel, vel);
        }
        const losses = check ? Array.from(loss.to('float64').dataSync() as Float64Array) : null;
        return { nextBestSq, nextBestImage, nextHit, nextW, nextMom, nextVel, losses };
      });
      for (const [old, next] of [[bestSq, out.nextBestSq], [bestImage, out.nextBestImage], [hit, out.nextHit], [w, out.nextW], [mom, out.nextMom], [vel, out.nextVel]] as const) {
        if (old !== next) old.dispose();
      }
      bestSq = out.nextBestSq;
      bestImage = out.nextBestImage;
      hit = out.nextHit;
      w = out.nextW;
      mom = out.nextMom;
      vel = out.nextVel;
      if (out.losses) {
        // Abort an image once its loss stopped decreasing since the previous check.
        const stop = new Set<number>();
        rows.forEach((i, j) => {
          if (frozen && !frozen.has(i)) return;
          const l = out.losses?.[j] as number;
          if (l > (prev[i] as number) * 0.9999) stop.add(i);
          else prev[i] = l;
        });
        if (stop.size > 0) {
          live = live.filter((i) => !stop.has(i));
          if (earlyExit && live.length > 0) {
            // Keep only the rows still optimising.
            const keepLocal = indexTensor(rows.flatMap((i, j) => (stop.has(i) ? [] : [j])));
            const [nw, nm, nv] = [w, mom, vel].map((t) => t.indexSelect(0, keepLocal)) as [Tensor, Tensor, Tensor];
            keepLocal.dispose();
            w.dispose();
            mom.dispose();
            vel.dispose();
            [w, mom, vel] = [nw, nm, nv];
            rows = live;
          }
        }
      }
      opts.onProgress?.({ attack: 'cw-l2', step: b * s.steps + it + 1, steps: totalSteps, active: live.length });
    }
    // The binary search over c, per image.
    const hits = Array.from(hit.dataSync() as Uint8Array, (v) => v !== 0);
    for (let i = 0; i < m; i++) {
      if (hits[i]) {
        upper[i] = Math.min(upper[i] as number, c[i] as number);
        if ((upper[i] as number) < NO_BOUND) c[i] = ((lower[i] as number) + (upper[i] as number)) / 2;
      } else {
        lower[i] = Math.max(lower[i] as number, c[i] as number);
        c[i] = (upper[i] as number) < NO_BOUND ? ((lower[i] as number) + (upper[i] as number)) / 2 : (c[i] as number) * 10;
      }
    }
    for (const t of [w, mom, vel, hit, cs]) t.dispose();
  }

  const found = Array.from(bestSq.isfinite().dataSync() as Uint8Array, (v) => v !== 0);
  const local = indicesWhere(bestSq.isfinite());
  const adversarial = mergeRows(clean.clone(), all.indexSelect(0, local), bestImage.indexSelect(0, local));
  const sizes = Array.from(normsOf(bestImage.sub(xs), 'l2').to('float64').dataSync() as Float64Array);
  attacked.forEach((i, j) => {
    if (found[j]) norms[i] = (sizes[j] as number) / model.pixelScale;
  });
  return { adversarial, norms };
}

/** Options of the C&W spec's run(): RunOptions (with eps) plus the library options. */
export type CwRunOptions = RunOptions & Omit<CwOptions, keyof RunOptions>;

/** C&W L2 at one eps (L2, pixel units, per image): the found images that fit, the clean ones elsewhere. */
export function carliniWagnerL2Within(model: Classifier, x: Tensor, opts: CwRunOptions): Tensor {
  checkInputs(model, x, opts);
  settings(opts);
  return scope(() => {
    const { eps, maxPixels } = epsTensor(model, x, opts.eps, 'eps', 'l2');
    if (maxPixels === 0) return x.detach().clone();
    const found = carliniWagnerL2(model, x, opts);
    return keepWithinEps(model, x, found.adversarial, eps, 'l2');
  });
}

export const CW_L2: AttackSpec = {
  name: 'cw-l2',
  summary: 'Carlini-Wagner L2: Adam in tanh space on distance + c f6, binary search over c (9 steps from 1e-3), lr 0.01',
  kind: 'minimal',
  norms: ['l2'],
  label: 'true',
  gradients: true,
  options: ['steps'],
  defaults: { steps: CW_STEPS },
  run: carliniWagnerL2Within,
  minimal: carliniWagnerL2,
};
