import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator, type Tensor, noGrad, rand, scope } from '../../src/index.js';
import { loadSafetensorsSync, saveSafetensorsSync } from '../../src/io/index.js';
import type { Module } from '../../src/nn/index.js';
import { MnistCnn, ResNet } from '../../src/models/index.js';
import { hasTorch, runPython } from '../helpers/python.js';

const script = fileURLToPath(new URL('./state_dict_ref.py', import.meta.url));

const maxAbsDiff = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item());
// Relative to the reference's largest logit: in inference mode batch norm is folded into the
// convolutions, which rounds differently from PyTorch's separate layers (float64 here).
const relDiff = (a: Tensor, b: Tensor): number => maxAbsDiff(a, b) / Math.max(1, scope(() => b.abs().max().item()));

const cases: [string, () => Module, number[]][] = [
  ['mnist-cnn', () => new MnistCnn({ generator: new Generator(11) }), [3, 1, 28, 28]],
  ['resnet20', () => new ResNet({ depth: 20, generator: new Generator(12) }), [2, 3, 32, 32]],
];

for (const [name, make, shape] of cases) {
  test(`${name}: a state dict saved by advml loads into PyTorch (strict), gives the same logits, and comes back`, { skip: !hasTorch() && 'python3-torch missing' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'advml-sd-'));
    try {
      const model = make();
      // Train mode once so batch-norm running statistics are not the initial ones.
      scope(() => void model.forward(rand(shape, { generator: new Generator(1) })));
      model.toDtype('float64');
      model.eval();
      const x = rand(shape, { generator: new Generator(2), dtype: 'float64' });
      saveSafetensorsSync(join(dir, 'w.safetensors'), model.stateDict());
      saveSafetensorsSync(join(dir, 'x.safetensors'), { x });
      runPython(script, [name, join(dir, 'w.safetensors'), join(dir, 'x.safetensors'), join(dir, 'out.safetensors')]);
      const out = loadSafetensorsSync(join(dir, 'out.safetensors')).tensors;

      const ours = noGrad(() => model.forward(x));
      assert.ok(relDiff(ours, out.get('logits') as Tensor) < 1e-12, 'logits differ from PyTorch on the same weights');

      // Back: PyTorch's transformed state dict loads into advml, values and logits match.
      const back = new Map([...out].filter(([k]) => k.startsWith('state.')).map(([k, v]) => [k.slice(6), v]));
      assert.deepEqual([...back.keys()].sort(), [...model.stateDict().keys()].sort());
      const expected = new Map([...model.stateDict()].map(([k, v]) => [k, noGrad(() => (v.dtype === 'int64' ? v.add(3) : v.mul(0.5).add(0.25)))]));
      model.loadStateDict(back);
      for (const [k, v] of model.stateDict()) assert.equal(maxAbsDiff(v.detach(), expected.get(k) as Tensor), 0, `${k} after loading PyTorch's state dict`);
      const ours2 = noGrad(() => model.forward(x));
      assert.ok(relDiff(ours2, out.get('logits_transformed') as Tensor) < 1e-12, 'logits after the round trip differ');
      assert.ok(maxAbsDiff(ours2, ours) > 1e-3, 'the transformation changed nothing: the check above would be vacuous');
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
