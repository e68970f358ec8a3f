/**
 * Errors: every failure of an op (libtorch's checks, argument checks, use of a
 * disposed tensor) is a JavaScript Error whose message starts with the op's
 * name and carries libtorch's own message, with err.op set; the process
 * survives them all and leaks nothing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { memory, scope, tensor } from '../../src/engine/index.js';
import { assertThrowsMatching } from '../helpers/assert.js';

const i64 = (data: number[] | number[][]): E.Tensor => tensor(data, { dtype: 'int64' });

/** Asserts a native error: message "op: ...", matching the patterns, err.op === op. */
function nativeError(op: string, fn: () => unknown, ...patterns: RegExp[]): void {
  const e = assertThrowsMatching(fn, new RegExp(`^${op}: `), ...patterns);
  assert.equal((e as Error & { op?: string }).op, op, `err.op for ${e.message}`);
}

describe('shape mismatches', () => {
  test('elementwise broadcasting', () => {
    nativeError('add', () => E.ones([2]).add(E.ones([3])), /The size of tensor a \(2\) must match the size of tensor b \(3\) at non-singleton dimension 0/);
    nativeError('mul', () => E.ones([2, 3]).mul(E.ones([2, 2])), /must match the size/);
  });
  test('matmul, linear, conv2d, cat, reshape, view ops', () => {
    nativeError('matmul', () => E.ones([2, 3]).matmul(E.ones([4, 2])), /cannot be multiplied \(2x3 and 4x2\)/);
    nativeError('linear', () => E.linear(E.ones([2, 3]), E.ones([4, 5])), /cannot be multiplied/);
    nativeError('conv2d', () => E.conv2d(E.ones([1, 3, 5, 5]), E.ones([2, 4, 3, 3])), /expected input\[1, 3, 5, 5\] to have 4 channels/);
    nativeError('conv2d', () => E.conv2d(E.ones([1, 1, 2, 2]), E.ones([1, 1, 3, 3])), /Kernel size can't be greater than actual input size/);
    nativeError('cat', () => E.cat([E.ones([2, 3]), E.ones([2, 4])]), /Sizes of tensors must match except in dimension 0/);
    nativeError('stack', () => E.stack([E.ones([2]), E.ones([3])]), /stack expects each tensor to be equal size/);
    nativeError('reshape', () => E.ones([2, 3]).reshape([4, 2]), /shape '\[4, 2\]' is invalid for input of size 6/);
    nativeError('expand', () => E.ones([2, 3]).expand([3, 3]), /The expanded size of the tensor \(3\) must match the existing size \(2\)/);
    nativeError('permute', () => E.ones([2, 3]).permute([0]), /number of dimensions in the tensor input does not match the length of the desired ordering/);
    nativeError('mseLoss', () => E.mseLoss(E.ones([2, 2]), E.ones([3, 2])), /must match the size/);
    nativeError('crossEntropy', () => E.crossEntropy(E.ones([3, 4]), i64([0, 1])), /Expected input batch_size \(3\) to match target batch_size \(2\)/);
    nativeError('batchNorm', () => E.batchNorm(E.ones([2, 3]), { runningMean: E.zeros([4]), runningVar: E.ones([4]) }), /running_mean should contain 3 elements not 4/);
  });
});

describe('bad dtypes', () => {
  test('libtorch dtype checks come through', () => {
    nativeError('matmul', () => E.ones([2, 2]).matmul(E.ones([2, 2], { dtype: 'int64' })), /expected scalar type Float but found Long/);
    nativeError('gather', () => E.ones([3]).gather(0, E.zeros([1])), /gather\(\): Expected dtype int64 for index/);
    nativeError('indexSelect', () => E.ones([3]).indexSelect(0, E.zeros([1])), /index_select\(\): Expected dtype int32 or int64 for index/);
    nativeError('oneHot', () => E.oneHot(E.zeros([2]), 3), /one_hot is only applicable to index tensor/);
    nativeError('crossEntropy', () => E.crossEntropy(E.ones([2, 3]), E.zeros([2])), /expected scalar type Long but found Float/);
    nativeError('maskedFill', () => E.ones([2]).maskedFill(E.ones([2]), 0), /only supports boolean masks, but got mask with dtype Float/);
    nativeError('maskedFill', () => E.ones([2]).maskedFill(E.ones([2], { dtype: 'int64' }), 0), /only supports boolean masks/);
    nativeError('maskedSelect', () => E.ones([2]).maskedSelect(E.ones([2])), /expected BoolTensor or ByteTensor for mask/);
    nativeError('where', () => E.where(E.ones([2]), 1, 2), /where expected condition to be a boolean tensor/);
    nativeError('setRequiresGrad', () => E.ones([1], { dtype: 'int64' }).requiresGrad_(), /Only Tensors of floating point/);
  });
  test('an unknown dtype name is refused before reaching libtorch', () => {
    assertThrowsMatching(() => E.ones([2], { dtype: 'float8' as E.DType }), /unknown dtype 'float8'/);
  });
});

describe('out-of-range indices', () => {
  const x = E.arange(0, 6, 1, { dtype: 'float32' }).reshape([2, 3]);
  test('select, narrow, indexSelect, gather, oneHot, dims', () => {
    nativeError('select', () => x.select(1, 3), /index 3 out of range for tensor of size \[2, 3\] at dimension 1/);
    nativeError('select', () => x.select(0, -3), /out of range/);
    nativeError('narrow', () => x.narrow(1, 2, 2), /start \(2\) \+ length \(2\) exceeds dimension size \(3\)/);
    nativeError('indexSelect', () => x.indexSelect(1, i64([0, 3])), /INDICES element is out of DATA bounds, id=3 axis_dim=3/);
    nativeError('gather', () => x.gather(1, i64([[0, 5, 0], [0, 0, 0]])), /index 5 is out of bounds for dimension 1 with size 3/);
    nativeError('oneHot', () => E.oneHot(i64([0, 3]), 3), /Class values must be smaller than num_classes/);
    nativeError('oneHot', () => E.oneHot(i64([-1]), 3), /Class values must be non-negative/);
    nativeError('sum', () => x.sum(2), /Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)/);
    nativeError('softmax', () => x.softmax(5), /Dimension out of range/);
    nativeError('transpose', () => x.transpose(0, 2), /Dimension out of range/);
    nativeError('crossEntropy', () => E.crossEntropy(E.ones([2, 3]), i64([0, 7])), /Target 7 is out of bounds/);
  });
});

describe('wrong argument types from JavaScript', () => {
  const x = E.ones([2, 2]);
  test('a string or other non-tensor where a tensor is expected', () => {
    // Operands are named as the caller wrote them, not by their position in the op table.
    nativeError('add', () => x.add('a' as never), /add: other must be a Tensor or a number, got the string 'a'$/);
    nativeError('mul', () => x.mul({} as never), /mul: other must be a Tensor or a number, got an object$/);
    nativeError('sub', () => x.sub(null as never), /sub: other must be a Tensor or a number, got null$/);
    nativeError('clamp', () => x.clamp(0, [1] as never), /clamp: max must be a Tensor or a number, got an array$/);
    nativeError('where', () => E.where(x.gt(0), 'yes' as never, 0), /where: a must be a Tensor or a number, got the string 'yes'$/);
    nativeError('matmul', () => x.matmul('a' as never), /matmul: other must be a Tensor, got the string 'a'$/);
    nativeError('matmul', () => x.matmul({} as never), /matmul: other must be a Tensor, got an object$/);
    nativeError('matmul', () => x.matmul(undefined as never), /matmul: other must be a Tensor, got undefined$/);
    nativeError('conv2d', () => E.conv2d(E.ones([1, 1, 3, 3]), 'w' as never), /argument 1 must be a tensor/);
    nativeError('cat', () => E.cat([x, 'b' as never]), /argument 0\[1\] must be a tensor/);
  });
  test('non-integer shapes, dims and indices', () => {
    nativeError('zeros', () => E.zeros([2.5, 2]), /argument 0\[0\] must be an integer, got 2\.5/);
    nativeError('reshape', () => x.reshape([1, 'a' as never]), /argument 1\[1\] must be an integer/);
    nativeError('reshape', () => x.reshape(4 as never), /argument 1 must be an array of integers/);
    nativeError('select', () => x.select(0, 0.5), /argument 2 must be an integer, got 0\.5/);
    nativeError('softmax', () => x.softmax('1' as never), /argument 1 must be a number, got a string/);
    nativeError('sum', () => x.sum('0' as never), /argument 1 must be an array of integers/);
    nativeError('ones', () => E.ones([-1]), /negative dimension/);
    nativeError('var', () => x.var(null, { correction: 0.5 }), /must be an integer/);
  });
});

describe('a disposed tensor used again', () => {
  test('as the tensor an op is called on, or as an argument', () => {
    const x = E.ones([2]);
    const y = E.ones([2]);
    x.dispose();
    assert.equal(x.isDisposed, true);
    nativeError('add', () => x.add(1), /argument 0 is a disposed tensor/);
    nativeError('add', () => y.add(x), /argument 1 is a disposed tensor/);
    nativeError('matmul', () => y.matmul(x), /argument 1 is a disposed tensor/);
    nativeError('cat', () => E.cat([y, x]), /argument 0\[1\] is a disposed tensor/);
    nativeError('shape', () => x.shape, /disposed/);
    nativeError('toBuffer', () => x.toArray(), /disposed/);
    nativeError('grad', () => E.grad(y.requiresGrad_().sum(), x), /disposed/);
  });

  test('after the scope that made it closed', () => {
    let leaked: E.Tensor | undefined;
    scope(() => {
      leaked = E.ones([3]);
    });
    assert.equal(leaked!.isDisposed, true);
    nativeError('exp', () => leaked!.exp(), /argument 0 is a disposed tensor/);
  });
});

describe('errors leak nothing and leave the engine usable', () => {
  test('live-tensor count is unchanged by failing ops', () => {
    const a = E.ones([2]);
    const b = E.ones([3]);
    const before = memory().liveTensors;
    for (let i = 0; i < 100; i++) {
      assert.throws(() => a.add(b));
      assert.throws(() => a.select(0, 9));
      assert.throws(() => E.zeros([1.5]));
    }
    assert.equal(memory().liveTensors, before);
    assert.deepEqual(a.add(a).toArray(), [2, 2]);
  });
});
