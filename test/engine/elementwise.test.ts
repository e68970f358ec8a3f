/**
 * Element-wise ops against JavaScript's Math: binary ops with broadcasting and
 * number operands, type promotion, comparisons, unary ops and activations,
 * clamp with number and tensor bounds, where, and the in-place ops.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { type Tensor, tensor } from '../../src/engine/index.js';
import { assertClose, build, offset, rng, uniformArray } from '../helpers/assert.js';
import { erf as erfRef } from '../helpers/math.js';

const f64 = (data: number[], shape?: number[]): Tensor => tensor(data, { dtype: 'float64', shape });

/** Broadcast `a` (shape sa) and `b` (shape sb) to out shape and apply f, in JS. */
function broadcastRef(a: number[], sa: number[], b: number[], sb: number[], f: (x: number, y: number) => number): { shape: number[]; data: number[] } {
  const rank = Math.max(sa.length, sb.length);
  const pa = [...Array(rank - sa.length).fill(1), ...sa] as number[];
  const pb = [...Array(rank - sb.length).fill(1), ...sb] as number[];
  const shape = pa.map((d, i) => Math.max(d, pb[i] as number));
  const data = build(shape, (idx) => {
    const ia = idx.map((v, i) => ((pa[i] as number) === 1 ? 0 : v));
    const ib = idx.map((v, i) => ((pb[i] as number) === 1 ? 0 : v));
    return f(a[offset(pa, ia)] as number, b[offset(pb, ib)] as number);
  });
  return { shape, data };
}

describe('binary ops', () => {
  const next = rng(1);
  const binary: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] = [
    ['add', (a, b) => a.add(b), (x, y) => x + y],
    ['add alpha', (a, b) => a.add(b, -2.5), (x, y) => x - 2.5 * y],
    ['sub', (a, b) => a.sub(b), (x, y) => x - y],
    ['sub alpha', (a, b) => a.sub(b, 3), (x, y) => x - 3 * y],
    ['mul', (a, b) => a.mul(b), (x, y) => x * y],
    ['div', (a, b) => a.div(b), (x, y) => x / y],
    ['pow', (a, b) => a.abs().pow(b), (x, y) => Math.abs(x) ** y],
    ['maximum', (a, b) => a.maximum(b), (x, y) => Math.max(x, y)],
    ['minimum', (a, b) => a.minimum(b), (x, y) => Math.min(x, y)],
    ['remainder', (a, b) => a.remainder(b), (x, y) => x - Math.floor(x / y) * y],
  ];
  const shapes: [number[], number[]][] = [
    [[2, 3], [2, 3]],
    [[2, 3], [3]],
    [[2, 3], [2, 1]],
    [[4, 1, 3], [2, 1]],
    [[3], []],
  ];
  for (const [name, op, ref] of binary) {
    test(`${name} with broadcasting`, () => {
      for (const [sa, sb] of shapes) {
        const a = uniformArray(next, sa.reduce((p, q) => p * q, 1), -2, 2);
        const b = uniformArray(next, sb.reduce((p, q) => p * q, 1), 0.5, 2).map((v, i) => (i % 2 ? -v : v));
        const expected = broadcastRef(a, sa, b, sb, ref);
        const out = op(f64(a, sa), f64(b, sb));
        assert.deepEqual(out.shape, expected.shape, `${name} ${JSON.stringify([sa, sb])}`);
        assertClose(out, expected.data, { atol: 1e-12, rtol: 1e-12, message: `${name} ${JSON.stringify([sa, sb])}` });
      }
    });
  }

  test('number operands', () => {
    const x = tensor([1, -2, 4]);
    assertClose(x.add(1.5), [2.5, -0.5, 5.5]);
    assertClose(x.sub(1), [0, -3, 3]);
    assertClose(x.mul(-2), [-2, 4, -8]);
    assertClose(x.div(4), [0.25, -0.5, 1]);
    assertClose(x.pow(2), [1, 4, 16]);
    assertClose(x.maximum(0), [1, 0, 4]);
    assertClose(x.minimum(0), [0, -2, 0]);
    assertClose(x.remainder(3), [1, 1, 1]);
  });

  test('type promotion follows PyTorch: integer numbers keep integer tensors integral', () => {
    const i = E.arange(0, 4);
    assert.equal(i.dtype, 'int64');
    // int64 op int64
    const s = i.add(i);
    assert.equal(s.dtype, 'int64');
    assert.deepEqual(s.toArray(), [0, 2, 4, 6]);
    assert.deepEqual(i.sub(i, 2).toArray(), [0, -1, -2, -3]);
    assert.deepEqual(i.mul(i).toArray(), [0, 1, 4, 9]);
    // int64 op integer number stays int64, a fractional number gives float32
    assert.equal(i.add(1).dtype, 'int64');
    assert.deepEqual(i.add(1).toArray(), [1, 2, 3, 4]);
    assert.equal(i.mul(3).dtype, 'int64');
    assert.equal(i.add(0.5).dtype, 'float32');
    assertClose(i.add(0.5), [0.5, 1.5, 2.5, 3.5]);
    // integer powers stay integral; negative integer powers of integers are refused (PyTorch)
    assert.equal(i.pow(2).dtype, 'int64');
    assert.deepEqual(i.pow(2).toArray(), [0, 1, 4, 9]);
    assertClose(i.pow(0.5), [0, 1, Math.SQRT2, Math.sqrt(3)]);
    assert.throws(() => i.pow(-1), /^Error: pow: Integers to negative integer powers are not allowed/);
    // true division
    assert.equal(i.div(2).dtype, 'float32');
    assertClose(i.div(2), [0, 0.5, 1, 1.5]);
    // a number never widens a float tensor
    assert.equal(tensor([1]).add(1).dtype, 'float32');
    assert.equal(tensor([1]).mul(0.1).dtype, 'float32');
    assert.equal(f64([1]).add(1).dtype, 'float64');
    // tensor op tensor promotes
    assert.equal(tensor([1]).add(f64([1])).dtype, 'float64');
    assert.equal(i.add(tensor([1, 1, 1, 1])).dtype, 'float32');
    assert.equal(tensor([true, false]).add(1).dtype, 'int64');
    // large integer numbers
    assert.deepEqual(E.tensor([0], { dtype: 'int64' }).add(2 ** 40).toArray(), [2 ** 40]);
  });

  test('comparisons and logical ops give bool', () => {
    const a = tensor([1, 2, 3]);
    const b = tensor([3, 2, 1]);
    const cases: [Tensor, boolean[]][] = [
      [a.eq(b), [false, true, false]],
      [a.ne(b), [true, false, true]],
      [a.lt(b), [true, false, false]],
      [a.le(b), [true, true, false]],
      [a.gt(b), [false, false, true]],
      [a.ge(b), [false, true, true]],
      [a.gt(1.5), [false, true, true]],
      [a.eq(2), [false, true, false]],
      [a.lt(b).logicalAnd(a.le(1)), [true, false, false]],
      [a.lt(b).logicalOr(a.eq(3)), [true, false, true]],
      [a.lt(b).logicalNot(), [false, true, true]],
    ];
    for (const [t, expected] of cases) {
      assert.equal(t.dtype, 'bool');
      assert.deepEqual(t.toArray(), expected);
    }
    assert.equal(tensor([true, true]).all().item(), 1);
    assert.equal(tensor([false, true]).all().item(), 0);
    assert.equal(tensor([false, true]).any().item(), 1);
  });
});

describe('unary ops and activations', () => {
  const xs = [-2.5, -1.2, -0.3, 0.4, 0.9, 1.7, 3.1];
  const softplus = (x: number, beta: number, threshold: number): number =>
    x * beta > threshold ? x : Math.log1p(Math.exp(beta * x)) / beta;
  const unary: [string, (t: Tensor) => Tensor, (x: number) => number, number[]?][] = [
    ['neg', (t) => t.neg(), (x) => -x],
    ['abs', (t) => t.abs(), Math.abs],
    ['exp', (t) => t.exp(), Math.exp],
    ['log', (t) => t.abs().log(), (x) => Math.log(Math.abs(x))],
    ['log1p', (t) => t.abs().log1p(), (x) => Math.log1p(Math.abs(x))],
    ['sqrt', (t) => t.abs().sqrt(), (x) => Math.sqrt(Math.abs(x))],
    ['rsqrt', (t) => t.abs().rsqrt(), (x) => 1 / Math.sqrt(Math.abs(x))],
    ['square', (t) => t.square(), (x) => x * x],
    ['reciprocal', (t) => t.reciprocal(), (x) => 1 / x],
    ['sign', (t) => t.sign(), Math.sign, [-2, 0, 3.5, -0.001]],
    ['floor', (t) => t.floor(), Math.floor],
    ['ceil', (t) => t.ceil(), Math.ceil],
    // round half to even, as PyTorch (not Math.round)
    ['round', (t) => t.round(), (x) => x, [-2, 0, 2, 4]],
    ['erf', (t) => t.erf(), erfRef],
    ['sin', (t) => t.sin(), Math.sin],
    ['cos', (t) => t.cos(), Math.cos],
    ['relu', (t) => t.relu(), (x) => Math.max(0, x)],
    ['sigmoid', (t) => t.sigmoid(), (x) => 1 / (1 + Math.exp(-x))],
    ['tanh', (t) => t.tanh(), Math.tanh],
    ['hardtanh default', (t) => t.hardtanh(), (x) => Math.min(1, Math.max(-1, x))],
    ['hardtanh(-0.5, 2)', (t) => t.hardtanh(-0.5, 2), (x) => Math.min(2, Math.max(-0.5, x))],
    ['leakyRelu default', (t) => t.leakyRelu(), (x) => (x > 0 ? x : 0.01 * x)],
    ['leakyRelu(0.2)', (t) => t.leakyRelu(0.2), (x) => (x > 0 ? x : 0.2 * x)],
    ['elu(1.5)', (t) => t.elu(1.5), (x) => (x > 0 ? x : 1.5 * Math.expm1(x))],
    ['softplus default', (t) => t.softplus(), (x) => softplus(x, 1, 20)],
    ['softplus(2, 3)', (t) => t.softplus(2, 3), (x) => softplus(x, 2, 3)],
  ];
  for (const [name, op, ref, data] of unary) {
    test(name, () => {
      const v = data ?? xs;
      assertClose(op(f64(v)), v.map(ref), { atol: 1e-12, rtol: 1e-12, message: name });
      assertClose(op(tensor(v)), v.map((x) => ref(Math.fround(x))), { atol: 1e-6, rtol: 1e-6, message: `${name} float32` });
    });
  }

  test('round halves to even', () => {
    assertClose(tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6]).round(), [0, 2, 2, -0, -2, 2, 3]);
  });

  test('erfinv inverts erf', () => {
    const ys = [-0.99, -0.5, -0.1, 0, 0.3, 0.77, 0.95];
    const x = f64(ys).erfinv().dataSync() as Float64Array;
    assertClose(Array.from(x, erfRef), ys, { atol: 1e-12 });
    assertClose(f64([1, -1]).erfinv(), [Infinity, -Infinity]);
  });

  test('isnan and isfinite', () => {
    const t = tensor([1, NaN, Infinity, -Infinity, 0]);
    assert.deepEqual(t.isnan().toArray(), [false, true, false, false, false]);
    assert.deepEqual(t.isfinite().toArray(), [true, false, false, false, true]);
    assertClose(tensor([-1]).log(), [NaN]);
    assertClose(tensor([0]).log(), [-Infinity]);
  });
});

describe('clamp', () => {
  const x = tensor([[-3, -0.5, 0.2], [0.8, 2, 5]]);
  test('number bounds', () => {
    assertClose(x.clamp(-1, 1), [[-1, -0.5, 0.2], [0.8, 1, 1]]);
    assertClose(x.clamp(0), [[0, 0, 0.2], [0.8, 2, 5]]);
    assertClose(x.clamp(null, 0.5), [[-3, -0.5, 0.2], [0.5, 0.5, 0.5]]);
  });

  test('per-element tensor bounds, broadcast', () => {
    const lo = tensor([-1, 0, 0.5]);
    const hi = tensor([[0], [1.5]]);
    // min(max(x, lo), hi), element by element
    assertClose(x.clamp(lo, hi), [[-1, 0, 0], [0.8, 1.5, 1.5]]);
    assertClose(x.clamp(lo), [[-1, 0, 0.5], [0.8, 2, 5]]);
    assertClose(x.clamp(null, hi), [[-3, -0.5, 0], [0.8, 1.5, 1.5]]);
    // a tensor and a number
    assertClose(x.clamp(lo, 1), [[-1, 0, 0.5], [0.8, 1, 1]]);
    assertClose(x.clamp(-2, hi), [[-2, -0.5, 0], [0.8, 1.5, 1.5]]);
  });

  test('integer tensors stay integer under integer bounds', () => {
    const i = tensor([-5, 0, 3, 9], { dtype: 'int64' });
    const c = i.clamp(0, 4);
    assert.equal(c.dtype, 'int64');
    assert.deepEqual(c.toArray(), [0, 0, 3, 4]);
  });

  test('clamp_ works in place with tensor bounds', () => {
    const y = tensor([-2, 0.5, 3]);
    const r = y.clamp_(tensor([-1, -1, -1]), tensor([1, 1, 1]));
    assert.equal(r, y);
    assertClose(y, [-1, 0.5, 1]);
  });
});

describe('where', () => {
  const cond = tensor([true, false, true]);
  test('tensors and numbers', () => {
    assertClose(E.where(cond, tensor([1, 2, 3]), tensor([10, 20, 30])), [1, 20, 3]);
    assertClose(E.where(cond, tensor([1, 2, 3]), 0), [1, 0, 3]);
    assertClose(E.where(cond, -1, tensor([[4, 5, 6]])), [[-1, 5, -1]]);
    const both = E.where(cond, 1, 2);
    assert.equal(both.dtype, 'int64');
    assert.deepEqual(both.toArray(), [1, 2, 1]);
    const frac = E.where(cond, 0.5, 2);
    assert.equal(frac.dtype, 'float32');
    assertClose(frac, [0.5, 2, 0.5]);
    assert.equal(E.where(cond, f64([1, 2, 3]), 0.5).dtype, 'float64');
  });
});

describe('in-place ops return this and update the values', () => {
  test('add_, mul_, div_, addcmul_, addcdiv_, lerp_, copy_, zero_, fill_', () => {
    const x = tensor([1, 2, 3]);
    assert.equal(x.add_(tensor([1, 1, 1]), 2), x);
    assertClose(x, [3, 4, 5]);
    x.add_(1);
    assertClose(x, [4, 5, 6]);
    x.mul_(0.5);
    assertClose(x, [2, 2.5, 3]);
    x.div_(tensor([2, 5, 3]));
    assertClose(x, [1, 0.5, 1]);
    x.addcmul_(tensor([1, 2, 3]), tensor([2, 2, 2]), 0.5);
    assertClose(x, [2, 2.5, 4]);
    x.addcdiv_(tensor([4, 4, 4]), tensor([2, 4, 8]), -1);
    assertClose(x, [0, 1.5, 3.5]);
    x.lerp_(tensor([10, 10, 10]), 0.5);
    assertClose(x, [5, 5.75, 6.75]);
    x.copy_(tensor([7, 8, 9]));
    assertClose(x, [7, 8, 9]);
    x.zero_();
    assertClose(x, [0, 0, 0]);
    x.fill_(-1.5);
    assertClose(x, [-1.5, -1.5, -1.5]);
  });

  test('integer in-place add keeps int64', () => {
    const i = tensor([1, 2], { dtype: 'int64' });
    i.add_(tensor([3, 4], { dtype: 'int64' }));
    i.add_(1);
    assert.deepEqual(i.toArray(), [5, 7]);
  });
});
