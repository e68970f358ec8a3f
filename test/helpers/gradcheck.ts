/**
 * Gradient check: the engine's autograd (through `grad()`) against central
 * finite differences, in float64. The function's outputs are reduced to one
 * scalar with fixed pseudo-random weights, L = sum_k sum(w_k * out_k), so every
 * output element's gradient takes part; then dL/dx from `grad()` is compared
 * with (L(x + h e_i) - L(x - h e_i)) / 2h for every element i of every input.
 */
import assert from 'node:assert/strict';
import { Tensor, grad, noGrad, scope, tensor } from '../../src/engine/index.js';
import { rng, uniformArray } from './assert.js';

export type GradFn = (...inputs: Tensor[]) => Tensor | Tensor[];

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Seed of the output weights (default 7). */
  seed?: number;
}

/** An input for gradcheck: float64 values with a shape. */
export interface GradInput {
  shape: number[];
  data: readonly number[];
}

/** Makes a GradInput; `data` must have prod(shape) values. */
export function input(shape: number[], data: readonly number[]): GradInput {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`gradcheck input: shape [${shape}] needs ${n} values, got ${data.length}`);
  return { shape, data };
}

const toTensor = (x: GradInput, data: readonly number[] = x.data): Tensor =>
  tensor(Float64Array.from(data), { shape: x.shape });

/** The scalar L for the given input values (no graph). */
function lossValue(fn: GradFn, inputs: GradInput[], data: (readonly number[])[], weights: Float64Array[]): number {
  return scope(() =>
    noGrad(() => {
      const outs = asList(fn(...inputs.map((x, i) => toTensor(x, data[i]))));
      return outs.reduce((acc, o, k) => acc + weightedSum(o, weights[k] as Float64Array), 0);
    }),
  );
}

function asList(o: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(o) ? o : [o];
}

function weightedSum(o: Tensor, w: Float64Array): number {
  const v = o.to('float64').dataSync() as Float64Array;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (w[i] as number);
  return s;
}

/**
 * Asserts that autograd's gradient of `fn` at `inputs` matches central finite
 * differences. `name` labels failures. Frees every tensor it makes.
 */
export function gradcheck(name: string, fn: GradFn, inputs: GradInput[], opts: GradcheckOptions = {}): void {
  const { eps = 1e-6, atol = 1e-6, rtol = 1e-5, seed = 7 } = opts;
  // Analytic gradients, and the output weights (fixed by the output shapes).
  const { analytic, weights } = scope(() => {
    const xs = inputs.map((x) => toTensor(x).requiresGrad_());
    const outs = asList(fn(...xs));
    assert.ok(outs.length > 0, `${name}: fn returned no outputs`);
    const next = rng(seed);
    const ws = outs.map((o) => Float64Array.from(uniformArray(next, o.size, -1, 1)));
    for (const o of outs) assert.equal(o.dtype, 'float64', `${name}: output should be float64 for a float64 input`);
    const loss = outs
      .map((o, k) => o.mul(tensor(ws[k] as Float64Array, { shape: o.shape })).sum())
      .reduce((a, b) => a.add(b));
    const gs = grad(loss, xs);
    gs.forEach((g, i) => assert.deepEqual(g.shape, inputs[i]?.shape, `${name}: shape of the gradient of input ${i}`));
    return { analytic: gs.map((g) => Array.from(g.dataSync() as Float64Array)), weights: ws };
  });
  const data = inputs.map((x) => x.data.slice());
  inputs.forEach((x, i) => {
    const base = data[i] as number[];
    for (let j = 0; j < x.data.length; j++) {
      const v = base[j] as number;
      base[j] = v + eps;
      const up = lossValue(fn, inputs, data, weights);
      base[j] = v - eps;
      const down = lossValue(fn, inputs, data, weights);
      base[j] = v;
      const numeric = (up - down) / (2 * eps);
      const a = (analytic[i] as number[])[j] as number;
      const tol = atol + rtol * Math.abs(numeric);
      if (!(Math.abs(a - numeric) <= tol)) {
        assert.fail(
          `${name}: d/d input ${i}[${j}] (value ${v}): autograd ${a}, finite differences ${numeric} ` +
            `(difference ${Math.abs(a - numeric)} > ${tol})`,
        );
      }
    }
  });
}
