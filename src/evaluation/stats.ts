/**
 * Accuracy with a 95% confidence interval from the standard error of the mean
 * over the test set (the paper's intervals), and the paired comparison that
 * detects label leaking. Counts are kept raw so shards can be merged exactly.
 */

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

export interface Interval {
  value: number;
  low: number;
  high: number;
  /** Half width: z * standard error. */
  halfWidth: number;
}

/** The proportion correct/n with its normal-approximation 95% interval, clipped to [0, 1]. */
export function proportion(correct: number, n: number): Interval {
  if (!(n > 0)) return { value: NaN, low: NaN, high: NaN, halfWidth: NaN };
  const p = correct / n;
  const half = Z95 * Math.sqrt((p * (1 - p)) / n);
  return { value: p, low: Math.max(0, p - half), high: Math.min(1, p + half), halfWidth: half };
}

/** Two intervals overlap: the methods are statistically tied. */
export function overlaps(a: Interval, b: Interval): boolean {
  return a.low <= b.high && b.low <= a.high;
}

/**
 * Paired counts over the same images: for each image, d = adversarial correct
 * - clean correct in {-1, 0, 1}. `up` counts d = 1, `down` d = -1.
 */
export interface PairedCounts {
  n: number;
  up: number;
  down: number;
}

/**
 * Mean of d with its 95% interval. Label leaking is flagged when the whole
 * interval lies above zero: adversarial accuracy exceeds clean accuracy by more
 * than chance on these images allows.
 */
export function pairedDifference(c: PairedCounts): Interval {
  if (!(c.n > 0)) return { value: NaN, low: NaN, high: NaN, halfWidth: NaN };
  const mean = (c.up - c.down) / c.n;
  const meanSq = (c.up + c.down) / c.n;
  const variance = c.n > 1 ? ((meanSq - mean * mean) * c.n) / (c.n - 1) : 0;
  const half = Z95 * Math.sqrt(variance / c.n);
  return { value: mean, low: mean - half, high: mean + half, halfWidth: half };
}
