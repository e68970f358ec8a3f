import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, cat, crossEntropy, noGrad, rand, randint, scope, tensor, withPrecision } from '../../src/index.js';
import { AdversarialTrainer, PAPER_EPS, epsMoments, mixedLoss, parseEpsSpec, sampleEps } from '../../src/training/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';

const maxDiff = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item());

test('mixed loss = (sum clean + lambda sum adv) / ((m - k) + lambda k), by hand', () => {
  const l = tensor([1, 2, 3, 4], { dtype: 'float64' });
  assert.ok(Math.abs(mixedLoss(l, 2, 0.3).item() - (3 + 4 + 0.3 * (1 + 2)) / (2 + 0.3 * 2)) < 1e-15);
  assert.equal(mixedLoss(l, 0, 0.3).item(), 2.5);
  assert.ok(Math.abs(mixedLoss(l, 4, 0.3).item() - 2.5) < 1e-15);
  assert.ok(Math.abs(mixedLoss(l, 1, 2).item() - (2 + 3 + 4 + 2 * 1) / (3 + 2)) < 1e-15);
  assert.throws(() => mixedLoss(l, 5, 0.3), /k = 5 is outside 0..4/);
});

function batch(seed: number): [Tensor, Tensor] {
  const g = new Generator(seed);
  return [rand([8, 1, 28, 28], { generator: g }).keep(), randint(0, 10, [8], { generator: g }).keep()];
}

test('with k = 0 the trainer is plain training, step for step', () => {
  const a = buildClassifier(MNIST_SPEC);
  const b = buildClassifier(MNIST_SPEC);
  const trainer = new AdversarialTrainer(a, new SGD(a.module.parameters(), 0.1, { momentum: 0.9 }), { k: 0 });
  const opt = new SGD(b.module.parameters(), 0.1, { momentum: 0.9 });
  for (let i = 0; i < 3; i++) {
    const [x, y] = batch(i);
    trainer.trainStep(x, y);
    b.module.train();
    scope(() => crossEntropy(b.logits(x), y).backward());
    opt.step();
    opt.zeroGrad();
  }
  for (const [k, v] of a.module.stateDict()) assert.equal(maxDiff(v.detach(), b.module.stateDict().get(k)!.detach()), 0, k);
  a.dispose();
  b.dispose();
});

test('the adversarial part comes from the current weights and the delay switches at step D', () => {
  const model = buildClassifier(MNIST_SPEC);
  const trainer = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0.5), { k: 4, delay: 2, eps: { kind: 'fixed', value: 8 }, method: 'fgsm' });
  const [x, y] = batch(7);
  const stats = [trainer.trainStep(x, y), trainer.trainStep(x, y), trainer.trainStep(x, y)];
  assert.deepEqual(stats.map((s) => s.adversarialCount), [0, 0, 4]);
  assert.equal(stats[0]!.adversarialAccuracy, null);
  assert.notEqual(stats[2]!.adversarialAccuracy, null);
  const before = trainer.makeAdversarial(x.narrow(0, 0, 4), y.narrow(0, 0, 4));
  trainer.trainStep(x, y);
  const after = trainer.makeAdversarial(x.narrow(0, 0, 4), y.narrow(0, 0, 4));
  assert.ok(maxDiff(before, after) > 0, 'a step changed the weights, so the adversarial examples must change');
  // Both are FGSM of the clean images at eps 8: each pixel moved by 8/255 unless clipped.
  assert.ok(Math.abs(maxDiff(before, x.narrow(0, 0, 4)) - 8 / 255) < 1e-6);
  model.dispose();
});

test('trainStep reports the paper\'s loss on the mixed batch', () => {
  const model = buildClassifier(MNIST_SPEC);
  const trainer = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0), { k: 3, lambda: 0.5, eps: { kind: 'fixed', value: 4 }, method: 'fgsm' });
  const [x, y] = batch(3);
  // Reproduce the adversarial examples with an identical generator state, then the loss by hand.
  const state = trainer.epsGenerator.getState();
  const attackState = trainer.attackGenerator.getState();
  const s = trainer.trainStep(x, y);
  trainer.epsGenerator.setState(state);
  trainer.attackGenerator.setState(attackState);
  const adv = trainer.makeAdversarial(x.narrow(0, 0, 3), y.narrow(0, 0, 3));
  model.module.train();
  const losses = noGrad(() => crossEntropy(model.logits(cat([adv, x.narrow(0, 3, 5)])), y, { reduction: 'none' }).dataSync() as Float32Array);
  const expected = (losses.slice(3).reduce((p, q) => p + q, 0) + 0.5 * losses.slice(0, 3).reduce((p, q) => p + q, 0)) / (5 + 0.5 * 3);
  assert.ok(Math.abs(s.loss - expected) < 1e-5, `${s.loss} vs ${expected}`);
  model.dispose();
});

test('eps samplers: the paper\'s truncated normal and the uniform match their analytic moments and bounds', () => {
  const n = 40000;
  for (const spec of [PAPER_EPS, parseEpsSpec('uniform:2:10'), parseEpsSpec('truncnorm:4:2:0:6')]) {
    const xs = sampleEps(spec, n, new Generator(4));
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    const m = epsMoments(spec);
    const se = Math.sqrt(m.variance / n);
    assert.ok(Math.abs(mean - m.mean) < 4 * se, `${JSON.stringify(spec)}: mean ${mean} vs ${m.mean}`);
    assert.ok(Math.abs(variance / m.variance - 1) < 0.03, `${JSON.stringify(spec)}: variance ${variance} vs ${m.variance}`);
    const [lo, hi] = spec.kind === 'uniform' ? [spec.low, spec.high] : spec.kind === 'truncatedNormal' ? [spec.low, spec.high] : [0, 0];
    assert.ok(xs.every((v) => v >= lo && v <= hi));
  }
  // The paper's: mean 8 (phi(0) - phi(2)) / (Phi(2) - Phi(0)) = 5.78.
  assert.ok(Math.abs(epsMoments(PAPER_EPS).mean - 5.7823) < 1e-3);
  assert.deepEqual(sampleEps(parseEpsSpec('8'), 3), [8, 8, 8]);
  assert.throws(() => parseEpsSpec('uniform:5:2'), /low \(5\) must not exceed high \(2\)/);
  assert.throws(() => parseEpsSpec('300'), /eps value must be a number in \[0, 255\]/);
  assert.throws(() => parseEpsSpec('gauss:1'), /expected a number, uniform:LOW:HIGH/);
});

test('bad trainer options name the option', () => {
  const model = buildClassifier(MNIST_SPEC);
  const opt = new SGD(model.module.parameters(), 0.1);
  assert.throws(() => new AdversarialTrainer(model, opt, { k: -1 }), /k \(adversarial examples per minibatch\) must be a non-negative integer/);
  assert.throws(() => new AdversarialTrainer(model, opt, { k: 1, lambda: NaN }), /lambda must be/);
  assert.throws(() => new AdversarialTrainer(model, opt, { k: 1, method: 'cw' as 'fgsm' }), /unknown attack method 'cw'/);
  assert.throws(() => new AdversarialTrainer(model, opt, { k: 1, delay: 1.5 }), /delay must be a non-negative integer/);
  assert.throws(() => new AdversarialTrainer(model, opt, { k: 1, labelSmoothing: 1 }), /labelSmoothing must be in \[0, 1\)/);
  model.dispose();
});

test('mixed precision: the forward pass runs in bfloat16, the loss in float32, weights stay float32', () => {
  const model = buildClassifier(MNIST_SPEC);
  const trainer = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0.01), { k: 3, lambda: 0.5, eps: { kind: 'fixed', value: 4 }, method: 'fgsm' }, { precision: 'bf16-autocast' });
  const [x, y] = batch(3);
  const state = trainer.epsGenerator.getState();
  const attackState = trainer.attackGenerator.getState();
  // Record what the model returns inside the trainer.
  const seen: string[] = [];
  const logits = model.logits.bind(model);
  model.logits = (t: Tensor): Tensor => {
    const out = logits(t);
    seen.push(out.dtype);
    return out;
  };
  const s = trainer.trainStep(x, y);
  model.logits = logits;
  assert.ok(seen.length > 0 && seen.every((d) => d === 'bfloat16'), `forward dtypes ${seen.join(', ')}`);
  for (const p of model.module.parameters()) assert.equal(p.dtype, 'float32');
  // The same loss by hand from the same bfloat16 logits (weights before the step), in float32 and in bfloat16.
  trainer.epsGenerator.setState(state);
  trainer.attackGenerator.setState(attackState);
  const before = buildClassifier(MNIST_SPEC);
  trainer.model.module.loadStateDict(before.module.stateDict());
  const adv = trainer.makeAdversarial(x.narrow(0, 0, 3), y.narrow(0, 0, 3));
  model.module.train();
  const lossIn = (dtype: 'float32' | 'bfloat16'): number => noGrad(() => scope(() => {
    const raw = withPrecision('bf16-autocast', () => model.logits(cat([adv, x.narrow(0, 3, 5)])));
    return mixedLoss(crossEntropy(raw.to(dtype), y, { reduction: 'none' }).to('float32'), 3, 0.5).item();
  }));
  const f32 = lossIn('float32');
  const b16 = lossIn('bfloat16');
  assert.ok(Math.abs(s.loss - f32) < 1e-5, `reported ${s.loss} vs float32 loss ${f32}`);
  assert.ok(Math.abs(b16 - f32) > 1e-4, `the check discriminates: a bfloat16 loss would read ${b16}`);
  before.dispose();
  model.dispose();
});
