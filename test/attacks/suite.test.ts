/** Suites: each attack runs only on the images every earlier one failed to break. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, scope, tensor } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { linearClassifier, rows, toTensor } from './linear-model.js';

const model = linearClassifier();
const X = Array.from({ length: 12 }, (_, k) => Array.from({ length: 12 }, (_, i) => 0.5 + 0.45 * Math.sin(1.3 * k + 0.9 * i)));
const x = toTensor(X);
const predicted = noGrad(() => scope(() => model.logits(x).argmax(1).toArray() as number[]));
// Two images labelled wrongly on purpose: they count as broken before any attack.
const labels = predicted.map((p, i) => (i < 2 ? (p + 1) % 4 : p));
const y = tensor(BigInt64Array.from(labels.map(BigInt)));
const wrongOn = (adv: ReturnType<typeof toTensor>): boolean[] => noGrad(() => scope(() => (model.logits(adv).argmax(1).toArray() as number[]).map((p, i) => p !== labels[i])));

test('a suite breaks exactly the images some attack breaks alone, and keeps the first attack that did', () => {
  scope(() => {
    const steps = A.suiteOf(['step-ll', 'basic-iter']);
    const eps = 16;
    const r = A.runSuite(model, x, y, steps, eps);
    const firstAlone = wrongOn(A.attackSpec('step-ll').run(model, x, { eps, y }));
    const iterAlone = wrongOn(A.attackSpec('basic-iter').run(model, x, { eps, y }));
    assert.ok(firstAlone.some((w, i) => i >= 2 && !w) && iterAlone.some((w, i) => i >= 2 && w && !firstAlone[i]), 'the case must leave work for the second attack');
    labels.forEach((_, i) => {
      const expected = i < 2 ? 'clean' : firstAlone[i] ? 'step-ll' : iterAlone[i] ? 'basic-iter' : null;
      assert.equal(r.brokenBy[i], expected, `image ${i}`);
      assert.equal(r.robust[i], expected === null);
    });
    assert.deepEqual(r.perAttack.map((a) => [a.attack, a.attacked, a.broken]), [
      ['step-ll', 10, firstAlone.filter((w, i) => i >= 2 && w).length],
      ['basic-iter', 10 - firstAlone.filter((w, i) => i >= 2 && w).length, labels.filter((_, i) => i >= 2 && !firstAlone[i] && iterAlone[i]).length],
    ]);
    // The final images: each broken image is misclassified, each robust one is its clean image.
    const final = wrongOn(r.adversarial);
    const advRows = rows(r.adversarial);
    r.brokenBy.forEach((b, i) => {
      if (b === 'step-ll' || b === 'basic-iter') assert.ok(final[i], `image ${i} broken by ${b} is classified correctly in the final batch`);
      else assert.deepEqual(advRows[i], X[i], `image ${i} (${b ?? 'robust'}) must stay clean`);
    });
    // Seeded: the same call gives the same images bit for bit.
    assert.deepEqual(rows(A.runSuite(model, x, y, steps, eps).adversarial), advRows);
  });
});

test('per-image eps reaches each attack for its own images', () => {
  scope(() => {
    const eps = X.map((_, i) => (i % 2 === 0 ? 0 : 40));
    const r = A.runSuite(model, x, y, A.suiteOf(['pgd']), eps, { seed: 3 });
    const delta = rows(r.adversarial).map((row, i) => Math.max(...row.map((v, j) => Math.abs(v - (X[i]?.[j] as number)))));
    delta.forEach((d, i) => assert.ok(d <= (eps[i] as number) / 255 + 1e-12, `image ${i} moved ${d * 255} for eps ${eps[i]}`));
    r.brokenBy.forEach((b, i) => assert.ok(i < 2 || i % 2 === 1 || b === null, `image ${i} broken at eps 0`));
    assert.equal(A.runSuite(model, x, y, A.suiteOf(['pgd']), eps, { seed: 3 }).brokenBy.join(), r.brokenBy.join());
  });
});

test('suite names and errors', () => {
  assert.deepEqual(A.suiteSteps('autoattack').map((s) => s.attack), ['apgd-ce', 'apgd-t', 'fab-t', 'square']);
  assert.deepEqual(A.suiteSteps('standard'), A.suiteSteps('autoattack'));
  assert.deepEqual(A.suiteSteps('plus').map((s) => s.attack), ['apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t']);
  assert.ok(A.suiteSteps('rand').every((s) => (s.options as { eot?: number }).eot === 20));
  assert.throws(() => A.suiteSteps('strong'), /unknown suite 'strong': expected one of autoattack, standard, plus, rand/);
  assert.throws(() => A.suiteOf(['fgsm', 'nope']), /unknown attack method 'nope'/);
  assert.throws(() => A.runSuite(model, x, y, A.suiteOf(['fgsm']), 4, { norm: 'l2' }), /attack 'fgsm' works in linf, not l2/);
  assert.throws(() => A.runSuite(model, x, y, A.suiteOf(['fgsm']), 300), /eps must be a number in \[0, 255\]/);
});
