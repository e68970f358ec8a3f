/**
 * Inception v3: forward and backward at 299x299, the auxiliary head, width
 * multiplier and extra blocks, parameter counts against torchvision, and
 * torchvision's own model's state dict and logits (test/models/inception_ref.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator, type Tensor, crossEntropy, memory, noGrad, rand, scope, setNumThreads, tensor } from '../../src/index.js';
import { loadSafetensorsSync, saveCheckpointSync } from '../../src/io/index.js';
import { InceptionV3, buildClassifier, inceptionV3Spec, loadClassifier, specJson } from '../../src/models/index.js';
import type { Module } from '../../src/nn/index.js';
import { PYTHON, runPython } from '../helpers/python.js';

setNumThreads(2);

const script = fileURLToPath(new URL('./inception_ref.py', import.meta.url));
const torchvision = spawnSync(PYTHON, ['-c', 'import torchvision'], { stdio: 'ignore' }).status === 0;
const noTorchvision = !torchvision && `${PYTHON} cannot import torchvision (apt-get install python3-torchvision)`;

const maxAbsDiff = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item());

test('rho 0.5: forward and backward at 299x299 (batch 2); aux logits only in training mode; nothing leaks', () => {
  const before = memory().liveTensors;
  const model = new InceptionV3({ width: 0.5, classes: 10, generator: new Generator(1) }).toMemoryFormat('channelsLast');
  scope(() => {
    const x = rand([2, 3, 299, 299], { generator: new Generator(2) }).mul(2).sub(1).contiguous('channelsLast');
    const y = tensor([3, 7], { dtype: 'int64' });
    model.train();
    const { logits, aux } = model.forwardWithAux(x);
    assert.deepEqual(logits.shape, [2, 10]);
    assert.ok(aux, 'training mode returns auxiliary logits');
    assert.deepEqual(aux.shape, [2, 10]);
    crossEntropy(logits, y).add(crossEntropy(aux, y).mul(0.4)).backward();
    const params = model.namedParameters();
    const missing = params.filter(([, p]) => p.grad === null).map(([n]) => n);
    assert.deepEqual(missing, [], 'every parameter, the aux head included, receives a gradient');
    for (const [n, p] of params) {
      const g = p.grad as Tensor;
      assert.ok(g.isfinite().all().item(), `${n}.grad is finite`);
      g.dispose();
    }
    model.zeroGrad();
    // forward() skips the auxiliary head even in training mode; inference mode gives no aux.
    assert.deepEqual(model.forward(x).shape, [2, 10]);
    model.eval();
    const inf = noGrad(() => model.forwardWithAux(x));
    assert.equal(inf.aux, null);
    const again = noGrad(() => model.forward(x));
    assert.ok(maxAbsDiff(inf.logits, again) === 0, 'inference mode is deterministic (no dropout)');
  });
  // Inference mode folded batch norm into the convolutions; the model keeps those filters for
  // the next call and frees them with its parameters, so after dispose() nothing is left.
  model.dispose();
  assert.equal(memory().liveTensors, before, 'tensors leaked by forward/backward (or folded filters not freed)');
});

test('rho 1: forward and backward at 299x299 (batch 2)', () => {
  const model = new InceptionV3({ generator: new Generator(3) }).toMemoryFormat('channelsLast');
  scope(() => {
    const x = rand([2, 3, 299, 299], { generator: new Generator(4) }).mul(2).sub(1).contiguous('channelsLast');
    const { logits, aux } = model.forwardWithAux(x);
    assert.deepEqual(logits.shape, [2, 1000]);
    assert.deepEqual(aux?.shape, [2, 1000]);
    const y = tensor([1, 999], { dtype: 'int64' });
    crossEntropy(logits, y).add(crossEntropy(aux as Tensor, y).mul(0.4)).backward();
    const w = model.Conv2d_1a_3x3.conv.weight.grad as Tensor;
    assert.ok(w.abs().sum().item() > 0, 'gradient reaches the first convolution');
  });
  model.dispose();
});

test('parameter counts: rho 1 is torchvision inception_v3 (27,161,264; 23,834,568 without the aux head)', () => {
  // torchvision's published num_params for inception_v3 (Inception_V3_Weights.IMAGENET1K_V1.meta).
  const m = new InceptionV3({ init: 'default' });
  assert.equal(m.parameterCount(), 27_161_264);
  assert.equal(m.parameterCount() - (m.AuxLogits as Module).parameterCount(), 23_834_568);
  m.dispose();
  const noAux = new InceptionV3({ auxLogits: false, init: 'default' });
  assert.equal(noAux.AuxLogits, null);
  assert.equal(noAux.parameterCount(), 23_834_568);
  noAux.dispose();
});

test('width and extra blocks: parameter counts equal torchvision blocks scaled by rho (0.5, 2)', { skip: noTorchvision }, () => {
  for (const rho of [0.5, 2]) {
    const ref = JSON.parse(runPython(script, ['count', String(rho)])) as Record<string, number>;
    const extra = { grid35: 2, grid17: 1, grid8: 1 };
    const m = new InceptionV3({ width: rho, extraBlocks: extra, init: 'default' });
    const expected = (ref.total as number) + 2 * (ref.extra35 as number) + (ref.extra17 as number) + (ref.extra8 as number);
    assert.equal(m.parameterCount(), expected, `rho ${rho} with extra blocks`);
    const names = m.blocks.map(([n]) => n);
    assert.deepEqual(names, [
      'Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_5e', 'Mixed_5f', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e',
      'Mixed_6f', 'Mixed_7a', 'Mixed_7b', 'Mixed_7c', 'Mixed_7d',
    ]);
    const withoutAux = m.parameterCount() - (m.AuxLogits as Module).parameterCount();
    assert.equal(withoutAux, expected - ((ref.total as number) - (ref.without_aux as number)));
    m.dispose();
  }
});

test('extra blocks run (rho 0.25, one of each grid size) and the aux head reads the last 17x17 block', () => {
  const m = new InceptionV3({ width: 0.25, classes: 5, extraBlocks: { grid35: 1, grid17: 1, grid8: 1 }, generator: new Generator(7) });
  scope(() => {
    const x = rand([2, 3, 299, 299], { generator: new Generator(8) });
    const { logits, aux } = m.forwardWithAux(x);
    assert.deepEqual(logits.shape, [2, 5]);
    assert.deepEqual(aux?.shape, [2, 5]);
    assert.equal(m.features, 512);
  });
  m.dispose();
});

test('activation choice: tanh, relu6 and reluDecay build and run', () => {
  for (const activation of ['tanh', 'relu6', 'reluDecay'] as const) {
    const m = new InceptionV3({ width: 0.125, classes: 3, activation, auxLogits: false, generator: new Generator(9) }).eval();
    const out = noGrad(() => m.forward(rand([1, 3, 139, 139], { generator: new Generator(10) })));
    assert.deepEqual(out.shape, [1, 3]);
    assert.ok(out.isfinite().all().item());
    out.dispose();
    m.dispose();
  }
});

test('bad options are refused with messages naming them', () => {
  assert.throws(() => new InceptionV3({ width: 0 }), /width \(rho\) must be a positive number, got 0/);
  assert.throws(() => new InceptionV3({ extraBlocks: { grid17: -1 } }), /extraBlocks\.grid17 must be an integer in \[0, 20\], got -1/);
  assert.throws(() => new InceptionV3({ extraBlocks: { grid8: 1.5 } }), /extraBlocks\.grid8/);
  assert.throws(() => new InceptionV3({ dropout: 1 }), /dropout must be in \[0, 1\), got 1/);
  assert.throws(() => new InceptionV3({ classes: 0 }), /classes must be a positive integer/);
  assert.throws(() => new InceptionV3({ init: 'xavier' as 'default' }), /init must be 'torchvision' or 'default', got 'xavier'/);
  assert.throws(() => buildClassifier(inceptionV3Spec({}, { inputShape: [3, 32, 32] })), /at least 75x75/);
});

test('registry: inception-v3 rebuilds from a spec as a classifier over [-1, 1] images of 3x299x299', () => {
  const c = buildClassifier(inceptionV3Spec({ width: 0.125, seed: 1, extraBlocks: { grid35: 1 } }, { classes: 7 }));
  assert.deepEqual(c.inputRange, [-1, 1]);
  assert.deepEqual(c.inputShape, [3, 299, 299]);
  assert.ok(c.module instanceof InceptionV3);
  assert.ok(c.module.stateDict().has('Mixed_5e.branch_pool.bn.running_var'));
  c.module.eval();
  const out = noGrad(() => c.logits(rand([1, 3, 299, 299]).mul(2).sub(1)));
  assert.deepEqual(out.shape, [1, 7]);
  out.dispose();
  c.dispose();
});

test('a checkpoint of an inception-v3 classifier (rho 0.125, extra blocks, relu6) rebuilds it with the same logits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-inception-ckpt-'));
  try {
    const spec = inceptionV3Spec({ width: 0.125, extraBlocks: { grid35: 1, grid8: 2 }, activation: 'relu6', auxLogits: false, seed: 3 }, { classes: 4 });
    const c = buildClassifier(spec);
    c.module.train();
    scope(() => void c.logits(rand([2, 3, 299, 299], { generator: new Generator(12) }).mul(2).sub(1)));
    c.module.eval();
    const x = rand([2, 3, 299, 299], { generator: new Generator(13) }).mul(2).sub(1);
    const before = noGrad(() => c.logits(x));
    const file = join(dir, 'inception.ckpt');
    saveCheckpointSync(file, { model: specJson(spec), weights: c.module.stateDict() });
    const back = loadClassifier(file);
    assert.deepEqual(back.inputRange, [-1, 1]);
    assert.ok(back.module instanceof InceptionV3 && back.module.AuxLogits === null);
    assert.ok(back.module.stateDict().has('Mixed_7e.branch1x1.conv.weight'));
    const after = noGrad(() => back.logits(x));
    assert.equal(maxAbsDiff(before, after), 0);
    c.dispose();
    back.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("torchvision's inception_v3 state dict loads into advml (strict) and gives the same logits and aux logits", { skip: noTorchvision }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-inception-'));
  try {
    const file = join(dir, 'ref.safetensors');
    runPython(script, ['logits', '1', '1000', file]);
    const out = loadSafetensorsSync(file).tensors;
    const state = new Map([...out].filter(([k]) => k.startsWith('state.')).map(([k, v]) => [k.slice(6), v]));
    const model = new InceptionV3({ init: 'default' });
    model.toDtype('float64');
    assert.deepEqual([...state.keys()].sort(), [...model.stateDict().keys()].sort(), 'same names as torchvision');
    model.loadStateDict(state);
    const x = out.get('x') as Tensor;
    model.eval();
    const logits = noGrad(() => model.forward(x));
    const d = maxAbsDiff(logits, out.get('logits') as Tensor);
    assert.ok(d < 1e-9, `inference logits differ from torchvision by ${d}`);
    // Training mode: batch statistics, so the aux logits depend on the weights only (the aux path has no dropout).
    model.train();
    const { aux } = noGrad(() => model.forwardWithAux(x));
    const da = maxAbsDiff(aux as Tensor, out.get('aux') as Tensor);
    assert.ok(da < 1e-9, `training-mode aux logits differ from torchvision by ${da}`);
    t.diagnostic(`float64 max |difference|: logits ${d.toExponential(2)}, aux logits ${da.toExponential(2)}`);
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
