/**
 * Every attack, one function per method, and the registry that names them.
 * Every attack takes a Classifier, a batch in its input range and eps in pixel
 * units (0-255, one value or one per image), and returns a new batch.
 */
import { attackNames } from './registry.js';

// The pieces an attack of one's own is made of; argument checks and step helpers stay internal.
export type { AttackOptions, AttackProgress, Eps, Norm } from './common.js';
export { DEFAULT_ATTACK_PRECISION, MAX_EPS, checkEps, clipToRange, crossEntropySum, epsPixels, epsTensor, inputGradient, maxEpsFor, project, unitStep } from './common.js';
export * from './labels.js';
export * from './one-step.js';
export * from './iterative.js';
export * from './batch.js';
export * from './registry.js';
export * from './suite.js';
export { fgsm, FGSM } from './fgsm.js';
export { fastGradientL1, fastGradientL2, FAST_GRADIENT_L1, FAST_GRADIENT_L2 } from './fast-gradient.js';
export { stepLL, STEP_LL } from './step-ll.js';
export { stepRnd, STEP_RND } from './step-rnd.js';
export { fastPredicted, FAST_PREDICTED } from './fast-predicted.js';
export { fastEntropy, FAST_ENTROPY } from './fast-entropy.js';
export { klAttack, KL } from './kl.js';
export { randomSign, randomNormal, RANDOM_SIGN, RANDOM_NORMAL } from './random-noise.js';
export { rStepLL, R_STEP_LL } from './r-step-ll.js';

/** A registered attack's name (the registry checks it at run time). */
export type MethodName = string;

/** Names of every registered attack, in registration order. */
export const METHOD_NAMES: readonly MethodName[] = attackNames();
export { apgdCe, apgdDlr, apgdTargeted, apgdCheckpoints, APGD_CE, APGD_DLR, APGD_T } from './apgd.js';
export { fab, fabTargeted, FAB, FAB_T } from './fab.js';
export { hopSkipJump, HOP_SKIP_JUMP } from './hop-skip-jump.js';
export { squareAttack, squareSearch, SQUARE } from './square.js';
export { deepFool, DEEPFOOL } from './deepfool.js';
export { carliniWagnerL2, CW_L2 } from './cw.js';
