/**
 * FAB, the fast adaptive boundary attack ("Minimally distorted adversarial
 * examples with a fast adaptive boundary attack", 2020), minimal perturbation
 * in L-inf, L2 and L1, untargeted ('fab') and targeted ('fab-t', the variant
 * of the standard suite of "Reliable evaluation of adversarial robustness with
 * an ensemble of diverse parameter-free attacks", 2020).
 *
 * Each iteration linearises the classifier at the iterate x_i: for the class
 * s whose linearised boundary f_s(x_i) + <grad f_s(x_i), z - x_i> = 0 is
 * nearest (distance |f_s| / ||grad f_s||_q, q the dual norm; f_s = z_s - z_y;
 * FAB-T uses its one target class), it projects both x_i and the clean x_0
 * onto that hyperplane intersected with the input box (exactly, in the attack's
 * norm: the paper's projection problem; here each norm's one-dimensional
 * dual is solved by sorting its breakpoints and reading the piece that holds
 * the solution off prefix sums, where the reference code bisects over the
 * same sorted breakpoints; both are exact), giving steps d_i and d_0, and moves to
 *   x_{i+1} = clip((1 - a)(x_i + eta d_i) + a (x_0 + eta d_0)),
 *   a = min(||d_i|| / (||d_i|| + ||d_0||), alpha_max).
 * An adversarial x_{i+1} is kept if it is the nearest found so far, and is
 * then pulled back towards x_0: x_{i+1} <- x_0 + beta (x_{i+1} - x_0) (the
 * backward step). Settings are those of the reference code in the standard
 * suite: 100 iterations, alpha_max 0.1, eta 1.05, beta 0.9, 1 restart (from
 * the clean image); later restarts start on the sphere of radius eps / 2 in
 * the attack's norm around x_0 (uniform coordinates in [-1, 1] scaled to that
 * L-inf norm; Gaussian directions for L2 and L1), clipped to the box; FAB-T
 * runs once per target, the 2nd, 3rd, ... most likely class of the clean
 * image (9 targets), on the images still unbroken.
 *
 * Batching and early exit: inside one run every image of the run's batch is
 * iterated for all steps (FAB keeps shrinking a perturbation once it has one;
 * stopping at the first adversarial point would defeat the method). Between
 * runs (restarts, targets), an image counts as broken once its best
 * perturbation is within its eps (any perturbation when no eps is given), and
 * later runs attack only the unbroken ones; `earlyExit: false` keeps every
 * image in every run, with broken images' results frozen. Random starts are
 * drawn for the whole batch, so early exit changes no image's result.
 *
 * Departures from the paper and the reference code:
 * - the input box is the model's input range, not [0, 1]; the floor 1e-8 on
 *   the step norms in the formula for a is scaled by the range's width;
 * - where the hyperplane misses the box, the step goes to the box corner that
 *   is nearest the hyperplane (furthest along the hyperplane's normal);
 * - without eps, the radius of later random starts is half the reference
 *   code's default eps (0.3, 1 and 5 on a [0, 1] range for L-inf, L2 and L1:
 *   76.5, 255 and 1275 pixel values);
 * - eps, when given, is used as the suite uses it: the radius of random
 *   starts and the test for being broken between runs; across runs each
 *   image keeps its smallest perturbation (the suite keeps the first one
 *   within eps; both agree on which images are broken at eps);
 * - targets is capped at classes - 1 (a model with fewer than 10 classes
 *   has fewer than 9 other classes);
 * - the final search of the paper's code (a few regula falsi steps on the
 *   segment between x_0 and the adversarial point found) is off by default,
 *   as in the standard suite; `finalSearch: 3` turns it on with the
 *   original code's 3 steps.
 */
import { type Generator, type Precision, type Tensor, arange, cat, describeValue, enableGrad, full, grad, lossPrecision, rand, randn, scope, where, withPrecision, zeros } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { DEFAULT_ATTACK_PRECISION, type Eps, type Norm, checkInputs, epsTensor, positiveInteger } from './common.js';
import type { AttackSpec, MinimalResult, RunOptions } from './registry.js';
import { indexTensor, keepWithinEps, logitsOf, mergeRows, normsOf, perImage } from './batch.js';

/** Iterations per run (the standard suite's n_iter). */
export const FAB_STEPS = 100;
/** Runs per target (the standard suite's FAB-T uses 1: from the clean image). */
export const FAB_RESTARTS = 1;
/** Target classes of FAB-T: the most likely other classes. */
export const FAB_TARGETS = 9;
/** Largest weight of the step from the clean image. */
export const FAB_ALPHA_MAX = 0.1;
/** Overshoot of each projection step. */
export const FAB_ETA = 1.05;
/** Backward step: an adversarial iterate is pulled to x_0 + beta (x - x_0). */
export const FAB_BETA = 0.9;
/** The reference code's default eps (pixel values) per norm: random restarts start at half of it when no eps is given. */
export const FAB_DEFAULT_EPS: Readonly<Record<Norm, number>> = { linf: 0.3 * 255, l2: 1 * 255, l1: 5 * 255 };

const NORMS: readonly Norm[] = ['linf', 'l2', 'l1'];
/** The dual norm: the distance to a hyperplane {<w, z> = b} in norm p is |<w, x> - b| / ||w||_q. */
const DUAL: Record<Norm, Norm> = { linf: 'l1', l2: 'l2', l1: 'linf' };

/** Options of FAB that are not RunOptions (library options: the CLI does not set them). */
export interface FabExtras {
  /** Targeted FAB (FAB-T): one run per target class (default false; `fabTargeted` sets it). */
  targeted?: boolean;
  /** Largest weight of the step from the clean image (default 0.1). */
  alphaMax?: number;
  /** Overshoot of the projection steps, >= 1 (default 1.05). */
  eta?: number;
  /** Backward step factor in (0, 1] (default 0.9). */
  beta?: number;
  /** Regula falsi steps of the final search after the last run (default 0, as the standard suite; the paper's code uses 3). */
  finalSearch?: number;
}

/**
 * Options of {@link fab}: RunOptions with eps optional. It reads `norm`
 * ('linf' default, 'l2', 'l1'), `steps` (100), `restarts` (1), `targets` (9,
 * FAB-T only), `y` (required), `eps` (optional, pixel units, per image: the
 * random-start radius of later restarts, eps / 2, and when an image counts as
 * broken between runs), `generator`, `training`, `precision`, `earlyExit`,
 * `onProgress`, and the {@link FabExtras}.
 */
export type FabOptions = Omit<RunOptions, 'eps'> & { eps?: Eps } & FabExtras;

/** Options of the specs' run(): RunOptions (with eps) plus the library options. */
export type FabRunOptions = RunOptions & FabExtras;

interface Settings {
  name: string;
  norm: Norm;
  steps: number;
  restarts: number;
  targets: number;
  targeted: boolean;
  alphaMax: number;
  eta: number;
  beta: number;
  finalSearch: number;
  y: Tensor;
}

function settings(model: Classifier, opts: FabOptions): Settings {
  if (typeof opts !== 'object' || opts === null) throw new Error(`fab options must be an object, got ${describeValue(opts)}`);
  const targeted = opts.targeted ?? false;
  if (typeof targeted !== 'boolean') throw new Error(`targeted must be true or false, got ${describeValue(targeted)}`);
  const name = targeted ? 'fab-t' : 'fab';
  const norm = opts.norm ?? 'linf';
  if (!NORMS.includes(norm)) throw new Error(`${name}: norm must be 'linf', 'l2' or 'l1', got ${describeValue(norm)}`);
  const steps = positiveInteger('steps', opts.steps ?? FAB_STEPS);
  const restarts = positiveInteger('restarts', opts.restarts ?? FAB_RESTARTS);
  if (!targeted && opts.targets !== undefined) throw new Error(`targets applies to the targeted FAB (fab-t) only, got ${describeValue(opts.targets)} for fab`);
  const targets = Math.min(positiveInteger('targets', opts.targets ?? FAB_TARGETS), model.classes - 1);
  const alphaMax = opts.alphaMax ?? FAB_ALPHA_MAX;
  if (typeof alphaMax !== 'number' || !(alphaMax >= 0 && alphaMax <= 1)) throw new Error(`alphaMax must be a number in [0, 1], got ${describeValue(alphaMax)}`);
  const eta = opts.eta ?? FAB_ETA;
  if (typeof eta !== 'number' || !Number.isFinite(eta) || eta < 1) throw new Error(`eta must be a finite number >= 1, got ${describeValue(eta)}`);
  const beta = opts.beta ?? FAB_BETA;
  if (typeof beta !== 'number' || !(beta > 0 && beta <= 1)) throw new Error(`beta must be a number in (0, 1], got ${describeValue(beta)}`);
  const finalSearch = opts.finalSearch ?? 0;
  if (typeof finalSearch !== 'number' || !Number.isSafeInteger(finalSearch) || finalSearch < 0) throw new Error(`finalSearch must be a non-negative integer, got ${describeValue(finalSearch)}`);
  if (!opts.y) throw new Error(`${name} needs the true labels y (a misclassified image is not attacked): pass y`);
  if (model.classes < 2) throw new Error(`${name} needs a classifier with at least 2 classes, got ${model.classes}`);
  return { name, norm, steps, restarts, targets, targeted, alphaMax, eta, beta, finalSearch, y: opts.y };
}

/** Exclusive prefix sums along dim 1: out[:, k] = sum_{j < k} v[:, j]. */
function exclusiveCumsum(v: Tensor): Tensor {
  const d = v.shape[1] as number;
  const zero = zeros([v.shape[0] as number, 1], { dtype: v.dtype, device: v.device });
  return d === 1 ? zero : cat([zero, v.cumsum(1).narrow(1, 0, d - 1)], 1);
}

/**
 * The exact projection onto a hyperplane intersected with a box, per row:
 * the smallest step delta in `norm` with <w, t + delta> = <w, t> + c and
 * lo <= t + delta <= hi, for points t [m, D] inside the box, normals w
 * [m, D] and offsets c [m]. Where the hyperplane misses the box, the step to
 * the box corner furthest along sign(c) w. Coordinates where w is 0 never move.
 *
 * With c >= 0 (else w and c change sign), the optimal step moves each
 * coordinate i by s_i in [0, u_i] along sign(w_i), u_i the room to the box
 * edge, and solves min ||s|| s.t. sum |w_i| s_i = c:
 * - L-inf: s_i = min(lambda, u_i), lambda where the piecewise-linear
 *   sum |w_i| min(lambda, u_i) reaches c;
 * - L2: s_i = min(mu |w_i|, u_i) (the KKT conditions), mu likewise;
 * - L1: fill the coordinates of largest |w_i| first (greedy is optimal for a
 *   linear objective over a box), the last one partly.
 * The breakpoints are sorted once (O(D log D)) and the piece holding c is
 * read off the prefix sums: exact, with no search over the pieces.
 */
export function projectHyperplaneBox(t: Tensor, w: Tensor, c: Tensor, lo: number, hi: number, norm: Norm): Tensor {
  return scope(() => {
    const [m, d] = t.shape as [number, number];
    const sense = where(c.ge(0), 1, -1).to(w.dtype).reshape([m, 1]);
    const ws = w.mul(sense);
    const target = c.abs().reshape([m, 1]);
    const a = ws.abs();
    const room = where(ws.gt(0), t.neg().add(hi), t.sub(lo)).clamp(0);
    const positions = arange(0, d, 1, { dtype: 'int64', device: t.device }).reshape([1, d]);
    let s: Tensor;
    if (norm === 'l1') {
      const order = a.sort({ dim: 1, descending: true }).indices;
      const as = a.gather(1, order);
      const rs = room.gather(1, order);
      const gain = as.mul(rs);
      const before = exclusiveCumsum(gain);
      // Coordinates filled completely: those whose inclusive prefix stays below c (all of them where the box is too small).
      const filled = before.add(gain).lt(target).sum(1, { keepDim: true });
      const k = filled.clamp(null, d - 1);
      const partial = target.sub(before.gather(1, k)).div(as.gather(1, k).clamp(1e-30)).clamp(0).minimum(rs.gather(1, k));
      const sorted = where(positions.lt(filled), rs, where(positions.eq(filled), partial, 0));
      s = zeros([m, d], { dtype: t.dtype, device: t.device }).scatter(1, order, sorted);
    } else {
      // Breakpoints of the dual: where coordinate i reaches its box edge (lambda for L-inf, mu for L2).
      const key = norm === 'linf' ? room : where(a.gt(0), room.div(a.clamp(1e-30)), 1e30).clamp(null, 1e30);
      const slope = norm === 'linf' ? a : a.square();
      const order = key.sort({ dim: 1 }).indices;
      const ks = key.gather(1, order);
      const gainSorted = a.mul(room).gather(1, order);
      const saturated = exclusiveCumsum(gainSorted);
      const slopeSorted = slope.gather(1, order);
      const tail = slopeSorted.flip([1]).cumsum(1).flip([1]);
      // The value of the constraint at each breakpoint, nondecreasing along the sorted order.
      const atBreak = saturated.add(ks.mul(tail));
      const below = atBreak.lt(target).sum(1, { keepDim: true });
      const k = below.clamp(null, d - 1);
      const level = target.sub(saturated.gather(1, k)).div(tail.gather(1, k).clamp(1e-30)).clamp(0);
      const feasibleStep = norm === 'linf' ? level.minimum(room) : level.mul(a).minimum(room);
      s = where(below.lt(d), feasibleStep, room);
    }
    return s.mul(ws.sign());
  });
}

/**
 * The linearised boundary FAB steps towards at x, per image: f = z_s - z_y
 * at x and its input gradient g, for the class s != y whose linearised
 * boundary is nearest in `norm` (|f| / (||g||_q + 1e-12), as the reference
 * code), or for the given target class. One forward pass and one backward
 * pass per other class (one in all for a target); besides the best so far
 * only one candidate's gradient is held.
 */
function linearisedBoundary(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, norm: Norm, precision: Precision | undefined): { f: Tensor; g: Tensor } {
  return enableGrad(() => scope(() => {
    const xr = x.detach().requiresGrad_();
    const logits = lossPrecision(withPrecision(precision ?? DEFAULT_ATTACK_PRECISION, () => model.logits(xr), x.device));
    const zy = logits.gather(1, y.reshape([-1, 1])).reshape([-1]);
    const difference = (cls: Tensor): Tensor => logits.gather(1, cls.reshape([-1, 1])).reshape([-1]).sub(zy);
    if (target) {
      const f = difference(target);
      const [g] = grad(f.sum(), xr) as [Tensor];
      return { f: f.detach().to(x.dtype), g: g.to(x.dtype) };
    }
    const classes = model.classes;
    let best: { dist: Tensor; f: Tensor; g: Tensor } | null = null;
    // The other classes of each image in the order y + 1, y + 2, ... (mod classes).
    for (let j = 1; j < classes; j++) {
      const previous: { dist: Tensor; f: Tensor; g: Tensor } | null = best;
      const next: { dist: Tensor; f: Tensor; g: Tensor } = scope(() => {
        const f = difference(y.add(j).remainder(classes));
        const [g0] = grad(f.sum(), xr, { retainGraph: j < classes - 1 }) as [Tensor];
        const g = g0.to(x.dtype);
        const fd = f.detach().to(x.dtype);
        const dist = fd.abs().div(normsOf(g, DUAL[norm]).add(1e-12));
        if (previous === null) return { dist, f: fd, g };
        const better = dist.lt(previous.dist);
        return { dist: where(better, dist, previous.dist), f: where(better, fd, previous.f), g: where(perImage(better, g), g, previous.g) };
      });
      if (previous !== null) {
        previous.dist.dispose();
        previous.f.dispose();
        previous.g.dispose();
      }
      best = next;
    }
    const { f, g } = best as { dist: Tensor; f: Tensor; g: Tensor };
    return { f, g };
  }));
}

/** Predicted classes without a graph. */
function predicted(model: Classifier, x: Tensor, precision: Precision | undefined): Tensor {
  return scope(() => logitsOf(model, x, precision).argmax(1));
}

/** The model's input box. */
interface Box {
  lo: number;
  hi: number;
}

const clip = (box: Box, t: Tensor): Tensor => t.clamp(box.lo, box.hi);

/**
 * One FAB run on the images x0 [m, ...] (labels y, targets or null) from
 * `start`: the nearest adversarial image found (x0 where none) and its size
 * in `norm` (model units; Infinity where none).
 */
function fabRun(model: Classifier, x0: Tensor, y: Tensor, target: Tensor | null, start: Tensor, s: Settings, box: Box, precision: Precision | undefined, onStep: () => void): { adv: Tensor; size: Tensor } {
  const m = x0.shape[0] as number;
  const flat = (t: Tensor): Tensor => t.reshape([m, -1]);
  const floor = 1e-8 * (box.hi - box.lo);
  let x1 = start.clone();
  let adv = x0.clone();
  let size = full([m], Number.POSITIVE_INFINITY, { dtype: x0.dtype, device: x0.device });
  for (let i = 0; i < s.steps; i++) {
    const out = scope(() => {
      const { f, g } = linearisedBoundary(model, x1, y, target, s.norm, precision);
      const gf = flat(g);
      // The hyperplane f + <g, z - x1> = 0: from x1 the step must change <g, .> by -f, from x0 by -f - <g, x0 - x1>.
      const c1 = f.neg();
      const c0 = f.neg().sub(gf.mul(flat(x0.sub(x1))).sum(1));
      const d1 = projectHyperplaneBox(flat(x1), gf, c1, box.lo, box.hi, s.norm).reshape(x0.shape);
      const d0 = projectHyperplaneBox(flat(x0), gf, c0, box.lo, box.hi, s.norm).reshape(x0.shape);
      const a1 = normsOf(d1, s.norm).clamp(floor);
      const a0 = normsOf(d0, s.norm).clamp(floor);
      const alpha = perImage(a1.div(a1.add(a0)).clamp(0, s.alphaMax), x0);
      const moved = clip(box, x1.add(d1.mul(s.eta)).mul(alpha.neg().add(1)).add(x0.add(d0.mul(s.eta)).mul(alpha)));
      const isAdv = predicted(model, moved, precision).ne(y);
      const t = normsOf(moved.sub(x0), s.norm);
      const better = isAdv.logicalAnd(t.lt(size));
      return {
        adv: where(perImage(better, x0), moved, adv),
        size: where(better, t, size),
        // The backward step: an adversarial iterate is pulled towards x0.
        x1: where(perImage(isAdv, x0), x0.add(moved.sub(x0).mul(s.beta)), moved),
      };
    });
    x1.dispose();
    adv.dispose();
    size.dispose();
    ({ x1, adv, size } = out);
    onStep();
  }
  x1.dispose();
  return { adv, size };
}

/**
 * Random starts of later restarts for the whole batch [N, ...]: x0 plus a
 * point on the sphere of radius `radius` (model units, [N]) in `norm`, as the
 * reference code draws them (uniform coordinates in [-1, 1] scaled to L-inf
 * norm 1; Gaussian directions for L2 and L1), clipped to the box.
 */
function randomStart(x0: Tensor, radius: Tensor, norm: Norm, box: Box, generator: Generator | undefined): Tensor {
  return scope(() => {
    let t = norm === 'linf'
      ? rand(x0.shape, { generator, dtype: x0.dtype }).mul(2).sub(1)
      : randn(x0.shape, { generator, dtype: x0.dtype });
    if (x0.device !== 'cpu') t = t.toDevice(x0.device);
    const unit = t.div(perImage(normsOf(t, norm).clamp(1e-30), t));
    return clip(box, x0.add(unit.mul(perImage(radius, x0))));
  });
}

/**
 * The final search of the paper's code on rows x0 (class y) and adv
 * (adversarial): `iters` regula falsi steps on the segment between them
 * towards the boundary of the class adv is given; returns the adversarial end.
 * It only moves adv towards x0 along the segment, so the size never grows.
 */
function finalSearch(model: Classifier, x0: Tensor, adv: Tensor, y: Tensor, iters: number, precision: Precision | undefined): Tensor {
  return scope(() => {
    const col = (z: Tensor, cls: Tensor): Tensor => z.gather(1, cls.reshape([-1, 1])).reshape([-1]);
    let inside = x0;
    let outside = adv;
    let zIn = logitsOf(model, inside, precision);
    let zOut = logitsOf(model, outside, precision);
    let label = zOut.argmax(1);
    for (let k = 0; k < iters; k++) {
      const t1 = col(zIn, y).sub(col(zIn, label));
      const t2 = col(zOut, label).sub(col(zOut, y));
      let t3 = t1.div(t1.add(t2).add(1e-10));
      t3 = where(t3.ge(0).logicalAnd(t3.le(1)), t3, 1).to(x0.dtype);
      const w = perImage(t3, x0);
      const p = inside.mul(w.neg().add(1)).add(outside.mul(w));
      const zp = logitsOf(model, p, precision);
      const lp = zp.argmax(1);
      const stay = lp.eq(y);
      const rows = perImage(stay, x0);
      const cols = stay.reshape([-1, 1]);
      inside = where(rows, p, inside);
      zIn = where(cols, zp, zIn);
      outside = where(rows, outside, p);
      zOut = where(cols, zOut, zp);
      label = where(stay, label, lp);
    }
    return outside;
  });
}

/**
 * FAB's search, batched: the adversarial images (clean where it failed) and
 * each image's perturbation size in pixel units in the attack's norm
 * (Infinity where no run found one, 0 where the clean image is already
 * misclassified). `targeted: true` runs FAB-T.
 */
export function fab(model: Classifier, x: Tensor, opts: FabOptions): MinimalResult {
  checkInputs(model, x, opts);
  const s = settings(model, opts);
  return scope(() => {
    const epsModel = opts.eps === undefined ? null : epsTensor(model, x, opts.eps, 'eps', s.norm).eps;
    return model.inMode(opts.training ?? false, () => search(model, x, s, epsModel, opts));
  });
}

/** FAB-T: {@link fab} with `targeted: true`. */
export function fabTargeted(model: Classifier, x: Tensor, opts: FabOptions): MinimalResult {
  return fab(model, x, { ...opts, targeted: true });
}

function search(model: Classifier, x: Tensor, s: Settings, epsModel: Tensor | null, opts: FabOptions): MinimalResult {
  const n = x.shape[0] as number;
  const box: Box = { lo: model.inputRange[0], hi: model.inputRange[1] };
  const clean = x.detach();
  const logits0 = logitsOf(model, clean, opts.precision);
  const correct = Array.from(logits0.argmax(1).eq(s.y).dataSync() as Uint8Array, (v) => v !== 0);
  // Best size per image in model units.
  const best = Float64Array.from(correct, (c) => (c ? Number.POSITIVE_INFINITY : 0));
  // An image is broken once its best size is within its eps (any size without eps).
  const epsValues = epsModel ? Float64Array.from(epsModel.to('float64').dataSync() as Float64Array) : null;
  const broken = (i: number): boolean => (epsValues ? (best[i] as number) <= (epsValues[i] as number) : Number.isFinite(best[i] as number));
  const radiusPixels = FAB_DEFAULT_EPS[s.norm] / 2;
  const radius = epsModel ? epsModel.reshape([-1]).mul(0.5) : full([n], radiusPixels * model.pixelScale, { dtype: x.dtype, device: x.device });
  // Targets of FAB-T: the 2nd, 3rd, ... most likely classes of the clean image.
  const order = s.targeted ? logits0.sort({ dim: 1, descending: true }).indices : null;
  const attacked = correct.flatMap((c, i) => (c ? [i] : []));
  const earlyExit = opts.earlyExit ?? true;
  const runs = (s.targeted ? s.targets : 1) * s.restarts;
  const totalSteps = runs * s.steps;
  let step = 0;
  let adversarial = clean.clone();
  for (let run = 0; run < runs; run++) {
    const restart = run % s.restarts;
    const pending = attacked.filter((i) => !broken(i));
    if (pending.length === 0) break;
    // Drawn for the whole batch whatever the rows, so early exit changes no image's start.
    const starts = restart > 0 ? randomStart(clean, radius, s.norm, box, opts.generator) : null;
    const rows = earlyExit ? pending : attacked;
    const pendingSet = new Set(pending);
    const out = scope(() => {
      const idx = indexTensor(rows);
      const x0 = clean.indexSelect(0, idx);
      const y = s.y.indexSelect(0, idx);
      const target = order ? order.indexSelect(0, idx).select(1, 1 + Math.floor(run / s.restarts)).contiguous() : null;
      const start = starts ? starts.indexSelect(0, idx) : x0;
      const { adv, size } = fabRun(model, x0, y, target, start, s, box, opts.precision, () => {
        step++;
        opts.onProgress?.({ attack: s.name, step, steps: totalSteps, active: rows.length });
      });
      const sizes = Array.from(size.to('float64').dataSync() as Float64Array);
      // Images of this run that are still unbroken and got nearer than before.
      const improved = rows.flatMap((i, j) => (pendingSet.has(i) && (sizes[j] as number) < (best[i] as number) ? [j] : []));
      if (improved.length === 0) return { improved, sizes, next: null };
      const local = indexTensor(improved);
      const next = mergeRows(adversarial, idx.indexSelect(0, local), adv.indexSelect(0, local));
      return { improved, sizes, next };
    });
    starts?.dispose();
    for (const j of out.improved) best[rows[j] as number] = out.sizes[j] as number;
    if (out.next) {
      adversarial.dispose();
      adversarial = out.next;
    }
  }
  if (s.finalSearch > 0) {
    const found = attacked.filter((i) => Number.isFinite(best[i] as number));
    if (found.length > 0) {
      const next = scope(() => {
        const idx = indexTensor(found);
        const x0 = clean.indexSelect(0, idx);
        const searched = finalSearch(model, x0, adversarial.indexSelect(0, idx), s.y.indexSelect(0, idx), s.finalSearch, opts.precision);
        const sizes = Array.from(normsOf(searched.sub(x0), s.norm).to('float64').dataSync() as Float64Array);
        return { merged: mergeRows(adversarial, idx, searched), sizes };
      });
      found.forEach((i, j) => (best[i] = next.sizes[j] as number));
      adversarial.dispose();
      adversarial = next.merged;
    }
  }
  const norms = Float64Array.from(best, (v) => v / model.pixelScale);
  return { adversarial, norms };
}

/** FAB (or FAB-T) at one eps (pixel units, per image, in the attack's norm): the found images that fit, the clean ones elsewhere. */
function fabWithin(model: Classifier, x: Tensor, opts: FabRunOptions, targeted: boolean): Tensor {
  checkInputs(model, x, opts);
  const s = settings(model, { ...opts, targeted });
  return scope(() => {
    const { eps, maxPixels } = epsTensor(model, x, opts.eps, 'eps', s.norm);
    if (maxPixels === 0) return x.detach().clone();
    const found = fab(model, x, { ...opts, targeted });
    return keepWithinEps(model, x, found.adversarial, eps, s.norm);
  });
}

/** FAB at one eps: see {@link fab}. */
export function fabRunWithin(model: Classifier, x: Tensor, opts: FabRunOptions): Tensor {
  return fabWithin(model, x, opts, false);
}

/** FAB-T at one eps: see {@link fab}. */
export function fabTargetedRunWithin(model: Classifier, x: Tensor, opts: FabRunOptions): Tensor {
  return fabWithin(model, x, opts, true);
}

export const FAB: AttackSpec = {
  name: 'fab',
  summary: 'fast adaptive boundary attack: minimal perturbation by projections onto the linearised boundary and the box, 100 steps',
  kind: 'minimal',
  norms: ['linf', 'l2', 'l1'],
  label: 'true',
  gradients: true,
  options: ['steps', 'restarts', 'norm'],
  defaults: { steps: FAB_STEPS, restarts: FAB_RESTARTS },
  run: fabRunWithin,
  minimal: fab,
};

export const FAB_T: AttackSpec = {
  name: 'fab-t',
  summary: 'targeted FAB of the standard suite: one 100-step run towards each of the 9 most likely other classes',
  kind: 'minimal',
  norms: ['linf', 'l2', 'l1'],
  label: 'targets',
  gradients: true,
  options: ['steps', 'restarts', 'targets', 'norm'],
  defaults: { steps: FAB_STEPS, restarts: FAB_RESTARTS, targets: FAB_TARGETS },
  run: fabTargetedRunWithin,
  minimal: fabTargeted,
};
