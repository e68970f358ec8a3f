/**
 * Fast entropy: X_adv = clip(X + eps sign(grad_X H(p(.|X)))), H the entropy
 * of the prediction. Label-free: it makes the model less certain.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type GradientMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const FAST_ENTROPY: GradientMethod = { kind: 'gradient', name: 'fast-entropy', objective: 'entropy', label: 'predicted', sense: 1, norm: 'linf' };

export function fastEntropy(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, FAST_ENTROPY, opts);
}
