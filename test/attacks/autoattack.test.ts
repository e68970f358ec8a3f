/**
 * The standard suite on trained models: a CNN on real MNIST and a ResNet-8
 * with batch norm on real Fashion-MNIST. At every eps, AutoAttack's robust
 * accuracy is at most that of PGD-40 with restarts, which is at most FGSM's:
 * each stronger evaluation finds every weakness the weaker one does, up to
 * the images where the weaker one is luckier (none are allowed here).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, noGrad, scope } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import type { Classifier } from '../../src/models/index.js';
import { loadFashionMnist, loadMnist } from '../../src/data/index.js';
import { FASHION_RESNET8_SPEC, MNIST_SPEC, trainClassifier } from '../helpers/checkpoints.js';

interface Case { name: string; model: Classifier; x: Tensor; y: Tensor; eps: number[] }
const cases: Case[] = [];
// Fewer steps of the suite's attacks than published, to keep the test short; the benchmark runs the published settings.
const QUICK = { steps: 25, queries: 300 };

before(() => {
  const mnist = loadMnist('test', { limit: 64 });
  const fashion = loadFashionMnist('test', { limit: 64 });
  cases.push(
    { name: 'MNIST CNN', model: trainClassifier(MNIST_SPEC, 100), x: mnist.images.keep(), y: mnist.labels.keep(), eps: [16, 38] },
    { name: 'Fashion-MNIST ResNet-8', model: trainClassifier(FASHION_RESNET8_SPEC, 100, { data: 'fashion' }), x: fashion.images.keep(), y: fashion.labels.keep(), eps: [4, 12] },
  );
});

const robust = (model: Classifier, adv: Tensor, y: Tensor): boolean[] =>
  noGrad(() => scope(() => Array.from(model.logits(adv).argmax(1).eq(y).dataSync() as Uint8Array, (v) => v !== 0)));
const share = (v: boolean[]): number => v.filter(Boolean).length / v.length;

test('AutoAttack <= PGD-40 with restarts <= FGSM at every eps, on an MNIST CNN and a batch-norm ResNet-8', (t) => {
  for (const c of cases) {
    const clean = share(robust(c.model, c.x, c.y));
    assert.ok(clean > 0.6, `${c.name}: clean accuracy ${clean} too low for the comparison to mean anything`);
    for (const eps of c.eps) {
      const fgsm = scope(() => robust(c.model, A.attackSpec('fgsm').run(c.model, c.x, { eps, y: c.y }), c.y));
      const pgd = scope(() => robust(c.model, A.attackSpec('pgd').run(c.model, c.x, { eps, y: c.y, steps: 40, restarts: 2, generator: new Generator(1) }), c.y));
      const suite = A.runSuite(c.model, c.x, c.y, A.suiteSteps('standard'), eps, { seed: 1, overrides: QUICK });
      suite.adversarial.dispose();
      t.diagnostic(`${c.name} eps ${eps}: clean ${clean}, FGSM ${share(fgsm)}, PGD-40x2 ${share(pgd)}, AutoAttack ${share(suite.robust)} (${suite.perAttack.map((a) => `${a.attack} ${a.broken}/${a.attacked}`).join(', ')})`);
      // Some attack must do something, or the ordering says nothing.
      assert.ok(share(fgsm) < clean, `${c.name} eps ${eps}: FGSM broke nothing`);
      assert.ok(share(suite.robust) <= share(pgd), `${c.name} eps ${eps}: AutoAttack ${share(suite.robust)} above PGD ${share(pgd)}`);
      assert.ok(share(pgd) <= share(fgsm), `${c.name} eps ${eps}: PGD ${share(pgd)} above FGSM ${share(fgsm)}`);
      // Every image PGD breaks, APGD-CE's first run (a stronger schedule from the same kind of start) should break too, bar a few.
      const missed = pgd.filter((r, i) => !r && suite.robust[i]).length;
      assert.ok(missed <= 2, `${c.name} eps ${eps}: ${missed} images PGD broke survived AutoAttack`);
    }
  }
});
