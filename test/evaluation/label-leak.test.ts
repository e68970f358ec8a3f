/**
 * Label leaking, for real: the MNIST CNN is adversarially trained (Algorithm 1,
 * runTraining) on FGSM examples made with the TRUE label, then evaluated. Its
 * FGSM accuracy is above its clean accuracy beyond the paired interval, and
 * evaluate() flags the cell as label leaking; step l.l. on the same model, whose
 * perturbation does not depend on the true label, is not above clean.
 *
 * Why this configuration leaks: every example of every minibatch is adversarial
 * (k = m), at a large fixed eps (128 of 255). At that size the perturbation
 * eps sign(grad_x J(x, y_true)) dominates the image, and since it is a function
 * of the true label the model learns to read the label from it: the attack
 * helps instead of hurting. Clean images are never trained on, so clean
 * accuracy is not pushed up alongside. Across seeds the leaking appears after
 * about 600 steps and holds; 1000 steps leave a margin.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TensorDataset, loadMnist } from '../../src/data/index.js';
import { evaluate } from '../../src/evaluation/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { type TrainConfig, runTraining } from '../../src/training/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';

const EPS = 128;
const SEED = 1;

const CONFIG: TrainConfig = {
  batchSize: 64,
  epochs: 2,
  maxSteps: 1000,
  seed: SEED,
  adversarial: { adversarial: 64, lambda: 1, method: 'fgsm', label: 'true', eps: { kind: 'fixed', value: EPS } },
  optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
  evalEvery: 0,
  checkpointEvery: 0,
};

test('FGSM (true label) adversarial training leaks the label; step l.l. on the same model does not', async (t) => {
  const spec = { ...MNIST_SPEC, options: { seed: SEED } };
  const model = buildClassifier(spec);
  const train = TensorDataset.from(loadMnist('train'));
  const held = TensorDataset.from(loadMnist('test', { limit: 5000 }));
  const dir = mkdtempSync(join(tmpdir(), 'advml-leak-'));
  try {
    const run = await runTraining({ model, spec, train, config: CONFIG, checkpoint: join(dir, 'model.ckpt') });
    assert.equal(run.steps, 1000);

    const r = await evaluate(model, held, { methods: ['fgsm', 'step-ll'], eps: [EPS], batchSize: 500 });
    const fgsm = r.cells.find((c) => c.method === 'fgsm')!;
    const stepLL = r.cells.find((c) => c.method === 'step-ll')!;
    const pct = (v: number): string => (100 * v).toFixed(1);
    const why = `clean ${pct(r.clean.top1.value)}% +- ${pct(r.clean.top1.halfWidth)}, ` +
      `fgsm ${pct(fgsm.top1.value)}% (diff ${pct(fgsm.difference.low)}..${pct(fgsm.difference.high)}), ` +
      `step-ll ${pct(stepLL.top1.value)}% (diff ${pct(stepLL.difference.low)}..${pct(stepLL.difference.high)})`;

    t.diagnostic(why);

    // A trained model, not a degenerate one: clean accuracy far above chance.
    assert.ok(r.clean.top1.value > 0.6, why);

    // FGSM with the true label helps the model: label leaking, flagged.
    assert.equal(fgsm.labelSource, 'true');
    assert.ok(fgsm.top1.value > r.clean.top1.value && fgsm.ratio > 1, why);
    assert.equal(fgsm.aboveClean, true, why);
    assert.equal(fgsm.labelLeaking, true, why);

    // Step l.l. builds its perturbation from the least likely class: no leaking, not above clean.
    assert.equal(stepLL.labelSource, 'leastLikely');
    assert.equal(stepLL.labelLeaking, false, why);
    assert.equal(stepLL.aboveClean, false, why);
    assert.ok(stepLL.top1.high < fgsm.top1.low, why);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    train.dispose();
    held.dispose();
    model.dispose();
  }
});
