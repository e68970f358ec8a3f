/**
 * The standard suite on real trained models (a small MNIST CNN, and a ResNet-8
 * with batch norm on Fashion-MNIST): at every eps AutoAttack leaves at most as
 * many images robust as PGD-40 with two random starts, which leaves at most as
 * many as FGSM; and the evaluation reports the suite, the minimal sizes and the
 * audit.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, crossEntropy, noGrad, randperm, scope } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { TensorDataset, loadFashionMnist, loadMnist } from '../../src/data/index.js';
import { evaluate } from '../../src/evaluation/index.js';
import { Classifier, MnistCnn, ResNet } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';

interface Case { name: string; model: Classifier; x: Tensor; y: Tensor; eps: number[] }
const cases: Case[] = [];

function train(model: Classifier, images: Tensor, labels: Tensor, steps: number, lr: number): void {
  const g = new Generator(7);
  const opt = new SGD(model.module.parameters(), lr, { momentum: 0.9 });
  model.module.train();
  const order = randperm(images.shape[0] as number, { generator: g });
  for (let i = 0; i < steps; i++) {
    scope(() => {
      const idx = order.narrow(0, (i * 64) % ((images.shape[0] as number) - 64), 64);
      crossEntropy(model.logits(images.indexSelect(0, idx)), labels.indexSelect(0, idx)).backward();
    });
    opt.step();
    opt.zeroGrad();
  }
  order.dispose();
  opt.dispose();
  model.module.eval();
}

before(() => {
  const mnist = loadMnist('train', { limit: 6400 });
  const cnn = new Classifier(new MnistCnn({ generator: new Generator(1) }), { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] });
  train(cnn, mnist.images, mnist.labels, 100, 0.05);
  const mnistTest = loadMnist('test', { limit: 24 });
  cases.push({ name: 'MNIST CNN', model: cnn, x: mnistTest.images.keep(), y: mnistTest.labels.keep(), eps: [8, 24, 64] });

  const fashion = loadFashionMnist('train', { limit: 6400 });
  const resnet = new Classifier(new ResNet({ depth: 8, inChannels: 1, classes: 10, generator: new Generator(2) }), { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] });
  train(resnet, fashion.images, fashion.labels, 100, 0.05);
  const fashionTest = loadFashionMnist('test', { limit: 16 });
  cases.push({ name: 'ResNet-8 (batch norm)', model: resnet, x: fashionTest.images.keep(), y: fashionTest.labels.keep(), eps: [4, 16] });
  for (const d of [mnist, fashion]) {
    d.images.dispose();
    d.labels.dispose();
  }
});

const robustCount = (model: Classifier, adv: Tensor, y: Tensor): boolean[] => noGrad(() => scope(() => Array.from(model.logits(adv).argmax(1).eq(y).dataSync() as Uint8Array, (v) => v !== 0)));

test('AutoAttack <= PGD-40 with restarts <= FGSM, image for image in count, at every eps', (t) => {
  for (const c of cases) {
    const clean = robustCount(c.model, c.x, c.y).filter(Boolean).length;
    assert.ok(clean >= 0.6 * (c.y.shape[0] as number), `${c.name}: clean ${clean} of ${c.y.shape[0]}: too few for the test to mean anything`);
    for (const eps of c.eps) {
      scope(() => {
        const fgsm = robustCount(c.model, A.fgsm(c.model, c.x, { eps, y: c.y }), c.y);
        const pgdRuns = [1, 2].map((s) => robustCount(c.model, A.pgd(c.model, c.x, { eps, y: c.y, steps: 40, alpha: (2.5 * eps) / 40, generator: new Generator(s) }), c.y));
        const pgd = fgsm.map((_, i) => (pgdRuns[0] as boolean[])[i] && (pgdRuns[1] as boolean[])[i]);
        const suite = A.runSuite(c.model, c.x, c.y, A.suiteSteps('autoattack'), eps);
        const n = (v: boolean[]): number => v.filter(Boolean).length;
        t.diagnostic(`${c.name} eps ${eps}: clean ${clean}, FGSM ${n(fgsm)}, PGD-40x2 ${n(pgd)}, AutoAttack ${n(suite.robust)}; ${suite.perAttack.map((a) => `${a.attack} ${a.broken}/${a.attacked} ${a.seconds.toFixed(1)} s`).join(', ')}`);
        assert.ok(n(suite.robust) <= n(pgd), `${c.name} eps ${eps}: AutoAttack leaves ${n(suite.robust)} robust, PGD-40 x2 ${n(pgd)}`);
        assert.ok(n(pgd) <= n(fgsm), `${c.name} eps ${eps}: PGD leaves ${n(pgd)} robust, FGSM ${n(fgsm)}`);
        // Every image AutoAttack calls broken is misclassified in its final batch, within eps.
        const final = robustCount(c.model, suite.adversarial, c.y);
        suite.robust.forEach((r, i) => assert.equal(final[i], r, `${c.name} eps ${eps} image ${i}`));
        const moved = noGrad(() => suite.adversarial.sub(c.x).abs().max().item()) * 255;
        assert.ok(moved <= eps + 1e-3, `${c.name}: moved ${moved} for eps ${eps}`);
      });
    }
  }
});

test('evaluate with the suite: robust accuracy per eps, broken counts that add up, minimal sizes, and the audit', async () => {
  const c = cases[0] as Case;
  const data = new TensorDataset(c.x, c.y);
  const r = await evaluate(c.model, data, { methods: ['fgsm', 'fab'], suite: 'autoattack', eps: [8, 64], batchSize: 12, precision: 'fp32' });
  assert.ok(r.suite);
  assert.deepEqual(r.suite.attacks, ['apgd-ce', 'apgd-t', 'fab-t', 'square']);
  const cleanWrong = r.clean.counts.n - r.clean.counts.top1;
  for (const row of r.suite.rows) {
    const broken = row.attacks.reduce((s, a) => s + a.broken, 0);
    assert.equal(row.n, 24);
    assert.equal(row.robust + broken + cleanWrong, 24, `eps ${row.eps}: robust + broken + clean errors`);
    assert.equal(row.attacks[0]?.attacked, r.clean.counts.top1);
    assert.ok(row.robustAccuracy.value <= (r.cells.find((x) => x.method === 'fgsm' && x.eps === row.eps)?.top1.value ?? 0));
  }
  const fab = r.minimal.find((m) => m.method === 'fab');
  assert.ok(fab);
  assert.equal(fab.n, r.clean.counts.top1);
  assert.ok(fab.found > 0 && fab.median > 0, JSON.stringify(fab));
  const values = fab.quantiles.map((q) => q.value);
  assert.deepEqual(values, [...values].sort((a, b) => a - b));
  assert.ok(r.audit.checks.length >= 10);
  assert.notEqual(r.audit.checks.find((k) => k.id === 'query-beats-white-box')?.status, 'not-run');
});
