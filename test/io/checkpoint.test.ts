import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, memory, noGrad, rand, scope, tensor } from '../../src/index.js';
import { CheckpointError, decodeCheckpoint, disposeCheckpoint, encodeCheckpoint, loadCheckpointSync, saveCheckpointSync, saveSafetensorsSync } from '../../src/io/index.js';
import { buildClassifier, classifierFromCheckpoint, loadClassifier, specJson } from '../../src/models/index.js';
import { Adam } from '../../src/optim/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-ckpt-'));

test('a checkpoint restores model, optimizer, generator state, step, epoch and config', () => {
  const model = buildClassifier(MNIST_SPEC);
  const params = model.module.parameters();
  const opt = new Adam(params, 0.01);
  scope(() => model.logits(rand([2, 1, 28, 28])).sum().backward());
  opt.step();
  const g = new Generator(9);
  rand([5], { generator: g }).dispose();
  const path = join(dir, 'a.safetensors');
  saveCheckpointSync(path, {
    model: specJson(MNIST_SPEC), weights: model.module.stateDict(), optimizer: opt.stateDict(), rng: { data: g.getState() },
    step: 17, epoch: 2, config: { lambda: 0.3, method: 'step-ll' },
  });
  const c = loadCheckpointSync(path);
  assert.equal(c.step, 17);
  assert.equal(c.epoch, 2);
  assert.deepEqual(c.config, { lambda: 0.3, method: 'step-ll' });
  const restored = classifierFromCheckpoint(c);
  const x = rand([3, 1, 28, 28], { generator: new Generator(1) });
  model.module.eval();
  const a = noGrad(() => model.logits(x));
  const b = noGrad(() => restored.logits(x));
  assert.equal(a.sub(b).abs().max().item(), 0);
  // The optimizer resumes: the next step matches on both copies.
  const opt2 = new Adam(restored.module.parameters(), 0.5);
  opt2.loadStateDict(c.optimizer!);
  assert.equal(opt2.stepCount, 1);
  assert.equal(opt2.lr, 0.01);
  const g2 = new Generator(0);
  g2.setState(c.rng!.data!);
  assert.deepEqual(rand([4], { generator: g2 }).toArray(), rand([4], { generator: g }).toArray());
  disposeCheckpoint(c);
  for (const m of [model, restored]) m.dispose();
  opt.dispose();
  opt2.dispose();
});

test('tampered, truncated and foreign files are rejected with the file named; nothing leaks', () => {
  const model = buildClassifier(MNIST_SPEC);
  const bytes = encodeCheckpoint({ model: specJson(MNIST_SPEC), weights: model.module.stateDict() });
  model.dispose();
  const before = memory().liveTensors;
  const tampered = Uint8Array.from(bytes);
  tampered[tampered.length - 5] = (tampered[tampered.length - 5] as number) ^ 1;
  assert.throws(() => decodeCheckpoint(tampered, 'ckpt-t'), (e: unknown) => e instanceof CheckpointError && /ckpt-t: its record or tensors do not match the checksum/.test(e.message));
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 10), 'ckpt-short'), /ckpt-short/);
  const plain = join(dir, 'plain.safetensors');
  const w = tensor([1, 2]);
  saveSafetensorsSync(plain, { w });
  w.dispose();
  assert.throws(() => loadCheckpointSync(plain), /checkpoint .*plain\.safetensors: no 'advml-checkpoint-2' record/);
  assert.throws(() => loadClassifier(join(dir, 'missing')), /missing: cannot read \(ENOENT\)/);
  assert.equal(memory().liveTensors, before);
});

test('a checkpoint whose weights do not fit the architecture is refused by name', () => {
  const model = buildClassifier(MNIST_SPEC);
  const path = join(dir, 'b.safetensors');
  saveCheckpointSync(path, { model: specJson({ ...MNIST_SPEC, options: { width: 2 } }), weights: model.module.stateDict() });
  model.dispose();
  assert.throws(() => loadClassifier(path), /b\.safetensors: loadStateDict: conv1\.weight: shape \[32,1,3,3\] does not match the module's \[64,1,3,3\]/);
  const bad = join(dir, 'c.safetensors');
  writeFileSync(bad, readFileSync(path).subarray(0, 100));
  assert.throws(() => loadClassifier(bad), /c\.safetensors/);
});

test('a checkpoint whose model spec lacks a part is refused naming the part and the file', () => {
  const model = buildClassifier(MNIST_SPEC);
  const weights = model.module.stateDict();
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no-classifier', { architecture: 'mnist-cnn', options: {} }, /no-classifier\.safetensors: the model spec has no classifier object/],
    ['no-architecture', { options: {}, classifier: MNIST_SPEC.classifier }, /no-architecture\.safetensors: the model spec has no architecture name/],
    ['bad-options', { architecture: 'mnist-cnn', options: [1], classifier: MNIST_SPEC.classifier }, /bad-options\.safetensors: the model spec's options must be an object/],
  ];
  for (const [name, spec, message] of cases) {
    const path = join(dir, `${name}.safetensors`);
    saveCheckpointSync(path, { model: JSON.parse(JSON.stringify(spec)), weights });
    assert.throws(() => loadClassifier(path), message);
  }
  model.dispose();
});
