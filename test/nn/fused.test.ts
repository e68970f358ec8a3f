/**
 * The fused training-mode batch norm + residual + ReLU node (native/fused.cc,
 * src/nn/fused.ts): a hand-computed case; against libtorch's separate ops
 * (batch_norm, add, relu and their backward kernels) for outputs, gradients
 * and running statistics over channel counts that do and do not fill the
 * kernel's tiles; a variance with a large mean; gradients of gradients; when
 * it applies and when the separate ops run; a ResNet's training step; errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Generator, type Tensor, batchNormRelu, crossEntropy, grad, noGrad, randn, scope, tensor, zeros } from '../../src/index.js';
import { BatchNorm2d, batchNormActivation, batchNormReluFuses, setBatchNormReluFusion } from '../../src/nn/index.js';
import { ResNet } from '../../src/models/index.js';
import { assertClose } from '../helpers/assert.js';

const RELU = { name: 'relu' } as const;

/** `fn` with the fused node on or off. */
function withFusion<T>(on: boolean, fn: () => T): T {
  const previous = setBatchNormReluFusion(on);
  try {
    return fn();
  } finally {
    setBatchNormReluFusion(previous);
  }
}

/** A training-mode layer with non-trivial affine parameters. */
function layer(channels: number, seed: number): BatchNorm2d {
  const bn = new BatchNorm2d(channels).train();
  noGrad(() => scope(() => {
    const g = new Generator(seed);
    (bn.weight as Tensor).copy_(randn([channels], { generator: g }));
    (bn.bias as Tensor).copy_(randn([channels], { generator: g }).mul(0.5));
  }));
  return bn;
}

interface Run {
  y: Tensor;
  grads: Tensor[];
  runningMean: Tensor;
  runningVar: Tensor;
}

/** relu(bn(x) + residual) forward and backward (upstream gradient gy), fused or through the separate ops. */
function runLayer(fused: boolean, shape: number[], seed: number, withResidual: boolean, xScale = 3, xShift = 1): Run {
  return withFusion(fused, () => scope(() => {
    const g = new Generator(seed);
    const bn = layer(shape[1] as number, seed + 1);
    const x = randn(shape, { generator: g }).mul(xScale).add(xShift).contiguous('channelsLast').requiresGrad_();
    const r = randn(shape, { generator: g }).contiguous('channelsLast').requiresGrad_();
    const gy = randn(shape, { generator: g }).contiguous('channelsLast');
    const residual = withResidual ? r : null;
    assert.equal(batchNormReluFuses(bn, x, RELU, residual), fused);
    const y = batchNormActivation(bn, x, RELU, residual);
    const inputs = [x, bn.weight as Tensor, bn.bias as Tensor, ...(withResidual ? [r] : [])];
    const grads = grad([y], inputs, { gradOutputs: [gy] });
    const out = { y: y.detach(), grads, runningMean: bn.runningMean.clone(), runningVar: bn.runningVar.clone() };
    for (const t of [out.y, ...grads, out.runningMean, out.runningVar]) t.keep();
    bn.dispose();
    return out;
  }));
}

test('a hand-computed case: outputs, running statistics and gradients', () => {
  scope(() => {
    // One channel, four pixels: mean 2.5, biased variance 1.25, unbiased 5/3; gamma 2, beta -1, eps 1e-5.
    const bn = new BatchNorm2d(1).train();
    noGrad(() => {
      (bn.weight as Tensor).fill_(2);
      (bn.bias as Tensor).fill_(-1);
    });
    const x = tensor([1, 2, 3, 4]).reshape([4, 1, 1, 1]).contiguous('channelsLast').requiresGrad_();
    const res = tensor([4, 0, 0.5, 0]).reshape([4, 1, 1, 1]).contiguous('channelsLast').requiresGrad_();
    assert.ok(batchNormReluFuses(bn, x, RELU, res));
    const y = batchNormActivation(bn, x, RELU, res);
    const s = 1 / Math.sqrt(1.25 + 1e-5);
    const xhat = [1, 2, 3, 4].map((v) => (v - 2.5) * s);
    const pre = xhat.map((h, i) => 2 * h - 1 + [4, 0, 0.5, 0][i]!);
    assertClose(y.flatten(), pre.map((v) => Math.max(v, 0)), { atol: 1e-6 });
    assertClose(bn.runningMean, [0.25], { atol: 1e-7 });
    assertClose(bn.runningVar, [0.9 + 0.1 * (5 / 3)], { atol: 1e-6 });
    // Loss sum(y): the ReLU passes pixels 1, 3 and 4 (pre-activations 0.32, -1.89, 0.39, 1.68).
    const m: number[] = pre.map((v) => (v > 0 ? 1 : 0));
    assert.deepEqual(m, [1, 0, 1, 1]);
    const [gx, gw, gb, gr] = grad([y.sum()], [x, bn.weight as Tensor, bn.bias as Tensor, res]);
    const n = 4;
    const sumG = m.reduce((a, b) => a + b, 0);
    const sumGh = m.reduce((a, v, i) => a + v * xhat[i]!, 0);
    assertClose(gb as Tensor, [sumG], { atol: 1e-6 });
    assertClose(gw as Tensor, [sumGh], { atol: 1e-6 });
    assertClose((gr as Tensor).flatten(), m, { atol: 0 });
    assertClose((gx as Tensor).flatten(), m.map((g, i) => 2 * s * (g - sumG / n - xhat[i]! * sumGh / n)), { atol: 1e-5 });
    bn.dispose();
  });
});

test('the fused node agrees with libtorch\'s separate ops: outputs, gradients, running statistics', () => {
  // 3 and 24 channels leave tiles partly filled; 600 is wider than a tile; 16 and 64 are ResNet's.
  for (const shape of [[5, 3, 7, 7], [4, 16, 9, 9], [2, 24, 5, 3], [3, 64, 4, 4], [2, 600, 2, 3]]) {
    for (const withResidual of [false, true]) {
      const fused = runLayer(true, shape, 7, withResidual);
      const ref = runLayer(false, shape, 7, withResidual);
      const what = `shape ${shape.join('x')}${withResidual ? ' with residual' : ''}`;
      assertClose(fused.y, ref.y, { atol: 1e-5, rtol: 1e-5, message: `${what}: y` });
      ['x', 'weight', 'bias', 'residual'].slice(0, fused.grads.length).forEach((name, i) =>
        assertClose(fused.grads[i] as Tensor, ref.grads[i] as Tensor, { atol: 1e-4, rtol: 1e-4, message: `${what}: gradient of ${name}` }));
      assertClose(fused.runningMean, ref.runningMean, { atol: 1e-6, message: `${what}: running mean` });
      assertClose(fused.runningVar, ref.runningVar, { atol: 1e-5, rtol: 1e-5, message: `${what}: running variance` });
      for (const r of [fused, ref]) for (const t of [r.y, ...r.grads, r.runningMean, r.runningVar]) t.dispose();
    }
  }
});

test('a large mean does not cancel the variance', () => {
  // Mean 1e4, spread 1: E[x^2] - mean^2 in float32 would lose every digit.
  const fused = runLayer(true, [8, 16, 6, 6], 3, false, 1, 1e4);
  const ref = scope(() => {
    const g = new Generator(3);
    const x = randn([8, 16, 6, 6], { generator: g }).add(1e4).to('float64');
    return x.var([0, 2, 3], { correction: 1 }).mul(0.1).add(0.9).keep();
  });
  assertClose(fused.runningVar, ref, { rtol: 1e-4, atol: 0 });
  for (const t of [fused.y, ...fused.grads, fused.runningMean, fused.runningVar, ref]) t.dispose();
});

test('gradients of gradients match the separate ops (createGraph)', () => {
  const penalty = (fused: boolean): Tensor[] => withFusion(fused, () => scope(() => {
    const g = new Generator(11);
    const bn = layer(8, 12);
    const x = randn([4, 8, 3, 3], { generator: g }).contiguous('channelsLast').requiresGrad_();
    const r = randn([4, 8, 3, 3], { generator: g }).contiguous('channelsLast').requiresGrad_();
    const y = batchNormActivation(bn, x, RELU, r);
    const [gx] = grad([y.square().sum()], [x], { createGraph: true });
    const out = grad([(gx as Tensor).square().sum()], [bn.weight as Tensor, bn.bias as Tensor, x]).map((t) => t.keep());
    bn.dispose();
    return out;
  }));
  const a = penalty(true);
  const b = penalty(false);
  a.forEach((t, i) => assertClose(t, b[i] as Tensor, { atol: 1e-4, rtol: 1e-4, message: `second-order gradient ${i}` }));
  for (const t of [...a, ...b]) t.dispose();
});

test('the separate ops run where the node does not apply, with the same results', () => {
  scope(() => {
    const g = new Generator(5);
    const bn = layer(4, 6);
    const cl = randn([2, 4, 3, 3], { generator: g }).contiguous('channelsLast');
    assert.ok(batchNormReluFuses(bn, cl, RELU));
    assert.ok(!batchNormReluFuses(bn, cl.contiguous(), RELU), 'NCHW');
    assert.ok(!batchNormReluFuses(bn, cl.to('float64'), RELU), 'float64');
    assert.ok(!batchNormReluFuses(bn, cl.to('bfloat16'), RELU), 'bfloat16');
    assert.ok(!batchNormReluFuses(bn, cl, { name: 'tanh' }), 'another activation');
    assert.ok(!batchNormReluFuses(bn, cl, RELU, cl.contiguous()), 'a residual in another layout');
    assert.ok(!withFusion(false, () => batchNormReluFuses(bn, cl, RELU)), 'switched off');
    bn.eval();
    assert.ok(!batchNormReluFuses(bn, cl, RELU), 'inference mode');
    bn.train();
    bn.reduceStatistics = (s) => s;
    assert.ok(!batchNormReluFuses(bn, cl, RELU), 'synchronised batch norm');
    bn.reduceStatistics = undefined;
    // NCHW takes the separate ops and gives what the fused node gives channels-last.
    const a = batchNormActivation(bn, cl, RELU);
    const b = batchNormActivation(bn, cl.contiguous(), RELU);
    assert.match(a.gradFn ?? '', /BatchNormRelu/);
    assert.equal(b.gradFn, 'ReluBackward0');
    assertClose(a, b, { atol: 1e-5 });
    bn.dispose();
  });
});

test('a ResNet training step through the fused node matches the separate ops', () => {
  const step = (fused: boolean): { loss: number; grads: Tensor[]; stats: Tensor[] } => withFusion(fused, () => scope(() => {
    const g = new Generator(0);
    const model = new ResNet({ depth: 8, generator: g }).toMemoryFormat('channelsLast').train();
    const x = randn([16, 3, 16, 16], { generator: g }).contiguous('channelsLast');
    const y = tensor(Array.from({ length: 16 }, (_, i) => i % 10), { dtype: 'int64' });
    const logits = model.forward(x);
    const loss = crossEntropy(logits, y);
    const params = model.parameters();
    const grads = grad([loss], params).map((t) => t.flatten().keep());
    const stats = [...model.namedBuffers()].filter(([n]) => n.includes('running')).map(([, t]) => t.clone().keep());
    const out = { loss: loss.item(), grads, stats };
    model.dispose();
    return out;
  }));
  const a = step(true);
  const b = step(false);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
  // Deep float32 gradients differ in rounding with the order of summation (one thread against two differs as much):
  // compare the whole gradient by its relative distance.
  const [num, den] = scope(() => {
    const ga = a.grads.map((t) => t.square().sum().item()).reduce((s, v) => s + v, 0);
    const d = a.grads.map((t, i) => t.sub(b.grads[i] as Tensor).square().sum().item()).reduce((s, v) => s + v, 0);
    return [Math.sqrt(d), Math.sqrt(ga)];
  });
  assert.ok(num / den < 1e-2, `relative gradient distance ${num / den}`);
  a.stats.forEach((t, i) => assertClose(t, b.stats[i] as Tensor, { atol: 1e-4, rtol: 1e-4, message: `running statistic ${i}` }));
  for (const t of [...a.grads, ...b.grads, ...a.stats, ...b.stats]) t.dispose();
});

test('bad input is refused by name', () => {
  scope(() => {
    const w = zeros([4]).add(1);
    const params = { weight: w, bias: zeros([4]), runningMean: zeros([4]), runningVar: zeros([4]).add(1) };
    const x = randn([2, 4, 3, 3]).contiguous('channelsLast');
    assert.throws(() => batchNormRelu(x.contiguous(), params), /batchNormRelu: expected a 4-d channels-last float32 CPU tensor/);
    assert.throws(() => batchNormRelu(x, params, { residual: randn([2, 4, 3, 2]).contiguous('channelsLast') }), /batchNormRelu: the residual must be/);
    assert.throws(() => batchNormRelu(x, { ...params, weight: zeros([3]) }), /batchNormRelu: weight, bias and running statistics must be float32 vectors of 4 channels/);
    assert.throws(() => batchNormRelu(randn([1, 4, 1, 1]).contiguous('channelsLast'), params), /batchNormRelu: Expected more than 1 value per channel/);
    const none = { weight: zeros([0]), bias: zeros([0]), runningMean: zeros([0]), runningVar: zeros([0]) };
    assert.throws(() => batchNormRelu(zeros([2, 0, 3, 3]).contiguous('channelsLast'), none), /batchNormRelu: expected at least one channel/);
    const bn = new BatchNorm2d(4).eval();
    assert.throws(() => bn.forwardRelu(x, null), /BatchNorm2d.forwardRelu: needs an affine layer in training mode/);
    bn.dispose();
  });
  const nn = fileURLToPath(new URL('../../src/nn/index.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(nn)});`], {
    env: { ...process.env, ADVML_FUSE_BN_RELU: 'yes' },
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ADVML_FUSE_BN_RELU must be 0 \(off\) or 1 \(on, the default\), got 'yes'/);
});
