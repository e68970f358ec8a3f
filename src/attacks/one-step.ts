/**
 * The machinery behind every one-step method: a method is described by how its
 * unit direction is obtained (the gradient of a loss for a label source, random
 * noise, or a method-specific rule), and X_adv = clip(X + eps * direction).
 * Because eps only scales the direction, `oneStepGrid` makes every eps (and
 * every method sharing a gradient) from one backward pass.
 */
import { Generator, type Tensor, resolvePrecision, scope } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import {
  type AttackOptions, DEFAULT_ATTACK_PRECISION, type Eps, type Norm, applyStep, checkInputs, crossEntropySum, epsTensor, inputGradient,
  unitStep,
} from './common.js';
import { type LabelSource, chooseLabels } from './labels.js';

/** What the gradient is taken of. */
export type Objective = 'crossEntropy' | 'entropy';

/** A method whose direction is the normalised gradient of an objective. */
export interface GradientMethod {
  kind: 'gradient';
  name: string;
  objective: Objective;
  /** Label source for cross-entropy (ignored for entropy). */
  label: LabelSource;
  /** +1 ascends the loss (untargeted), -1 descends it towards a target class. */
  sense: 1 | -1;
  norm: Norm;
}

/** Context a custom direction gets: the model, the batch, labels and options. */
export interface DirectionContext {
  model: Classifier;
  x: Tensor;
  opts: AttackOptions & { label?: LabelSource | Tensor };
}

/** A method whose unit direction is computed by its own rule, independent of eps. */
export interface DirectionMethod {
  kind: 'direction';
  name: string;
  /** Unit direction (scaled by eps, then clipped); may draw from opts.generator. */
  direction(ctx: DirectionContext): Tensor;
}

/** A one-step method whose result depends on eps other than by scaling (computed per eps). */
export interface PerEpsMethod {
  kind: 'perEps';
  name: string;
  run(ctx: DirectionContext, eps: Tensor): Tensor;
}

export type OneStepMethod = GradientMethod | DirectionMethod | PerEpsMethod;

/** Options of a one-step attack: the common ones, and the label source for gradient methods. */
export interface OneStepOptions extends AttackOptions {
  /** Overrides the method's label source (e.g. FGSM with the predicted label). */
  label?: LabelSource | Tensor;
}

/** The raw gradient a gradient method needs (before normalisation). */
function objectiveGradient(model: Classifier, x: Tensor, m: GradientMethod, opts: OneStepOptions): Tensor {
  if (m.objective === 'entropy') {
    return inputGradient(model, x, (logits) => {
      const logp = logits.logSoftmax(1);
      return logp.exp().mul(logp).sum().neg();
    }, opts.precision);
  }
  const source = opts.label ?? m.label;
  if (source === 'predicted' || source === 'leastLikely' || source === 'random') {
    // Labels come from a float32 prediction. At fp32 that is the gradient's own forward pass: take them from
    // its logits and save a pass (in bfloat16 they still come from a float32 pass of their own).
    if (resolvePrecision(opts.precision ?? DEFAULT_ATTACK_PRECISION, x.device) === 'fp32') {
      return inputGradient(model, x, (logits) => {
        const labels = chooseLabels(model, x, source, { generator: opts.generator, logits: logits.detach() });
        return crossEntropySum(labels)(logits);
      }, 'fp32');
    }
  }
  const labels = chooseLabels(model, x, source, { y: opts.y, generator: opts.generator });
  try {
    return inputGradient(model, x, crossEntropySum(labels), opts.precision);
  } finally {
    labels.dispose();
  }
}

/** Runs one one-step method for one eps (scalar or per image). */
export function runOneStep(model: Classifier, x: Tensor, method: OneStepMethod, opts: OneStepOptions): Tensor {
  checkInputs(model, x, opts);
  return scope(() => {
    const { eps } = epsTensor(model, x, opts.eps);
    return model.inMode(opts.training ?? false, () => {
      const ctx: DirectionContext = { model, x, opts };
      if (method.kind === 'perEps') return method.run(ctx, eps);
      const direction = unitDirection(ctx, method);
      return applyStep(model, x, direction, eps);
    });
  });
}

/** The eps-free unit direction of a gradient or direction method, with its sense folded in. */
function unitDirection(ctx: DirectionContext, method: GradientMethod | DirectionMethod): Tensor {
  if (method.kind === 'direction') return method.direction(ctx);
  return scope(() => {
    const g = objectiveGradient(ctx.model, ctx.x, method, ctx.opts);
    const d = unitStep(g, method.norm);
    return method.sense === 1 ? d : d.neg();
  });
}

/** Key under which gradient methods share one backward pass. */
function shareKey(m: GradientMethod, label: LabelSource | Tensor | undefined): string | null {
  if (label !== undefined && typeof label !== 'string') return null;
  if (m.objective === 'entropy') return 'entropy';
  const source = label ?? m.label;
  // Random targets are drawn per method: sharing them would couple methods.
  return source === 'random' ? null : `crossEntropy:${source}`;
}

export interface GridOptions extends Omit<OneStepOptions, 'eps' | 'generator'> {
  /** eps values in pixel units; each a number or one per image. */
  eps: Eps[];
  /**
   * Seed for methods that draw random numbers: each such method gets a fresh
   * generator with this seed, so its results equal single calls made with
   * `generator: new Generator(seed)`.
   */
  seed?: number;
}

/**
 * Adversarial batches for every (method, eps) pair from as few backward passes
 * as the methods allow: one per distinct (objective, label) among gradient
 * methods, one per direction method, whatever the number of eps values.
 * Returns, per method name, one tensor per eps in the order given.
 */
export function oneStepGrid(model: Classifier, x: Tensor, methods: OneStepMethod[], opts: GridOptions): Map<string, Tensor[]> {
  checkInputs(model, x, opts);
  if (!Array.isArray(opts.eps) || opts.eps.length === 0) throw new Error('eps must be a non-empty list of eps values');
  const names = new Set<string>();
  for (const m of methods) {
    if (names.has(m.name)) throw new Error(`method '${m.name}' is listed twice`);
    names.add(m.name);
  }
  const epsList = opts.eps.map((e, i) => epsTensor(model, x, e, `eps[${i}]`).eps.keep());
  const result = new Map<string, Tensor[]>();
  try {
    model.inMode(opts.training ?? false, () => {
      const gradients = new Map<string, Tensor>();
      try {
        for (const m of methods) {
          const generator = opts.seed === undefined ? undefined : new Generator(opts.seed);
          const ctx: DirectionContext = { model, x, opts: { ...opts, eps: 0, generator } };
          if (m.kind === 'perEps') {
            result.set(m.name, epsList.map((eps) => {
              // A fresh stream per eps, as a single call with that seed would have.
              const g = opts.seed === undefined ? undefined : new Generator(opts.seed);
              return scope(() => m.run({ ...ctx, opts: { ...ctx.opts, generator: g } }, eps));
            }));
            continue;
          }
          let direction: Tensor;
          const key = m.kind === 'gradient' ? shareKey(m, opts.label) : null;
          if (m.kind === 'gradient' && key !== null) {
            let g = gradients.get(key);
            if (!g) {
              g = objectiveGradient(model, x, m, ctx.opts).keep();
              gradients.set(key, g);
            }
            const gg = g;
            direction = scope(() => (m.sense === 1 ? unitStep(gg, m.norm) : unitStep(gg, m.norm).neg()));
          } else {
            direction = unitDirection(ctx, m);
          }
          result.set(m.name, epsList.map((eps) => applyStep(model, x, direction, eps)));
          direction.dispose();
        }
      } finally {
        for (const g of gradients.values()) g.dispose();
      }
    });
  } catch (e) {
    for (const ts of result.values()) for (const t of ts) t.dispose();
    throw e;
  } finally {
    for (const e of epsList) e.dispose();
  }
  return result;
}
