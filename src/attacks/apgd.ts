/**
 * Auto-PGD ("Reliable evaluation of adversarial robustness with an ensemble
 * of diverse parameter-free attacks", 2020, Algorithm 1), L-inf and L2, on
 * the cross-entropy (APGD-CE), the DLR loss (APGD-DLR) and the targeted DLR
 * loss towards each of the 9 most likely other classes (APGD-T):
 *   x(1)   = P(x(0) + eta dir(grad f(x(0))))
 *   z(k+1) = P(x(k) + eta(k) dir(grad f(x(k))))
 *   x(k+1) = P(x(k) + alpha (z(k+1) - x(k)) + (1 - alpha)(x(k) - x(k-1)))
 * with P the projection onto the eps ball and the input range, dir the sign
 * (L-inf) or the L2-normalised gradient, eta(0) = 2 eps, alpha = 0.75, and
 * at each checkpoint w_j (w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22,
 * p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) the step halves and the
 * iterate returns to the best point so far when
 *   1. the loss rose in fewer than rho = 0.75 of the steps since w_{j-1}, or
 *   2. the step was not halved at w_{j-1} and the best loss has not risen since.
 * 100 iterations and 1 restart, the paper's settings for the standard suite.
 *
 * Every image has its own step size and checkpoints, so the batch is the
 * per-image algorithm run side by side: an image leaves the batch at its
 * first misclassified iterate, which is its result (with `earlyExit: false`
 * it stays and its result is still that iterate). An image never broken gets
 * its highest-loss iterate.
 *
 * Departures from the paper's Algorithm 1, as in its reference code:
 * - x(0) is a random point of the ball (L-inf: uniform noise scaled so its
 *   largest entry is eps; L2: a Gaussian direction of length eps), clipped to
 *   the range, instead of the clean image;
 * - the checkpoint test runs after w_j updates, and condition 1 counts the
 *   w_j - w_{j-1} comparisons of consecutive losses ending there;
 * - the last iterate's gradient, which no step uses, is not computed.
 * Where the paper and its code differ, the paper is followed: condition 1 is
 * a strict "fewer than" (the code: at most), and condition 2 applies at the
 * first checkpoint too (the code skips it there).
 * With `eot`, each gradient, loss and logits is the mean over that many
 * forward and backward passes (expectation over transformation, the `rand`
 * suite's 20). APGD for L1 is a different algorithm (2021) and is not here.
 */
import { type Precision, type Tensor, describeValue, noGrad, rand, randn, scope, where } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type Norm, checkInputs, epsTensor, positiveInteger, project, unitStep } from './common.js';
import { type ImageLoss, crossEntropyLoss, dlrLoss, indexTensor, lossAndGradient, logitsOf, mergeRows, normsOf, perImage, targetedDlrLoss } from './batch.js';
import type { AttackSpec, RunOptions } from './registry.js';

export const APGD_STEPS = 100;
export const APGD_RESTARTS = 1;
export const APGD_TARGETS = 9;
export const APGD_MOMENTUM = 0.75;
export const APGD_RHO = 0.75;
/** eta(0) = 2 eps. */
export const APGD_INITIAL_STEP = 2;

const NORMS: readonly Norm[] = ['linf', 'l2'];

/**
 * The checkpoints w_1 < w_2 < ... <= steps of a run of `steps` iterations.
 * The p_j are kept in hundredths (22, 41, 57, ...) so that ceil(p_j N) is exact.
 */
export function apgdCheckpoints(steps: number): number[] {
  const out: number[] = [];
  let [previous, p] = [0, 22];
  while (p <= 100) {
    const w = Math.ceil((p * steps) / 100);
    if (w >= 1 && w <= steps && w !== out[out.length - 1]) out.push(w);
    [previous, p] = [p, p + Math.max(p - previous - 3, 6)];
  }
  return out;
}

type Loss = 'ce' | 'dlr' | 'dlr-targeted';

interface Settings {
  name: string;
  loss: Loss;
  norm: Norm;
  steps: number;
  restarts: number;
  targets: number;
  eot: number;
  y: Tensor;
}

function settings(model: Classifier, loss: Loss, opts: RunOptions): Settings {
  const name = loss === 'ce' ? 'apgd-ce' : loss === 'dlr' ? 'apgd-dlr' : 'apgd-t';
  const norm = opts.norm ?? 'linf';
  if (!NORMS.includes(norm)) throw new Error(`${name}: norm must be 'linf' or 'l2', got ${describeValue(norm)}`);
  const steps = positiveInteger('steps', opts.steps ?? APGD_STEPS);
  const restarts = positiveInteger('restarts', opts.restarts ?? APGD_RESTARTS);
  if (loss !== 'dlr-targeted' && opts.targets !== undefined) throw new Error(`targets applies to the targeted APGD (apgd-t) only, got ${describeValue(opts.targets)} for ${name}`);
  // As many of the other classes as there are, at most the requested number.
  const targets = Math.min(positiveInteger('targets', opts.targets ?? APGD_TARGETS), model.classes - 1);
  const eot = positiveInteger('eot', opts.eot ?? 1);
  if (!opts.y) throw new Error(`${name} needs the true labels y: pass y`);
  // DLR divides by z_pi1 - z_pi3 (targeted: by z_pi1 - (z_pi3 + z_pi4) / 2).
  const least = loss === 'ce' ? 2 : loss === 'dlr' ? 3 : 4;
  if (model.classes < least) throw new Error(`${name} needs a classifier with at least ${least} classes, got ${model.classes}`);
  return { name, loss, norm, steps, restarts, targets, eot, y: opts.y };
}

function imageLoss(s: Settings, y: Tensor, target: Tensor | null): ImageLoss {
  if (s.loss === 'ce') return crossEntropyLoss(y);
  return target ? targetedDlrLoss(y, target) : dlrLoss(y);
}

/** Logits, per-image loss and gradient, each the mean over `eot` passes; without the gradient when `withGrad` is false. */
function evaluateAt(model: Classifier, x: Tensor, loss: ImageLoss, eot: number, withGrad: boolean, precision: Precision | undefined): { logits: Tensor; loss: Tensor; grad: Tensor | null } {
  return scope(() => {
    let sum: { logits: Tensor; loss: Tensor; grad: Tensor | null } | null = null;
    for (let i = 0; i < eot; i++) {
      const r = withGrad ? lossAndGradient(model, x, loss, precision) : scope(() => {
        const logits = logitsOf(model, x, precision);
        return { logits, loss: noGrad(() => loss(logits)), grad: null };
      });
      sum = sum === null ? r : {
        logits: sum.logits.add(r.logits), loss: sum.loss.add(r.loss), grad: sum.grad && r.grad ? sum.grad.add(r.grad) : null,
      };
    }
    const total = sum as NonNullable<typeof sum>;
    if (eot === 1) return total;
    return { logits: total.logits.div(eot), loss: total.loss.div(eot), grad: total.grad ? total.grad.div(eot) : null };
  });
}

/** The random start x(0): a point of the ball around x (see the module comment), clipped to the range. */
function randomStart(model: Classifier, x: Tensor, eps: Tensor, norm: Norm, opts: RunOptions): Tensor {
  return noGrad(() => scope(() => {
    const t = norm === 'linf'
      ? rand(x.shape, { generator: opts.generator, dtype: x.dtype }).mul(2).sub(1)
      : randn(x.shape, { generator: opts.generator, dtype: x.dtype });
    const unit = t.div(perImage(normsOf(t, norm), t).clamp(1e-12));
    return project(model, x, x.add(unit.mul(eps)), eps, norm);
  }));
}

/** The tensors of the images a run still attacks (one row each). */
interface Rows {
  /** Positions of the rows in the run's batch. */
  at: number[];
  x0: Tensor; y: Tensor; target: Tensor | null; eps: Tensor; eta: Tensor;
  x: Tensor; previous: Tensor; grad: Tensor;
  best: Tensor; bestGrad: Tensor; bestLoss: Tensor;
  /** JavaScript state per row: the previous iterate's loss, rises since the last checkpoint, whether the step was halved there, the best loss then. */
  lastLoss: number[]; rises: number[]; halvedLast: boolean[]; bestAtLast: number[];
}

const ROW_TENSORS = ['x0', 'y', 'target', 'eps', 'eta', 'x', 'previous', 'grad', 'best', 'bestGrad', 'bestLoss'] as const;
type RowTensor = (typeof ROW_TENSORS)[number];

function selectRows(r: Rows, keep: number[]): Rows {
  const idx = indexTensor(keep);
  const out = { ...r, at: keep.map((j) => r.at[j] as number) } as Rows;
  for (const k of ROW_TENSORS) {
    const t = r[k];
    (out as unknown as Record<RowTensor, Tensor | null>)[k] = t ? t.indexSelect(0, idx) : null;
  }
  idx.dispose();
  const pick = <T>(v: T[]): T[] => keep.map((j) => v[j] as T);
  return { ...out, lastLoss: pick(r.lastLoss), rises: pick(r.rises), halvedLast: pick(r.halvedLast), bestAtLast: pick(r.bestAtLast) };
}

/** Frees the tensors of `old` that `now` no longer holds. */
function release(old: Rows, now: Rows): void {
  const held = new Set(ROW_TENSORS.map((k) => now[k]));
  for (const t of new Set(ROW_TENSORS.map((k) => old[k]))) if (t && !held.has(t)) t.dispose();
}

const floats = (t: Tensor): Float64Array => Float64Array.from(t.to('float64').dataSync() as Float64Array);
const flags = (t: Tensor): boolean[] => Array.from(t.dataSync() as Uint8Array, (v) => v !== 0);
const maskOf = (values: boolean[], like: Tensor): Tensor => perImage(indexTensor(values.map(Number)).gt(0), like);

/** What one run leaves for each image it was given. */
interface RunOutcome {
  /** Per image: whether an iterate was misclassified. */
  broken: boolean[];
  /** Per image: the first misclassified iterate, else the highest-loss one. */
  images: Tensor;
  /** Per image: the best loss reached (at its break, for a broken image). */
  bestLoss: Float64Array;
}

/**
 * One run of Algorithm 1 from the start points `start` (x(0), already drawn)
 * of the clean images x0; eps in model units [N, 1, 1, 1].
 */
function apgdRun(model: Classifier, s: Settings, x0: Tensor, y: Tensor, target: Tensor | null, eps: Tensor, start: Tensor, earlyExit: boolean, precision: Precision | undefined, onStep: (active: number) => void): RunOutcome {
  const n = x0.shape[0] as number;
  const checkpoints = new Set(apgdCheckpoints(s.steps));
  const lossOf = (r: Rows): ImageLoss => imageLoss(s, r.y, r.target);
  const broken = new Array<boolean>(n).fill(false);
  const bestLoss = new Float64Array(n);
  let images = start.clone().keep();

  /** Records the rows whose current iterate is misclassified; returns the rows that stay in the batch. */
  const settle = (r: Rows, logits: Tensor): number[] => scope(() => {
    const wrong = flags(logits.argmax(1).ne(r.y));
    const losses = floats(r.bestLoss);
    const newly = wrong.flatMap((w, j) => (w && !broken[r.at[j] as number] ? [j] : []));
    if (newly.length) {
      const next = mergeRows(images, indexTensor(newly.map((j) => r.at[j] as number)), r.x.indexSelect(0, indexTensor(newly))).keep();
      images.dispose();
      images = next;
      for (const j of newly) {
        broken[r.at[j] as number] = true;
        bestLoss[r.at[j] as number] = losses[j] as number;
      }
    }
    return r.at.flatMap((i, j) => (earlyExit && broken[i] ? [] : [j]));
  });

  /** The rows `keep` of r, the others freed. */
  const narrow = (r: Rows, keep: number[]): Rows => {
    if (keep.length === r.at.length) return r;
    const next = selectRows(r, keep);
    for (const k of ROW_TENSORS) next[k]?.keep();
    release(r, next);
    return next;
  };

  const first = noGrad(() => scope(() => {
    const at = evaluateAt(model, start, imageLoss(s, y, target), s.eot, true, precision);
    const lastLoss = Array.from(floats(at.loss));
    const x = start.clone();
    const r: Rows = {
      at: Array.from({ length: n }, (_, i) => i), x0: x0.clone(), y: y.clone(), target: target?.clone() ?? null, eps: eps.clone(), eta: eps.mul(APGD_INITIAL_STEP),
      x, previous: x, grad: at.grad as Tensor, best: x, bestGrad: at.grad as Tensor, bestLoss: at.loss,
      lastLoss, rises: new Array<number>(n).fill(0), halvedLast: new Array<boolean>(n).fill(false), bestAtLast: [...lastLoss],
    };
    return { r, logits: at.logits };
  }));
  let rows = first.r;
  for (const k of ROW_TENSORS) rows[k]?.keep();
  try {
    rows = narrow(rows, settle(rows, first.logits));
    first.logits.dispose();
    let windowStart = 0;
    for (let k = 1; k <= s.steps && rows.at.length > 0; k++) {
      const r = rows;
      const last = k === s.steps;
      const step = noGrad(() => scope(() => {
        const momentum = k === 1 ? 1 : APGD_MOMENTUM;
        const z = project(model, r.x0, r.x.add(unitStep(r.grad, s.norm).mul(r.eta)), r.eps, s.norm);
        const moved = r.x.add(z.sub(r.x).mul(momentum)).add(r.x.sub(r.previous).mul(1 - momentum));
        const x = project(model, r.x0, moved, r.eps, s.norm);
        const at = evaluateAt(model, x, lossOf(r), s.eot, !last, precision);
        const rose = at.loss.gt(r.bestLoss);
        const improved = perImage(rose, x);
        return {
          x, logits: at.logits, loss: at.loss, grad: at.grad ?? r.grad.clone(),
          best: where(improved, x, r.best), bestGrad: at.grad ? where(improved, at.grad, r.bestGrad) : r.bestGrad.clone(), bestLoss: where(rose, at.loss, r.bestLoss),
        };
      }));
      let next: Rows = { ...r, previous: r.x, x: step.x, grad: step.grad, best: step.best, bestGrad: step.bestGrad, bestLoss: step.bestLoss };
      for (const t of [step.x, step.grad, step.best, step.bestGrad, step.bestLoss]) t.keep();
      const losses = floats(step.loss);
      next.rises = r.rises.map((c, j) => c + ((losses[j] as number) > (r.lastLoss[j] as number) ? 1 : 0));
      next.lastLoss = Array.from(losses);
      const keep = settle(next, step.logits);
      step.logits.dispose();
      step.loss.dispose();
      if (checkpoints.has(k) && !last) {
        const bests = floats(next.bestLoss);
        const window = k - windowStart;
        const halve = next.at.map((_, j) => {
          const oscillating = (next.rises[j] as number) < APGD_RHO * window;
          const stalled = !(next.halvedLast[j] as boolean) && !((bests[j] as number) > (next.bestAtLast[j] as number));
          return oscillating || stalled;
        });
        if (halve.some((h) => h)) {
          const mask = maskOf(halve, next.x);
          const moved = noGrad(() => ({ eta: where(mask, next.eta.mul(0.5), next.eta).keep(), x: where(mask, next.best, next.x).keep(), grad: where(mask, next.bestGrad, next.grad).keep() }));
          mask.dispose();
          const reset: Rows = { ...next, ...moved, lastLoss: next.lastLoss.map((v, j) => (halve[j] ? (bests[j] as number) : v)) };
          release(next, reset);
          next = reset;
        }
        next.halvedLast = halve;
        next.bestAtLast = Array.from(bests);
        next.rises = next.rises.map(() => 0);
        windowStart = k;
      }
      release(r, next);
      rows = narrow(next, keep);
      onStep(rows.at.length);
    }
    // Images never broken: their highest-loss iterate.
    const unbroken = rows.at.flatMap((i, j) => (broken[i] ? [] : [j]));
    if (unbroken.length) {
      const losses = floats(rows.bestLoss);
      const next = scope(() => mergeRows(images, indexTensor(unbroken.map((j) => rows.at[j] as number)), rows.best.indexSelect(0, indexTensor(unbroken)))).keep();
      images.dispose();
      images = next;
      for (const j of unbroken) bestLoss[rows.at[j] as number] = losses[j] as number;
    }
    return { broken, images, bestLoss };
  } catch (e) {
    images.dispose();
    throw e;
  } finally {
    release(rows, { ...rows, ...Object.fromEntries(ROW_TENSORS.map((k) => [k, null])) } as Rows);
  }
}

/** The images still to attack, as the run sees them. */
function attack(model: Classifier, x: Tensor, opts: RunOptions, loss: Loss): Tensor {
  checkInputs(model, x, opts);
  const s = settings(model, loss, opts);
  return scope(() => {
    const { eps, maxPixels } = epsTensor(model, x, opts.eps, 'eps', s.norm);
    if (maxPixels === 0) return x.detach().clone();
    return model.inMode(opts.training ?? false, () => {
      const clean = x.detach();
      const n = clean.shape[0] as number;
      const logits0 = logitsOf(model, clean, opts.precision);
      // An image the model already misclassifies is not attacked and is returned clean.
      const done = flags(logits0.argmax(1).ne(s.y));
      // Targets of APGD-T: the 2nd, 3rd, ... most likely classes of the clean image.
      const order = loss === 'dlr-targeted' ? logits0.sort({ dim: 1, descending: true }).indices : null;
      const bestLoss = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
      const runs = (order ? s.targets : 1) * s.restarts;
      const earlyExit = opts.earlyExit ?? true;
      let step = 0;
      let out = clean.clone();
      for (let run = 0; run < runs; run++) {
        const pending = done.flatMap((d, i) => (d ? [] : [i]));
        if (pending.length === 0) break;
        const next = scope(() => {
          // Drawn for the whole batch whatever the rows, so early exit changes no image's start.
          const starts = randomStart(model, clean, eps, s.norm, opts);
          const idx = indexTensor(pending);
          const pick = (t: Tensor): Tensor => t.indexSelect(0, idx);
          const target = order ? pick(order).select(1, 1 + Math.floor(run / s.restarts)).contiguous() : null;
          const outcome = apgdRun(model, s, pick(clean), pick(s.y), target, pick(eps), pick(starts), earlyExit, opts.precision, (active) => {
            step++;
            opts.onProgress?.({ attack: s.name, step, steps: runs * s.steps, active });
          });
          try {
            return merged(outcome, pending);
          } finally {
            outcome.images.dispose();
          }
        });
        if (next) {
          out.dispose();
          out = next;
        }
      }
      return out;

      /** A broken image keeps its first misclassified iterate; an unbroken one its highest-loss iterate over the runs. */
      function merged(outcome: RunOutcome, pending: number[]): Tensor | null {
        const better = pending.flatMap((i, j) => (outcome.broken[j] || (outcome.bestLoss[j] as number) > (bestLoss[i] as number) ? [j] : []));
        for (const j of better) {
          const i = pending[j] as number;
          bestLoss[i] = outcome.bestLoss[j] as number;
          if (outcome.broken[j]) done[i] = true;
        }
        if (better.length === 0) return null;
        return mergeRows(out, indexTensor(better.map((j) => pending[j] as number)), outcome.images.indexSelect(0, indexTensor(better)));
      }
    });
  });
}

/** APGD on the cross-entropy (APGD-CE of the standard suite). */
export function apgdCe(model: Classifier, x: Tensor, opts: RunOptions): Tensor {
  return attack(model, x, opts, 'ce');
}

/** APGD on the DLR loss (APGD-DLR of the plus and rand suites). */
export function apgdDlr(model: Classifier, x: Tensor, opts: RunOptions): Tensor {
  return attack(model, x, opts, 'dlr');
}

/** Targeted APGD on the targeted DLR loss, one run per target (APGD-T of the standard suite). */
export function apgdTargeted(model: Classifier, x: Tensor, opts: RunOptions): Tensor {
  return attack(model, x, opts, 'dlr-targeted');
}

const common = { kind: 'iterative', norms: NORMS, label: 'true', gradients: true } as const;

export const APGD_CE: AttackSpec = {
  ...common, name: 'apgd-ce',
  summary: 'Auto-PGD on the cross-entropy: 100 steps from 2 eps, momentum 0.75, halving at checkpoints',
  options: ['steps', 'restarts', 'eot', 'norm'], defaults: { steps: APGD_STEPS, restarts: APGD_RESTARTS, eot: 1 }, run: apgdCe,
};

export const APGD_DLR: AttackSpec = {
  ...common, name: 'apgd-dlr',
  summary: 'Auto-PGD on the difference-of-logits-ratio loss (shift and scale invariant)',
  options: ['steps', 'restarts', 'eot', 'norm'], defaults: { steps: APGD_STEPS, restarts: APGD_RESTARTS, eot: 1 }, run: apgdDlr,
};

export const APGD_T: AttackSpec = {
  ...common, name: 'apgd-t', label: 'targets',
  summary: 'targeted Auto-PGD on the targeted DLR loss towards each of the 9 most likely other classes',
  options: ['steps', 'restarts', 'targets', 'eot', 'norm'], defaults: { steps: APGD_STEPS, restarts: APGD_RESTARTS, targets: APGD_TARGETS, eot: 1 }, run: apgdTargeted,
};
