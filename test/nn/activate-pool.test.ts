/**
 * activateThenMaxPool (src/nn/activations.ts) pools before a non-decreasing
 * activation: the values and the input gradients must be exactly those of
 * activating first, ties and all-negative windows included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, grad, maxPool2d, randn, scope, tensor } from '../../src/index.js';
import { type ActivationName, activate, activateThenMaxPool } from '../../src/nn/index.js';

/** Values and input gradient (upstream gradient gy) of f(x). */
function valueAndGrad(x: Tensor, gy: Tensor, f: (x: Tensor) => Tensor): [number[], number[]] {
  const xr = x.detach().requiresGrad_();
  const y = f(xr);
  const [g] = grad([y], [xr], { gradOutputs: [gy] });
  // + 0 makes -0 equal to 0: where tanh is flat at 1, the zero gradient lands at another of the tied positions.
  const plain = (t: Tensor): number[] => (t.flatten().toArray() as number[]).map((v) => v + 0);
  return [plain(y), plain(g as Tensor)];
}

test('pooling before a non-decreasing activation gives the values and gradients of activating first', () => {
  scope(() => {
    const g = new Generator(3);
    // Random values, plus windows of ties, all-negative windows, exact zeros and values past relu6's and tanh's flat ends.
    const random = randn([2, 3, 6, 6], { generator: g }).mul(4);
    const edge = tensor([
      [1, 1, -2, -3, 0, -1],
      [1, 0, -1, -4, 0, 0],
      [7, 8, 30, 20, 6, 6],
      [6, 9, 20, 30, 5, 6],
      [-1, -1, 2, 2, 0.5, -0.5],
      [-1, -1, 2, 2, -0.5, 0.5],
    ]).reshape([1, 1, 6, 6]).expand([2, 3, 6, 6]);
    for (const x of [random, edge, random.contiguous('channelsLast')]) {
      const gy = randn([2, 3, 3, 3], { generator: g });
      for (const name of ['relu', 'relu6', 'tanh', 'reluDecay'] as ActivationName[]) {
        const opts = { beta: 0.3 };
        const [yFast, gFast] = valueAndGrad(x, gy, (t) => activateThenMaxPool(t, name, opts, 2));
        const [yRef, gRef] = valueAndGrad(x, gy, (t) => maxPool2d(activate(t, name, opts), 2));
        assert.deepEqual(yFast, yRef, `${name}: values`);
        assert.deepEqual(gFast, gRef, `${name}: gradients`);
      }
    }
  });
});
