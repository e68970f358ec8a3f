/**
 * What every attack shares: eps checking and conversion from pixel units, the
 * gradient of a loss with respect to the input only, the step by norm, the
 * projection onto the eps ball and the valid range, and inference mode.
 */
import { type Generator, type Precision, Tensor, crossEntropy, describeValue, enableGrad, grad, lossPrecision, noGrad, scope, tensor, withPrecision } from '../engine/index.js';
import { type Classifier, checkImageValues } from '../models/classifier.js';

/** The norm a step or a ball is measured in. */
export type Norm = 'linf' | 'l2' | 'l1';

/** eps in the paper's pixel units (0-255): one number, one per image, or a tensor [N]. */
export type Eps = number | number[] | Tensor;

/** Progress of one attack on one batch. */
export interface AttackProgress {
  attack: string;
  /** Iterations (or queries) done and planned. */
  step: number;
  steps: number;
  /** Images still being attacked (not yet broken). */
  active: number;
}

/** Options every attack takes. */
export interface AttackOptions {
  /** Perturbation size in pixel units (0-255), one value or one per image. */
  eps: Eps;
  /** True labels (int64 [N]); needed by methods whose label source is 'true'. */
  y?: Tensor;
  /** Run the model in training mode (batch statistics, dropout) instead of inference mode (default false). */
  training?: boolean;
  /** Random stream for methods that draw noise or random targets. */
  generator?: Generator;
  /**
   * Precision of the model's forward and backward passes (default 'auto':
   * bf16-autocast where the hardware has bfloat16 instructions, fp32 elsewhere).
   * 'bf16-autocast' runs convolutions and matrix products in bfloat16 and the
   * loss in float32; the adversarial images stay float32. docs/precision.md
   * shows that attacks find the same accuracy either way.
   */
  precision?: Precision;
  /** Called as the attack goes (after each iteration of an iterative attack); may throw to cancel. */
  onProgress?: (p: AttackProgress) => void;
}

/** Precision of attacks and evaluation when none is given. */
export const DEFAULT_ATTACK_PRECISION: Precision = 'auto';

/** Largest L-inf eps accepted, in pixel units: the whole range. */
export const MAX_EPS = 255;

/**
 * The largest eps that means anything in `norm` for images of `size` values:
 * the whole range in every value (255 in L-inf, 255 sqrt(size) in L2,
 * 255 size in L1). Without a size, L2 and L1 eps are bounded only by being finite.
 */
export function maxEpsFor(norm: Norm = 'linf', size?: number): number {
  if (norm === 'linf') return MAX_EPS;
  if (size === undefined) return Number.POSITIVE_INFINITY;
  return norm === 'l2' ? MAX_EPS * Math.sqrt(size) : MAX_EPS * size;
}

/** Checks one eps value in pixel units; returns it. Every eps the toolkit takes is checked here. */
export function checkEps(v: unknown, name = 'eps', norm: Norm = 'linf', size?: number): number {
  const max = maxEpsFor(norm, size);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    const bound = Number.isFinite(max) ? `[0, ${Number(max.toPrecision(6))}]` : 'a finite number >= 0 in';
    throw new Error(`${name} must be ${Number.isFinite(max) ? 'a number in ' : ''}${bound} pixel values${norm === 'linf' ? '' : ` (${norm})`}, got ${describeValue(v)}`);
  }
  return v;
}

/** Checks an attack's count option (steps, restarts, queries, targets, ...); returns it. */
export function positiveInteger(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${describeValue(v)}`);
  return v;
}

/** Checks eps for the batch x and returns it in pixel units, one value per image. */
export function epsPixels(x: Tensor, eps: Eps, name = 'eps', norm: Norm = 'linf'): number[] {
  const n = x.shape[0] as number;
  const size = x.size / Math.max(n, 1);
  let values: number[];
  if (typeof eps === 'number') {
    values = new Array<number>(n).fill(checkEps(eps, name, norm, size));
  } else if (Array.isArray(eps)) {
    values = eps;
  } else if (eps instanceof Tensor) {
    if (eps.rank !== 1) throw new Error(`${name} tensor must have shape [N], got [${eps.shape}]`);
    values = Array.from(eps.to('float64').dataSync() as Float64Array);
  } else {
    // Missing, a string ('2') or an object: say what eps may be.
    throw new Error(`${name} must be a number in [0, ${MAX_EPS}] pixel values, an array of them (one per image) or a Tensor [N], got ${describeValue(eps)}`);
  }
  if (values.length !== n) throw new Error(`${name} has ${values.length} values for a batch of ${n} images`);
  if (typeof eps !== 'number') values.forEach((v, i) => checkEps(v, `${name}[${i}]`, norm, size));
  return values;
}

/**
 * Checks eps and returns it in the classifier's input units as a tensor
 * [N, 1, 1, 1] (broadcasts over each image), with the largest value in pixel units.
 */
export function epsTensor(model: Classifier, x: Tensor, eps: Eps, name = 'eps', norm: Norm = 'linf'): { eps: Tensor; maxPixels: number } {
  const values = epsPixels(x, eps, name, norm);
  // On x's device: a CPU eps beside a CUDA batch is refused by libtorch.
  const scaled = tensor(Float64Array.from(values, (v) => v * model.pixelScale), { shape: [values.length, 1, 1, 1], dtype: x.dtype, device: x.device });
  return { eps: scaled, maxPixels: Math.max(0, ...values) };
}

/** Checks the options object, the batch and the true labels (when given). */
export function checkInputs(model: Classifier, x: Tensor, opts: { y?: Tensor } | undefined): void {
  // Without this, a call with no options fails on reading opts.y.
  if (typeof opts !== 'object' || opts === null) throw new Error(`attack options must be an object with at least eps, got ${describeValue(opts)}`);
  const y = opts.y;
  model.checkImages(x, 'x');
  checkImageValues(x, model.inputRange, 'x');
  if (y === undefined) return;
  checkLabels(model, x, y, 'y');
}

export function checkLabels(model: Classifier, x: Tensor, y: Tensor, name: string): void {
  if (y.dtype !== 'int64') throw new Error(`${name} must be an int64 tensor of class indices, got ${y.dtype}`);
  if (y.rank !== 1 || y.shape[0] !== x.shape[0]) throw new Error(`${name} must have shape [${x.shape[0]}], got [${y.shape}]`);
  const [lo, hi] = scope(() => [y.min().item(), y.max().item()]) as [number, number];
  if (lo < 0 || hi >= model.classes) throw new Error(`${name} holds class ${lo < 0 ? lo : hi}, outside 0..${model.classes - 1}`);
}

/**
 * The gradient of `loss(logits)` with respect to the images only (no
 * parameter gradients are computed). The loss is summed over the batch, so
 * each image's gradient is its own loss's gradient.
 */
export function inputGradient(model: Classifier, x: Tensor, loss: (logits: Tensor) => Tensor, precision: Precision = DEFAULT_ATTACK_PRECISION): Tensor {
  // Gradients are recorded here even when the caller runs under noGrad().
  return enableGrad(() => scope(() => {
    const xr = x.detach().requiresGrad_();
    // The loss is computed in float32 (or the model's float64) whatever the forward pass ran in.
    const logits = lossPrecision(withPrecision(precision, () => model.logits(xr), x.device));
    const [g] = grad(loss(logits), xr);
    return g as Tensor;
  }));
}

/** Summed cross-entropy against `labels`: the loss J(X, y) of the paper. */
export function crossEntropySum(labels: Tensor): (logits: Tensor) => Tensor {
  return (logits) => crossEntropy(logits, labels, { reduction: 'sum' });
}

/**
 * The step of unit size in `norm` along `g`, per image: sign(g) for L-inf,
 * g / ||g||_2 for L2, g / ||g||_1 for L1 (the paper's fast gradient L1; see
 * docs/attacks.md). An image whose gradient is zero gets a zero step.
 */
export function unitStep(g: Tensor, norm: Norm): Tensor {
  return scope(() => {
    if (norm === 'linf') return g.sign();
    const p = norm === 'l2' ? 2 : 1;
    const n = g.flatten(1).norm(p, 1, { keepDim: true }).reshape([g.shape[0] as number, 1, 1, 1]);
    return g.div(n.clamp(1e-30));
  });
}

/** Clips to the classifier's input range. */
export function clipToRange(model: Classifier, x: Tensor): Tensor {
  return x.clamp(model.inputRange[0], model.inputRange[1]);
}

/**
 * Clip_{X,eps}: projects xAdv onto the `norm` ball of radius eps (per image)
 * around x, then onto the valid range.
 */
export function project(model: Classifier, x: Tensor, xAdv: Tensor, eps: Tensor, norm: Norm): Tensor {
  return scope(() => {
    let delta = xAdv.sub(x);
    if (norm === 'linf') {
      delta = delta.clamp(eps.neg(), eps);
    } else {
      const n = delta.flatten(1).norm(norm === 'l2' ? 2 : 1, 1, { keepDim: true }).reshape(eps.shape);
      delta = delta.mul(eps.div(n.clamp(1e-30)).clamp(null, 1));
    }
    return clipToRange(model, x.add(delta));
  });
}

/** x + eps * direction, clipped to the valid range, without recording a graph. */
export function applyStep(model: Classifier, x: Tensor, direction: Tensor, eps: Tensor, sense: 1 | -1 = 1): Tensor {
  return noGrad(() => scope(() => clipToRange(model, x.detach().add(direction.mul(eps), sense))));
}
