/**
 * The input contract: datasets declare their range, Classifier.fromData maps
 * it onto the model's, and training, evaluation and attacks all see images in
 * the model's range. A [-1, 1] model (the paper's Inception v3 convention)
 * trained and evaluated on an image folder of [0, 1] images records what it
 * receives; mismatched sizes, out-of-range and non-finite images are refused
 * naming both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Generator, type Tensor, full, linear, rand, scope, setNumThreads, tensor, zeros } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { TensorDataset, openImageFolder } from '../../src/data/index.js';
import { evaluate } from '../../src/evaluation/index.js';
import { Classifier, checkImageValues } from '../../src/models/classifier.js';
import { Module } from '../../src/nn/index.js';
import { runTraining } from '../../src/training/index.js';
import { rng } from '../helpers/assert.js';

setNumThreads(2);

/** A linear classifier over the mean of each channel that records the range of every batch it is given. */
class Spy extends Module {
  seen: [number, number][] = [];
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor() {
    super();
    this.weight = this.registerParameter('weight', rand([2, 3], { generator: new Generator(0) }).sub(0.5));
    this.bias = this.registerParameter('bias', zeros([2]));
  }

  forward(x: Tensor): Tensor {
    this.seen.push(scope(() => [x.min().item(), x.max().item()]) as [number, number]);
    return scope(() => linear(x.mean([2, 3]), this.weight, this.bias));
  }
}

async function imageFolder(root: string): Promise<void> {
  const next = rng(7);
  for (const cls of ['dark', 'light']) {
    mkdirSync(join(root, cls), { recursive: true });
    for (let i = 0; i < 4; i++) {
      // Full-range pixels, so the data spans [0, 1] and a model range of [-1, 1] shows.
      const pixels = Uint8Array.from({ length: 16 * 16 * 3 }, (_, k) => (k === 0 ? 0 : k === 1 ? 255 : Math.floor(next() * 256)));
      await sharp(Buffer.from(pixels), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, cls, `${i}.png`));
    }
  }
}

test('a [-1, 1] model trained and evaluated on a [0, 1] image folder receives [-1, 1] images', async () => {
  const root = mkdtempSync(join(tmpdir(), 'advml-contract-'));
  try {
    await imageFolder(root);
    const folder = await openImageFolder(root);
    assert.deepEqual(folder.range, [0, 1]);
    const spy = new Spy();
    const model = new Classifier(spy, { inputRange: [-1, 1], classes: 2, inputShape: [3, 16, 16], memoryFormat: 'contiguous' });
    model.spec = { architecture: 'mnist-cnn', options: {}, classifier: model.contract() };
    await runTraining({
      model,
      train: folder,
      config: {
        batchSize: 4, epochs: 1, seed: 0,
        adversarial: { k: 2, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 16 } },
        optimizer: { name: 'sgd', lr: 0.1 },
      },
      checkpoint: join(root, 'ckpt.safetensors'),
    });
    const trainingSeen = spy.seen.splice(0);
    assert.ok(trainingSeen.length >= 2, 'the model ran in training');
    await evaluate(model, folder, { methods: ['fgsm'], eps: [8], batchSize: 4 });
    const evalSeen = spy.seen.splice(0);
    assert.ok(evalSeen.length >= 2, 'the model ran in evaluation');
    for (const [where, seen] of [['training', trainingSeen], ['evaluation', evalSeen]] as const) {
      const lo = Math.min(...seen.map(([l]) => l));
      const hi = Math.max(...seen.map(([, h]) => h));
      assert.ok(lo >= -1 - 1e-6 && hi <= 1 + 1e-6, `${where}: the model received values in [${lo}, ${hi}]`);
      assert.ok(lo < -0.99 && hi > 0.99, `${where}: black and white pixels arrive as -1 and 1, got [${lo}, ${hi}]`);
    }
    model.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('fromData maps linearly between declared ranges and refuses what does not fit, naming both sides', () => {
  const model = new Classifier(new Spy(), { inputRange: [0, 255], classes: 2, inputShape: [3, 2, 2], memoryFormat: 'contiguous' });
  scope(() => {
    const x = tensor([-1, 0, 0.5, 1], { shape: [1, 1, 2, 2] }).expand([1, 3, 2, 2]).contiguous();
    const mapped = model.fromData(x, [-1, 1]);
    assert.deepEqual(Array.from(mapped.dataSync() as Float32Array).slice(0, 4), [0, 127.5, 191.25, 255]);
    assert.throws(() => model.fromData(zeros([1, 1, 2, 2]), [0, 1], 'mnist:test'), /mnist:test gives images of shape \[1, 2, 2\], the model takes \[3, 2, 2\]/);
    assert.throws(() => model.fromData(full([1, 3, 2, 2], 2), [0, 1], 'the data'), /the data: values span \[2, 2\], outside the range \[0, 1\] they are declared in/);
    const nan = tensor([NaN, 0, Infinity, 0.5], { shape: [1, 1, 2, 2] }).expand([1, 3, 2, 2]).contiguous();
    assert.throws(() => model.fromData(nan, [0, 1], 'the data'), /the data: 6 of 12 values are not finite/);
    assert.throws(() => model.fromData(zeros([0, 3, 2, 2]), [0, 1], 'the data'), /the data: the batch holds no image/);
    assert.throws(() => model.fromData(x, [1, 1]), /range must be \[low, high\] with finite low < high/);
  });
  model.dispose();
});

test('a dataset that declares its range is mapped, one that does not is taken as [0, 1] and refused when it is not', async () => {
  const model = new Classifier(new Spy(), { inputRange: [0, 1], classes: 2, inputShape: [3, 2, 2], memoryFormat: 'contiguous' });
  const raw = full([4, 3, 2, 2], 200);
  const labels = tensor([0, 1, 0, 1], { dtype: 'int64' });
  const declared = new TensorDataset(raw, labels, { range: [0, 255] });
  const r = await evaluate(model, declared, { methods: ['fgsm'], eps: [8] });
  assert.equal(r.images, 4);
  const undeclared = new TensorDataset(raw, labels);
  await assert.rejects(evaluate(model, undeclared, { methods: ['fgsm'], eps: [8] }), /the evaluation data: values span \[200, 200\], outside the range \[0, 1\]/);
  raw.dispose();
  labels.dispose();
  model.dispose();
});

test('attacks refuse non-finite and out-of-range images, naming how many', () => {
  const model = new Classifier(new Spy(), { inputRange: [0, 1], classes: 2, inputShape: [3, 2, 2], memoryFormat: 'contiguous' });
  scope(() => {
    const x = tensor([NaN, 0.1, 0.2, 0.3], { shape: [1, 1, 2, 2] }).expand([1, 3, 2, 2]).contiguous();
    assert.throws(() => A.fgsm(model, x, { eps: 8, y: tensor([0], { dtype: 'int64' }) }), /x: 3 of 12 values are not finite/);
    assert.throws(() => A.fgsm(model, full([1, 3, 2, 2], -0.5), { eps: 8, y: tensor([0], { dtype: 'int64' }) }), /x: values span \[-0.5, -0.5\], outside the range \[0, 1\]/);
    assert.doesNotThrow(() => checkImageValues(full([1, 3, 2, 2], 1 + 1e-9), [0, 1], 'x'), 'a rounding margin is allowed');
  });
  model.dispose();
});
