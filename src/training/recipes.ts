/**
 * The hardening recipes, all on Algorithm 1's loop (k of m adversarial,
 * lambda, eps per example, delay, data-parallel, bf16, exact resume):
 *
 * - algorithm-1: the paper's; the k adversarial examples from the current
 *   model with step l.l., loss (sum clean + lambda sum adv) / ((m - k) + lambda k).
 * - ensemble: ensemble adversarial training. For each batch the source of the
 *   k adversarial examples is drawn uniformly from the static source models
 *   and the current one (as the reference code draws it per batch); sources
 *   run in inference mode and are never updated. Same loss.
 * - pgd-at: PGD adversarial training. The adversarial examples from PGD with
 *   a uniform random start; with k = m and any lambda the loss is the mean
 *   cross-entropy on them, min_theta E max_delta L(x + delta, y).
 * - trades: L = 1/m sum_i CE(f(x_i), y_i) + beta / k sum_{i<k} KL(f(x_i) || f(x'_i)),
 *   x'_i maximising that KL in the ball by sign-gradient steps from x + 0.001 N(0, I)
 *   (in units of the range). k = m is the published method.
 * - fast-at: fast adversarial training. RS-FGSM (a uniform random start, one
 *   step of 1.25 eps, projected); mean cross-entropy with k = m. Prone to
 *   catastrophic overfitting: see guard.ts.
 */
import { type Generator, type Precision, type Tensor, crossEntropy, enableGrad, grad, klDiv, lossPrecision, noGrad, randn, scope, withPrecision } from '../engine/index.js';
import type { MethodName } from '../attacks/index.js';
import { epsTensor, project } from '../attacks/common.js';
import type { Classifier } from '../models/classifier.js';

export type RecipeName = 'algorithm-1' | 'ensemble' | 'pgd-at' | 'trades' | 'fast-at';

export interface Recipe {
  name: RecipeName;
  /** One line for help texts. */
  summary: string;
  /** The attack that makes the adversarial examples when none is given (TRADES has its own). */
  method: MethodName | null;
  /** lambda when none is given. */
  lambda: number;
}

export const RECIPES: Record<RecipeName, Recipe> = {
  'algorithm-1': { name: 'algorithm-1', summary: "the paper's Algorithm 1: k of m from the current model (step l.l.), lambda 0.3", method: 'step-ll', lambda: 0.3 },
  ensemble: { name: 'ensemble', summary: 'ensemble adversarial training: each batch\'s adversarial examples from a static source model or the current one, drawn uniformly', method: 'step-ll', lambda: 0.3 },
  'pgd-at': { name: 'pgd-at', summary: 'PGD adversarial training: every example from PGD with a random start (k = m)', method: 'pgd', lambda: 1 },
  trades: { name: 'trades', summary: 'TRADES: clean cross-entropy + beta KL(clean || adversarial), the adversarial point maximising the KL', method: null, lambda: 1 },
  'fast-at': { name: 'fast-at', summary: 'fast adversarial training: RS-FGSM, one step of 1.25 eps from a uniform random start (k = m)', method: 'rs-fgsm', lambda: 1 },
};

export const RECIPE_NAMES = Object.keys(RECIPES) as RecipeName[];

/** The recipe named `name`; an unknown name is an error listing the known ones. */
export function recipe(name: string): Recipe {
  const r = (RECIPES as Record<string, Recipe | undefined>)[name];
  if (!r) throw new Error(`unknown recipe '${name}': expected one of ${RECIPE_NAMES.join(', ')}`);
  return r;
}

/** TRADES' published defaults (its CIFAR-10 settings; its MNIST ones are beta 1, 40 steps of 0.01 at eps 0.3). */
export const TRADES_DEFAULTS = { beta: 6, steps: 10, stepOfEps: 0.007 / 0.031, start: 0.001 } as const;

/** Per-example KL(p || q) from logits: sum_c p_c (log p_c - log q_c). */
export function klPerExample(pLogits: Tensor, qLogits: Tensor): Tensor {
  return scope(() => klDiv(qLogits.logSoftmax(1), pLogits.logSoftmax(1), { reduction: 'none', logTarget: true }).sum(1));
}

/**
 * TRADES' loss on a minibatch: the mean cross-entropy of the clean logits
 * (all m) plus beta times the mean KL from the clean to the adversarial
 * prediction of the first k. Returns the loss and the mean KL.
 */
export function tradesLoss(clean: Tensor, adversarial: Tensor | null, y: Tensor, beta: number, labelSmoothing = 0): { loss: Tensor; kl: Tensor | null } {
  return scope(() => {
    const ce = crossEntropy(clean, y, { labelSmoothing });
    if (!adversarial) return { loss: ce, kl: null };
    const k = adversarial.shape[0] as number;
    const kl = klPerExample(clean.narrow(0, 0, k), adversarial).mean();
    return { loss: ce.add(kl.mul(beta)), kl: kl.detach() };
  });
}

export interface TradesAttackOptions {
  /** eps per example, pixel units. */
  eps: number[];
  /** Sign-gradient steps (default 10). */
  steps?: number;
  /** Step size in pixel units (default 0.007 / 0.031 of each example's eps, the published ratio). */
  stepSize?: number;
  generator?: Generator;
  precision?: Precision;
}

/**
 * TRADES' inner maximisation: from x + 0.001 N(0, I) (in units of the
 * model's range), `steps` sign-gradient steps up KL(f(x) || f(x')),
 * each projected onto the L-inf ball and the range, in inference mode.
 */
export function tradesAdversarial(model: Classifier, x: Tensor, o: TradesAttackOptions): Tensor {
  const steps = o.steps ?? TRADES_DEFAULTS.steps;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`TRADES attack steps must be a positive integer, got ${steps}`);
  if (o.stepSize !== undefined && !(o.stepSize > 0 && Number.isFinite(o.stepSize))) throw new Error(`TRADES attack step size must be a positive number of pixel values, got ${o.stepSize}`);
  return model.inMode(false, () => scope(() => {
    const { eps } = epsTensor(model, x, o.eps);
    const alpha = o.stepSize === undefined ? eps.mul(TRADES_DEFAULTS.stepOfEps) : o.stepSize * model.pixelScale;
    const clean = x.detach();
    const target = noGrad(() => lossPrecision(withPrecision(o.precision ?? 'fp32', () => model.logits(clean), x.device)));
    const range = model.inputRange[1] - model.inputRange[0];
    let xAdv = noGrad(() => project(model, clean, clean.add(randn(x.shape, { generator: o.generator, dtype: x.dtype }).mul(TRADES_DEFAULTS.start * range)), eps, 'linf'));
    for (let i = 0; i < steps; i++) {
      const next = scope(() => {
        const g = enableGrad(() => scope(() => {
          const xr = xAdv.detach().requiresGrad_();
          const logits = lossPrecision(withPrecision(o.precision ?? 'fp32', () => model.logits(xr), x.device));
          return grad(klPerExample(target, logits).sum(), xr)[0] as Tensor;
        }));
        return noGrad(() => project(model, clean, xAdv.add(g.sign().mul(alpha)), eps, 'linf'));
      });
      xAdv.dispose();
      xAdv = next;
    }
    return xAdv;
  }));
}
