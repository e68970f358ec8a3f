/**
 * Fast predicted class: FGSM with the model's prediction y_pred = argmax p(y|X)
 * in place of the true label, so no label leaks.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type GradientMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const FAST_PREDICTED: GradientMethod = {
  kind: 'gradient', name: 'fast-predicted', objective: 'crossEntropy', label: 'predicted', sense: 1, norm: 'linf',
};

export function fastPredicted(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, FAST_PREDICTED, opts);
}
