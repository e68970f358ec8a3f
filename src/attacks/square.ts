/**
 * The Square attack ("Square Attack: a query-efficient black-box adversarial
 * attack via random search", Andriushchenko, Croce, Flammarion and Hein,
 * 2020), untargeted, score-based, in L-inf and L2. It reads only the logits,
 * never a gradient, and runs a random search inside the eps ball: each
 * candidate changes the current best image in a random square of side s and
 * is kept where it lowers the margin loss L = z_y - max_{c != y} z_c. An image
 * is broken once its margin is < 0 (misclassified); it then leaves the batch.
 *
 * - L-inf (the paper's Algorithm 2): start from vertical stripes,
 *   x + eps * (a random sign per channel and column, constant along the
 *   height), clipped to the range; each candidate sets one square, in every
 *   channel, to x +- eps (a random sign per channel), projected onto the eps
 *   ball and the range.
 * - L2 (the paper's Algorithm 3, as the reference code): start from a grid of
 *   squares of side h // 5 (5 x 5 of them), each holding the 'meta pattern'
 *   (two stacked rectangles of opposite sign whose values decay as 1 / r^2
 *   from their centres) with a random sign per channel and a random
 *   transposition, normalised to L2 norm eps; each candidate picks two
 *   windows of side s, moves the perturbation's mass out of the second window
 *   into the first (the old content of the first window, normalised per
 *   channel, plus a fresh meta pattern with random signs, rescaled per channel
 *   to sqrt((eps^2 - ||delta||^2)_+ / c + ||delta_W1 u W2||^2)), and the whole
 *   perturbation is rescaled to L2 norm eps and clipped to the range.
 * - Side: s = max(round(sqrt(p n / c)), 1) for L-inf, max(..., 3) and odd for
 *   L2, with n = C H W features and p the fraction of pixels, p_init = 0.8
 *   halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of
 *   a 10000-query budget, rescaled to the budget: iteration i reads the
 *   schedule at int(i / queries * 10000) ({@link squareFraction}).
 *
 * Settings are those of the standard suite ("Reliable evaluation of
 * adversarial robustness with an ensemble of diverse parameter-free
 * attacks", 2020): 5000 queries, p_init 0.8, margin loss, 1 restart.
 *
 * Queries: `queries` is the budget of each image in each run (restart): the
 * starting image costs one query and each square one more, so a run makes at
 * most `queries` forward passes per image (the init and queries - 1 squares,
 * as the paper's code does). Only queries of unbroken images count. The
 * clean images' logits (one forward pass for the batch, to leave
 * misclassified images alone) are not counted, as in the paper. Later
 * restarts start afresh (a new random init) on the images still unbroken.
 *
 * Batching and early exit: every random draw (the init, each square's
 * position, signs and transposition) is made for the whole batch, one per
 * image, whichever images are still active, so early exit changes no image's
 * result; `earlyExit: false` keeps broken images in the batch (their
 * forward passes are made and ignored) and gives the same images and query
 * counts. All randomness comes from `opts.generator`: seeded runs repeat bit
 * for bit.
 *
 * Result per image: the first misclassifying candidate for a broken image;
 * for an unbroken one the lowest-margin image it was queried on (the clean
 * image included, so an unbroken image never ends worse than clean). Images
 * already misclassified and images with eps 0 are not attacked (0 queries)
 * and are returned clean. Every image returned lies within its eps ball in
 * the attack's norm and within the model's input range.
 *
 * Departures from the paper and the reference code (AutoAttack's square.py):
 * - each image draws its own square positions, signs and transpositions; the
 *   reference code shares one position (and one transposition of the meta
 *   pattern) across the batch per iteration;
 * - a square's corner is uniform over every position that fits, 0 .. h - s;
 *   the reference's random_int(0, h - s) never picks the last one;
 * - the side is capped at min(H, W), so images smaller than the reference's
 *   squares work (the reference fails on them); the L2 init on images
 *   under 5 pixels high uses squares of side 1 (one per pixel), and keeps only
 *   grid squares that fit in the image;
 * - the budget `queries` counts the init (the reference runs n_queries
 *   squares after it, n_queries + 1 queries; the paper's code n_iters - 1);
 * - broken means margin < 0 (the reference: <= 0; a tie is not a
 *   misclassification here);
 * - an unbroken image returns its lowest-margin candidate (the reference's
 *   suite returns it clean);
 * - the schedule is read at the raw iteration by default, as the standard
 *   suite runs it (the 10000-query schedule with 5000 queries);
 *   `rescaleSchedule: true` reads it at int(it / queries * 10000), which the
 *   paper's code does outside the suite;
 * - the 1e-12 floors of the reference's L2 normalisations are scaled by the
 *   range's width where they are lengths.
 */
import { type Generator, type Tensor, arange, describeValue, noGrad, randint, scope, tensor, where } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { checkInputs, clipToRange, epsTensor, positiveInteger, project } from './common.js';
import type { AttackSpec, RunOptions } from './registry.js';
import { indexTensor, logitsOf, margin, mergeRows, normsOf, perImage } from './batch.js';

/** Query budget per image and run (the standard suite's n_queries). */
export const SQUARE_QUERIES = 5000;
/** Fraction of the pixels in the first squares. */
export const SQUARE_P_INIT = 0.8;
/** Runs (the standard suite uses 1). */
export const SQUARE_RESTARTS = 1;
/** Iterations (of a 10000-query budget) after which p halves. */
export const SQUARE_SCHEDULE: readonly number[] = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];

type SquareNorm = 'linf' | 'l2';

/** Options of the Square attack that are not RunOptions (library options: the CLI does not set them). */
export interface SquareExtras {
  /** Fraction of the pixels in the first squares, in (0, 1] (default 0.8). */
  pInit?: number;
  /** Read the schedule at int(i / queries * 10000) (true) or at i (default false: the standard suite's resc_schedule=False). */
  rescaleSchedule?: boolean;
}

/**
 * Options of {@link squareAttack}: of RunOptions it reads `eps` (pixel units,
 * per image, in the attack's norm), `y` (required), `queries` (5000, per
 * image and run), `restarts` (1), `norm` ('linf' default, 'l2'),
 * `generator`, `precision`, `training`, `earlyExit` and `onProgress`; and the
 * {@link SquareExtras}.
 */
export type SquareOptions = RunOptions & SquareExtras;

/** The Square attack's answer. */
export interface SquareResult {
  /** The adversarial images (clean where not attacked). */
  adversarial: Tensor;
  /** Queries each image used, over all runs (0 for images not attacked). */
  queries: Float64Array;
  /** Each returned image's margin z_y - max_{c != y} z_c (negative: broken). */
  margins: Float64Array;
}

interface Settings {
  norm: SquareNorm;
  queries: number;
  restarts: number;
  pInit: number;
  rescale: boolean;
  y: Tensor;
}

function settings(model: Classifier, opts: SquareOptions): Settings {
  if (typeof opts !== 'object' || opts === null) throw new Error(`square options must be an object, got ${describeValue(opts)}`);
  const norm = opts.norm ?? 'linf';
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`square: norm must be 'linf' or 'l2', got ${describeValue(norm)}`);
  const queries = positiveInteger('queries', opts.queries ?? SQUARE_QUERIES);
  const restarts = positiveInteger('restarts', opts.restarts ?? SQUARE_RESTARTS);
  const pInit = opts.pInit ?? SQUARE_P_INIT;
  if (typeof pInit !== 'number' || !(pInit > 0 && pInit <= 1)) throw new Error(`pInit must be a number in (0, 1], got ${describeValue(pInit)}`);
  const rescale = opts.rescaleSchedule ?? false;
  if (typeof rescale !== 'boolean') throw new Error(`rescaleSchedule must be true or false, got ${describeValue(rescale)}`);
  if (!opts.y) throw new Error('square needs the true labels y (a misclassified image is not attacked): pass y');
  if (model.classes < 2) throw new Error(`square needs a classifier with at least 2 classes, got ${model.classes}`);
  return { norm, queries, restarts, pInit, rescale, y: opts.y };
}

/**
 * The fraction p of the pixels in the square of iteration `it` (0 for the
 * first square after the init) of a run with budget `queries`: p_init,
 * halved after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000
 * of the schedule, read at int(it / queries * 10000) when `rescale`.
 */
export function squareFraction(it: number, queries: number = SQUARE_QUERIES, pInit: number = SQUARE_P_INIT, rescale = true): number {
  if (!Number.isSafeInteger(it) || it < 0) throw new Error(`squareFraction: it must be a non-negative integer, got ${describeValue(it)}`);
  positiveInteger('queries', queries);
  const t = rescale ? Math.trunc((it / queries) * 10000) : it;
  let halvings = 0;
  for (const b of SQUARE_SCHEDULE) if (t > b) halvings++;
  return pInit / 2 ** halvings;
}

/** Python's round(): to the nearest integer, halves to even. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The side of a square holding a fraction p of the pixels of images
 * [c, h, w]: max(round(sqrt(p c h w / c)), 1) in L-inf; in L2 at least 3 and
 * odd; capped at min(h, w).
 */
export function squareSide(p: number, shape: readonly [number, number, number], norm: SquareNorm = 'linf'): number {
  const [c, h, w] = shape;
  const nFeatures = c * h * w;
  let s = roundHalfEven(Math.sqrt((p * nFeatures) / c));
  if (norm === 'linf') {
    s = Math.max(s, 1);
  } else {
    s = Math.max(s, 3);
    if (s % 2 === 0) s += 1;
  }
  return Math.min(s, h, w);
}

/** The reference code's eta_rectangles(x, y): rectangles around the centre, weights 1 / (k + 1)^2, unit Frobenius norm. */
function etaRectangles(x: number, y: number): number[][] {
  const d = Array.from({ length: x }, () => new Array<number>(y).fill(0));
  const xc = Math.floor(x / 2) + 1;
  const yc = Math.floor(y / 2) + 1;
  let c0 = xc - 1;
  let c1 = yc - 1;
  for (let k = 0; k < Math.max(xc, yc); k++) {
    for (let i = Math.max(c0, 0); i < Math.min(c0 + 2 * k + 1, x); i++) {
      for (let j = Math.max(c1, 0); j < Math.min(c1 + 2 * k + 1, y); j++) (d[i] as number[])[j] = ((d[i] as number[])[j] as number) + 1 / (k + 1) ** 2;
    }
    c0--;
    c1--;
  }
  return unitFrobenius(d);
}

function unitFrobenius(d: number[][]): number[][] {
  const n = Math.sqrt(d.reduce((s, r) => s + r.reduce((a, v) => a + v * v, 0), 0));
  return n > 0 ? d.map((r) => r.map((v) => v / n)) : d;
}

/**
 * The meta pattern of side s (the reference's eta(s), untransposed): the top
 * s // 2 rows eta_rectangles(s // 2, s), the others -eta_rectangles(s - s // 2, s),
 * unit Frobenius norm. Row-major, s * s values.
 */
export function squareMetaPattern(s: number): number[] {
  const top = etaRectangles(Math.floor(s / 2), s);
  const bottom = etaRectangles(s - Math.floor(s / 2), s).map((r) => r.map((v) => -v));
  return unitFrobenius([...top, ...bottom]).flat();
}

/** Random integers in [0, high) of `shape`, on `device` (drawn on the CPU from the generator). */
function draw(high: number, shape: number[], generator: Generator | undefined, device: string): Tensor {
  const t = randint(0, high, shape, { generator });
  return device === 'cpu' ? t : t.toDevice(device);
}

/** +-1 of `shape` in `like`'s dtype, on its device. */
function signs(shape: number[], generator: Generator | undefined, like: Tensor): Tensor {
  return draw(2, shape, generator, like.device).mul(2).sub(1).to(like.dtype);
}

/** Per-row offsets of each pixel from a square's corner (vh, vw: int64 [m]): rows [m, 1, H, 1] and columns [m, 1, 1, W]. */
function offsets(vh: Tensor, vw: Tensor, h: number, w: number, device: string): { di: Tensor; dj: Tensor } {
  const m = vh.shape[0] as number;
  const r = arange(0, h, 1, { dtype: 'int64', device }).reshape([1, 1, h, 1]);
  const c = arange(0, w, 1, { dtype: 'int64', device }).reshape([1, 1, 1, w]);
  return { di: r.sub(vh.reshape([m, 1, 1, 1])), dj: c.sub(vw.reshape([m, 1, 1, 1])) };
}

/** The square of side s with corner (vh, vw) per row, a bool mask [m, 1, H, W]. */
function windowMask(vh: Tensor, vw: Tensor, s: number, h: number, w: number, device: string): Tensor {
  return scope(() => {
    const { di, dj } = offsets(vh, vw, h, w, device);
    return di.ge(0).logicalAnd(di.lt(s)).logicalAnd(dj.ge(0).logicalAnd(dj.lt(s)));
  });
}

/** The random draws of one iteration, one per image of the whole batch. */
interface Draws {
  vh: Tensor;
  vw: Tensor;
  sign: Tensor;
  vh2?: Tensor;
  vw2?: Tensor;
  transpose?: Tensor;
}

/** The search over the whole batch. */
class Search {
  private readonly n: number;
  private readonly c: number;
  private readonly h: number;
  private readonly w: number;
  private readonly clean: Tensor;
  private readonly device: string;
  private readonly gen: Generator | undefined;
  /** Floor of L2 norms (lengths) in the normalisations. */
  private readonly tiny: number;

  constructor(private readonly model: Classifier, x: Tensor, private readonly eps: Tensor, private readonly s: Settings, private readonly opts: SquareOptions) {
    [this.n, this.c, this.h, this.w] = x.shape as [number, number, number, number];
    this.clean = x.detach();
    this.device = x.device;
    this.gen = opts.generator;
    this.tiny = 1e-12 * (model.inputRange[1] - model.inputRange[0]);
  }

  /** Margins of `images` (rows of the labels at `idx`), as plain numbers. */
  private margins(images: Tensor, idx: Tensor): number[] {
    return scope(() => Array.from(margin(logitsOf(this.model, images, this.opts.precision), this.s.y.indexSelect(0, idx)).to('float64').dataSync() as Float64Array));
  }

  run(): SquareResult {
    const { n, s } = this;
    const all = Array.from({ length: n }, (_, i) => i);
    const queries = new Float64Array(n);
    const bestMargin = Float64Array.from(n === 0 ? [] : this.margins(this.clean, indexTensor(all)));
    const epsValues = Array.from(this.eps.to('float64').dataSync() as Float64Array);
    // Images already misclassified, or with eps 0, are not attacked.
    const attacked = all.filter((i) => (bestMargin[i] as number) >= 0 && (epsValues[i] as number) > 0);
    const earlyExit = this.opts.earlyExit ?? true;
    const totalSteps = s.restarts * s.queries;
    let step = 0;
    let best = this.clean.clone();
    for (let restart = 0; restart < s.restarts; restart++) {
      const pending = attacked.filter((i) => (bestMargin[i] as number) >= 0);
      if (pending.length === 0) break;
      // The run's state: its best image per image of the batch (full batch; rows outside the run unused), its margin and whether it is still active.
      const runMargin = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
      const active = new Array<boolean>(n).fill(false);
      for (const i of pending) active[i] = true;
      const members = earlyExit ? pending : attacked;
      let current = this.clean.clone();
      /**
       * Evaluates candidates for `rows` (global indices) and returns `current` with the rows
       * that lower an active image's margin replaced (null when none does).
       */
      const consider = (rows: number[], idx: Tensor, candidates: Tensor): Tensor | null => {
        const m = this.margins(candidates, idx);
        const accepted: number[] = [];
        rows.forEach((i, j) => {
          if (!active[i]) return;
          queries[i] = (queries[i] as number) + 1;
          if ((m[j] as number) < (runMargin[i] as number)) {
            runMargin[i] = m[j] as number;
            accepted.push(j);
          }
          if ((m[j] as number) < 0) active[i] = false;
        });
        if (accepted.length === 0) return null;
        return mergeRows(current, indexTensor(accepted.map((j) => rows[j] as number)), candidates.indexSelect(0, indexTensor(accepted)));
      };
      const replace = (next: Tensor | null): void => {
        if (!next) return;
        current.dispose();
        current = next;
      };
      const progress = (): void => {
        step++;
        this.opts.onProgress?.({ attack: 'square', step, steps: totalSteps, active: attacked.filter((i) => active[i]).length });
      };
      try {
        replace(scope(() => {
          // Drawn for the whole batch whatever the rows, so early exit changes no image's start.
          const start = this.initial();
          const idx = indexTensor(members);
          return consider(members, idx, start.indexSelect(0, idx));
        }));
        progress();
        for (let it = 0; it < s.queries - 1; it++) {
          const rows = earlyExit ? members.filter((i) => active[i]) : members;
          if (!rows.some((i) => active[i])) break;
          const side = squareSide(squareFraction(it, s.queries, s.pInit, s.rescale), [this.c, this.h, this.w], s.norm);
          replace(scope(() => {
            const draws = this.draws(side);
            const idx = indexTensor(rows);
            const pick = (t: Tensor): Tensor => t.indexSelect(0, idx);
            const picked: Draws = { vh: pick(draws.vh), vw: pick(draws.vw), sign: pick(draws.sign) };
            if (draws.vh2 && draws.vw2 && draws.transpose) Object.assign(picked, { vh2: pick(draws.vh2), vw2: pick(draws.vw2), transpose: pick(draws.transpose) });
            const x0 = pick(this.clean);
            const eps = pick(this.eps);
            const xb = pick(current);
            const candidates = s.norm === 'linf' ? this.linfCandidate(x0, xb, eps, picked, side) : this.l2Candidate(x0, xb, eps, picked, side);
            return consider(rows, idx, candidates);
          }));
          progress();
        }
        // Keep each image's lowest margin over the runs (a broken image's first misclassifying candidate).
        const better = pending.filter((i) => (runMargin[i] as number) < (bestMargin[i] as number));
        if (better.length) {
          const next = scope(() => {
            const idx = indexTensor(better);
            return mergeRows(best, idx, current.indexSelect(0, idx));
          });
          best.dispose();
          best = next;
          for (const i of better) bestMargin[i] = runMargin[i] as number;
        }
      } finally {
        current.dispose();
      }
    }
    return { adversarial: best, queries, margins: bestMargin };
  }

  /** The random draws of one square for the whole batch, in a fixed order. */
  private draws(side: number): Draws {
    const { n, c, h, w, gen, device } = this;
    const vh = draw(h - side + 1, [n], gen, device);
    const vw = draw(w - side + 1, [n], gen, device);
    const sign = signs([n, c, 1, 1], gen, this.clean);
    if (this.s.norm === 'linf') return { vh, vw, sign };
    const vh2 = draw(h - side + 1, [n], gen, device);
    const vw2 = draw(w - side + 1, [n], gen, device);
    const transpose = draw(2, [n], gen, device);
    return { vh, vw, sign, vh2, vw2, transpose };
  }

  /** The start of a run for the whole batch: stripes (L-inf) or the grid of meta patterns (L2). */
  private initial(): Tensor {
    const { n, c, h, w, gen, clean, eps } = this;
    if (this.s.norm === 'linf') {
      const stripes = signs([n, c, 1, w], gen, clean);
      return project(this.model, clean, clean.add(stripes.mul(eps)), eps, 'linf');
    }
    // The reference's grid: squares of side t = h // 5 from offset (h - 5 t) // 2, every one that fits.
    const t = Math.max(Math.floor(h / 5), 1);
    const start = (size: number): number => Math.max(Math.floor((size - 5 * t) / 2), 0);
    const corners = (size: number): number[] => {
      const out: number[] = [];
      for (let k = 0, v = start(size); k < Math.floor(size / t); k++, v += t) if (v + t <= size) out.push(v);
      return out;
    };
    const pattern = squareMetaPattern(t);
    const tile = new Array<number>(h * w).fill(-1);
    const straight = new Float64Array(h * w);
    const transposed = new Float64Array(h * w);
    let tiles = 0;
    for (const r0 of corners(h)) {
      for (const c0 of corners(w)) {
        for (let i = 0; i < t; i++) {
          for (let j = 0; j < t; j++) {
            const p = (r0 + i) * w + (c0 + j);
            tile[p] = tiles;
            straight[p] = pattern[i * t + j] as number;
            transposed[p] = pattern[j * t + i] as number;
          }
        }
        tiles++;
      }
    }
    const sign = signs([n, c, tiles], gen, clean);
    const flip = draw(2, [n, tiles], gen, this.device);
    return scope(() => {
      const opt = { dtype: clean.dtype, device: this.device };
      const index = tensor(Float64Array.from(tile, (v) => Math.max(v, 0)), { dtype: 'int64' });
      const idx = this.device === 'cpu' ? index : index.toDevice(this.device);
      const inside = toDevice(tensor(Float64Array.from(tile, (v) => (v >= 0 ? 1 : 0)), { dtype: opt.dtype }), this.device);
      const a = toDevice(tensor(straight, { dtype: opt.dtype }), this.device);
      const b = toDevice(tensor(transposed, { dtype: opt.dtype }), this.device);
      const values = where(flip.indexSelect(1, idx).eq(1).reshape([n, 1, h * w]), b, a);
      const delta = values.mul(sign.indexSelect(2, idx)).mul(inside).reshape([n, c, h, w]);
      return this.onSphere(clean, delta, eps);
    });
  }

  /** x0 + eps delta / ||delta||_2, clipped to the range, projected onto the ball (a no-op but for rounding). */
  private onSphere(x0: Tensor, delta: Tensor, eps: Tensor): Tensor {
    return scope(() => {
      const unit = delta.div(perImage(normsOf(delta, 'l2'), delta).add(this.tiny));
      return project(this.model, x0, clipToRange(this.model, x0.add(unit.mul(eps))), eps, 'l2');
    });
  }

  /** L-inf: the square set to x0 +- eps per channel, projected onto the ball and the range. */
  private linfCandidate(x0: Tensor, xb: Tensor, eps: Tensor, d: Draws, side: number): Tensor {
    return scope(() => {
      const mask = windowMask(d.vh, d.vw, side, this.h, this.w, this.device);
      return project(this.model, x0, where(mask, x0.add(eps.mul(d.sign)), xb), eps, 'linf');
    });
  }

  /** L2: the mass of window 2 moved into window 1 with a fresh meta pattern (the reference's update), rescaled to norm eps. */
  private l2Candidate(x0: Tensor, xb: Tensor, eps: Tensor, d: Draws, side: number): Tensor {
    return scope(() => {
      const { c, h, w, device } = this;
      const m = x0.shape[0] as number;
      const delta = xb.sub(x0);
      const w1 = windowMask(d.vh, d.vw, side, h, w, device);
      const w2 = windowMask(d.vh2 as Tensor, d.vw2 as Tensor, side, h, w, device);
      const w1f = w1.to(delta.dtype);
      const inW1 = delta.mul(w1f);
      // Per-channel norm of window 1 [m, C, 1, 1], norm of the image and of both windows [m, 1, 1, 1].
      const normW1 = inW1.square().sum([2, 3], { keepDim: true }).sqrt();
      const normImage = perImage(normsOf(delta, 'l2'), delta);
      const normWindows = perImage(normsOf(delta.mul(w1.logicalOr(w2).to(delta.dtype)), 'l2'), delta);
      // The meta pattern placed at window 1, transposed where drawn.
      const { di, dj } = offsets(d.vh, d.vw, h, w, device);
      const straight = di.mul(side).add(dj);
      const swapped = dj.mul(side).add(di);
      const k = where((d.transpose as Tensor).eq(1).reshape([m, 1, 1, 1]), swapped, straight).clamp(0, side * side - 1);
      const table = toDevice(tensor(squareMetaPattern(side), { dtype: delta.dtype }), device);
      const pattern = table.indexSelect(0, k.flatten()).reshape([m, 1, h, w]).mul(w1f);
      let fresh = pattern.mul(d.sign).add(inW1.div(normW1.add(this.tiny)));
      const budget = eps.square().sub(normImage.square()).clamp(0).div(c).add(normWindows.square()).sqrt();
      fresh = fresh.div(fresh.square().sum([2, 3], { keepDim: true }).sqrt().add(1e-12)).mul(budget);
      const moved = where(w1, fresh, where(w2, 0, delta));
      return this.onSphere(x0, moved, eps);
    });
  }
}

function toDevice(t: Tensor, device: string): Tensor {
  return device === 'cpu' ? t : t.toDevice(device);
}

/**
 * The Square attack, batched: the adversarial images, the queries each image
 * used and each returned image's margin. See the file's comment.
 */
export function squareSearch(model: Classifier, x: Tensor, opts: SquareOptions): SquareResult {
  checkInputs(model, x, opts);
  const s = settings(model, opts);
  return scope(() => {
    const { eps } = epsTensor(model, x, opts.eps, 'eps', s.norm);
    return model.inMode(opts.training ?? false, () => noGrad(() => new Search(model, x, eps, s, opts).run()));
  });
}

/** The Square attack at one eps (pixel units, per image, in the attack's norm): the adversarial images. */
export function squareAttack(model: Classifier, x: Tensor, opts: SquareOptions): Tensor {
  return squareSearch(model, x, opts).adversarial;
}

export const SQUARE: AttackSpec = {
  name: 'square',
  summary: 'Square attack: score-based random search over squares of the eps ball (margin loss), 5000 queries, p_init 0.8',
  kind: 'query',
  norms: ['linf', 'l2'],
  label: 'true',
  gradients: false,
  options: ['queries', 'restarts', 'norm'],
  defaults: { queries: SQUARE_QUERIES, restarts: SQUARE_RESTARTS },
  run: squareAttack,
};
