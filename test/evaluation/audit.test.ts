/**
 * The gradient-masking audit: each probe flag fires on a model built to
 * trigger it (a softmax at the output, randomness in the forward pass, a
 * quantising input layer whose gradient is zero) and stays silent on the plain
 * trained model; the grid's checks fire on results built to trigger them.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, randn } from '../../src/index.js';
import { TensorDataset, loadMnist } from '../../src/data/index.js';
import { type AuditResult, audit, evaluate, proportion, summarise } from '../../src/evaluation/index.js';
import { Classifier, loadClassifier } from '../../src/models/index.js';
import { Module } from '../../src/nn/index.js';
import * as A from '../../src/attacks/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';

/** Wraps a trained network and changes what its forward pass does. */
class Wrapped extends Module {
  constructor(private readonly inner: Module, private readonly change: (x: Tensor, inner: Module) => Tensor) {
    super();
    this.registerModule('inner', inner);
  }

  forward(x: Tensor): Tensor {
    return this.change(x, this.inner);
  }
}

let plain: Classifier;
let data: TensorDataset;

before(() => {
  const file = join(mkdtempSync(join(tmpdir(), 'advml-audit-')), 'mnist.safetensors');
  writeMnistCheckpoint(file, 60);
  plain = loadClassifier(file);
  const test = loadMnist('test', { limit: 64 });
  data = new TensorDataset(test.images, test.labels);
});

const wrapped = (change: (x: Tensor, inner: Module) => Tensor): Classifier =>
  new Classifier(new Wrapped(plain.module, change), { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] });

const status = (a: AuditResult, id: string): string => {
  const c = a.checks.find((k) => k.id === id);
  assert.ok(c, `no check '${id}'`);
  return c.status;
};

const PROBE_FLAGS = ['randomized', 'softmax-output', 'zero-gradients', 'unbounded-not-chance', 'more-steps-help'];

const run = (model: Classifier) => evaluate(model, data, { methods: ['fgsm', 'step-ll', 'r-step-ll', 'basic-iter'], eps: [8, 32], batchSize: 64, precision: 'fp32' });

test('a plain trained model: no flag fires, every check reports its evidence', async () => {
  const r = await run(plain);
  assert.ok(r.clean.top1.value > 0.8, `clean accuracy ${r.clean.top1.value} too low for the test to mean anything`);
  for (const id of [...PROBE_FLAGS, 'iterative-weaker', 'accuracy-rises-with-eps', 'label-leaking']) assert.equal(status(r.audit, id), 'passed', `${id}: ${JSON.stringify(r.audit.checks.find((c) => c.id === id))}`);
  assert.equal(status(r.audit, 'query-beats-white-box'), 'not-run');
  assert.equal(status(r.audit, 'black-box-stronger'), 'not-run');
  for (const c of r.audit.checks) assert.ok(c.evidence.length > 10, `${c.id} has no evidence`);
  assert.equal(r.audit.flagged, r.audit.checks.some((c) => c.status === 'fired'));
});

test('a softmax at the output fires softmax-output', async () => {
  const r = await run(wrapped((x, inner) => inner.forward(x).softmax(1)));
  assert.equal(status(r.audit, 'softmax-output'), 'fired');
  assert.equal(status(r.audit, 'randomized'), 'passed');
  assert.ok(r.audit.flagged);
});

test('noise in the forward pass fires randomized', async () => {
  const g = new Generator(5);
  const r = await run(wrapped((x, inner) => inner.forward(x).add(randn([x.shape[0] as number, 10], { generator: g, dtype: x.dtype }))));
  assert.equal(status(r.audit, 'randomized'), 'fired');
  assert.match((r.audit.checks.find((c) => c.id === 'randomized') as { evidence: string }).evidence, /rand suite/);
  assert.equal(status(r.audit, 'softmax-output'), 'passed');
});

test('a quantising input (gradient zero almost everywhere) fires zero-gradients', async () => {
  // round() has a zero gradient: attacks that follow the gradient see nothing.
  const r = await run(wrapped((x, inner) => inner.forward(x.mul(4).round().div(4))));
  assert.equal(status(r.audit, 'zero-gradients'), 'fired');
  assert.equal(status(r.audit, 'softmax-output'), 'passed');
});

test('the grid checks fire on results built to trigger them', () => {
  const cell = (top1: number, up = 0, down = 0) => ({ n: 1000, top1, top5: 1000, paired: { n: 1000, up, down } });
  const counts = new Map([
    // Iterative weaker than one-step; accuracy rising with eps; R+Step-LL far below step l.l.
    ['fgsm@8', cell(300)], ['fgsm@16', cell(200)],
    ['basic-iter@8', cell(600)], ['basic-iter@16', cell(700)],
    ['step-ll@8', cell(800)], ['step-ll@16', cell(790)],
    ['r-step-ll@8', cell(400)], ['r-step-ll@16', cell(300)],
  ]);
  const r = summarise({ n: 1000, top1: 900, top5: 1000 }, counts, ['fgsm', 'basic-iter', 'step-ll', 'r-step-ll'], [8, 16]);
  const a = r.audit;
  assert.equal(status(a, 'iterative-weaker'), 'fired');
  assert.equal(status(a, 'accuracy-rises-with-eps'), 'fired');
  assert.equal(status(a, 'random-step-stronger'), 'fired');
  assert.equal(status(a, 'randomized'), 'not-run');
  // Transferred examples beating the white-box attacks.
  const t = audit(r.cells, undefined, undefined, [{ source: 'plain', method: 'fgsm', eps: 8, top1: proportion(100, 1000) }]);
  assert.equal(status(t, 'black-box-stronger'), 'fired');
  // And silent where the figures are in order.
  const fine = summarise({ n: 1000, top1: 900, top5: 1000 }, new Map([['fgsm@8', cell(500)], ['fgsm@16', cell(400)], ['basic-iter@8', cell(200)], ['basic-iter@16', cell(100)]]), ['fgsm', 'basic-iter'], [8, 16]);
  assert.equal(status(fine.audit, 'iterative-weaker'), 'passed');
  assert.equal(status(fine.audit, 'accuracy-rises-with-eps'), 'passed');
  assert.equal(fine.audit.flagged, false);
});

test('Square breaking what APGD-CE left fires query-beats-white-box on a gradient-masking model, not on the plain one', async () => {
  const suite = A.suiteOf(['apgd-ce', 'square']);
  const opts = { methods: [], suite, eps: [48], batchSize: 64, precision: 'fp32' as const, steps: 20, queries: 300, auditProbes: false };
  const masked = await evaluate(wrapped((x, inner) => inner.forward(x.mul(4).round().div(4))), data, opts);
  assert.equal(status(masked.audit, 'query-beats-white-box'), 'fired', JSON.stringify(masked.suite?.rows));
  const fine = await evaluate(plain, data, opts);
  assert.equal(status(fine.audit, 'query-beats-white-box'), 'passed', JSON.stringify(fine.suite?.rows));
});
