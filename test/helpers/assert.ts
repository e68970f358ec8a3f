/**
 * Shared test helpers: a seeded JavaScript random stream (independent of the
 * engine's generators), flattening of tensors and nested arrays, and
 * tolerance-aware comparisons that report where values differ.
 */
import assert from 'node:assert/strict';
import { Tensor, type NestedArray } from '../../src/engine/index.js';

/** Mulberry32: a small seeded PRNG, so test data does not come from the engine under test. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` uniform values in [lo, hi) from `next`. */
export function uniformArray(next: () => number, n: number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * next());
}

/** `n` values with |v| in [minAbs, maxAbs) and a random sign: away from kinks at 0. */
export function awayFromZero(next: () => number, n: number, minAbs = 0.1, maxAbs = 1): number[] {
  return Array.from({ length: n }, () => (next() < 0.5 ? -1 : 1) * (minAbs + (maxAbs - minAbs) * next()));
}

export const prod = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Row-major flattening of a nested array (booleans read as 0/1). */
export function flatten(x: NestedArray): number[] {
  if (Array.isArray(x)) return x.flatMap((v) => flatten(v));
  return [typeof x === 'boolean' ? Number(x) : x];
}

/** The elements of a tensor, nested array or flat list as one flat list of numbers. */
export function values(x: Tensor | NestedArray | readonly number[]): number[] {
  if (x instanceof Tensor) return Array.from(x.dataSync() as ArrayLike<number | bigint>, (v) => Number(v));
  return flatten(x as NestedArray);
}

/** The shape of a rectangular nested array. */
export function shapeOf(x: NestedArray): number[] {
  const shape: number[] = [];
  let level: NestedArray = x;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0] as NestedArray;
  }
  return shape;
}

export interface CloseOptions {
  atol?: number;
  rtol?: number;
  message?: string;
}

/**
 * Asserts |actual - expected| <= atol + rtol |expected| element-wise, and equal
 * shapes when `actual` is a tensor and `expected` a tensor, a number (0-dim) or
 * a nested array of rank >= 2 (a flat list is compared by values and count only). NaN matches
 * only NaN; infinities must match exactly.
 */
export function assertClose(
  actual: Tensor | NestedArray | readonly number[],
  expected: Tensor | NestedArray | readonly number[],
  opts: CloseOptions = {},
): void {
  const { atol = 1e-5, rtol = 1e-5, message = '' } = opts;
  const prefix = message ? `${message}: ` : '';
  if (actual instanceof Tensor && !(expected instanceof Tensor)) {
    // A flat list may be compared with a tensor of any rank (values only);
    // a nested array or a number must match the shape too.
    const es = shapeOf(expected as NestedArray);
    if (es.length !== 1) assert.deepEqual(actual.shape, es, `${prefix}shape`);
  }
  if (actual instanceof Tensor && expected instanceof Tensor) {
    assert.deepEqual(actual.shape, expected.shape, `${prefix}shape`);
  }
  const a = values(actual);
  const e = values(expected);
  assert.equal(a.length, e.length, `${prefix}number of elements`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = e[i] as number;
    if (Number.isNaN(y)) {
      assert.ok(Number.isNaN(x), `${prefix}element ${i}: expected NaN, got ${x}`);
      continue;
    }
    if (!Number.isFinite(y)) {
      assert.equal(x, y, `${prefix}element ${i}`);
      continue;
    }
    const tol = atol + rtol * Math.abs(y);
    if (!(Math.abs(x - y) <= tol)) {
      assert.fail(`${prefix}element ${i}: got ${x}, expected ${y} (difference ${Math.abs(x - y)} > tolerance ${tol})`);
    }
  }
}

/** Asserts the tensor's shape and exact values (integers, booleans). */
export function assertEqualTensor(actual: Tensor, expected: NestedArray, message = ''): void {
  assert.deepEqual(actual.shape, shapeOf(expected), `${message} shape`);
  assert.deepEqual(actual.toArray(), expected, message);
}

/** Evaluates an N-d array function at every index of `shape` (row-major), for naive reference loops. */
export function build(shape: readonly number[], f: (idx: number[]) => number): number[] {
  const out: number[] = [];
  const idx = shape.map(() => 0);
  const n = prod(shape);
  for (let k = 0; k < n; k++) {
    out.push(f(idx.slice()));
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      if ((idx[d] as number) < (shape[d] as number)) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Row-major offset of `idx` in `shape`. */
export function offset(shape: readonly number[], idx: readonly number[]): number {
  let o = 0;
  for (let d = 0; d < shape.length; d++) o = o * (shape[d] as number) + (idx[d] as number);
  return o;
}

/** Runs `fn` and asserts it throws an Error whose message matches every pattern. */
export function assertThrowsMatching(fn: () => unknown, ...patterns: RegExp[]): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an error matching ${patterns.join(', ')}, but nothing was thrown`);
  assert.ok(caught instanceof Error, `expected an Error, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}
