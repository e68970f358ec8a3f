/**
 * Reductions over chosen dimensions and over all, with and without keepDim,
 * against JavaScript loops; arg-reductions, topk, sort, cumsum.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Tensor, tensor } from '../../src/engine/index.js';
import { assertClose, build, offset, prod, rng, uniformArray } from '../helpers/assert.js';

/** Reduces `data` (shape) over `dims` with `f` applied to the list of reduced values. */
function reduceRef(data: number[], shape: number[], dims: number[] | null, keepDim: boolean, f: (v: number[]) => number): { shape: number[]; data: number[] } {
  const all = dims === null ? shape.map((_, i) => i) : dims.map((d) => (d < 0 ? d + shape.length : d));
  const keptShape = shape.map((s, i) => (all.includes(i) ? 1 : s));
  const out = build(keptShape, (idx) => {
    const vals: number[] = [];
    const sub = all.map((d) => shape[d] as number);
    build(sub, (r) => {
      const full = idx.slice();
      all.forEach((d, k) => (full[d] = r[k] as number));
      vals.push(data[offset(shape, full)] as number);
      return 0;
    });
    return f(vals);
  });
  const outShape = keepDim ? keptShape : shape.filter((_, i) => !all.includes(i));
  return { shape: outShape, data: out };
}

const sum = (v: number[]): number => v.reduce((a, b) => a + b, 0);
const mean = (v: number[]): number => sum(v) / v.length;
const variance = (c: number) => (v: number[]): number => {
  const m = mean(v);
  return sum(v.map((x) => (x - m) ** 2)) / (v.length - c);
};
const pnorm = (p: number) => (v: number[]): number =>
  p === Infinity ? Math.max(...v.map(Math.abs)) : sum(v.map((x) => Math.abs(x) ** p)) ** (1 / p);
const logsumexp = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(sum(v.map((x) => Math.exp(x - m))));
};

describe('reductions against JS loops', () => {
  const shape = [2, 3, 4];
  const data = uniformArray(rng(3), prod(shape), -2, 2);
  const x = tensor(data, { dtype: 'float64', shape });
  const dimSets: (number[] | null)[] = [null, [0], [1], [2], [-1], [0, 2], [1, 2], [0, 1, 2]];
  const ops: [string, (t: Tensor, dims: number[] | null, keepDim: boolean) => Tensor, (v: number[]) => number][] = [
    ['sum', (t, d, k) => t.sum(d, { keepDim: k }), sum],
    ['mean', (t, d, k) => t.mean(d, { keepDim: k }), mean],
    ['max', (t, d, k) => t.max(d, { keepDim: k }), (v) => Math.max(...v)],
    ['min', (t, d, k) => t.min(d, { keepDim: k }), (v) => Math.min(...v)],
    ['var (unbiased)', (t, d, k) => t.var(d, { keepDim: k }), variance(1)],
    ['var correction 0', (t, d, k) => t.var(d, { keepDim: k, correction: 0 }), variance(0)],
    ['std (unbiased)', (t, d, k) => t.std(d, { keepDim: k }), (v) => Math.sqrt(variance(1)(v))],
    ['std correction 0', (t, d, k) => t.std(d, { keepDim: k, correction: 0 }), (v) => Math.sqrt(variance(0)(v))],
    ['norm 2', (t, d, k) => t.norm(2, d, { keepDim: k }), pnorm(2)],
    ['norm 1', (t, d, k) => t.norm(1, d, { keepDim: k }), pnorm(1)],
    ['norm 3', (t, d, k) => t.norm(3, d, { keepDim: k }), pnorm(3)],
    ['norm Infinity', (t, d, k) => t.norm(Infinity, d, { keepDim: k }), pnorm(Infinity)],
  ];
  for (const [name, op, ref] of ops) {
    test(name, () => {
      for (const dims of dimSets) {
        for (const keepDim of [false, true]) {
          const expected = reduceRef(data, shape, dims, keepDim, ref);
          const out = op(x, dims, keepDim);
          const label = `${name} dims ${JSON.stringify(dims)} keepDim ${keepDim}`;
          assert.deepEqual(out.shape, expected.shape, `${label}: shape`);
          assertClose(out, expected.data, { atol: 1e-12, rtol: 1e-12, message: label });
        }
      }
    });
  }

  test('logsumexp', () => {
    for (const dims of [[0], [2], [0, 2], [0, 1, 2]]) {
      for (const keepDim of [false, true]) {
        const expected = reduceRef(data, shape, dims, keepDim, logsumexp);
        const out = x.logsumexp(dims, { keepDim });
        assert.deepEqual(out.shape, expected.shape);
        assertClose(out, expected.data, { atol: 1e-12, rtol: 1e-12 });
      }
    }
    // stable for large values
    assertClose(tensor([1000, 1000], { dtype: 'float64' }).logsumexp(0), 1000 + Math.log(2), { rtol: 1e-14 });
  });

  test('a single dim as a number equals the one-element list', () => {
    assertClose(x.sum(1), x.sum([1]), { atol: 0, rtol: 0 });
    assertClose(x.std(-1, { keepDim: true }), x.std([2], { keepDim: true }), { atol: 0, rtol: 0 });
  });
});

describe('reductions on a small matrix, by hand', () => {
  const m = tensor([[1, 2, 3], [4, 5, 6]]);
  test('values', () => {
    assertClose(m.sum(), 21);
    assertClose(m.sum(0), [5, 7, 9]);
    assertClose(m.sum(1, { keepDim: true }), [[6], [15]]);
    assertClose(m.sum(null, { keepDim: true }), [[21]]);
    assertClose(m.mean(), 3.5);
    assertClose(m.mean(null, { keepDim: true }), [[3.5]]);
    assertClose(m.max(), 6);
    assertClose(m.min(1), [1, 4]);
    assertClose(m.var(), 3.5);
    assertClose(m.var(1), [1, 1]);
    assertClose(m.std(0, { correction: 0 }), [1.5, 1.5, 1.5]);
    assertClose(m.norm(), Math.sqrt(91));
    assertClose(m.norm(2, null, { keepDim: true }), [[Math.sqrt(91)]]);
    assertClose(m.norm(1, 0), [5, 7, 9]);
    assertClose(m.norm(Infinity), 6);
  });

  test('integer sums stay int64; the dtype option widens', () => {
    const i = tensor([[1, 2], [3, 4]], { dtype: 'int32' });
    const s = i.sum();
    assert.equal(s.dtype, 'int64');
    assert.equal(s.item(), 10);
    const d = i.sum(0, { dtype: 'float64' });
    assert.equal(d.dtype, 'float64');
    assertClose(d, [4, 6]);
    assert.equal(tensor([true, true, false]).sum().item(), 2);
  });
});

describe('arg-reductions, topk, sort, cumsum', () => {
  const m = tensor([[3, 9, 1, 4], [7, 2, 8, 5]]);
  test('argmax and argmin', () => {
    const am = m.argmax(1);
    assert.equal(am.dtype, 'int64');
    assert.deepEqual(am.toArray(), [1, 2]);
    assert.deepEqual(m.argmin(1).toArray(), [2, 1]);
    assert.deepEqual(m.argmax(0).toArray(), [1, 0, 1, 1]);
    assert.deepEqual(m.argmax(1, { keepDim: true }).toArray(), [[1], [2]]);
    assert.deepEqual(m.argmin(0, { keepDim: true }).toArray(), [[0, 1, 0, 0]]);
    // without a dim: the index into the flattened tensor
    assert.equal(m.argmax().item(), 1);
    assert.equal(m.argmin().item(), 2);
    assert.deepEqual(m.argmax().shape, []);
  });

  test('topk, largest and smallest', () => {
    const { values, indices } = m.topk(2);
    assertClose(values, [[9, 4], [8, 7]]);
    assert.equal(indices.dtype, 'int64');
    assert.deepEqual(indices.toArray(), [[1, 3], [2, 0]]);
    const low = m.topk(3, { largest: false });
    assertClose(low.values, [[1, 3, 4], [2, 5, 7]]);
    assert.deepEqual(low.indices.toArray(), [[2, 0, 3], [1, 3, 0]]);
    const col = m.topk(1, { dim: 0 });
    assertClose(col.values, [[7, 9, 8, 5]]);
    assert.deepEqual(col.indices.toArray(), [[1, 0, 1, 1]]);
  });

  test('sort, ascending and descending, with indices', () => {
    const v = uniformArray(rng(9), 10, -5, 5);
    const t = tensor(v, { dtype: 'float64' });
    const asc = t.sort();
    const order = v.map((_, i) => i).sort((a, b) => (v[a] as number) - (v[b] as number));
    assert.deepEqual(asc.indices.toArray(), order);
    assertClose(asc.values, order.map((i) => v[i] as number), { atol: 0, rtol: 0 });
    const desc = t.sort({ descending: true });
    assert.deepEqual(desc.indices.toArray(), order.slice().reverse());
    const rows = m.sort({ dim: 0 });
    assertClose(rows.values, [[3, 2, 1, 4], [7, 9, 8, 5]]);
    assert.deepEqual(rows.indices.toArray(), [[0, 1, 0, 0], [1, 0, 1, 1]]);
  });

  test('cumsum', () => {
    assertClose(m.cumsum(1), [[3, 12, 13, 17], [7, 9, 17, 22]]);
    assertClose(m.cumsum(0), [[3, 9, 1, 4], [10, 11, 9, 9]]);
  });
});
