/**
 * What the evaluation-standard attacks (APGD, FAB, Square, C&W, DeepFool,
 * HopSkipJump) share: per-image losses (cross-entropy, DLR and targeted DLR),
 * one forward and backward pass that returns logits, losses and the input
 * gradient together, per-image norms, and the rows of a batch still being
 * attacked (early exit: a broken image leaves the batch and keeps its result).
 */
import { type Precision, type Tensor, arange, crossEntropy, enableGrad, grad, lossPrecision, noGrad, scope, tensor, where, withPrecision } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { DEFAULT_ATTACK_PRECISION, type Norm } from './common.js';

/** Per-image loss from logits [N, C]: a tensor [N], larger means closer to (or further past) the boundary. */
export type ImageLoss = (logits: Tensor) => Tensor;

/** Cross-entropy per image against `y`. */
export function crossEntropyLoss(y: Tensor): ImageLoss {
  return (logits) => crossEntropy(logits, y, { reduction: 'none' });
}

/**
 * The margin z_y - max_{c != y} z_c per image ([N]); negative once misclassified.
 * With `target`, z_y - z_target.
 */
export function margin(logits: Tensor, y: Tensor, target?: Tensor): Tensor {
  return scope(() => {
    const zy = logits.gather(1, y.reshape([-1, 1])).reshape([-1]);
    if (target) return zy.sub(logits.gather(1, target.reshape([-1, 1])).reshape([-1]));
    const others = logits.scatter(1, y.reshape([-1, 1]), logits.min(1, { keepDim: true }).sub(1));
    return zy.sub(others.max(1));
  });
}

/**
 * The difference-of-logits-ratio loss of AutoAttack ("Reliable evaluation of
 * adversarial robustness with an ensemble of diverse parameter-free attacks", 2020), per image:
 * -(z_y - max_{c != y} z_c) / (z_pi1 - z_pi3 + 1e-12), with z_pi sorted
 * descending; invariant to shifting and scaling the logits.
 */
export function dlrLoss(y: Tensor): ImageLoss {
  return (logits) => scope(() => {
    const sorted = logits.sort({ dim: 1, descending: true }).values;
    const scale = sorted.select(1, 0).sub(sorted.select(1, 2)).add(1e-12);
    return margin(logits, y).neg().div(scale);
  });
}

/** Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12), per image. */
export function targetedDlrLoss(y: Tensor, target: Tensor): ImageLoss {
  return (logits) => scope(() => {
    const sorted = logits.sort({ dim: 1, descending: true }).values;
    const scale = sorted.select(1, 0).sub(sorted.select(1, 2).add(sorted.select(1, 3)).mul(0.5)).add(1e-12);
    return margin(logits, y, target).neg().div(scale);
  });
}

export interface LossAndGradient {
  /** Logits of x, float32 (or float64), detached. */
  logits: Tensor;
  /** The loss per image [N], detached. */
  loss: Tensor;
  /** Gradient of the summed loss with respect to x (each image's own loss's gradient). */
  grad: Tensor;
}

/** One forward and backward pass: logits, per-image loss and input gradient, for the parameters-frozen model. */
export function lossAndGradient(model: Classifier, x: Tensor, loss: ImageLoss, precision: Precision = DEFAULT_ATTACK_PRECISION): LossAndGradient {
  return enableGrad(() => scope(() => {
    const xr = x.detach().requiresGrad_();
    const logits = lossPrecision(withPrecision(precision, () => model.logits(xr), x.device));
    const l = loss(logits);
    const [g] = grad(l.sum(), xr);
    return { logits: logits.detach(), loss: l.detach(), grad: g as Tensor };
  }));
}

/** Logits without a graph, at the attack's precision and loss precision. */
export function logitsOf(model: Classifier, x: Tensor, precision: Precision = DEFAULT_ATTACK_PRECISION): Tensor {
  return noGrad(() => scope(() => lossPrecision(withPrecision(precision, () => model.logits(x), x.device))));
}

/** Per-image norm of delta ([N, ...] to [N]) in `norm`. */
export function normsOf(delta: Tensor, norm: Norm): Tensor {
  return scope(() => {
    const flat = delta.flatten(1);
    if (norm === 'linf') return flat.abs().max(1);
    return flat.norm(norm === 'l2' ? 2 : 1, 1);
  });
}

/** A per-image value [N] shaped to broadcast over images [N, 1, 1, 1]. */
export function perImage(v: Tensor, like: Tensor): Tensor {
  return v.reshape([like.shape[0] as number, ...new Array<number>(like.rank - 1).fill(1)]);
}

/** Indices (int64 [K]) of the true entries of a boolean [N]. */
export function indicesWhere(mask: Tensor): Tensor {
  return scope(() => {
    const n = mask.shape[0] as number;
    return arange(0, n, 1, { dtype: 'int64' }).maskedSelect(mask);
  });
}

/** Indices of a plain list as an int64 tensor. */
export function indexTensor(indices: readonly number[]): Tensor {
  return tensor([...indices], { dtype: 'int64' });
}

/** A copy of `base` whose rows `index` are `rows` (merging an active subset back). */
export function mergeRows(base: Tensor, index: Tensor, rows: Tensor): Tensor {
  return base.indexCopy(0, index, rows.to(base.dtype));
}

/**
 * One eps from a minimal-perturbation search: each image whose perturbation
 * (measured on the images, in `norm`) fits within its eps (model units,
 * [N, 1, 1, 1] as epsTensor gives it), the clean image elsewhere. The
 * tolerance is that of the registry's many-eps withinEps (relative 1e-6 plus
 * 1e-9 pixel values), so a spec's run() keeps the images the grid keeps.
 */
export function keepWithinEps(model: Classifier, x: Tensor, adversarial: Tensor, eps: Tensor, norm: Norm): Tensor {
  return scope(() => {
    const size = perImage(normsOf(adversarial.sub(x), norm), x);
    const fits = size.le(eps.mul(1 + 1e-6).add(1e-9 * model.pixelScale));
    return where(fits, adversarial, x);
  });
}
