/**
 * The evaluation-standard parts of an evaluation: a suite's robust accuracy
 * per eps (which attack broke how many images, in how long), and the
 * distribution of minimal perturbation sizes found by the
 * minimal-perturbation methods. Counts and sizes are kept raw so shards merge
 * exactly.
 */
import type { Norm, SuiteResult } from '../attacks/index.js';
import type { Sharding } from './evaluate.js';
import { type Interval, proportion } from './stats.js';

/** Raw counts of a suite at one eps. */
export interface SuiteCounts {
  eps: number;
  n: number;
  robust: number;
  /** Per attack in suite order: images broken, images attacked, seconds (summed over shards). */
  attacks: { attack: string; broken: number; attacked: number; seconds: number }[];
}

export interface SuiteRow extends SuiteCounts {
  /** Robust accuracy: the share of images no attack of the suite broke, with its 95% interval. */
  robustAccuracy: Interval;
}

export interface SuiteSummary {
  name: string;
  norm: Norm;
  attacks: string[];
  rows: SuiteRow[];
}

export function emptySuiteCounts(eps: number, attacks: readonly string[]): SuiteCounts {
  return { eps, n: 0, robust: 0, attacks: attacks.map((attack) => ({ attack, broken: 0, attacked: 0, seconds: 0 })) };
}

/** Adds one batch's suite result. */
export function addSuiteResult(c: SuiteCounts, r: SuiteResult): void {
  c.n += r.robust.length;
  c.robust += r.robust.filter(Boolean).length;
  r.perAttack.forEach((a, i) => {
    const t = c.attacks[i] as SuiteCounts['attacks'][number];
    t.broken += a.broken;
    t.attacked += a.attacked;
    t.seconds += a.seconds;
  });
}

/** The numbers of a suite's counts in a fixed order, and back: what shards sum. */
export function suiteNumbers(c: SuiteCounts): number[] {
  return [c.n, c.robust, ...c.attacks.flatMap((a) => [a.broken, a.attacked, a.seconds])];
}

export function setSuiteNumbers(c: SuiteCounts, v: readonly number[]): void {
  c.n = v[0] as number;
  c.robust = v[1] as number;
  c.attacks.forEach((a, i) => {
    a.broken = v[2 + 3 * i] as number;
    a.attacked = v[3 + 3 * i] as number;
    a.seconds = v[4 + 3 * i] as number;
  });
}

export function suiteRow(c: SuiteCounts): SuiteRow {
  return { ...c, robustAccuracy: proportion(c.robust, c.n) };
}

/** Quantiles reported for minimal perturbation sizes. */
export const SIZE_QUANTILES = [0.1, 0.25, 0.5, 0.75, 0.9] as const;

/** The sizes of the minimal perturbations one method found, over the images the model classified correctly. */
export interface MinimalSummary {
  method: string;
  norm: Norm;
  /** Correctly classified images searched. */
  n: number;
  /** Of those, images where the search found an adversarial. */
  found: number;
  /** Median size in pixel units over all n (a failed search counts as Infinity, which JSON writes as null); NaN if n is 0. */
  median: number;
  /** The SIZE_QUANTILES of the sizes, same convention; empty if n is 0. */
  quantiles: { q: number; value: number }[];
}

/**
 * Sizes per image by the image's position in the evaluation's index list, so
 * shards can merge them: a size s travels as s + 1, a failed search as -1, and
 * 0 marks an image this shard did not hold (or one misclassified when clean).
 */
export class MinimalSizes {
  private readonly encoded: Float64Array;

  constructor(readonly method: string, readonly norm: Norm, positions: number) {
    this.encoded = new Float64Array(positions);
  }

  set(position: number, size: number): void {
    this.encoded[position] = Number.isFinite(size) ? size + 1 : -1;
  }

  merge(group?: Sharding): void {
    if (!group || group.worldSize <= 1) return;
    this.encoded.set(group.allReduceNumbers([...this.encoded], 'sum'));
  }

  summary(): MinimalSummary {
    const sizes: number[] = [];
    for (const v of this.encoded) if (v !== 0) sizes.push(v < 0 ? Number.POSITIVE_INFINITY : v - 1);
    sizes.sort((a, b) => a - b);
    const quantile = (q: number): number => sizes[Math.min(sizes.length - 1, Math.floor(q * sizes.length))] as number;
    return {
      method: this.method, norm: this.norm, n: sizes.length, found: sizes.filter(Number.isFinite).length,
      median: sizes.length ? quantile(0.5) : NaN, quantiles: sizes.length ? SIZE_QUANTILES.map((q) => ({ q, value: quantile(q) })) : [],
    };
  }
}
