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
import {
  type ConcretePrecision, type DType, Generator, type Tensor, batchNormRelu, crossEntropy, grad, noGrad, randn, scope, tensor, withPrecision, zeros,
} from '../../src/index.js';
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

/**
 * relu(bn(x) + residual) forward and backward (upstream gradient gy), fused or through the separate ops.
 * `dtype` is the activations' type; `bf16Values` rounds x, residual and gy to bfloat16 values first, so a
 * float32 run sees exactly what a bfloat16 run sees.
 */
function runLayer(
  fused: boolean, shape: number[], seed: number, withResidual: boolean,
  opts: { scale?: number; shift?: number; dtype?: DType; bf16Values?: boolean } = {},
): Run {
  return withFusion(fused, () => scope(() => {
    const g = new Generator(seed);
    const bn = layer(shape[1] as number, seed + 1);
    const dtype = opts.dtype ?? 'float32';
    const cast = (t: Tensor): Tensor => (opts.bf16Values ? t.to('bfloat16') : t).to(dtype).contiguous('channelsLast');
    const x = cast(randn(shape, { generator: g }).mul(opts.scale ?? 3).add(opts.shift ?? 1)).requiresGrad_();
    const r = cast(randn(shape, { generator: g })).requiresGrad_();
    const gy = cast(randn(shape, { generator: g }));
    const residual = withResidual ? r : null;
    assert.equal(batchNormReluFuses(bn, x, RELU, residual), fused);
    const y = batchNormActivation(bn, x, RELU, residual);
    const inputs = [x, bn.weight as Tensor, bn.bias as Tensor, ...(withResidual ? [r] : [])];
    const grads = grad([y], inputs, { gradOutputs: [gy] }).map((t) => t.to('float32'));
    const out = { y: y.detach().to('float32'), grads, runningMean: bn.runningMean.clone(), runningVar: bn.runningVar.clone() };
    for (const t of [out.y, ...out.grads, out.runningMean, out.runningVar]) t.keep();
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

test('on bfloat16 activations (autocast\'s convolutions) the fused node computes in float32 and rounds once', () => {
  // Reference: the separate float32 ops on the same bfloat16 values. The node's arithmetic is float32, so its
  // bfloat16 outputs (y and the input gradients) differ from the reference by one rounding (at most 2^-8 of the
  // value), and its float32 outputs (parameter gradients, running statistics) by float32 summation order.
  for (const shape of [[4, 16, 9, 9], [2, 24, 5, 3]]) {
    for (const withResidual of [false, true]) {
      const fused = runLayer(true, shape, 9, withResidual, { dtype: 'bfloat16', bf16Values: true });
      const ref = runLayer(false, shape, 9, withResidual, { dtype: 'float32', bf16Values: true });
      const what = `bfloat16 ${shape.join('x')}${withResidual ? ' with residual' : ''}`;
      const rounded = { atol: 1e-5, rtol: 2 ** -8 + 1e-4 };
      assertClose(fused.y, ref.y, { ...rounded, message: `${what}: y` });
      ['x', 'weight', 'bias', 'residual'].slice(0, fused.grads.length).forEach((name, i) => {
        const tolerance = name === 'weight' || name === 'bias' ? { atol: 1e-4, rtol: 1e-4 } : rounded;
        assertClose(fused.grads[i] as Tensor, ref.grads[i] as Tensor, { ...tolerance, message: `${what}: gradient of ${name}` });
      });
      assertClose(fused.runningMean, ref.runningMean, { atol: 1e-5, rtol: 1e-5, message: `${what}: running mean` });
      assertClose(fused.runningVar, ref.runningVar, { atol: 1e-5, rtol: 1e-5, message: `${what}: running variance` });
      for (const r of [fused, ref]) for (const t of [r.y, ...r.grads, r.runningMean, r.runningVar]) t.dispose();
    }
  }
});

test('a large mean does not cancel the variance', () => {
  // Mean 1e4, spread 1: E[x^2] - mean^2 in float32 would lose every digit.
  const fused = runLayer(true, [8, 16, 6, 6], 3, false, { scale: 1, shift: 1e4 });
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
    assert.ok(batchNormReluFuses(bn, cl.to('bfloat16'), RELU), 'bfloat16');
    assert.ok(!batchNormReluFuses(bn, cl.to('bfloat16'), RELU, cl), 'a residual of another dtype');
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

/** One ResNet-8 training step (loss, flattened parameter gradients, running statistics), fused or not, at a precision. */
function resnetStep(fused: boolean, precision: ConcretePrecision): { loss: number; grads: Tensor[]; stats: Tensor[] } {
  return withFusion(fused, () => scope(() => {
    const g = new Generator(0);
    const model = new ResNet({ depth: 8, generator: g }).toMemoryFormat('channelsLast').train();
    const x = randn([16, 3, 16, 16], { generator: g }).contiguous('channelsLast');
    const y = tensor(Array.from({ length: 16 }, (_, i) => i % 10), { dtype: 'int64' });
    const stem = withPrecision(precision, () => model.conv1.forward(x));
    assert.equal(batchNormReluFuses(model.bn1, stem, RELU), fused, `the stem's batch norm at ${precision}`);
    const logits = withPrecision(precision, () => model.forward(x)).to('float32');
    const loss = crossEntropy(logits, y);
    const grads = grad([loss], model.parameters()).map((t) => t.flatten().keep());
    const stats = [...model.namedBuffers()].filter(([n]) => n.includes('running')).map(([, t]) => t.clone().keep());
    const out = { loss: loss.item(), grads, stats };
    model.dispose();
    return out;
  }));
}

/** ||a - b|| / ||b|| over all gradients. */
function relativeDistance(a: Tensor[], b: Tensor[]): number {
  return scope(() => {
    const d = a.map((t, i) => t.sub(b[i] as Tensor).square().sum().item()).reduce((s, v) => s + v, 0);
    const n = b.map((t) => t.square().sum().item()).reduce((s, v) => s + v, 0);
    return Math.sqrt(d / n);
  });
}

test('a ResNet training step through the fused node matches the separate ops', () => {
  const a = resnetStep(true, 'fp32');
  const b = resnetStep(false, 'fp32');
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
  // Deep float32 gradients differ in rounding with the order of summation (one thread against two differs as much):
  // compare the whole gradient by its relative distance.
  const distance = relativeDistance(a.grads, b.grads);
  assert.ok(distance < 1e-2, `relative gradient distance ${distance}`);
  a.stats.forEach((t, i) => assertClose(t, b.stats[i] as Tensor, { atol: 1e-4, rtol: 1e-4, message: `running statistic ${i}` }));
  for (const t of [...a.grads, ...b.grads, ...a.stats, ...b.stats]) t.dispose();
});

test('under bf16-autocast training the fused node runs on the bfloat16 convolution outputs and matches the separate ops', () => {
  const a = resnetStep(true, 'bf16-autocast');
  const b = resnetStep(false, 'bf16-autocast');
  const full = resnetStep(true, 'fp32');
  assert.ok(Math.abs(a.loss - b.loss) < 2e-2, `loss ${a.loss} vs ${b.loss}`);
  // Both round to bfloat16 (2^-8) at every layer; the fused node no further from float32 than the separate ops.
  const fusedDistance = relativeDistance(a.grads, b.grads);
  assert.ok(fusedDistance < 0.1, `relative gradient distance, fused vs separate at bf16: ${fusedDistance}`);
  const [fusedToFull, separateToFull] = [relativeDistance(a.grads, full.grads), relativeDistance(b.grads, full.grads)];
  assert.ok(fusedToFull < 1.5 * separateToFull + 1e-3, `distance to float32: fused ${fusedToFull}, separate ${separateToFull}`);
  for (const t of [...a.grads, ...b.grads, ...full.grads, ...a.stats, ...b.stats, ...full.stats]) t.dispose();
});

test('bad input is refused by name', () => {
  scope(() => {
    const w = zeros([4]).add(1);
    const params = { weight: w, bias: zeros([4]), runningMean: zeros([4]), runningVar: zeros([4]).add(1) };
    const x = randn([2, 4, 3, 3]).contiguous('channelsLast');
    assert.throws(() => batchNormRelu(x.contiguous(), params), /batchNormRelu: expected a 4-d channels-last float32 or bfloat16 CPU tensor/);
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
