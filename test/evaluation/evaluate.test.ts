import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, noGrad, rand, randint, scope, tensor } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { TensorDataset } from '../../src/data/dataset.js';
import { Z95, evaluate, pairedDifference, proportion, sampleIndices, summarise, transferMatrix } from '../../src/evaluation/index.js';
import { C, D, SHAPE, linearClassifier } from '../attacks/linear-model.js';
import { autocastSeen } from '../helpers/precision.js';

test('proportion: p +- 1.96 sqrt(p (1 - p) / n), clipped to [0, 1]', () => {
  const i = proportion(80, 100);
  assert.equal(i.value, 0.8);
  assert.ok(Math.abs(i.halfWidth - Z95 * Math.sqrt(0.16 / 100)) < 1e-15);
  assert.ok(Math.abs(i.low - (0.8 - 1.959963984540054 * 0.04)) < 1e-12);
  assert.equal(proportion(100, 100).high, 1);
  assert.ok(Number.isNaN(proportion(0, 0).value));
});

test('paired difference: mean of d in {-1, 0, 1} with the sample variance', () => {
  // 10 images: 3 up, 1 down, 6 equal. d mean 0.2; sample variance (4/10 - 0.04) * 10 / 9 = 0.4.
  const d = pairedDifference({ n: 10, up: 3, down: 1 });
  assert.ok(Math.abs(d.value - 0.2) < 1e-15);
  assert.ok(Math.abs(d.halfWidth - Z95 * Math.sqrt(0.4 / 10)) < 1e-12);
  assert.ok(pairedDifference({ n: 1000, up: 100, down: 10 }).low > 0);
  assert.ok(pairedDifference({ n: 1000, up: 30, down: 25 }).low < 0);
});

const model = linearClassifier();
const g = new Generator(0);
const images = rand([70, ...SHAPE], { generator: g, dtype: 'float64' }).keep();
const labels = randint(0, C, [70], { generator: g }).keep();
const data = new TensorDataset(images, labels);

test('evaluate counts exactly what a direct computation counts, across batch boundaries', async () => {
  const r = await evaluate(model, data, { methods: ['fgsm', 'step-ll', 'basic-iter'], eps: [0, 8], batchSize: 32 });
  const direct = (x: typeof images): number => noGrad(() => scope(() => model.logits(x).argmax(1).eq(labels).to('float32').sum().item()));
  assert.equal(r.images, 70);
  assert.equal(r.clean.counts.top1, direct(images));
  // 4 classes: top-5 is always right.
  assert.equal(r.clean.top5.value, 1);
  const fgsm8 = r.cells.find((c) => c.method === 'fgsm' && c.eps === 8)!;
  assert.equal(fgsm8.counts.top1, scope(() => direct(A.fgsm(model, images, { eps: 8, y: labels }))));
  const it8 = r.cells.find((c) => c.method === 'basic-iter' && c.eps === 8)!;
  assert.equal(it8.counts.top1, scope(() => direct(A.basicIter(model, images, { eps: 8, y: labels }))));
  // eps 0 changes nothing: ratio 1, no leaking.
  for (const c of r.cells.filter((c) => c.eps === 0)) {
    assert.equal(c.counts.top1, r.clean.counts.top1);
    assert.equal(c.ratio, 1);
    assert.equal(c.labelLeaking, false);
  }
  assert.equal(fgsm8.labelSource, 'true');
  assert.equal(r.cells.find((c) => c.method === 'step-ll')!.labelSource, 'leastLikely');
  assert.ok(fgsm8.ratio < 1);
  // The strongest method at eps 8 is tied with itself.
  const at8 = r.cells.filter((c) => c.eps === 8);
  const strongest = at8.reduce((a, b) => (b.top1.value < a.top1.value ? b : a));
  assert.ok(strongest.tiedWithStrongest);
});

test('label leaking is flagged when adversarial accuracy beats clean beyond the interval', () => {
  const counts = new Map([
    ['fgsm@8', { n: 1000, top1: 900, top5: 990, paired: { n: 1000, up: 200, down: 50 } }],
    ['step-ll@8', { n: 1000, top1: 700, top5: 950, paired: { n: 1000, up: 20, down: 70 } }],
    ['fast-predicted@8', { n: 1000, top1: 800, top5: 990, paired: { n: 1000, up: 120, down: 70 } }],
  ]);
  const r = summarise({ n: 1000, top1: 750, top5: 990 }, counts, ['fgsm', 'step-ll', 'fast-predicted'], [8]);
  const [f, s, p] = r.cells;
  // Above clean with a label other than the true one: the attack helps the model, but that is not label leaking.
  assert.equal(p!.aboveClean, true);
  assert.equal(p!.labelLeaking, false);
  assert.equal(f!.aboveClean, true);
  assert.equal(f!.labelLeaking, true);
  assert.ok(f!.ratio > 1);
  assert.equal(s!.labelLeaking, false);
  assert.equal(s!.tiedWithStrongest, true);
  assert.equal(f!.tiedWithStrongest, false);
});

test('transfer: a model transfers fully to itself; rates are counted as defined', async () => {
  const other = linearClassifier();
  // A different model: negate the weights of the second class.
  noGrad(() => (other.module.stateDict().get('1.weight') as ReturnType<typeof tensor>).select(0, 1).mul_(-1));
  const cells = await transferMatrix(new Map([['a', model], ['b', other]]), data, { methods: ['fgsm'], eps: [16], samples: 50, seed: 3 });
  const self = cells.find((c) => c.source === 'a' && c.target === 'a')!;
  assert.equal(self.n, 50);
  assert.equal(self.transferred, self.sourceFooled);
  assert.equal(self.transferRate.value, 1);
  assert.equal(self.errorRate.value, self.sourceFooled / 50);
  const ab = cells.find((c) => c.source === 'a' && c.target === 'b')!;
  assert.ok(ab.transferred <= ab.sourceFooled && ab.targetErrors <= 50);
  assert.equal(cells.length, 4);
  assert.equal(D, 12);
});

test('evaluate and transfer classify, clean and adversarial, at the precision they attack at', async () => {
  for (const precision of ['fp32', 'bf16-autocast'] as const) {
    const expected = precision === 'fp32' ? null : 'bfloat16';
    const a = autocastSeen(model);
    await evaluate(a.model, data, { methods: ['fgsm', 'basic-iter'], eps: [8], steps: 2, auditProbes: false, precision });
    assert.ok(a.seen.length > 0 && a.seen.every((d) => d === expected), `evaluate at ${precision}: ${a.seen.join(', ')}`);
    const [s, t] = [autocastSeen(model), autocastSeen(linearClassifier())];
    await transferMatrix(new Map([['a', s.model], ['b', t.model]]), data, { methods: ['fgsm'], eps: [16], samples: 20, seed: 3, cleanCorrectOnly: true, precision });
    const seen = [...s.seen, ...t.seen];
    assert.ok(seen.length > 0 && seen.every((d) => d === expected), `transfer at ${precision}: ${seen.join(', ')}`);
  }
});

test('transfer with cleanCorrectOnly counts only the images both models classify correctly, as a direct count does', async () => {
  const other = linearClassifier();
  noGrad(() => (other.module.stateDict().get('1.weight') as ReturnType<typeof tensor>).select(0, 1).mul_(-1));
  const opts = { methods: ['fgsm'] as A.MethodName[], eps: [16], samples: 50, seed: 3 };
  const all = await transferMatrix(new Map([['a', model], ['b', other]]), data, opts);
  const cells = await transferMatrix(new Map([['a', model], ['b', other]]), data, { ...opts, cleanCorrectOnly: true });
  const picked = sampleIndices(70, 50, 3);
  const wrongOf = (m: typeof model, x: typeof images): boolean[] =>
    noGrad(() => scope(() => Array.from(m.logits(x).argmax(1).ne(labels).dataSync() as Uint8Array, Boolean)));
  const [cleanA, cleanB] = [wrongOf(model, images), wrongOf(other, images)];
  const adv = scope(() => A.fgsm(model, images, { eps: 16, y: labels }).keep());
  const [advA, advB] = [wrongOf(model, adv), wrongOf(other, adv)];
  adv.dispose();
  const kept = picked.filter((i) => !cleanA[i] && !cleanB[i]);
  assert.ok(kept.length > 0 && kept.length < 50, `both right on ${kept.length} of 50`);
  const ab = cells.find((c) => c.source === 'a' && c.target === 'b')!;
  assert.equal(ab.n, kept.length);
  assert.equal(ab.sourceFooled, kept.filter((i) => advA[i]).length);
  assert.equal(ab.transferred, kept.filter((i) => advA[i] && advB[i]).length);
  assert.equal(ab.targetErrors, kept.filter((i) => advB[i]).length);
  // A model against itself keeps the images it classifies correctly.
  assert.equal(cells.find((c) => c.source === 'a' && c.target === 'a')!.n, picked.filter((i) => !cleanA[i]).length);
  assert.equal(all.find((c) => c.source === 'a' && c.target === 'b')!.n, 50);
});

test('bad evaluation options name the option', async () => {
  await assert.rejects(evaluate(model, data, { methods: ['nope' as 'fgsm'] }), /unknown attack method 'nope'/);
  await assert.rejects(evaluate(model, data, { methods: ['fgsm'], eps: [4, 256] }), /eps\[1\] must be a number in \[0, 255\]/);
  await assert.rejects(evaluate(model, data, { methods: [] }), /at least one attack/);
});

test('evaluate judges a model in inference mode whatever mode it comes in, and leaves its mode and statistics alone', async () => {
  const { Classifier, ResNet } = await import('../../src/models/index.js');
  const g = new Generator(3);
  const module = new ResNet({ depth: 8, inChannels: 1, generator: g });
  // Running statistics far from the batch statistics, so the two modes give different predictions.
  noGrad(() => scope(() => void module.forward(rand([32, 1, 12, 12], { generator: g }).mul(9).sub(4))));
  const model = new Classifier(module, { classes: 10, inputShape: [1, 12, 12] });
  const x = rand([40, 1, 12, 12], { generator: g }).keep();
  const y = randint(0, 10, [40], { generator: g }).keep();
  const data = new TensorDataset(x, y);
  // Training mode first: its pass moves the running statistics, which inference mode then uses.
  const trainingMode = scope(() => {
    module.train();
    const p = noGrad(() => model.logits(x)).argmax(1);
    return noGrad(() => p.eq(y).sum().item() / 40);
  });
  const inference = scope(() => {
    module.eval();
    const p = noGrad(() => model.logits(x)).argmax(1);
    return p.eq(y).sum().item() / 40;
  });
  module.train();
  const statsBefore = scope(() => module.bn1.runningMean.sum().item());
  const r = await evaluate(model, data, { methods: ['fgsm'], eps: [4], batchSize: 16, precision: 'fp32' });
  assert.equal(r.clean.top1.value, inference, 'clean accuracy is the inference-mode accuracy');
  assert.notEqual(inference, trainingMode, 'the two modes differ on this model, so the check above can fail');
  assert.equal(module.training, true, 'the model is handed back in training mode');
  assert.equal(scope(() => module.bn1.runningMean.sum().item()), statsBefore, 'running statistics untouched');
  model.dispose();
  x.dispose();
  y.dispose();
});
