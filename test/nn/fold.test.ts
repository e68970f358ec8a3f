/**
 * Batch norm folded into its convolution (src/nn/fold.ts): a hand-computed
 * case; a ResNet-20 in inference mode gives the same logits and input
 * gradients folded and unfolded; folding happens only where no parameter
 * gradient can be asked for; the folded filters follow every change of the
 * weights or statistics; the model frees them with its parameters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, grad, memory, noGrad, rand, scope, tensor } from '../../src/index.js';
import { BatchNorm2d, Conv2d, Sequential, convBn, setBatchNormFolding, withFrozenParameters } from '../../src/nn/index.js';
import { BasicBlock, ResNet } from '../../src/models/index.js';
import { assertEqualTensor } from '../helpers/assert.js';

const relDiff = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item() / Math.max(1e-30, b.abs().max().item()));

/** `fn` with folding off, for the reference value. */
function unfolded<T>(fn: () => T): T {
  const previous = setBatchNormFolding(false);
  try {
    return fn();
  } finally {
    setBatchNormFolding(previous);
  }
}

/** A ResNet-20 in inference mode whose running statistics are not the initial ones. */
function trainedStatsResNet(seed: number): ResNet {
  const g = new Generator(seed);
  const model = new ResNet({ depth: 20, generator: g });
  noGrad(() => scope(() => {
    for (let i = 0; i < 3; i++) model.forward(rand([8, 3, 32, 32], { generator: g }).mul(2));
  }));
  return model.eval();
}

test('a 1x1 convolution and batch norm fold to the hand-computed values', () => {
  const start = memory().liveTensors;
  const conv = new Conv2d(1, 2, 1);
  const bn = new BatchNorm2d(2, { eps: 1 });
  noGrad(() => scope(() => {
    conv.weight.copy_(tensor([2, -1]).reshape([2, 1, 1, 1]));
    (conv.bias as Tensor).copy_(tensor([0.5, 1]));
    bn.runningMean.copy_(tensor([1, 2]));
    bn.runningVar.copy_(tensor([3, 0]));
    (bn.weight as Tensor).copy_(tensor([4, 0.5]));
    (bn.bias as Tensor).copy_(tensor([-1, 3]));
  }));
  bn.eval();
  const x = scope(() => tensor([1, 3]).reshape([1, 1, 1, 2]));
  // conv: [2x + 0.5, 1 - x] = [[2.5, 6.5], [0, -2]]; bn: [(v - 1) / 2 * 4 - 1, (v - 2) / 1 * 0.5 + 3].
  const before = memory().liveTensors;
  const y = noGrad(() => convBn(conv, bn, x));
  assert.equal(memory().liveTensors, before + 3, 'the output and the folded filters and bias');
  assertEqualTensor(y, [[[[2, 10]], [[2, 1]]]]);
  scope(() => assertEqualTensor(unfolded(() => noGrad(() => convBn(conv, bn, x))), [[[[2, 10]], [[2, 1]]]]));
  conv.dispose();
  bn.dispose();
  y.dispose();
  x.dispose();
  assert.equal(memory().liveTensors, start, 'disposing the layers freed the folded filters too');
});

test('ResNet-20 in inference mode: same logits and input gradients folded as unfolded', () => {
  const model = trainedStatsResNet(1).toMemoryFormat('channelsLast');
  scope(() => {
    const x = rand([4, 3, 32, 32], { generator: new Generator(2) }).contiguous('channelsLast');
    const logits = noGrad(() => model.forward(x));
    const reference = unfolded(() => noGrad(() => model.forward(x)));
    assert.ok(relDiff(logits, reference) < 1e-5, `logits differ by ${relDiff(logits, reference)}`);
    const inputGradient = (): Tensor => {
      const xr = x.detach().requiresGrad_();
      return grad(model.forward(xr).logSoftmax(1).select(1, 3).sum(), xr)[0] as Tensor;
    };
    const g = withFrozenParameters(inputGradient);
    const gRef = unfolded(inputGradient);
    assert.ok(relDiff(g, gRef) < 1e-4, `input gradients differ by ${relDiff(g, gRef)}`);
  });
  model.dispose();
});

test('with gradients on and parameters not frozen, batch norm stays a layer and its parameters get gradients', () => {
  const model = trainedStatsResNet(3);
  scope(() => {
    model.forward(rand([2, 3, 32, 32], { generator: new Generator(4) })).sum().backward();
    const g = model.bn1.weight?.grad;
    assert.ok(g, 'bn1.weight received a gradient');
    assert.ok(g.abs().sum().item() > 0);
    g.dispose();
    model.zeroGrad();
  });
  model.dispose();
});

test('the folded filters follow in-place updates, loaded state and new running statistics', () => {
  const model = trainedStatsResNet(5);
  const x = rand([2, 3, 32, 32], { generator: new Generator(6) }).keep();
  const check = (what: string): void => scope(() => {
    const d = relDiff(noGrad(() => model.forward(x)), unfolded(() => noGrad(() => model.forward(x))));
    assert.ok(d < 1e-5, `${what}: folded and unfolded logits differ by ${d}`);
  });
  check('first call');
  const first = scope(() => noGrad(() => model.forward(x)).keep());
  noGrad(() => (model.layer1.layers[0] as BasicBlock).conv1.weight.mul_(-2));
  check('after an in-place update of a convolution');
  noGrad(() => model.bn1.runningVar.mul_(4));
  check('after an in-place update of running statistics');
  const other = trainedStatsResNet(7);
  model.loadStateDict(other.stateDict());
  other.dispose();
  check('after loadStateDict');
  model.train();
  noGrad(() => scope(() => void model.forward(rand([8, 3, 32, 32], { generator: new Generator(8) }).mul(3))));
  model.eval();
  check('after a training-mode pass updated the running statistics');
  assert.ok(scope(() => relDiff(noGrad(() => model.forward(x)), first)) > 1e-2, 'the updates changed the logits: the checks above are not vacuous');
  first.dispose();
  x.dispose();
  model.dispose();
});

test('Sequential folds a convolution followed by batch norm', () => {
  const start = memory().liveTensors;
  const g = new Generator(9);
  const seq = new Sequential(new Conv2d(3, 8, 3, { padding: 1, generator: g }), new BatchNorm2d(8));
  noGrad(() => scope(() => void seq.forward(rand([4, 3, 8, 8], { generator: g }).mul(3))));
  seq.eval();
  const x = rand([2, 3, 8, 8], { generator: g });
  const before = memory().liveTensors;
  const y = noGrad(() => seq.forward(x));
  assert.equal(memory().liveTensors, before + 3, 'folded: the output plus the cached filters and bias');
  const ref = unfolded(() => noGrad(() => seq.forward(x)));
  assert.ok(relDiff(y, ref) < 1e-6);
  seq.dispose();
  for (const t of [x, y, ref]) t.dispose();
  assert.equal(memory().liveTensors, start, 'dispose freed the parameters, buffers and folded filters');
});
