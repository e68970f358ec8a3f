/**
 * The paper's attacks, one function per method, plus the many-eps grid.
 * Every attack takes a Classifier, a batch in its input range and eps in pixel
 * units (0-255, one value or one per image), and returns a new batch.
 */
import type { Tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { FGSM, fgsm } from './fgsm.js';
import { FAST_GRADIENT_L1, FAST_GRADIENT_L2, fastGradientL1, fastGradientL2 } from './fast-gradient.js';
import { STEP_LL, stepLL } from './step-ll.js';
import { STEP_RND, stepRnd } from './step-rnd.js';
import { FAST_PREDICTED, fastPredicted } from './fast-predicted.js';
import { FAST_ENTROPY, fastEntropy } from './fast-entropy.js';
import { KL, klAttack } from './kl.js';
import { RANDOM_NORMAL, RANDOM_SIGN, randomNormal, randomSign } from './random-noise.js';
import { R_STEP_LL, rStepLL } from './r-step-ll.js';
import { basicIter, iterLL, miFgsm, pgd, type IterativeOptions } from './iterative.js';
import { type OneStepMethod, type OneStepOptions, runOneStep } from './one-step.js';

export * from './common.js';
export * from './labels.js';
export * from './one-step.js';
export * from './iterative.js';
export { fgsm, fastGradientL1, fastGradientL2, stepLL, stepRnd, fastPredicted, fastEntropy, klAttack, randomSign, randomNormal, rStepLL };
export { FGSM, FAST_GRADIENT_L1, FAST_GRADIENT_L2, STEP_LL, STEP_RND, FAST_PREDICTED, FAST_ENTROPY, KL, RANDOM_SIGN, RANDOM_NORMAL, R_STEP_LL };

/** One-step methods by name. */
export const ONE_STEP_METHODS = {
  fgsm: FGSM,
  'fast-l2': FAST_GRADIENT_L2,
  'fast-l1': FAST_GRADIENT_L1,
  'step-ll': STEP_LL,
  'step-rnd': STEP_RND,
  'fast-predicted': FAST_PREDICTED,
  'fast-entropy': FAST_ENTROPY,
  kl: KL,
  'random-sign': RANDOM_SIGN,
  'random-normal': RANDOM_NORMAL,
  'r-step-ll': R_STEP_LL,
} as const satisfies Record<string, OneStepMethod>;

export type OneStepName = keyof typeof ONE_STEP_METHODS;

/** Iterative methods by name. */
export const ITERATIVE_METHODS = {
  'basic-iter': basicIter,
  'iter-ll': iterLL,
  pgd,
  'mi-fgsm': miFgsm,
} as const satisfies Record<string, (m: Classifier, x: Tensor, o: IterativeOptions) => Tensor>;

export type IterativeName = keyof typeof ITERATIVE_METHODS;
export type MethodName = OneStepName | IterativeName;

export const METHOD_NAMES: readonly MethodName[] = [
  ...(Object.keys(ONE_STEP_METHODS) as OneStepName[]),
  ...(Object.keys(ITERATIVE_METHODS) as IterativeName[]),
];

/** Looks a method up by name; an unknown name is an error listing the known ones. */
export function attackByName(name: string): (model: Classifier, x: Tensor, opts: OneStepOptions & IterativeOptions) => Tensor {
  if (name in ONE_STEP_METHODS) {
    const m = ONE_STEP_METHODS[name as OneStepName];
    return (model, x, opts) => runOneStep(model, x, m, opts);
  }
  if (name in ITERATIVE_METHODS) return ITERATIVE_METHODS[name as IterativeName];
  throw new Error(`unknown attack method '${name}': expected one of ${METHOD_NAMES.join(', ')}`);
}
