import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, grad, randn, scope } from '../../src/index.js';
import { BatchNorm2d } from '../../src/nn/index.js';

const maxDiff = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item());

test('batch norm with global statistics over one replica equals at::batch_norm: output, running statistics, gradients', () => {
  scope(() => {
    const a = new BatchNorm2d(3).toDtype('float64');
    const b = new BatchNorm2d(3).toDtype('float64');
    b.reduceStatistics = (s) => s.mul(1); // one replica: the sum over replicas is the local sum
    const x = randn([4, 3, 5, 5], { generator: new Generator(1), dtype: 'float64' }).mul(3).add(1).requiresGrad_();
    const ya = a.forward(x);
    const yb = b.forward(x);
    assert.ok(maxDiff(ya, yb) < 1e-12);
    assert.ok(maxDiff(a.runningMean, b.runningMean) < 1e-14);
    assert.ok(maxDiff(a.runningVar, b.runningVar) < 1e-12);
    const w = randn([4, 3, 5, 5], { generator: new Generator(2), dtype: 'float64' });
    const [gxa, gwa] = grad(ya.mul(w).sum(), [x, a.weight as Tensor]);
    const [gxb, gwb] = grad(yb.mul(w).sum(), [x, b.weight as Tensor]);
    assert.ok(maxDiff(gxa as Tensor, gxb as Tensor) < 1e-10);
    assert.ok(maxDiff(gwa as Tensor, gwb as Tensor) < 1e-10);
    a.dispose();
    b.dispose();
  });
});
