/**
 * On a small CNN trained on real MNIST: every gradient method lowers accuracy,
 * iterative methods lower it further than FGSM, and random noise of the same
 * eps hurts far less than FGSM.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, crossEntropy, noGrad, randperm, scope } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { Classifier, MnistCnn } from '../../src/models/index.js';
import { loadMnist } from '../../src/data/index.js';
import { SGD } from '../../src/optim/index.js';

let model: Classifier;
let x: Tensor;
let y: Tensor;

before(() => {
  const g = new Generator(0);
  const train = loadMnist('train', { limit: 8000 });
  const net = new MnistCnn({ generator: g }).toMemoryFormat('channelsLast');
  model = new Classifier(net, { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] });
  const opt = new SGD(net.parameters(), 0.05, { momentum: 0.9 });
  net.train();
  for (let epoch = 0; epoch < 2; epoch++) {
    const order = randperm(8000, { generator: g }).keep();
    for (let i = 0; i + 100 <= 8000; i += 100) {
      scope(() => {
        const idx = order.narrow(0, i, 100);
        crossEntropy(model.logits(train.images.indexSelect(0, idx)), train.labels.indexSelect(0, idx)).backward();
      });
      opt.step();
      opt.zeroGrad();
    }
    order.dispose();
  }
  opt.dispose();
  train.images.dispose();
  train.labels.dispose();
  net.eval();
  const testSet = loadMnist('test', { limit: 300 });
  x = testSet.images.keep();
  y = testSet.labels.keep();
});

const accuracy = (images: Tensor): number => noGrad(() => scope(() => model.logits(images).argmax(1).eq(y).to('float32').mean().item()));

test('gradient methods lower accuracy; iterative lower than FGSM; noise hurts far less', (t) => {
  const clean = accuracy(x);
  assert.ok(clean > 0.9, `clean accuracy ${clean} too low for the test to mean anything`);
  const eps = 64;
  const acc: Record<string, number> = {};
  // The paper's methods; the evaluation-standard attacks have their own tests.
  for (const spec of A.attacks().filter((a) => a.kind === 'one-step' || (a.kind === 'iterative' && !a.name.startsWith('apgd')))) {
    acc[spec.name] = scope(() => accuracy(spec.run(model, x, { eps, y, generator: new Generator(1) })));
  }
  t.diagnostic(`accuracy at eps ${eps}: ${JSON.stringify({ clean, ...acc })}`);
  const gradientMethods = ['fgsm', 'fast-predicted', 'fast-entropy', 'step-ll', 'step-rnd', 'kl', 'r-step-ll', 'basic-iter', 'iter-ll', 'pgd', 'mi-fgsm'];
  for (const name of gradientMethods) assert.ok((acc[name] as number) < clean - 0.05, `${name}: adversarial ${acc[name]} vs clean ${clean}`);
  assert.ok((acc['basic-iter'] as number) < (acc.fgsm as number), `basic iter. ${acc['basic-iter']} not below FGSM ${acc.fgsm}`);
  const fgsmDrop = clean - (acc.fgsm as number);
  for (const noise of ['random-sign', 'random-normal']) {
    const drop = clean - (acc[noise] as number);
    assert.ok(drop < 0.25 * fgsmDrop, `${noise} lowered accuracy by ${drop}, FGSM by ${fgsmDrop}`);
  }
  // The grid gives the same accuracies as the single calls for one-step methods.
  const grid = scope(() => {
    const out = A.oneStepGrid(model, x, [A.FGSM, A.STEP_LL], { eps: [eps], y });
    return [accuracy((out.get('fgsm') as Tensor[])[0] as Tensor), accuracy((out.get('step-ll') as Tensor[])[0] as Tensor)];
  });
  assert.deepEqual(grid, [acc.fgsm, acc['step-ll']]);
});
