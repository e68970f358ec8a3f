import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, memory, noGrad, ones, rand, randn, scope, tensor, zeros } from '../../src/index.js';
import { Activation, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Sequential, activate, reluDecay, init } from '../../src/nn/index.js';
import { MnistCnn, ResNet } from '../../src/models/index.js';

const close = (a: number, b: number, tol: number, what: string): void =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

test('Sequential names children 0, 1, ... and parameters follow PyTorch', () => {
  const m = new Sequential(new Conv2d(1, 4, 3), new BatchNorm2d(4), new Activation('relu'), new Flatten(), new Linear(4 * 6 * 6, 2));
  assert.deepEqual([...m.stateDict().keys()], [
    '0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '4.weight', '4.bias',
  ]);
  assert.deepEqual(m.stateDict().get('0.weight')?.shape, [4, 1, 3, 3]);
  assert.deepEqual(m.stateDict().get('4.weight')?.shape, [2, 144]);
  assert.equal(m.stateDict().get('1.num_batches_tracked')?.dtype, 'int64');
  const out = scope(() => m.forward(rand([2, 1, 8, 8])));
  assert.deepEqual(out.shape, [2, 2]);
  out.dispose();
  m.dispose();
});

test('ResNet-20 parameter count equals the count from its definition', () => {
  const conv = (i: number, o: number, k: number): number => i * o * k * k;
  const bn = (c: number): number => 2 * c;
  const block = (i: number, o: number): number => conv(i, o, 3) + bn(o) + conv(o, o, 3) + bn(o) + (i !== o ? conv(i, o, 1) + bn(o) : 0);
  let expected = conv(3, 16, 3) + bn(16) + 64 * 10 + 10;
  for (const [i, o] of [[16, 16], [16, 32], [32, 64]] as [number, number][]) expected += block(i, o) + 2 * block(o, o);
  const m = new ResNet({ depth: 20 });
  assert.equal(m.parameterCount(), expected);
  assert.equal(expected, 272474);
  assert.ok(m.stateDict().has('layer2.0.downsample.1.running_var'));
  assert.ok(!m.stateDict().has('layer1.0.downsample.0.weight'));
  m.dispose();
  assert.throws(() => new ResNet({ depth: 21 }), /depth must be 6n \+ 2/);
});

test('width multiplier scales every convolution', () => {
  const m = new ResNet({ depth: 8, width: 0.5 });
  assert.deepEqual(m.conv1.weight.shape, [8, 3, 3, 3]);
  assert.deepEqual(m.fc.weight.shape, [10, 32]);
  m.dispose();
  const c = new MnistCnn({ width: 2 });
  assert.deepEqual(c.conv2.weight.shape, [128, 64, 3, 3]);
  assert.deepEqual(c.fc1.weight.shape, [256, 128 * 25]);
  c.dispose();
});

test('BatchNorm2d: training normalises with batch statistics and updates running ones; eval uses them', () => {
  const bn = new BatchNorm2d(2, { momentum: 0.1 });
  // Channel 0 holds 1..4, channel 1 holds 10, 10, 20, 20 (one image, 2x2).
  const x = tensor([[[[1, 2], [3, 4]], [[10, 10], [20, 20]]]]);
  const y = bn.forward(x);
  // Batch mean 2.5, biased variance 1.25: (x - 2.5) / sqrt(1.25 + 1e-5).
  const y0 = (y.select(1, 0).flatten().dataSync() as Float32Array)[0] as number;
  close(y0, -1.5 / Math.sqrt(1.25 + 1e-5), 1e-5, 'normalised value');
  // Running: 0.9 * old + 0.1 * batch; the running variance uses the unbiased estimate (n = 4).
  const rm = bn.runningMean.toArray() as number[];
  const rv = bn.runningVar.toArray() as number[];
  close(rm[0] as number, 0.25, 1e-6, 'running mean 0');
  close(rm[1] as number, 1.5, 1e-6, 'running mean 1');
  close(rv[0] as number, 0.9 + 0.1 * (5 / 3), 1e-6, 'running var 0');
  close(rv[1] as number, 0.9 + 0.1 * (100 / 3), 1e-5, 'running var 1');
  assert.equal(bn.numBatchesTracked.item(), 1);
  bn.eval();
  const z = bn.forward(x);
  close((z.dataSync() as Float32Array)[0] as number, (1 - 0.25) / Math.sqrt((rv[0] as number) + 1e-5), 1e-5, 'eval output');
  assert.equal(bn.numBatchesTracked.item(), 1, 'eval does not count batches');
  for (const t of [x, y, z]) t.dispose();
  bn.dispose();
});

test('Dropout is the identity in eval mode and zeroes about p in training', () => {
  const d = new Dropout(0.3);
  const x = ones([20000]);
  const train = d.forward(x);
  const zeroFraction = train.eq(0).to('float32').mean().item();
  close(zeroFraction, 0.3, 0.02, 'zeroed fraction');
  close(train.max().item(), 1 / 0.7, 1e-5, 'survivor scale');
  d.eval();
  const evalOut = d.forward(x);
  assert.equal(evalOut.eq(1).all().item(), 1);
  for (const t of [x, train, evalOut]) t.dispose();
  assert.throws(() => new Dropout(1), /p must be in \[0, 1\)/);
});

test('activations: ReLU6 and the paper\'s ReLUDecay_beta(x) = max(-beta x, x)', () => {
  const x = tensor([-10, -1, 0, 0.5, 7]);
  assert.deepEqual(activate(x, 'relu6').toArray(), [0, 0, 0, 0.5, 6]);
  const d = reluDecay(x, 0.1).toArray() as number[];
  [1, 0.1, 0, 0.5, 7].forEach((v, i) => close(d[i] as number, v, 1e-6, `reluDecay[${i}]`));
  close((activate(x, 'tanh').toArray() as number[])[1] as number, Math.tanh(-1), 1e-6, 'tanh');
  assert.throws(() => activate(x, 'gelu' as 'relu'), /unknown activation 'gelu'/);
  assert.throws(() => new Activation('reluDecay', { beta: -1 }), /beta must be/);
  x.dispose();
});

test('loadStateDict copies values and reports missing, unexpected and mis-shaped entries', () => {
  const a = new Linear(3, 2);
  const b = new Linear(3, 2);
  b.loadStateDict(a.stateDict());
  assert.deepEqual(b.weight.detach().toArray(), a.weight.detach().toArray());
  assert.throws(() => b.loadStateDict(new Map([['weight', zeros([2, 3])]])), /missing: bias/);
  const extra = new Map([...a.stateDict(), ['other', zeros([1])]]);
  assert.throws(() => b.loadStateDict(extra), /unexpected: other/);
  assert.throws(() => b.loadStateDict({ weight: zeros([3, 2]), bias: zeros([2]) }), /weight: shape \[3,2\] does not match the module's \[2,3\]/);
  b.loadStateDict({ weight: zeros([2, 3]) }, { strict: false });
  assert.equal(b.weight.detach().abs().sum().item(), 0);
  a.dispose();
  b.dispose();
});

test('toMemoryFormat(channelsLast) keeps values and outputs, and parameters stay trainable leaves', () => {
  const g = new Generator(1);
  const m = new MnistCnn({ generator: g });
  const x = rand([4, 1, 28, 28], { generator: g });
  const before = noGrad(() => m.forward(x));
  const w = m.conv2.weight.detach().clone();
  m.toMemoryFormat('channelsLast');
  assert.ok(m.conv2.weight.isContiguous('channelsLast'));
  assert.ok(m.conv2.weight.isLeaf && m.conv2.weight.requiresGrad);
  assert.equal(w.sub(m.conv2.weight.detach()).abs().max().item(), 0);
  const after = noGrad(() => m.forward(x.contiguous('channelsLast')));
  assert.ok(after.sub(before).abs().max().item() < 1e-5);
  // One input channel: the weight [32, 1, 3, 3] counts as contiguous in both layouts, yet its strides steer
  // the convolution's output layout; toMemoryFormat gives it channels-last strides, so the output follows.
  const h = noGrad(() => m.conv1.forward(x));
  assert.ok(h.isContiguous('channelsLast') && !h.isContiguous(), 'conv1 output is channels-last');
  for (const t of [x, before, w, after, h]) t.dispose();
  m.dispose();
});

test('initialisers: PyTorch default bound and He normal spread', () => {
  const g = new Generator(7);
  const w = init.torchDefaultWeight_(zeros([64, 50]), g);
  const bound = 1 / Math.sqrt(50);
  assert.ok(w.abs().max().item() <= bound);
  assert.ok(w.abs().max().item() > 0.95 * bound);
  const k = init.kaimingNormal_(zeros([256, 64, 3, 3]), { generator: g });
  close(k.std().item(), Math.sqrt(2 / (256 * 9)), 0.002, 'kaiming std');
  const t = init.truncatedNormal_(zeros([10000]), 0.1, g);
  assert.ok(t.abs().max().item() <= 0.2 + 1e-7);
  for (const x of [w, k, t]) x.dispose();
});

test('a model trains: MNIST CNN loss falls on a fixed batch, and memory returns to where it was', async () => {
  const { crossEntropy } = await import('../../src/index.js');
  const { SGD } = await import('../../src/optim/index.js');
  const g = new Generator(3);
  const m = new MnistCnn({ generator: g }).toMemoryFormat('channelsLast');
  const x = randn([16, 1, 28, 28], { generator: g }).contiguous('channelsLast').keep();
  const y = tensor(new BigInt64Array(Array.from({ length: 16 }, (_, i) => BigInt(i % 10))), { dtype: 'int64' }).keep();
  const opt = new SGD(m.parameters(), 0.05, { momentum: 0.9 });
  const start = memory().liveTensors;
  const losses: number[] = [];
  for (let i = 0; i < 30; i++) {
    losses.push(scope(() => {
      const loss = crossEntropy(m.forward(x), y);
      loss.backward();
      return loss.item();
    }));
    opt.step();
    opt.zeroGrad();
  }
  assert.ok((losses.at(-1) as number) < 0.2 * (losses[0] as number), `loss ${losses[0]} -> ${losses.at(-1)}`);
  // Optimizer state (momentum buffers) is the only thing that may have been added.
  assert.equal(memory().liveTensors - start, m.parameters().length);
  opt.dispose();
  m.dispose();
  x.dispose();
  y.dispose();
});
