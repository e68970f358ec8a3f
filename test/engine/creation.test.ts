/**
 * Tensor creation from nested and typed arrays, reading data back (toArray,
 * dataSync, item, rawBytes), dtype conversion and memory formats.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { tensor } from '../../src/engine/index.js';
import { assertClose, assertThrowsMatching, rng, uniformArray, values } from '../helpers/assert.js';

describe('creation from nested arrays and back', () => {
  test('nested numbers become float32 with the inferred shape', () => {
    const t = tensor([[1, 2, 3], [4, 5, 6.5]]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, 'float32');
    assert.equal(t.rank, 2);
    assert.equal(t.size, 6);
    assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6.5]]);
    const d = t.dataSync();
    assert.ok(d instanceof Float32Array);
    assert.deepEqual(Array.from(d), [1, 2, 3, 4, 5, 6.5]);
  });

  test('float32 storage rounds like Math.fround; float64 keeps full precision', () => {
    const x = 1 / 3;
    assert.equal(tensor([x]).dataSync()[0], Math.fround(x));
    assert.notEqual(Math.fround(x), x);
    assert.equal(tensor([x], { dtype: 'float64' }).dataSync()[0], x);
  });

  test('3-d nested array round trip', () => {
    const data = [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]];
    const t = tensor(data, { dtype: 'float64' });
    assert.deepEqual(t.shape, [3, 2, 2]);
    assert.deepEqual(t.toArray(), data);
  });

  test('nested booleans become bool and read back as booleans', () => {
    const t = tensor([[true, false], [false, true]]);
    assert.equal(t.dtype, 'bool');
    assert.deepEqual(t.toArray(), [[true, false], [false, true]]);
    const d = t.dataSync();
    assert.ok(d instanceof Uint8Array);
    assert.deepEqual(Array.from(d), [1, 0, 0, 1]);
  });

  test('a number gives a 0-dim tensor; scalar() too; item() reads it', () => {
    const t = tensor(2.5);
    assert.deepEqual(t.shape, []);
    assert.equal(t.item(), 2.5);
    assert.equal(t.toArray(), 2.5);
    const s = E.scalar(-3, { dtype: 'int64' });
    assert.deepEqual(s.shape, []);
    assert.equal(s.dtype, 'int64');
    assert.equal(s.item(), -3);
    assert.equal(tensor([7]).item(), 7);
  });

  test('an explicit dtype and shape are honoured', () => {
    const t = tensor([1, 2, 3, 4, 5, 6], { dtype: 'int64', shape: [3, 2] });
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(t.toArray(), [[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(Array.from(t.dataSync() as BigInt64Array), [1n, 2n, 3n, 4n, 5n, 6n]);
  });

  test('an empty array', () => {
    const t = tensor([]);
    assert.deepEqual(t.shape, [0]);
    assert.deepEqual(t.toArray(), []);
  });

  test('ragged arrays and mixed element types are rejected', () => {
    assertThrowsMatching(() => tensor([[1, 2], [3]]), /ragged/);
    assertThrowsMatching(() => tensor([[1, 2], 3] as never), /ragged/);
    assertThrowsMatching(() => tensor([1, true] as never), /only numbers or only booleans/);
  });

  test('a shape that does not match the data is rejected', () => {
    const e = assertThrowsMatching(() => tensor([1, 2, 3], { shape: [2, 2] }), /^fromBuffer: /, /4 elements/);
    assert.equal((e as Error & { op?: string }).op, 'fromBuffer');
  });
});

describe('creation from typed arrays', () => {
  test('each typed array keeps its element type', () => {
    const cases: [E.AnyTypedArray, E.DType][] = [
      [new Float32Array([1.5, -2]), 'float32'],
      [new Float64Array([1.5, -2]), 'float64'],
      [new Int32Array([7, -8]), 'int32'],
      [new Int16Array([7, -8]), 'int16'],
      [new Int8Array([7, -8]), 'int8'],
      [new Uint8Array([7, 200]), 'uint8'],
      [new BigInt64Array([7n, -8n]), 'int64'],
    ];
    for (const [data, dtype] of cases) {
      const t = tensor(data);
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [2]);
      const back = t.dataSync();
      assert.equal(back.constructor, data.constructor, dtype);
      assert.deepEqual(Array.from(back as ArrayLike<unknown>), Array.from(data as ArrayLike<unknown>), dtype);
    }
  });

  test('int64 values beyond 2^32 round-trip exactly', () => {
    const big = [2n ** 40n + 3n, -(2n ** 50n) - 1n];
    const t = tensor(BigInt64Array.from(big));
    assert.deepEqual(Array.from(t.dataSync() as BigInt64Array), big);
    assert.deepEqual(t.toArray(), big.map(Number));
  });

  test('a subarray view reads from its own offset', () => {
    const buf = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const t = tensor(buf.subarray(3, 7), { shape: [2, 2] });
    assert.deepEqual(t.toArray(), [[3, 4], [5, 6]]);
  });

  test('the data is copied: changing the source array later does not change the tensor', () => {
    const src = new Float32Array([1, 2, 3]);
    const t = tensor(src);
    src[0] = 100;
    assert.deepEqual(t.toArray(), [1, 2, 3]);
  });

  test('a typed array converted to another dtype', () => {
    const t = tensor(new Float64Array([1.9, -1.9, 0.2]), { dtype: 'int32' });
    assert.equal(t.dtype, 'int32');
    assert.deepEqual(t.toArray(), [1, -1, 0]);
  });
});

describe('creation functions', () => {
  test('zeros, ones, full, empty, eye', () => {
    assertClose(E.zeros([2, 2]), [[0, 0], [0, 0]]);
    assertClose(E.ones([3]), [1, 1, 1]);
    assert.equal(E.ones([2], { dtype: 'int64' }).dtype, 'int64');
    assertClose(E.full([2, 1], 4.25), [[4.25], [4.25]]);
    assert.deepEqual(E.empty([3, 0, 2]).shape, [3, 0, 2]);
    assertClose(E.eye(3), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    assert.equal(E.zeros([1]).dtype, 'float32');
  });

  test('arange is int64 by default; linspace includes both ends', () => {
    const a = E.arange(2, 9, 3);
    assert.equal(a.dtype, 'int64');
    assert.deepEqual(a.toArray(), [2, 5, 8]);
    assertClose(E.arange(0, 1, 0.25, { dtype: 'float32' }), [0, 0.25, 0.5, 0.75]);
    // fractional bounds or step infer float32, as in PyTorch (an int64 default truncated the step to 0)
    const f = E.arange(0, 1, 0.25);
    assert.equal(f.dtype, 'float32');
    assertClose(f, [0, 0.25, 0.5, 0.75]);
    assertClose(E.arange(0.5, 3), [0.5, 1.5, 2.5]);
    assert.deepEqual(E.arange(5, 0, -2).toArray(), [5, 3, 1]);
    assertClose(E.linspace(-1, 1, 5), [-1, -0.5, 0, 0.5, 1]);
  });

  test('zerosLike and onesLike keep shape and dtype', () => {
    const x = tensor([[1, 2, 3]], { dtype: 'float64' });
    const z = E.zerosLike(x);
    assert.deepEqual([z.shape, z.dtype], [[1, 3], 'float64']);
    assertClose(E.onesLike(x), [[1, 1, 1]]);
  });

  test('item() needs exactly one element', () => {
    assertThrowsMatching(() => E.ones([2]).item(), /^item: /, /one element/);
  });
});

/** Round-to-nearest-even of a float32 to bfloat16 (its top 16 bits), from the bits. */
function bfloat16Round(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  const bits = u[0] as number;
  const lsb = (bits >>> 16) & 1;
  u[0] = ((bits + 0x7fff + lsb) >>> 16) << 16;
  return f[0] as number;
}

describe('dtype conversion', () => {
  test('float to int64 truncates toward zero', () => {
    const t = tensor([1.7, -1.7, 2.5, -0.2, 3]).to('int64');
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(t.toArray(), [1, -1, 2, 0, 3]);
  });

  test('to bool: zero is false, anything else true; bool to float gives 0/1', () => {
    const b = tensor([0, 2, -0.5, 0]).to('bool');
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(b.toArray(), [false, true, true, false]);
    assert.deepEqual(b.to('float32').toArray(), [0, 1, 1, 0]);
    assert.deepEqual(b.to('int64').toArray(), [0, 1, 1, 0]);
  });

  test('float32 <-> float64', () => {
    const x = tensor([1 / 3, 1e-30, 1e30], { dtype: 'float64' });
    const f = x.to('float32');
    assert.equal(f.dtype, 'float32');
    assert.deepEqual(values(f), [1 / 3, 1e-30, 1e30].map(Math.fround));
    const back = f.to('float64');
    assert.deepEqual(values(back), [1 / 3, 1e-30, 1e30].map(Math.fround));
  });

  test('int64 to float64 is exact below 2^53', () => {
    const v = 2 ** 52 + 1;
    assert.equal(tensor(BigInt64Array.from([BigInt(v)])).to('float64').item(), v);
  });

  test('bfloat16 round trip: 8 significant bits, round to nearest even', () => {
    // bfloat16 has an 8-bit significand (7 stored bits): the spacing at 1 is 2^-7.
    const exact = [1, -2, 0.5, 3, 1 + 2 ** -7, 256, -0.015625];
    assert.deepEqual(values(tensor(exact).to('bfloat16').to('float32')), exact);
    // Halfway cases go to the even significand.
    const ties = tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8]).to('bfloat16');
    assert.equal(ties.dtype, 'bfloat16');
    assert.deepEqual(values(ties), [1, 1 + 2 ** -6]);
    // pi: 3.14159... -> 3.140625 (nearest multiple of 2^-6 in [2, 4)).
    assert.equal(tensor([Math.PI]).to('bfloat16').item(), 3.140625);
    // Random values: the nearest bfloat16 (ties to even) of the float32 value,
    // computed here from the float32 bit pattern; at most 2^-8 relative error.
    const vals = uniformArray(rng(5), 1000, -100, 100);
    const back = tensor(vals, { dtype: 'float64' }).to('bfloat16').to('float64').dataSync() as Float64Array;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i] as number;
      assert.equal(back[i], bfloat16Round(v), `${v}`);
      assert.ok(Math.abs((back[i] as number) - v) <= Math.abs(v) * 2 ** -8, `${v} -> ${back[i]}`);
    }
  });

  test('bfloat16 dataSync widens to float32; rawBytes gives the 2-byte encoding', () => {
    const t = tensor([1, -2]).to('bfloat16');
    assert.ok(t.dataSync() instanceof Float32Array);
    // 1.0 is 0x3F80 and -2.0 is 0xC000, little-endian.
    assert.deepEqual(Array.from(t.rawBytes()), [0x80, 0x3f, 0x00, 0xc0]);
  });

  test('float16 round trip: 11 significant bits', () => {
    const t = tensor([1 + 2 ** -10, 1 + 2 ** -11, 65504]).to('float16');
    assert.equal(t.dtype, 'float16');
    assert.deepEqual(values(t), [1 + 2 ** -10, 1, 65504]);
  });

  test('int32 and uint8 conversions wrap like C casts for in-range values', () => {
    assert.deepEqual(tensor([3.9, 255, 0]).to('uint8').toArray(), [3, 255, 0]);
    assert.deepEqual(tensor([-3.9, 1e6]).to('int32').toArray(), [-3, 1e6]);
  });
});

describe('memory format', () => {
  test('channels-last contiguous keeps the logical values', () => {
    const vals = uniformArray(rng(11), 2 * 3 * 4 * 5);
    const x = tensor(vals, { shape: [2, 3, 4, 5] });
    assert.ok(x.isContiguous());
    assert.ok(!x.isContiguous('channelsLast'));
    const y = x.contiguous('channelsLast');
    assert.ok(y.isContiguous('channelsLast'));
    assert.ok(!y.isContiguous());
    assert.deepEqual(y.shape, [2, 3, 4, 5]);
    assert.deepEqual(values(y), values(x));
    assert.deepEqual(y.toArray(), x.toArray());
    // Back to the default format, still the same values.
    const z = y.contiguous();
    assert.ok(z.isContiguous());
    assert.deepEqual(values(z), values(x));
    // Ops on channels-last inputs give the same values.
    const w = tensor(uniformArray(rng(12), 4 * 3 * 3 * 3), { shape: [4, 3, 3, 3] });
    assertClose(E.conv2d(y, w.contiguous('channelsLast'), null, { padding: 1 }), E.conv2d(x, w, null, { padding: 1 }), { atol: 1e-5 });
    assertClose(y.add(1).mul(2), x.add(1).mul(2));
  });

  test('a transposed view reads back in logical order', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const t = x.transpose(0, 1);
    assert.ok(!t.isContiguous());
    assert.deepEqual(t.toArray(), [[1, 4], [2, 5], [3, 6]]);
    assert.deepEqual(values(t), [1, 4, 2, 5, 3, 6]);
  });

  test('clone copies; detach shares storage', () => {
    const x = tensor([1, 2, 3]);
    const c = x.clone();
    const d = x.detach();
    x.fill_(9);
    assert.deepEqual(c.toArray(), [1, 2, 3]);
    assert.deepEqual(d.toArray(), [9, 9, 9]);
  });

  test('toString prints the values; a disposed tensor says so', () => {
    const x = tensor([1.5, 2.5]);
    assert.match(x.toString(), /1\.5000/);
    x.dispose();
    assert.equal(x.toString(), 'Tensor(disposed)');
  });
});
