/**
 * The label-free method the paper recommends, in the style of virtual
 * adversarial training: from a small random start r = xi d / ||d||_2,
 * d ~ N(0, I), take g = grad_r KL(p(.|X) || p(.|X + r)) and step
 * X_adv = clip(X + eps sign(g)). The clean prediction is the fixed target.
 * xi defaults to one pixel value: with float32 logits a much smaller start
 * leaves the gradient in rounding noise.
 */
import { type Precision, type Tensor, enableGrad, grad, klDiv, lossPrecision, randn, scope, withPrecision } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { logitsOf } from './batch.js';
import { DEFAULT_ATTACK_PRECISION } from './common.js';
import type { DirectionMethod, OneStepOptions } from './one-step.js';
import { runOneStep } from './one-step.js';

export interface KlOptions extends OneStepOptions {
  /** Size of the random start in pixel units (default 1). */
  xi?: number;
}

/**
 * The sign of the KL gradient at the random start. Both forward passes run at `precision`, as every
 * attack's do; the log-softmaxes and the KL are taken in float32 (lossPrecision), where the small
 * difference a start of xi makes is not lost to bfloat16 rounding.
 */
export function klDirection(model: Classifier, x: Tensor, xiPixels: number, generator?: OneStepOptions['generator'], precision: Precision = DEFAULT_ATTACK_PRECISION): Tensor {
  if (!(xiPixels > 0) || !Number.isFinite(xiPixels)) throw new Error(`xi must be a positive number of pixel values, got ${xiPixels}`);
  return enableGrad(() => scope(() => {
    const clean = logitsOf(model, x, precision).logSoftmax(1);
    const d = randn(x.shape, { generator, dtype: x.dtype });
    const unit = d.div(d.flatten(1).norm(2, 1, { keepDim: true }).reshape([x.shape[0] as number, 1, 1, 1]).clamp(1e-30));
    const r = unit.mul(xiPixels * model.pixelScale).requiresGrad_();
    const adv = lossPrecision(withPrecision(precision, () => model.logits(x.detach().add(r)), x.device)).logSoftmax(1);
    // KL(p_clean || p_adv) = sum p_clean (log p_clean - log p_adv), summed over the batch.
    const [g] = grad(klDiv(adv, clean, { reduction: 'sum', logTarget: true }), r);
    return (g as Tensor).sign();
  }));
}

export function klMethod(xi = 1): DirectionMethod {
  return { kind: 'direction', name: 'kl', direction: ({ model, x, opts }) => klDirection(model, x, xi, opts.generator, opts.precision) };
}

export const KL: DirectionMethod = klMethod();

/** One step along the sign of the KL gradient from a random start; no label used. */
export function klAttack(model: Classifier, x: Tensor, opts: KlOptions): Tensor {
  return runOneStep(model, x, opts?.xi === undefined ? KL : klMethod(opts.xi), opts);
}
