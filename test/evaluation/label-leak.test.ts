/**
 * Label leaking, for real: the MNIST CNN is adversarially trained with the
 * paper's Algorithm 1 (AdversarialTrainer) on FGSM examples made with the TRUE
 * label, then evaluated on 5000 test images. Its FGSM accuracy is above its
 * clean accuracy beyond the paired interval, and evaluate() flags the cell as
 * label leaking; step l.l. on the same model, whose perturbation does not
 * depend on the true label, is neither flagged nor above clean.
 *
 * Why this configuration leaks: every example of every minibatch is adversarial
 * (k = m), at a large fixed eps (128 of 255). At that size the perturbation
 * eps sign(grad_x J(x, y_true)) dominates the image, and since it is a function
 * of the true label the model learns to read the label from it, so the attack
 * helps instead of hurting. Clean images are never trained on, so clean
 * accuracy is not pushed up alongside (with a quarter of each minibatch clean,
 * clean accuracy reaches 95% and FGSM does not get above it). The leaking appears after
 * about 600 steps at the constant rate; the rate then decays so that the model
 * settles, which keeps step l.l. from drifting above clean. Across seeds the
 * FGSM gain over clean is 1-9 points with intervals of about +-0.7.
 *
 * The test runs on one thread: the trajectory then does not depend on the
 * machine's core count (the order of float reductions does), so the seeded run
 * is the same everywhere. About a minute on one core.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getNumThreads, setNumThreads } from '../../src/index.js';
import { DataLoader, TensorDataset, loadMnist } from '../../src/data/index.js';
import { evaluate } from '../../src/evaluation/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';
import { AdversarialTrainer } from '../../src/training/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';

const SEED = 1;
const EPS = 128;
const BATCH = 64;
const STEPS = 1000;
/** SGD rate: constant for 700 steps, then halved every 100. */
const LR = 0.05;
const rate = (step: number): number => LR * 0.5 ** Math.max(0, Math.floor((step - 600) / 100));

test('FGSM (true label) adversarial training leaks the label; step l.l. on the same model does not', async (t) => {
  const threads = getNumThreads();
  setNumThreads(1);
  const model = buildClassifier({ ...MNIST_SPEC, options: { seed: SEED } });
  const train = TensorDataset.from(loadMnist('train'));
  const held = TensorDataset.from(loadMnist('test', { limit: 5000 }));
  const optimizer = new SGD(model.module.parameters(), LR, { momentum: 0.9 });
  try {
    const trainer = new AdversarialTrainer(
      model,
      optimizer,
      { k: BATCH, lambda: 1, method: 'fgsm', label: 'true', eps: { kind: 'fixed', value: EPS } },
      { seed: SEED, schedule: rate },
    );
    const loader = new DataLoader(train, BATCH, { seed: SEED, dropLast: true });
    for (let epoch = 0; trainer.step < STEPS; epoch++) {
      for await (const { images, labels } of loader.epoch(epoch)) {
        try {
          if (trainer.step < STEPS) trainer.trainStep(images, labels);
        } finally {
          images.dispose();
          labels.dispose();
        }
      }
    }
    assert.equal(trainer.step, STEPS);

    const r = await evaluate(model, held, { methods: ['fgsm', 'step-ll'], eps: [EPS], batchSize: 500 });
    const fgsm = r.cells.find((c) => c.method === 'fgsm')!;
    const stepLL = r.cells.find((c) => c.method === 'step-ll')!;
    const pct = (v: number): string => (100 * v).toFixed(1);
    const why = `clean ${pct(r.clean.top1.value)}% +- ${pct(r.clean.top1.halfWidth)}, ` +
      `fgsm ${pct(fgsm.top1.value)}% (minus clean ${pct(fgsm.difference.low)}..${pct(fgsm.difference.high)}), ` +
      `step-ll ${pct(stepLL.top1.value)}% (minus clean ${pct(stepLL.difference.low)}..${pct(stepLL.difference.high)})`;
    t.diagnostic(why);

    // A trained model, not a degenerate one: clean accuracy far above chance.
    assert.ok(r.clean.top1.value > 0.8, why);

    // FGSM with the true label helps the model: label leaking, flagged.
    assert.equal(fgsm.labelSource, 'true');
    assert.ok(fgsm.ratio > 1, why);
    assert.equal(fgsm.aboveClean, true, why);
    assert.equal(fgsm.labelLeaking, true, why);

    // Step l.l. builds its perturbation from the least likely class: no leaking, not above clean.
    assert.equal(stepLL.labelSource, 'leastLikely');
    assert.equal(stepLL.labelLeaking, false, why);
    assert.equal(stepLL.aboveClean, false, why);
    assert.ok(stepLL.top1.high < fgsm.top1.low, why);
  } finally {
    setNumThreads(threads);
    optimizer.dispose();
    train.dispose();
    held.dispose();
    model.dispose();
  }
});
