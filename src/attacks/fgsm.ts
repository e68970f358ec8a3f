/**
 * FGSM, the fast gradient sign method: X_adv = clip(X + eps sign(grad_X J(X, y_true))).
 * With the true label it leaks the label into adversarial training; see
 * fastPredicted and stepLL for label-free variants.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type GradientMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const FGSM: GradientMethod = { kind: 'gradient', name: 'fgsm', objective: 'crossEntropy', label: 'true', sense: 1, norm: 'linf' };

/** FGSM on the batch x (in the classifier's input range), eps in pixel units. Needs `y` unless `label` says otherwise. */
export function fgsm(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, FGSM, opts);
}
