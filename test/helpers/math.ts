/** Reference special functions in double precision, independent of the engine. */

/**
 * erf by its Maclaurin series, for |x| <= 3.5 (cancellation error below 1e-12
 * there); beyond, the series loses precision, so it refuses.
 */
export function erf(x: number): number {
  if (!(Math.abs(x) <= 3.5)) throw new Error(`erf reference: |x| must be <= 3.5, got ${x}`);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** Standard normal density. */
export const phi = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/** Standard normal distribution function. */
export const Phi = (x: number): number => 0.5 * (1 + erf(x / Math.SQRT2));
