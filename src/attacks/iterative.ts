/**
 * Iterative methods: a loop over a one-step step and a projection onto the eps
 * ball and the valid range after every step.
 *   basic iter.: X_{n+1} = Clip_{X,eps}(X_n + alpha sign(grad J(X_n, y_true)))
 *   iter. l.l.:  X_{n+1} = Clip_{X,eps}(X_n - alpha sign(grad J(X_n, y_LL))), y_LL fixed from the clean X
 *   PGD:         basic iter. from a random start: uniform in the L-inf cube of side 2 eps,
 *                projected onto the ball (for L2 and L1 not uniform in the ball)
 *   MI-FGSM:     g_{n+1} = mu g_n + grad / ||grad||_1, X_{n+1} = Clip_{X,eps}(X_n + alpha sign(g_{n+1}))
 *   RS-FGSM:     one step of 1.25 eps (per image) from a uniform random start in the L-inf ball,
 *                projected: the attack of fast adversarial training
 */
import { type Tensor, noGrad, rand, scope, zerosLike } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import {
  type AttackOptions, type Norm, checkInputs, crossEntropySum, epsPixels, epsTensor, inputGradient, positiveInteger, project, unitStep,
} from './common.js';
import { indexTensor, logitsOf, mergeRows } from './batch.js';
import { type LabelSource, chooseLabels } from './labels.js';

export interface IterativeOptions extends AttackOptions {
  /** Step size in pixel units (default 1, the paper's alpha). */
  alpha?: number;
  /** Number of steps (default: basic iter. and iter. l.l. the paper's min(eps + 4, 1.25 eps), rounded up, for the largest eps; PGD and MI-FGSM 10). */
  steps?: number;
  /** Label source; each method has its own default. */
  label?: LabelSource;
  /**
   * Start from a uniform random point of the L-inf ball of radius eps, for L2
   * and L1 then projected onto their ball (not uniform in it; default: PGD and
   * RS-FGSM yes, the others no).
   */
  randomStart?: boolean;
}

/**
 * The most steps of an iterative method that `advml attack`, `advml eval` and
 * `advml serve` accept: each step is a forward and a backward pass, so an
 * unbounded count from a user or a request could run until killed. The
 * library itself takes any count. 1000 is well past the defaults (at most
 * 259, the paper's count at eps 255) and the 100-200 of strong PGD evaluations.
 */
export const MAX_ATTACK_STEPS = 1000;

/** The paper's iteration count for eps in pixel units: ceil(min(eps + 4, 1.25 eps)). */
export function paperSteps(epsPixels: number): number {
  return Math.ceil(Math.min(epsPixels + 4, 1.25 * epsPixels));
}

interface LoopSpec {
  name: string;
  label: LabelSource;
  sense: 1 | -1;
  norm: Norm;
  randomStart: boolean;
  momentum: number | null;
  /** Step size: pixel units for every image, or a multiple of each image's own eps. */
  defaultAlpha: (epsMax: number, steps: number) => number | { ofEps: number };
  defaultSteps: (epsMax: number) => number;
}

function checkCount(name: string, v: number, integer: boolean): void {
  if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
    throw new Error(`${name} must be a ${integer ? 'non-negative integer' : 'non-negative number'}, got ${v}`);
  }
}

function iterate(model: Classifier, x: Tensor, spec: LoopSpec, opts: IterativeOptions): Tensor {
  checkInputs(model, x, opts);
  return scope(() => {
    const { eps, maxPixels } = epsTensor(model, x, opts.eps, 'eps', spec.norm);
    const steps = opts.steps ?? spec.defaultSteps(maxPixels);
    checkCount('steps', steps, true);
    const chosen = opts.alpha ?? spec.defaultAlpha(maxPixels, steps);
    const alphaPixels = typeof chosen === 'number' ? chosen : chosen.ofEps;
    checkCount(typeof chosen === 'number' ? 'alpha' : 'alpha (a multiple of eps)', alphaPixels, false);
    // A scalar step in the model's units, or a per-image column of them.
    const alpha = typeof chosen === 'number' ? chosen * model.pixelScale : eps.mul(chosen.ofEps);
    return model.inMode(opts.training ?? false, () => {
      const labels = chooseLabels(model, x, opts.label ?? spec.label, { y: opts.y, generator: opts.generator });
      const clean = x.detach();
      let xAdv = clean;
      if (opts.randomStart ?? spec.randomStart) {
        xAdv = noGrad(() => scope(() => {
          const u = rand(x.shape, { generator: opts.generator, dtype: x.dtype }).mul(2).sub(1);
          // Uniform in the L-inf ball; for L2/L1 the projection brings it inside the ball.
          return project(model, clean, clean.add(u.mul(eps)), eps, spec.norm);
        }));
      }
      // The accumulated gradient of MI-FGSM, carried across steps.
      let velocity: Tensor | null = spec.momentum === null ? null : zerosLike(x).keep();
      try {
        for (let i = 0; i < steps; i++) {
          const next = scope(() => {
            const g = inputGradient(model, xAdv, crossEntropySum(labels), opts.precision);
            let direction: Tensor;
            if (velocity !== null) {
              const previous: Tensor = velocity;
              const v = noGrad(() => previous.mul(spec.momentum as number).add(unitStep(g, 'l1'))).keep();
              previous.dispose();
              velocity = v;
              direction = v.sign();
            } else {
              direction = unitStep(g, spec.norm);
            }
            const move = typeof alpha === 'number' ? direction.mul(spec.sense * alpha) : direction.mul(alpha).mul(spec.sense);
            return noGrad(() => project(model, clean, xAdv.add(move), eps, spec.norm));
          });
          if (xAdv !== clean) xAdv.dispose();
          xAdv = next;
          opts.onProgress?.({ attack: spec.name, step: i + 1, steps, active: x.shape[0] as number });
        }
      } finally {
        velocity?.dispose();
      }
      return xAdv === clean ? clean.clone() : xAdv;
    });
  });
}

const paperAlpha = (): number => 1;

/** Basic iterative method (the paper's "basic iter."): alpha 1 pixel, min(eps + 4, 1.25 eps) steps, true label. */
export function basicIter(model: Classifier, x: Tensor, opts: IterativeOptions): Tensor {
  return iterate(model, x, { name: 'basic-iter', label: 'true', sense: 1, norm: 'linf', randomStart: false, momentum: null, defaultAlpha: paperAlpha, defaultSteps: paperSteps }, opts);
}

/** Iterative least-likely class method ("iter. l.l."): descends towards y_LL chosen on the clean image. */
export function iterLL(model: Classifier, x: Tensor, opts: IterativeOptions): Tensor {
  return iterate(model, x, { name: 'iter-ll', label: 'leastLikely', sense: -1, norm: 'linf', randomStart: false, momentum: null, defaultAlpha: paperAlpha, defaultSteps: paperSteps }, opts);
}

export interface PgdOptions extends IterativeOptions {
  /** Ball and step norm (default 'linf'). */
  norm?: Norm;
  /** Runs from fresh random starts on the images still unbroken (default 1). */
  restarts?: number;
}

/**
 * PGD: a random start (uniform in the L-inf ball; for L2 and L1 that point
 * projected onto their ball), then projected steps; defaults 10
 * steps of 2.5 eps / 10. With `restarts` > 1, each further run starts afresh
 * (the same random stream, drawn on) on the images no earlier run has
 * misclassified (which needs the true labels y); each image keeps the first
 * run's result that misclassifies it, else the last run's.
 */
export function pgd(model: Classifier, x: Tensor, opts: PgdOptions): Tensor {
  const spec: LoopSpec = {
    name: 'pgd', label: 'true', sense: 1, norm: opts?.norm ?? 'linf', randomStart: true, momentum: null,
    defaultAlpha: (e, s) => (2.5 * e) / Math.max(s, 1), defaultSteps: () => 10,
  };
  const restarts = positiveInteger('restarts', opts?.restarts ?? 1);
  if (restarts === 1) return iterate(model, x, spec, opts);
  checkInputs(model, x, opts);
  const y = opts.y;
  if (!y) throw new Error('pgd with restarts needs the true labels y (a restart runs on the images still classified correctly): pass y');
  const eps = epsPixels(x, opts.eps, 'eps', spec.norm);
  let out = iterate(model, x, spec, opts);
  for (let r = 1; r < restarts; r++) {
    const next = scope(() => {
      const correct = model.inMode(opts.training ?? false, () => logitsOf(model, out, opts.precision).argmax(1).eq(y));
      const still = Array.from(correct.dataSync() as Uint8Array).flatMap((c, i) => (c ? [i] : []));
      if (still.length === 0) return null;
      const idx = indexTensor(still);
      const again = iterate(model, x.indexSelect(0, idx), spec, { ...opts, y: y.indexSelect(0, idx), eps: still.map((i) => eps[i] as number) });
      return mergeRows(out, idx, again);
    });
    if (next === null) break;
    out.dispose();
    out = next;
  }
  return out;
}

/**
 * RS-FGSM, the attack of fast adversarial training: a uniform random start
 * in the L-inf ball, one FGSM step of 1.25 eps (each image's own eps), and
 * the projection back onto the ball. `alpha` (pixel units) overrides the
 * step; `randomStart: false` gives FGSM with a step of `alpha`, clipped to the ball.
 */
export function rsFgsm(model: Classifier, x: Tensor, opts: IterativeOptions): Tensor {
  if (opts?.steps !== undefined && opts.steps !== 1) throw new Error(`rs-fgsm takes one step, got steps ${opts.steps}`);
  return iterate(model, x, {
    name: 'rs-fgsm', label: 'true', sense: 1, norm: 'linf', randomStart: true, momentum: null,
    defaultAlpha: () => ({ ofEps: RS_FGSM_STEP }), defaultSteps: () => 1,
  }, opts);
}

/** RS-FGSM's step as a multiple of eps (1.25, fast adversarial training's). */
export const RS_FGSM_STEP = 1.25;

export interface MomentumOptions extends IterativeOptions {
  /** Decay of the accumulated gradient (default 1). */
  decay?: number;
}

/** Momentum iterative FGSM: defaults 10 steps of eps / 10, decay 1. */
export function miFgsm(model: Classifier, x: Tensor, opts: MomentumOptions): Tensor {
  const decay = opts?.decay ?? 1;
  checkCount('decay', decay, false);
  return iterate(model, x, {
    name: 'mi-fgsm', label: 'true', sense: 1, norm: 'linf', randomStart: false, momentum: decay,
    defaultAlpha: (e, s) => e / Math.max(s, 1), defaultSteps: () => 10,
  }, opts);
}
