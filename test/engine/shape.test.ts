/**
 * Joining, slicing, indexing and shape ops, against values worked out by hand
 * or by index arithmetic in JavaScript.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { tensor } from '../../src/engine/index.js';
import { assertClose, assertEqualTensor, build, offset, values } from '../helpers/assert.js';

/** 0, 1, ..., n-1 as float32 with the given shape. */
const iota = (shape: number[]): E.Tensor => E.arange(0, shape.reduce((a, b) => a * b, 1), 1, { dtype: 'float32' }).reshape(shape);
const i64 = (data: number[] | number[][]): E.Tensor => tensor(data, { dtype: 'int64' });

describe('joining', () => {
  const a = tensor([[1, 2], [3, 4]]);
  const b = tensor([[5, 6]]);
  test('cat along dims 0 and 1, and negative dims', () => {
    assertEqualTensor(E.cat([a, b]), [[1, 2], [3, 4], [5, 6]]);
    assertEqualTensor(E.cat([a, tensor([[7], [8]])], 1), [[1, 2, 7], [3, 4, 8]]);
    assertEqualTensor(E.cat([a, a], -1), [[1, 2, 1, 2], [3, 4, 3, 4]]);
    assertEqualTensor(E.cat([b]), [[5, 6]]);
  });

  test('stack adds a dimension', () => {
    const c = tensor([[9, 8], [7, 6]]);
    assertEqualTensor(E.stack([a, c]), [[[1, 2], [3, 4]], [[9, 8], [7, 6]]]);
    assertEqualTensor(E.stack([a, c], 1), [[[1, 2], [9, 8]], [[3, 4], [7, 6]]]);
    assertEqualTensor(E.stack([a, c], 2), [[[1, 9], [2, 8]], [[3, 7], [4, 6]]]);
  });

  test('chunk and split', () => {
    const x = iota([2, 5]);
    const ch = x.chunk(3, 1);
    assert.deepEqual(ch.map((t) => t.shape), [[2, 2], [2, 2], [2, 1]]);
    assertEqualTensor(ch[2]!, [[4], [9]]);
    const sp = x.split([1, 4], 1);
    assertEqualTensor(sp[0]!, [[0], [5]]);
    assertEqualTensor(sp[1]!, [[1, 2, 3, 4], [6, 7, 8, 9]]);
    assert.equal(x.chunk(2).length, 2);
  });
});

describe('slicing and indexing', () => {
  const x = iota([3, 4]); // [[0..3], [4..7], [8..11]]
  test('narrow, select, slice', () => {
    assertEqualTensor(x.narrow(1, 1, 2), [[1, 2], [5, 6], [9, 10]]);
    assertEqualTensor(x.narrow(0, 2, 1), [[8, 9, 10, 11]]);
    assertEqualTensor(x.select(0, 1), [4, 5, 6, 7]);
    assertEqualTensor(x.select(1, -1), [3, 7, 11]);
    assertEqualTensor(x.slice(1, 1), [[1, 2, 3], [5, 6, 7], [9, 10, 11]]);
    assertEqualTensor(x.slice(1, 0, 4, 2), [[0, 2], [4, 6], [8, 10]]);
    assertEqualTensor(x.slice(0, -2), [[4, 5, 6, 7], [8, 9, 10, 11]]);
    assertEqualTensor(x.slice(0, 0, -1), [[0, 1, 2, 3], [4, 5, 6, 7]]);
    assertEqualTensor(x.slice(1, 1, 100, 2), [[1, 3], [5, 7], [9, 11]]);
  });

  test('views share memory with their base', () => {
    const y = iota([2, 3]);
    const row = y.select(0, 1);
    row.fill_(-1);
    assertEqualTensor(y, [[0, 1, 2], [-1, -1, -1]]);
  });

  test('indexSelect with repeated and reordered indices', () => {
    assertEqualTensor(x.indexSelect(0, i64([2, 0, 2])), [[8, 9, 10, 11], [0, 1, 2, 3], [8, 9, 10, 11]]);
    assertEqualTensor(x.indexSelect(1, i64([3, 1])), [[3, 1], [7, 5], [11, 9]]);
  });

  test('gather: out[i][j] = x[i][index[i][j]] (dim 1), x[index[i][j]][j] (dim 0)', () => {
    const idx1 = [[0, 3, 3], [2, 2, 1], [1, 0, 0]];
    assertEqualTensor(x.gather(1, i64(idx1)), idx1.map((r, i) => r.map((k) => i * 4 + k)));
    const idx0 = [[2, 0, 1, 1], [0, 0, 2, 1]];
    assertEqualTensor(x.gather(0, i64(idx0)), idx0.map((r) => r.map((k, j) => k * 4 + j)));
  });

  test('scatter: out[i][index[i][j]] = src[i][j]', () => {
    const z = E.zeros([2, 4]);
    const out = z.scatter(1, i64([[3, 0], [1, 2]]), tensor([[1, 2], [3, 4]]));
    assertEqualTensor(out, [[2, 0, 0, 1], [0, 3, 4, 0]]);
    assertEqualTensor(z, [[0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  test('maskedFill and maskedSelect', () => {
    const m = x.gt(5.5);
    assertEqualTensor(x.maskedFill(m, -1), [[0, 1, 2, 3], [4, 5, -1, -1], [-1, -1, -1, -1]]);
    assertEqualTensor(x.maskedSelect(x.remainder(5).eq(0)), [0, 5, 10]);
    // a broadcast mask
    assertEqualTensor(x.maskedFill(tensor([true, false, false, true]), 0), [[0, 1, 2, 0], [0, 5, 6, 0], [0, 9, 10, 0]]);
  });
});

describe('shape ops', () => {
  const shape = [2, 3, 4];
  const x = iota(shape);
  test('reshape, including -1', () => {
    const r = x.reshape([4, 6]);
    assert.deepEqual(r.shape, [4, 6]);
    assert.deepEqual(values(r), values(x));
    assert.deepEqual(x.reshape([-1, 2]).shape, [12, 2]);
    assert.deepEqual(x.reshape([24]).shape, [24]);
  });

  test('permute and transpose move elements as index arithmetic says', () => {
    const p = x.permute([2, 0, 1]);
    assert.deepEqual(p.shape, [4, 2, 3]);
    assertClose(p, build([4, 2, 3], ([k, i, j]) => offset(shape, [i!, j!, k!])), { atol: 0 });
    const t = x.transpose(0, 2);
    assert.deepEqual(t.shape, [4, 3, 2]);
    assertClose(t, build([4, 3, 2], ([k, j, i]) => offset(shape, [i!, j!, k!])), { atol: 0 });
    assertClose(x.transpose(-1, -2), x.permute([0, 2, 1]), { atol: 0 });
  });

  test('flatten', () => {
    assert.deepEqual(x.flatten().shape, [24]);
    assert.deepEqual(x.flatten(1).shape, [2, 12]);
    assert.deepEqual(x.flatten(0, 1).shape, [6, 4]);
    assertClose(x.flatten(1), build([2, 12], ([i, r]) => i! * 12 + r!), { atol: 0 });
  });

  test('squeeze and unsqueeze', () => {
    const y = E.zeros([1, 3, 1, 2]);
    assert.deepEqual(y.squeeze().shape, [3, 2]);
    assert.deepEqual(y.squeeze(0).shape, [3, 1, 2]);
    assert.deepEqual(y.squeeze(2).shape, [1, 3, 2]);
    assert.deepEqual(y.squeeze(1).shape, [1, 3, 1, 2]);
    assert.deepEqual(x.unsqueeze(0).shape, [1, 2, 3, 4]);
    assert.deepEqual(x.unsqueeze(-1).shape, [2, 3, 4, 1]);
    assert.deepEqual(x.unsqueeze(1).shape, [2, 1, 3, 4]);
  });

  test('expand, repeat, flip', () => {
    const c = tensor([[1], [2]]);
    assertEqualTensor(c.expand([2, 3]), [[1, 1, 1], [2, 2, 2]]);
    assertEqualTensor(c.expand([2, 2, 2]), [[[1, 1], [2, 2]], [[1, 1], [2, 2]]]);
    const m = tensor([[1, 2], [3, 4]]);
    assertEqualTensor(m.repeat([2, 3]), [[1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4], [1, 2, 1, 2, 1, 2], [3, 4, 3, 4, 3, 4]]);
    assertEqualTensor(m.repeat([2, 1, 1]), [[[1, 2], [3, 4]], [[1, 2], [3, 4]]]);
    assertEqualTensor(m.flip([0]), [[3, 4], [1, 2]]);
    assertEqualTensor(m.flip([1]), [[2, 1], [4, 3]]);
    assertEqualTensor(m.flip([0, 1]), [[4, 3], [2, 1]]);
  });
});

describe('oneHot', () => {
  test('indices [N] to [N, classes] int64', () => {
    const h = E.oneHot(i64([0, 2, 1, 2]), 3);
    assert.equal(h.dtype, 'int64');
    assertEqualTensor(h, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]);
  });
  test('indices of any rank', () => {
    assertEqualTensor(E.oneHot(i64([[1], [0]]), 2), [[[0, 1]], [[1, 0]]]);
  });
});
