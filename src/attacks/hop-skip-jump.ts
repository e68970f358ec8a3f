/**
 * HopSkipJumpAttack ("HopSkipJumpAttack: a query-efficient decision-based
 * attack", 2020), untargeted, L2 and L-inf. It sees only the model's decision
 * (argmax), never scores or gradients, and searches the smallest perturbation
 * that changes it:
 *   - start: uniform random noise over the input range until the decision is
 *     not the true label (at most 10^4 draws), a binary search along the blend
 *     (1 - a) x* + a noise to a tolerance of 0.001 in a, then a binary search to
 *     the boundary;
 *   - each iteration t = 1..T at the boundary point x_{t-1}, d_{t-1} = ||x_{t-1} - x*||_p:
 *       delta_t = 0.1 (range width) at t = 1, else sqrt(d) theta d_{t-1} (L2), d theta d_{t-1} (L-inf);
 *       B_t = min(100 sqrt(t), 10^4) probes u_b (Gaussian for L2, uniform on [-1, 1]^d for L-inf,
 *       scaled to unit L2 length), phi_b = +1 if x_{t-1} + delta_t u_b is adversarial, else -1;
 *       v_t = mean_b (phi_b - mean phi) u_b (the baseline is dropped when every phi_b agrees), v_t /= ||v_t||_2;
 *       step along v_t (L2) or sign(v_t) (L-inf), from xi_t = d_{t-1} / sqrt(t) halved until adversarial;
 *       binary search between x* and that point back to the boundary;
 *   - binary searches stop at threshold theta = gamma d^{-3/2} (L2, in blend units a in [0, 1])
 *     or gamma d^{-2} (L-inf, relative to the L-inf distance), gamma = 1;
 *   - T = 40 iterations (the reference code's num_iterations; the paper fixes no count: it plots
 *     distance against queries).
 * d is the number of input values. Every probe is clipped to the input range, so its
 * direction is the clipped one.
 *
 * Batched: every image has its own iterate, distance, probes and query count;
 * an image leaves the batch when its iterations are done, its query budget is
 * spent or no random start was found (a failure: size Infinity, returned
 * clean). Images the model already misclassifies are not attacked (size 0,
 * returned clean). Every image returned is one the model was queried on and
 * found adversarial (or the clean one). No gradient is ever taken: the search
 * runs under noGrad and only reads the argmax of the logits.
 *
 * Departures from the paper and its reference code:
 * - delta_t uses d_{t-1}, the distance of the boundary point (the paper's choice); the reference
 *   code uses the distance of the point before its last binary search;
 * - the L-inf binary search stops at theta times the distance; the reference's
 *   min(theta dist, theta) is the same on a [0, 1] range and is not scale-free otherwise;
 * - it returns the nearest boundary point of all iterations, not the last one (every one is adversarial);
 * - the step-size search halves at most 100 times (the reference loops until success); after
 *   that the iteration leaves the image where it was;
 * - queries are counted per image (the clean image's own decision included) against an optional
 *   budget: a probe set shrinks to what is left of it, and a search cut short by it keeps its
 *   last adversarial point;
 * - the decision is "argmax differs from the true label y", the reference's "differs from the
 *   clean prediction" on every image that is attacked (those the model classifies correctly).
 */
import { type Generator, type Tensor, cat, describeValue, noGrad, rand, randn, scope, tensor } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { checkInputs, clipToRange, epsTensor, positiveInteger } from './common.js';
import type { AttackSpec, MinimalResult, RunOptions } from './registry.js';
import { indexTensor, indicesWhere, keepWithinEps, logitsOf, mergeRows, normsOf } from './batch.js';

/** The reference code's number of iterations. */
export const HSJ_STEPS = 40;
/** Probes of the first gradient-direction estimate; the t-th uses 100 sqrt(t). */
export const HSJ_INIT_EVALS = 100;
/** Most probes of one estimate. */
export const HSJ_MAX_EVALS = 10_000;
/** Scale of the binary-search threshold theta = gamma d^{-3/2} (L2) or gamma d^{-2} (L-inf). */
export const HSJ_GAMMA = 1;
/** Most random-noise draws tried for a start. */
export const HSJ_INIT_TRIALS = 10_000;
/** Tolerance of the blend search from the random start towards the clean image. */
export const HSJ_BLEND_TOLERANCE = 0.001;
/** The first iteration's probe radius, as a fraction of the input range's width. */
export const HSJ_FIRST_DELTA = 0.1;
/** Most halvings of one step-size search. */
export const HSJ_MAX_HALVINGS = 100;
/** Most input values in one batch of probes (bounds the memory of an estimate). */
const PROBE_VALUES = 1 << 22;

/**
 * Options of {@link hopSkipJump}. Of RunOptions it reads `norm` ('l2', the
 * default, or 'linf'), `steps` (iterations, default 40), `queries` (per-image
 * budget, default none), `y` (required), `generator`, `training`, `precision`
 * and `onProgress`; `gamma` and `initTrials` are library options.
 */
export interface HopSkipJumpOptions extends Omit<RunOptions, 'eps'> {
  /** theta = gamma d^{-3/2} (L2) or gamma d^{-2} (L-inf) (default 1). */
  gamma?: number;
  /** Most random-noise draws tried for a start (default 10^4). */
  initTrials?: number;
}

/** A HopSkipJump search's answer: the minimal result plus the queries each image used. */
export interface HopSkipJumpResult extends MinimalResult {
  /** Model decisions asked for each image, its clean decision included. */
  queries: Float64Array;
}

type SearchNorm = 'l2' | 'linf';

interface Settings {
  norm: SearchNorm;
  steps: number;
  budget: number;
  gamma: number;
  initTrials: number;
  y: Tensor;
}

function settings(opts: HopSkipJumpOptions): Settings {
  const norm = opts.norm ?? 'l2';
  if (norm !== 'l2' && norm !== 'linf') throw new Error(`hop-skip-jump: norm must be 'l2' or 'linf', got ${describeValue(norm)}`);
  const steps = positiveInteger('steps', opts.steps ?? HSJ_STEPS);
  const budget = opts.queries === undefined ? Number.POSITIVE_INFINITY : positiveInteger('queries', opts.queries);
  const gamma = opts.gamma ?? HSJ_GAMMA;
  if (typeof gamma !== 'number' || !Number.isFinite(gamma) || gamma <= 0) throw new Error(`gamma must be a finite number > 0, got ${describeValue(gamma)}`);
  const initTrials = positiveInteger('initTrials', opts.initTrials ?? HSJ_INIT_TRIALS);
  if (!opts.y) throw new Error('hop-skip-jump needs the true labels y (it attacks the true label): pass y');
  return { norm, steps, budget, gamma, initTrials, y: opts.y };
}

/**
 * HopSkipJump's search, batched: the adversarial images (clean where it
 * failed), each image's perturbation size in pixel units in the search's norm
 * (Infinity where no random start was found, 0 where the clean image is
 * already misclassified) and the queries each image used.
 */
export function hopSkipJump(model: Classifier, x: Tensor, opts: HopSkipJumpOptions): HopSkipJumpResult {
  checkInputs(model, x, opts);
  const s = settings(opts);
  return model.inMode(opts.training ?? false, () => noGrad(() => scope(() => new Search(model, x, s, opts).run())));
}

/** Options of the spec's run(): RunOptions (with eps) plus the library options. */
export type HopSkipJumpRunOptions = RunOptions & Omit<HopSkipJumpOptions, keyof RunOptions>;

/** HopSkipJump at one eps (pixel units, per image, in the search's norm): the found images that fit, the clean ones elsewhere. */
export function hopSkipJumpWithin(model: Classifier, x: Tensor, opts: HopSkipJumpRunOptions): Tensor {
  checkInputs(model, x, opts);
  const s = settings(opts);
  return scope(() => {
    const { eps, maxPixels } = epsTensor(model, x, opts.eps, 'eps', s.norm);
    if (maxPixels === 0) return x.detach().clone();
    const found = hopSkipJump(model, x, opts);
    try {
      return keepWithinEps(model, x, found.adversarial, eps, s.norm);
    } finally {
      found.adversarial.dispose();
    }
  });
}

/** The state of one batched search; per-image scalars live in plain arrays, images in [N, ...] tensors. */
class Search {
  private readonly n: number;
  /** Input values per image. */
  private readonly d: number;
  private readonly width: number;
  private readonly theta: number;
  private readonly clean: Tensor;
  private readonly used: number[];
  private readonly gen: Generator | undefined;

  constructor(private readonly model: Classifier, x: Tensor, private readonly s: Settings, private readonly opts: HopSkipJumpOptions) {
    this.n = x.shape[0] as number;
    this.d = this.n === 0 ? 0 : x.size / this.n;
    this.width = model.inputRange[1] - model.inputRange[0];
    this.theta = s.norm === 'l2' ? s.gamma / (this.d * Math.sqrt(this.d)) : s.gamma / (this.d * this.d);
    this.clean = x.detach();
    this.used = new Array<number>(this.n).fill(0);
    this.gen = opts.generator;
  }

  run(): HopSkipJumpResult {
    const { n, s, clean } = this;
    const norms = new Float64Array(n);
    if (n === 0) return { adversarial: clean.clone(), norms, queries: new Float64Array(0) };
    const correct = this.decide(range(n), clean).map((adv) => !adv);
    correct.forEach((c, i) => (norms[i] = c ? Number.POSITIVE_INFINITY : 0));
    // adversarial: each image's nearest boundary point so far (clean until one is found);
    // cur: each attacked image's current boundary point x_{t-1} (other rows unused).
    let adversarial = clean.clone();
    let cur = clean.clone();
    const dist = new Array<number>(n).fill(Number.POSITIVE_INFINITY);
    const best = new Array<number>(n).fill(Number.POSITIVE_INFINITY);
    const record = (rows: number[], points: Tensor): void => {
      const sizes = this.sizes(rows, points);
      rows.forEach((i, j) => (dist[i] = sizes[j] as number));
      const better = range(rows.length).filter((j) => (sizes[j] as number) < (best[rows[j] as number] as number));
      better.forEach((j) => (best[rows[j] as number] = sizes[j] as number));
      const next = scope(() => {
        const idx = indexTensor(rows);
        const nextCur = mergeRows(cur, idx, points);
        const nextAdv = better.length ? mergeRows(adversarial, indexTensor(better.map((j) => rows[j] as number)), points.indexSelect(0, indexTensor(better))) : null;
        return { nextCur, nextAdv };
      });
      cur.dispose();
      cur = next.nextCur;
      if (next.nextAdv) {
        adversarial.dispose();
        adversarial = next.nextAdv;
      }
    };
    const started = this.start(correct.flatMap((c, i) => (c ? [i] : [])));
    const attacked = started?.rows ?? [];
    if (started) {
      record(started.rows, started.points);
      started.points.dispose();
    }
    for (let t = 1; t <= s.steps; t++) {
      const rows = attacked.filter((i) => this.left(i) > 0);
      if (rows.length === 0) break;
      const moved = scope(() => this.iteration(t, rows, cur.indexSelect(0, indexTensor(rows)), rows.map((i) => dist[i] as number)));
      if (moved) {
        record(moved.rows, moved.points);
        moved.points.dispose();
      }
      const active = t === s.steps ? 0 : attacked.filter((i) => this.left(i) > 0).length;
      this.opts.onProgress?.({ attack: 'hop-skip-jump', step: t, steps: s.steps, active });
    }
    cur.dispose();
    // Sizes measured on the images returned, in pixel units.
    const found = attacked.filter((i) => Number.isFinite(best[i] as number));
    if (found.length) {
      const sizes = scope(() => this.sizes(found, adversarial.indexSelect(0, indexTensor(found))));
      sizes.forEach((v, j) => (norms[found[j] as number] = v / this.model.pixelScale));
    }
    return { adversarial, norms, queries: Float64Array.from(this.used) };
  }

  /** Queries image i may still make. */
  private left(i: number): number {
    return this.s.budget - (this.used[i] as number);
  }

  /** ||points - x*|| per row in the search's norm (model units). */
  private sizes(rows: number[], points: Tensor): number[] {
    if (rows.length === 0) return [];
    return scope(() => Array.from(normsOf(points.sub(this.clean.indexSelect(0, indexTensor(rows))), this.s.norm).to('float64').dataSync() as Float64Array));
  }

  /** The labels y of `rows`. */
  private labels(rows: number[]): Tensor {
    return this.s.y.indexSelect(0, indexTensor(rows));
  }

  /** Whether each of `images` (one row per entry of `rows`, clipped to the range) is adversarial; one query each. */
  private decide(rows: number[], images: Tensor): boolean[] {
    for (const i of rows) this.used[i] = (this.used[i] as number) + 1;
    return scope(() => {
      const dec = this.adversarialMask(clipToRange(this.model, images), this.labels(rows));
      return Array.from(dec.dataSync() as Uint8Array, (v) => v !== 0);
    });
  }

  /** argmax(model(images)) != labels, a bool tensor; counts nothing. */
  private adversarialMask(images: Tensor, labels: Tensor): Tensor {
    return logitsOf(this.model, images, this.opts.precision).argmax(1).ne(labels);
  }

  /** A draw of the given shape on x's device: uniform on [0, 1) or standard normal. */
  private draw(shape: number[], kind: 'uniform' | 'normal'): Tensor {
    const t = (kind === 'uniform' ? rand : randn)(shape, { generator: this.gen, dtype: this.clean.dtype });
    return this.clean.device === 'cpu' ? t : t.toDevice(this.clean.device);
  }

  /** A per-row scalar list as a tensor [k, 1, 1, 1] (x's dtype and device). */
  private column(values: number[]): Tensor {
    const shape = [values.length, ...new Array<number>(this.clean.rank - 1).fill(1)];
    return tensor(Float64Array.from(values), { shape, dtype: this.clean.dtype, device: this.clean.device });
  }

  /**
   * The start: uniform noise until adversarial, the blend search towards
   * x*, then the binary search to the boundary. The images with a start
   * and their boundary points; null when none has one.
   */
  private start(candidates: number[]): { rows: number[]; points: Tensor } | null {
    const [lo] = this.model.inputRange;
    let noise: Tensor | null = null;
    const found: number[] = [];
    let searching = candidates;
    for (let trial = 0; trial < this.s.initTrials && searching.length > 0; trial++) {
      searching = searching.filter((i) => this.left(i) > 0);
      if (searching.length === 0) break;
      const rows = searching;
      const out = scope(() => {
        const u = this.draw([rows.length, ...this.clean.shape.slice(1)], 'uniform').mul(this.width).add(lo);
        const dec = this.decide(rows, u);
        const hit = dec.flatMap((a, j) => (a ? [j] : []));
        return { dec, rowsHit: hit.length ? clipToRange(this.model, u.indexSelect(0, indexTensor(hit))) : null };
      });
      if (out.rowsHit) {
        const hitRows = rows.filter((_, j) => out.dec[j]);
        found.push(...hitRows);
        const previous: Tensor | null = noise;
        noise = previous ? scope(() => cat([previous, out.rowsHit as Tensor], 0)) : out.rowsHit;
        if (previous) {
          previous.dispose();
          out.rowsHit.dispose();
        }
      }
      searching = rows.filter((_, j) => !out.dec[j]);
    }
    if (noise === null) return null;
    // Restore the batch order of the images found (found lists them in the order their noise was found).
    const order = found.map((i, j) => [i, j] as const).sort((a, b) => a[0] - b[0]);
    const rows = order.map(([i]) => i);
    const start = noise;
    const points = scope(() => {
      const sorted = start.indexSelect(0, indexTensor(order.map(([, j]) => j)));
      const origin = this.clean.indexSelect(0, indexTensor(rows));
      const blended = this.bisect(rows, origin, sorted, 'blend', HSJ_BLEND_TOLERANCE);
      return this.bisect(rows, origin, blended, this.s.norm === 'l2' ? 'blend' : 'linf', this.theta);
    });
    start.dispose();
    return { rows, points };
  }

  /**
   * One iteration for `rows` at boundary points `points` ([k, ...]) at
   * distances `dist`: the estimate, the step-size search and the binary
   * search. The rows whose step found an adversarial point and their new
   * boundary points; null where none did.
   */
  private iteration(t: number, rows: number[], points: Tensor, dist: number[]): { rows: number[]; points: Tensor } | null {
    const { d, theta } = this;
    const delta = dist.map((v) => (t === 1 ? HSJ_FIRST_DELTA * this.width : (this.s.norm === 'l2' ? Math.sqrt(d) : d) * theta * v));
    const evals = Math.min(Math.floor(HSJ_INIT_EVALS * Math.sqrt(t)), HSJ_MAX_EVALS);
    const direction = this.estimate(rows, points, delta, evals);
    const update = this.s.norm === 'l2' ? direction : direction.sign();
    const stepped = this.stepSize(rows, points, update, dist.map((v) => v / Math.sqrt(t)));
    if (stepped.moved.length === 0) return null;
    const movedRows = stepped.moved.map((j) => rows[j] as number);
    const origin = this.clean.indexSelect(0, indexTensor(movedRows));
    return { rows: movedRows, points: this.bisect(movedRows, origin, stepped.points, this.s.norm === 'l2' ? 'blend' : 'linf', theta) };
  }

  /**
   * The gradient-direction estimate at `points` (one per entry of `rows`):
   * `evals` probes per image (fewer where its budget is short), unit L2
   * direction [k, ...].
   */
  private estimate(rows: number[], points: Tensor, delta: number[], evals: number): Tensor {
    const k = rows.length;
    const { d } = this;
    const shape = this.clean.shape.slice(1);
    const counts = rows.map((i) => Math.min(evals, this.left(i)));
    const maxRows = Math.max(1, Math.floor(PROBE_VALUES / d));
    const perChunk = Math.min(evals, maxRows);
    const group = Math.max(1, Math.floor(maxRows / evals));
    const flat = points.reshape([k, d]);
    const parts: Tensor[] = [];
    for (let g0 = 0; g0 < k; g0 += group) {
      const g = Math.min(group, k - g0);
      const part = scope(() => {
        const sel = indexTensor(range(g).map((j) => g0 + j));
        const base = flat.indexSelect(0, sel).reshape([g, 1, d]);
        const del = tensor(Float64Array.from(delta.slice(g0, g0 + g)), { shape: [g, 1, 1], dtype: this.clean.dtype, device: this.clean.device });
        const labels = this.labels(rows.slice(g0, g0 + g));
        const gCounts = counts.slice(g0, g0 + g);
        let s1: Tensor | null = null;
        let s0: Tensor | null = null;
        let fsum: Tensor | null = null;
        for (let j0 = 0; j0 < evals; j0 += perChunk) {
          const m = Math.min(perChunk, evals - j0);
          let u = this.s.norm === 'l2' ? this.draw([g, m, d], 'normal') : this.draw([g, m, d], 'uniform').mul(2).sub(1);
          u = u.div(u.norm(2, 2, { keepDim: true }).clamp(1e-30));
          const probe = clipToRange(this.model, base.add(u.mul(del)));
          // The direction actually probed, after clipping.
          const dir = probe.sub(base).div(del);
          // Probes past an image's budget are neither queried nor counted (phi = 0, weight 0).
          const take = gCounts.map((c) => Math.max(0, Math.min(m, c - j0)));
          const probes = probe.reshape([g * m, ...shape]);
          const rowLabels = labels.reshape([g, 1]).expand([g, m]).reshape([g * m]);
          let fval: Tensor;
          let weight: Tensor | null = null;
          if (take.every((c) => c === m)) {
            fval = this.adversarialMask(probes, rowLabels).to(this.clean.dtype).mul(2).sub(1);
          } else {
            const mask = tensor(take.flatMap((c) => range(m).map((b) => b < c)), { shape: [g * m] });
            const idx = indicesWhere(mask);
            weight = mask.to(this.clean.dtype);
            fval = weight;
            if (idx.shape[0] as number > 0) {
              const phi = this.adversarialMask(probes.indexSelect(0, idx), rowLabels.indexSelect(0, idx)).to(this.clean.dtype).mul(2).sub(1);
              fval = weight.indexCopy(0, idx, phi);
            }
          }
          rows.slice(g0, g0 + g).forEach((i, j) => (this.used[i] = (this.used[i] as number) + (take[j] as number)));
          const f = fval.reshape([g, m, 1]);
          const a1 = dir.mul(f).sum(1);
          const a0 = (weight ? dir.mul(weight.reshape([g, m, 1])) : dir).sum(1);
          const af = f.sum([1, 2]);
          s1 = s1 ? s1.add(a1) : a1;
          s0 = s0 ? s0.add(a0) : a0;
          fsum = fsum ? fsum.add(af) : af;
        }
        const count = tensor(Float64Array.from(gCounts), { shape: [g, 1], dtype: this.clean.dtype, device: this.clean.device });
        const mean = (fsum as Tensor).reshape([g, 1]).div(count);
        // The baseline mean(phi) is subtracted unless every probe agrees (then the plain mean).
        const baseline = mean.mul(mean.abs().lt(1));
        const v = (s1 as Tensor).sub((s0 as Tensor).mul(baseline)).div(count);
        return v.div(v.norm(2, 1, { keepDim: true }).clamp(1e-30));
      });
      parts.push(part);
    }
    return scope(() => (parts.length === 1 ? (parts[0] as Tensor) : cat(parts, 0)).reshape([k, ...shape]));
  }

  /**
   * The geometric step-size search: from xi per row, halve until
   * x + xi update is adversarial. The rows that found one (indices into
   * `rows`) and those points [m, ...].
   */
  private stepSize(rows: number[], points: Tensor, update: Tensor, xi: number[]): { moved: number[]; points: Tensor } {
    const size = xi.slice();
    const hit = new Array<boolean>(rows.length).fill(false);
    let out = points.clone();
    let pending = range(rows.length);
    for (let h = 0; h <= HSJ_MAX_HALVINGS && pending.length > 0; h++) {
      pending = pending.filter((j) => this.left(rows[j] as number) > 0);
      if (pending.length === 0) break;
      const part = pending;
      const next = scope(() => {
        const idx = indexTensor(part);
        const cand = clipToRange(this.model, points.indexSelect(0, idx).add(update.indexSelect(0, idx).mul(this.column(part.map((j) => size[j] as number)))));
        const dec = this.decide(part.map((j) => rows[j] as number), cand);
        const ok = part.filter((_, q) => dec[q]);
        const merged = ok.length ? mergeRows(out, indexTensor(ok), cand.indexSelect(0, indexTensor(part.flatMap((j, q) => (dec[q] ? [q] : []))))) : null;
        return { dec, merged };
      });
      if (next.merged) {
        out.dispose();
        out = next.merged;
      }
      part.forEach((j, q) => {
        if (next.dec[q]) hit[j] = true;
        else size[j] = (size[j] as number) / 2;
      });
      pending = part.filter((_, q) => !next.dec[q]);
    }
    const moved = range(rows.length).filter((j) => hit[j]);
    const result = scope(() => out.indexSelect(0, indexTensor(moved)));
    out.dispose();
    return { moved, points: result };
  }

  /**
   * Binary search between origin (x*, not adversarial) and far (adversarial),
   * one row per entry of `rows`: in blend units a in [0, 1], x* + a (far - x*),
   * or in L-inf radius a in [0, ||far - x*||_inf], clip(far, x* - a, x* + a); until
   * the interval is at most `tol` times its start. Returns the queried
   * adversarial point at the upper end ([k, ...]): far itself where it never moved.
   */
  private bisect(rows: number[], origin: Tensor, far: Tensor, mode: 'blend' | 'linf', tol: number): Tensor {
    const k = rows.length;
    const span = mode === 'blend' ? new Array<number>(k).fill(1) : scope(() => Array.from(normsOf(far.sub(origin), 'linf').to('float64').dataSync() as Float64Array));
    const low = new Array<number>(k).fill(0);
    const high = span.slice();
    let out = far.clone();
    for (;;) {
      const part = range(k).filter((j) => (high[j] as number) - (low[j] as number) > tol * (span[j] as number) && this.left(rows[j] as number) > 0);
      if (part.length === 0) break;
      const mids = part.map((j) => ((low[j] as number) + (high[j] as number)) / 2);
      const next = scope(() => {
        const idx = indexTensor(part);
        const o = origin.indexSelect(0, idx);
        const f = far.indexSelect(0, idx);
        const a = this.column(mids);
        const cand = clipToRange(this.model, mode === 'blend' ? o.add(f.sub(o).mul(a)) : f.clamp(o.sub(a), o.add(a)));
        const dec = this.decide(part.map((j) => rows[j] as number), cand);
        const ok = part.filter((_, q) => dec[q]);
        const merged = ok.length ? mergeRows(out, indexTensor(ok), cand.indexSelect(0, indexTensor(part.flatMap((_, q) => (dec[q] ? [q] : []))))) : null;
        return { dec, merged };
      });
      if (next.merged) {
        out.dispose();
        out = next.merged;
      }
      part.forEach((j, q) => {
        if (next.dec[q]) high[j] = mids[q] as number;
        else low[j] = mids[q] as number;
      });
    }
    return out;
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export const HOP_SKIP_JUMP: AttackSpec = {
  name: 'hop-skip-jump',
  summary: 'HopSkipJump: labels only; boundary binary search, gradient-direction estimates from 100 sqrt(t) queries, geometric step search; 40 iterations',
  kind: 'query',
  norms: ['l2', 'linf'],
  label: 'true',
  gradients: false,
  options: ['steps', 'queries', 'norm'],
  defaults: { steps: HSJ_STEPS },
  run: hopSkipJumpWithin,
  minimal: hopSkipJump,
};
