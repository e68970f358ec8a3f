/**
 * The ImageNet ResNet-50: torchvision's parameter count, its state dict
 * loading strictly with the same logits (test/models/resnet_imagenet_ref.py),
 * the width multiplier, and the registry spec of the imagenet-resnet50 preset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator, type Tensor, crossEntropy, noGrad, rand, scope, tensor } from '../../src/index.js';
import { loadSafetensorsSync } from '../../src/io/index.js';
import { ResNetImageNet, buildClassifier } from '../../src/models/index.js';
import { PRESETS } from '../../src/training/index.js';
import { PYTHON, runPython } from '../helpers/python.js';

const script = fileURLToPath(new URL('./resnet_imagenet_ref.py', import.meta.url));
const torchvision = spawnSync(PYTHON, ['-c', 'import torchvision'], { stdio: 'ignore' }).status === 0;
const noTorchvision = !torchvision && `${PYTHON} cannot import torchvision (apt-get install python3-torchvision)`;

test('parameter counts: torchvision resnet50 (25,557,032), resnet101 (44,549,160), resnet152 (60,192,808)', () => {
  // torchvision's published num_params (ResNet*_Weights.IMAGENET1K_V1.meta).
  for (const [depth, n] of [[50, 25_557_032], [101, 44_549_160], [152, 60_192_808]] as const) {
    const m = new ResNetImageNet({ depth });
    assert.equal(m.parameterCount(), n, `resnet${depth}`);
    m.dispose();
  }
  assert.throws(() => new ResNetImageNet({ depth: 34 }), /depth must be one of 50, 101, 152, got 34/);
});

test("torchvision's resnet50 state dict loads into advml (strict) and gives the same logits", { skip: noTorchvision }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-resnet50-'));
  try {
    const file = join(dir, 'ref.safetensors');
    runPython(script, [file]);
    const out = loadSafetensorsSync(file).tensors;
    const state = new Map([...out].filter(([k]) => k.startsWith('state.')).map(([k, v]) => [k.slice(6), v]));
    const model = new ResNetImageNet();
    model.toDtype('float64');
    assert.deepEqual([...state.keys()].sort(), [...model.stateDict().keys()].sort(), 'the same names as torchvision');
    model.loadStateDict(state);
    model.eval();
    const logits = noGrad(() => model.forward(out.get('x') as Tensor));
    const d = scope(() => logits.sub(out.get('logits') as Tensor).abs().max().item());
    assert.ok(d < 1e-9, `logits differ from torchvision by ${d}`);
    t.diagnostic(`float64 max |difference|: ${d.toExponential(2)}`);
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('width 0.25 trains (forward and backward) and the preset spec rebuilds over [0, 1] images with ImageNet mean and std', () => {
  const m = new ResNetImageNet({ width: 0.25, classes: 7, generator: new Generator(1) });
  scope(() => {
    const x = rand([2, 3, 64, 64], { generator: new Generator(2) });
    crossEntropy(m.forward(x), tensor([1, 6], { dtype: 'int64' })).backward();
    const missing = m.namedParameters().filter(([, p]) => p.grad === null).map(([n]) => n);
    assert.deepEqual(missing, []);
  });
  m.dispose();
  const c = buildClassifier(PRESETS['imagenet-resnet50']!.spec);
  assert.ok(c.module instanceof ResNetImageNet);
  assert.deepEqual([c.inputRange, c.inputShape, c.classes], [[0, 1], [3, 224, 224], 1000]);
  assert.ok(c.module.stateDict().has('layer4.2.downsample') === false && c.module.stateDict().has('layer4.0.downsample.1.running_var'));
  c.dispose();
});
