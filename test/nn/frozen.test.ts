/**
 * Frozen parameters (src/nn/frozen.ts): inside a bf16 autocast region, with
 * parameters frozen, layers run on cached bfloat16 copies of their weights,
 * giving exactly what autocast's own casts give; the copies follow in-place
 * updates, are not used where parameter gradients can be asked for, and are
 * freed with the layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, enableGrad, memory, noGrad, rand, scope, withPrecision } from '../../src/index.js';
import { Conv2d, Linear, autocastParameters, parametersFrozen, withFrozenParameters } from '../../src/nn/index.js';

const same = (a: Tensor, b: Tensor): boolean => scope(() => a.dtype === b.dtype && a.sub(b).abs().max().item() === 0);

test('parameters are frozen with gradients off or inside withFrozenParameters()', () => {
  assert.equal(parametersFrozen(), false);
  assert.equal(noGrad(() => parametersFrozen()), true);
  assert.equal(withFrozenParameters(() => parametersFrozen()), true);
  assert.equal(noGrad(() => enableGrad(() => parametersFrozen())), false);
});

test('a frozen layer in a bf16 region reuses one bfloat16 copy of its weights, refreshed after an update', () => {
  const start = memory().liveTensors;
  const layer = new Linear(20, 5, { generator: new Generator(1) });
  const bf16 = <T>(fn: () => T): T => withPrecision('bf16-autocast', fn);
  const [w1, b1] = noGrad(() => bf16(() => autocastParameters(layer, layer.weight, layer.bias)));
  assert.equal(w1?.dtype, 'bfloat16');
  assert.equal(b1?.dtype, 'bfloat16');
  const [w2] = noGrad(() => bf16(() => autocastParameters(layer, layer.weight, layer.bias)));
  assert.equal(w2, w1, 'the second call reuses the copy');
  assert.ok(scope(() => same(w1 as Tensor, layer.weight.to('bfloat16'))));

  noGrad(() => layer.weight.mul_(-3));
  const [w3] = noGrad(() => bf16(() => autocastParameters(layer, layer.weight, layer.bias)));
  assert.notEqual(w3, w1, 'an in-place update makes a new copy');
  assert.ok(scope(() => same(w3 as Tensor, layer.weight.to('bfloat16'))), 'the new copy holds the updated weights');

  const [plain] = bf16(() => autocastParameters(layer, layer.weight, layer.bias));
  assert.equal(plain, layer.weight, 'with gradients on (not frozen) the parameter itself is used');
  const [outside] = noGrad(() => autocastParameters(layer, layer.weight, layer.bias));
  assert.equal(outside, layer.weight, 'outside a bf16 region the parameter itself is used');
  layer.dispose();
  assert.equal(memory().liveTensors, start, 'dispose freed the copies too');
});

test('a frozen convolution computes exactly what autocast computes from the float32 weights', () => {
  const g = new Generator(2);
  const conv = new Conv2d(3, 8, 3, { padding: 1, generator: g }).toMemoryFormat('channelsLast');
  const x = rand([2, 3, 9, 9], { generator: g }).contiguous('channelsLast');
  scope(() => {
    const reference = withPrecision('bf16-autocast', () => conv.forward(x)); // not frozen: autocast casts the weights
    const frozen = noGrad(() => withPrecision('bf16-autocast', () => conv.forward(x)));
    assert.equal(frozen.dtype, 'bfloat16');
    assert.ok(same(frozen, reference.detach()));
  });
  conv.dispose();
  x.dispose();
});
