/**
 * Step rnd., the one-step random class method: as step l.l. with the target
 * drawn uniformly among the classes other than the prediction.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type GradientMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const STEP_RND: GradientMethod = { kind: 'gradient', name: 'step-rnd', objective: 'crossEntropy', label: 'random', sense: -1, norm: 'linf' };

export function stepRnd(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, STEP_RND, opts);
}
