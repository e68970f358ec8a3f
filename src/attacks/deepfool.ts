/**
 * DeepFool ("DeepFool: a simple and accurate method to fool deep neural
 * networks", 2016), L2 and L-inf: at each iterate x_i, linearise the
 * classifier around x_i, and step to the nearest boundary of the linearised
 * classifier among the candidate classes k:
 *   w_k = grad(z_k - z_label)(x_i),  f_k = z_k(x_i) - z_label(x_i),
 *   l = argmin_k |f_k| / ||w_k||_q              (q = 2 for L2, q = 1 for L-inf)
 *   r_i = |f_l| / ||w_l||_2 * w_l / ||w_l||_2    (L2)
 *   r_i = |f_l| / ||w_l||_1 * sign(w_l)         (L-inf: the paper's general-p step with p = inf)
 * until the decision changes, with x_{i+1} = x + (1 + overshoot) sum_j r_j
 * (overshoot 0.02, at most 50 iterations, as in the paper and its reference code).
 *
 * Batched: every image has its own iterate, and an image leaves the batch at
 * the first iterate whose label differs from its clean one (with
 * `earlyExit: false` it stays in the batch, frozen, so the result is the same).
 *
 * Label: DeepFool changes the model's own decision. The true labels y are
 * still required: an image the model already misclassifies is not attacked
 * (size 0, returned clean); for every other image the predicted and the true
 * label coincide, so "fooled" and "misclassified" are the same thing.
 *
 * Departures from the paper:
 * - every iterate is clipped to the model's input range (the paper has no box);
 * - each step's size gets 1e-4 (model input units) added, as in the authors'
 *   reference code, so that an iterate landing exactly on a boundary crosses it;
 * - the candidate classes are the `candidates` most likely classes of the clean
 *   image (default 10, the reference code's choice: every class of a 10-class
 *   problem), fixed for the whole search;
 * - an image still not fooled after the last iteration counts as a failure
 *   (size Infinity, returned clean) rather than returning its last iterate.
 */
import { type Precision, type Tensor, describeValue, enableGrad, full, grad, lossPrecision, scope, tensor, where, withPrecision, zerosLike } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { DEFAULT_ATTACK_PRECISION, type Norm, checkInputs, clipToRange, epsTensor } from './common.js';
import type { AttackSpec, MinimalResult, RunOptions } from './registry.js';
import { indexTensor, indicesWhere, keepWithinEps, logitsOf, mergeRows, normsOf, perImage } from './batch.js';

/** The paper's overshoot: the iterate is x + (1 + overshoot) times the summed steps. */
export const DEEPFOOL_OVERSHOOT = 0.02;
/** The reference code's iteration limit. */
export const DEEPFOOL_STEPS = 50;
/** The reference code's number of candidate classes (the most likely ones of the clean image, its label included). */
export const DEEPFOOL_CANDIDATES = 10;
/** Added to every step's size (model input units), as in the reference code. */
export const DEEPFOOL_STEP_PAD = 1e-4;

/**
 * Options of {@link deepFool}. Of RunOptions it reads `norm` ('l2', the
 * default, or 'linf'), `steps` (iterations, default 50), `y` (required),
 * `training`, `precision`, `earlyExit` and `onProgress`; `overshoot` and
 * `candidates` are library options (not RunOptions, so the CLI does not set them).
 */
export interface DeepFoolOptions extends Omit<RunOptions, 'eps'> {
  /** The iterate is x + (1 + overshoot) sum r_i (default 0.02). */
  overshoot?: number;
  /** How many of the clean image's most likely classes (its label included) are candidates; at most all classes (default 10). */
  candidates?: number;
}

interface Settings {
  norm: 'l2' | 'linf';
  steps: number;
  overshoot: number;
  candidates: number;
  y: Tensor;
}

function settings(model: Classifier, opts: DeepFoolOptions): Settings {
  const norm = opts.norm ?? 'l2';
  if (norm !== 'l2' && norm !== 'linf') throw new Error(`deepfool: norm must be 'l2' or 'linf', got ${describeValue(norm)}`);
  const steps = opts.steps ?? DEEPFOOL_STEPS;
  if (typeof steps !== 'number' || !Number.isSafeInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${describeValue(steps)}`);
  const overshoot = opts.overshoot ?? DEEPFOOL_OVERSHOOT;
  if (typeof overshoot !== 'number' || !Number.isFinite(overshoot) || overshoot < 0) throw new Error(`overshoot must be a finite number >= 0, got ${describeValue(overshoot)}`);
  const candidates = opts.candidates ?? DEEPFOOL_CANDIDATES;
  if (typeof candidates !== 'number' || !Number.isSafeInteger(candidates) || candidates < 2) {
    throw new Error(`candidates must be an integer >= 2 (the label and at least one other class), got ${describeValue(candidates)}`);
  }
  if (!opts.y) throw new Error('deepfool needs the true labels y (a misclassified image is not attacked): pass y');
  return { norm, steps, overshoot, candidates: Math.min(candidates, model.classes), y: opts.y };
}

/**
 * One DeepFool step per image (the linearised nearest boundary among the
 * candidate classes `order` [n, K], label first), from one forward pass and
 * K - 1 backward passes. Only one candidate's gradient is held besides the
 * best so far.
 */
function deepFoolStep(model: Classifier, x: Tensor, order: Tensor, norm: 'l2' | 'linf', precision: Precision | undefined): Tensor {
  return enableGrad(() => scope(() => {
    const xr = x.detach().requiresGrad_();
    const logits = lossPrecision(withPrecision(precision ?? DEFAULT_ATTACK_PRECISION, () => model.logits(xr), x.device));
    const z = logits.gather(1, order);
    const z0 = z.select(1, 0);
    const k = order.shape[1] as number;
    // The dual norm measures the distance to a hyperplane: ||.||_2 for L2, ||.||_1 for L-inf.
    const dual: Norm = norm === 'l2' ? 'l2' : 'l1';
    let best: { pert: Tensor; w: Tensor } | null = null;
    for (let c = 1; c < k; c++) {
      const previous: { pert: Tensor; w: Tensor } | null = best;
      const next: { pert: Tensor; w: Tensor } = scope(() => {
        const f = z.select(1, c).sub(z0);
        const [w] = grad(f.sum(), xr, { retainGraph: c < k - 1 }) as [Tensor];
        const pert = f.detach().abs().div(normsOf(w, dual).clamp(1e-30));
        if (previous === null) return { pert, w };
        // Strictly smaller: the first of equally near classes wins, as in the reference code.
        const better = pert.lt(previous.pert);
        return { pert: where(better, pert, previous.pert), w: where(perImage(better, w), w, previous.w) };
      });
      if (previous !== null) {
        previous.pert.dispose();
        previous.w.dispose();
      }
      best = next;
    }
    const { pert, w } = best as { pert: Tensor; w: Tensor };
    // r = (|f_l| / ||w_l||_2 + pad) w_l / ||w_l||_2 (L2), (|f_l| / ||w_l||_1 + pad) sign(w_l) (L-inf).
    const direction = norm === 'l2' ? w.div(perImage(normsOf(w, 'l2').clamp(1e-30), w)) : w.sign();
    return direction.mul(perImage(pert.add(DEEPFOOL_STEP_PAD), direction));
  }));
}

/**
 * DeepFool's search, batched: the adversarial images (clean where it failed)
 * and each image's perturbation size in pixel units in the search's norm
 * (Infinity where no iterate changed the decision, 0 where the clean image is
 * already misclassified).
 */
export function deepFool(model: Classifier, x: Tensor, opts: DeepFoolOptions): MinimalResult {
  checkInputs(model, x, opts);
  const s = settings(model, opts);
  return model.inMode(opts.training ?? false, () => scope(() => search(model, x, s, opts)));
}

function search(model: Classifier, x: Tensor, s: Settings, opts: DeepFoolOptions): MinimalResult {
  const n = x.shape[0] as number;
  const clean = x.detach();
  const logits0 = logitsOf(model, clean, opts.precision);
  const correct = Array.from(logits0.argmax(1).eq(s.y).dataSync() as Uint8Array, (v) => v !== 0);
  const norms = Float64Array.from(correct, (c) => (c ? Number.POSITIVE_INFINITY : 0));
  // Candidate classes of each image, its label first, then the most likely others.
  const top = full([n, 1], Number.POSITIVE_INFINITY, { dtype: logits0.dtype, device: logits0.device });
  const order = logits0.scatter(1, s.y.reshape([-1, 1]), top).topk(s.candidates, { dim: 1 }).indices;
  const attacked = correct.flatMap((c, i) => (c ? [i] : []));
  const earlyExit = opts.earlyExit ?? true;
  const fooled = new Array<boolean>(n).fill(false);
  let active = attacked;
  // The summed steps and the first adversarial iterate of each image; each iteration's new tensors
  // pass to this function's scope and the ones they replace are freed at once.
  let total = zerosLike(clean);
  let adversarial = clean.clone();
  // Iteration it tests the iterate x + (1 + overshoot) (r_0 + ... + r_{it-1}) (it = 0: the clean
  // image, classified correctly) and, for the images it does not fool, takes step it + 1,
  // as the reference code's loop does: the decision is tested before each step.
  for (let it = 0; it <= s.steps && active.length > 0; it++) {
    // Without early exit every attacked image stays in the batch; those fooled earlier are frozen.
    const rows = earlyExit ? active : attacked;
    const live = new Set(active);
    const out = scope(() => {
      const idx = indexTensor(rows);
      const r = total.indexSelect(0, idx);
      const current = clipToRange(model, clean.indexSelect(0, idx).add(r.mul(1 + s.overshoot)));
      const ord = order.indexSelect(0, idx);
      let broken = rows.map(() => false);
      if (it > 0) {
        const changed = logitsOf(model, current, opts.precision).argmax(1).ne(ord.select(1, 0));
        broken = Array.from(changed.dataSync() as Uint8Array, (v, j) => v !== 0 && live.has(rows[j] as number));
      }
      const local = broken.flatMap((b, j) => (b ? [j] : []));
      const nextAdversarial = local.length > 0 ? scope(() => {
        const l = indexTensor(local);
        return mergeRows(adversarial, idx.indexSelect(0, l), current.indexSelect(0, l));
      }) : null;
      // Rows that take a step: those still live and not fooled now, unless this was the last test.
      const going = it < s.steps ? rows.flatMap((i, j) => (live.has(i) && !broken[j] ? [j] : [])) : [];
      let nextTotal: Tensor | null = null;
      if (going.length > 0) {
        if (earlyExit) {
          const g = indexTensor(going);
          const step = deepFoolStep(model, current.indexSelect(0, g), ord.indexSelect(0, g), s.norm, opts.precision);
          nextTotal = mergeRows(total, idx.indexSelect(0, g), r.indexSelect(0, g).add(step));
        } else {
          const step = deepFoolStep(model, current, ord, s.norm, opts.precision);
          const goingSet = new Set(going);
          const go = tensor(rows.map((_, j) => goingSet.has(j)), { device: x.device });
          nextTotal = mergeRows(total, idx, where(perImage(go, r), r.add(step), r));
        }
      }
      return { newly: local.map((j) => rows[j] as number), nextAdversarial, nextTotal };
    });
    for (const i of out.newly) fooled[i] = true;
    if (out.nextAdversarial) {
      adversarial.dispose();
      adversarial = out.nextAdversarial;
    }
    const gone = new Set(out.newly);
    active = active.filter((i) => !gone.has(i));
    if (out.nextTotal) {
      total.dispose();
      total = out.nextTotal;
      opts.onProgress?.({ attack: 'deepfool', step: it + 1, steps: s.steps, active: active.length });
    }
  }
  // Sizes measured on the returned images; images never fooled keep their clean rows (and Infinity).
  if (fooled.some((f) => f)) {
    const sizes = scope(() => Array.from(normsOf(adversarial.sub(clean), s.norm).to('float64').dataSync() as Float64Array));
    fooled.forEach((f, i) => {
      if (f) norms[i] = (sizes[i] as number) / model.pixelScale;
    });
  }
  return { adversarial, norms };
}

/** Options of the DeepFool spec's run(): RunOptions (with eps) plus the library options. */
export type DeepFoolRunOptions = RunOptions & Omit<DeepFoolOptions, keyof RunOptions>;

/** DeepFool at one eps (pixel units, per image, in the search's norm): the found images that fit, the clean ones elsewhere. */
export function deepFoolWithin(model: Classifier, x: Tensor, opts: DeepFoolRunOptions): Tensor {
  checkInputs(model, x, opts);
  const s = settings(model, opts);
  return scope(() => {
    const { eps, maxPixels } = epsTensor(model, x, opts.eps, 'eps', s.norm);
    if (maxPixels === 0) return x.detach().clone();
    const found = deepFool(model, x, opts);
    return keepWithinEps(model, x, found.adversarial, eps, s.norm);
  });
}

export const DEEPFOOL: AttackSpec = {
  name: 'deepfool',
  summary: 'DeepFool: steps to the nearest linearised boundary among the top 10 classes, overshoot 0.02, at most 50 steps',
  kind: 'minimal',
  norms: ['l2', 'linf'],
  label: 'predicted',
  gradients: true,
  options: ['steps', 'norm'],
  defaults: { steps: DEEPFOOL_STEPS },
  run: deepFoolWithin,
  minimal: deepFool,
};
