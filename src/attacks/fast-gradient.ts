/**
 * Fast gradient methods in L2 and L1: X_adv = clip(X + eps g / ||g||_p), with
 * g = grad_X J(X, y_true), normalised per image. The L1 variant follows the
 * paper's formula (divide by the L1 norm). Libraries differ here: cleverhans'
 * L1 instead moves only the coordinate(s) of largest |g| (the steepest-ascent
 * direction under an L1 budget). We keep the paper's definition so results
 * compare with its tables; its perturbation is spread thin (each pixel moves
 * eps |g_i| / sum |g|), which is why fast grad. L1 is so weak in the paper.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type GradientMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const FAST_GRADIENT_L2: GradientMethod = {
  kind: 'gradient', name: 'fast-l2', objective: 'crossEntropy', label: 'true', sense: 1, norm: 'l2',
};
export const FAST_GRADIENT_L1: GradientMethod = {
  kind: 'gradient', name: 'fast-l1', objective: 'crossEntropy', label: 'true', sense: 1, norm: 'l1',
};

/** Fast gradient L2: the perturbation has L2 norm eps (in pixel units) per image, before clipping. */
export function fastGradientL2(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, FAST_GRADIENT_L2, opts);
}

/** Fast gradient L1: the perturbation has L1 norm eps (in pixel units) per image, before clipping. */
export function fastGradientL1(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, FAST_GRADIENT_L1, opts);
}
