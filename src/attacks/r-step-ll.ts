/**
 * R+Step-LL: a random sign step of alpha = eps / 2, then step l.l. of
 * eps - alpha from there (Tramèr et al.'s method that defeats one-step
 * adversarial training): X' = clip(X + alpha sign(N)),
 * X_adv = clip(X' - (eps - alpha) sign(grad_X' J(X', y_LL))), y_LL from the clean X.
 */
import { type Tensor, randn, scope } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { applyStep, crossEntropySum, inputGradient } from './common.js';
import { chooseLabels } from './labels.js';
import { type OneStepOptions, type PerEpsMethod, runOneStep } from './one-step.js';

export const R_STEP_LL: PerEpsMethod = {
  kind: 'perEps',
  name: 'r-step-ll',
  run: ({ model, x, opts }, eps) =>
    scope(() => {
      const labels = chooseLabels(model, x, opts.label ?? 'leastLikely', { y: opts.y, generator: opts.generator });
      const alpha = eps.mul(0.5);
      const noisy = applyStep(model, x, randn(x.shape, { generator: opts.generator, dtype: x.dtype }).sign(), alpha);
      const g = inputGradient(model, noisy, crossEntropySum(labels), opts.precision);
      return applyStep(model, noisy, g.sign(), eps.sub(alpha), -1);
    }),
};

export function rStepLL(model: Classifier, x: Tensor, opts: OneStepOptions): Tensor {
  return runOneStep(model, x, R_STEP_LL, opts);
}
