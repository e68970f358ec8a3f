/**
 * The paper's random baselines: X + eps sign(N), N ~ Normal(0, I) (random
 * sign perturbation), and X + T, T truncated normal with mean 0 and std eps
 * per pixel, truncated at two standard deviations as TensorFlow's
 * truncated_normal (random normal perturbation). Both clipped to the range.
 */
import { type Tensor, randn, scope, truncatedNormal } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type DirectionMethod, type OneStepOptions, runOneStep } from './one-step.js';

export const RANDOM_SIGN: DirectionMethod = {
  kind: 'direction',
  name: 'random-sign',
  direction: ({ x, opts }) => scope(() => randn(x.shape, { generator: opts.generator, dtype: x.dtype }).sign()),
};

export const RANDOM_NORMAL: DirectionMethod = {
  kind: 'direction',
  name: 'random-normal',
  direction: ({ x, opts }) => truncatedNormal(x.shape, { std: 1, low: -2, high: 2, generator: opts.generator, dtype: x.dtype }),
};

export function randomSign(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, RANDOM_SIGN, opts);
}

export function randomNormal(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, RANDOM_NORMAL, opts);
}
