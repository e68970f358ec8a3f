/**
 * Step l.l., the one-step least-likely class method:
 * X_adv = clip(X - eps sign(grad_X J(X, y_LL))), y_LL = argmin_y p(y|X).
 * The method the paper recommends for adversarial training.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type GradientMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const STEP_LL: GradientMethod = { kind: 'gradient', name: 'step-ll', objective: 'crossEntropy', label: 'leastLikely', sense: -1, norm: 'linf' };

export function stepLL(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, STEP_LL, opts);
}
