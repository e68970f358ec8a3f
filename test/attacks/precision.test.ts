/**
 * bfloat16 autocast: the forward pass really runs in bfloat16, the loss in
 * float32, FGSM made at bf16 agrees with FGSM at fp32 on a trained CNN
 * (sign agreement, adversarial accuracy), and the KL attack runs its passes at
 * the precision it is given.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, type Tensor, crossEntropy, linear, noGrad, randn, resolvePrecision, scope, withPrecision } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { loadMnist } from '../../src/data/index.js';
import { type Classifier, loadClassifier } from '../../src/models/index.js';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';
import { autocastSeen } from '../helpers/precision.js';

let model: Classifier;
let x: Tensor;
let y: Tensor;

before(() => {
  const path = join(mkdtempSync(join(tmpdir(), 'advml-bf16-')), 'm.safetensors');
  writeMnistCheckpoint(path, 60);
  model = loadClassifier(path);
  const d = loadMnist('test', { limit: 256 });
  x = d.images.keep();
  y = d.labels.keep();
});

test('withPrecision: matrix products run in bfloat16 inside, float32 outside; regions nest and restore', () => {
  scope(() => {
    const w = randn([16, 32]);
    const v = randn([8, 32]);
    assert.equal(linear(v, w).dtype, 'float32');
    withPrecision('bf16-autocast', () => {
      assert.equal(linear(v, w).dtype, 'bfloat16');
      withPrecision('fp32', () => assert.equal(linear(v, w).dtype, 'bfloat16', 'fp32 inside bf16 leaves autocast as it is'));
      withPrecision('bf16-autocast', () => assert.equal(linear(v, w).dtype, 'bfloat16'));
      assert.equal(linear(v, w).dtype, 'bfloat16');
    });
    assert.equal(linear(v, w).dtype, 'float32');
    assert.throws(() => withPrecision('fp8' as 'fp32', () => 0), /precision must be one of fp32, bf16-autocast, auto/);
    assert.throws(() => withPrecision('bf16-autocast', () => { throw new Error('inner'); }), /inner/);
    assert.equal(linear(v, w).dtype, 'float32', 'an exception restores fp32');
    assert.ok(['fp32', 'bf16-autocast'].includes(resolvePrecision('auto')));
  });
});

test('FGSM at bf16-autocast agrees with fp32 on a trained CNN', (t) => {
  scope(() => {
    const eps = 32;
    const a32 = A.fgsm(model, x, { eps, y });
    const a16 = A.fgsm(model, x, { eps, y, precision: 'bf16-autocast' });
    assert.equal(a16.dtype, 'float32');
    // Signs of the perturbation on pixels that neither attack clipped.
    const d32 = a32.sub(x).sign();
    const d16 = a16.sub(x).sign();
    const moved = d32.ne(0).logicalAnd(d16.ne(0));
    const agree = d32.eq(d16).logicalAnd(moved).to('float32').sum().item() / moved.to('float32').sum().item();
    const acc = (t2: Tensor): number => noGrad(() => model.logits(t2).argmax(1).eq(y).to('float32').mean().item());
    const [c, r32, r16] = [acc(x), acc(a32), acc(a16)];
    t.diagnostic(`sign agreement ${agree.toFixed(3)}; accuracy clean ${c}, fgsm fp32 ${r32}, fgsm bf16 ${r16}`);
    assert.ok(agree > 0.85, `sign agreement ${agree}`);
    assert.ok(Math.abs(r32 - r16) <= 0.04, `adversarial accuracy fp32 ${r32} vs bf16 ${r16}`);
    assert.ok(r16 < c - 0.1, 'the bf16 attack still attacks');
  });
});

test('attacks compute their loss in float32 from bfloat16 logits', () => {
  scope(() => {
    const dtypes: string[] = [];
    const g = A.inputGradient(model, x.narrow(0, 0, 8), (logits) => {
      dtypes.push(logits.dtype);
      return crossEntropy(logits, y.narrow(0, 0, 8), { reduction: 'sum' });
    }, 'bf16-autocast');
    assert.deepEqual(dtypes, ['float32']);
    assert.equal(g.dtype, 'float32');
    const raw = withPrecision('bf16-autocast', () => model.logits(x.narrow(0, 0, 8)));
    assert.equal(raw.dtype, 'bfloat16', 'the forward pass itself ran in bfloat16');
  });
});

/** The module of `model` wrapped so it counts its forward passes. */
function counted(m: Classifier): { model: Classifier; passes: () => number } {
  let n = 0;
  const inner = m.module;
  const module = Object.create(inner) as typeof inner;
  module.forward = (t: Tensor): Tensor => {
    n++;
    return inner.forward(t);
  };
  const wrapped = Object.create(m) as Classifier;
  Object.defineProperty(wrapped, 'module', { value: module });
  return { model: wrapped, passes: () => n };
}

test('labels from the model: at fp32 the gradient pass gives them (one forward pass), in bf16 a float32 pass of their own', () => {
  scope(() => {
    const xs = x.narrow(0, 0, 64);
    // The two-pass reference: least-likely labels from an inference pass, then step l.l. towards them.
    const labels = noGrad(() => model.logits(xs).argmin(1));
    const reference = A.stepLL(model, xs, { eps: 16, label: labels, precision: 'fp32' });
    const c = counted(model);
    const merged = A.stepLL(c.model, xs, { eps: 16, precision: 'fp32' });
    assert.equal(c.passes(), 1, 'one forward pass at fp32');
    assert.equal(merged.sub(reference).abs().max().item(), 0, 'the same adversarial images as the two-pass computation');
    A.fastPredicted(c.model, xs, { eps: 16, precision: 'fp32' });
    assert.equal(c.passes(), 2, 'fast predicted class: one pass too');
    A.stepLL(c.model, xs, { eps: 16, precision: 'bf16-autocast' });
    assert.equal(c.passes(), 4, 'in bf16 the labels take a float32 pass of their own');
  });
});

test('KL honours the precision: both of its passes under bfloat16 autocast at bf16-autocast, none at fp32, and other images', () => {
  scope(() => {
    const xs = x.narrow(0, 0, 64);
    const kl = (m: Classifier, precision: 'fp32' | 'bf16-autocast'): Tensor => A.klAttack(m, xs, { eps: 16, generator: new Generator(5), precision });
    const bf16 = autocastSeen(model);
    const a16 = kl(bf16.model, 'bf16-autocast');
    assert.deepEqual(bf16.seen, ['bfloat16', 'bfloat16'], 'the clean pass and the pass at the random start');
    const fp32 = autocastSeen(model);
    const a32 = kl(fp32.model, 'fp32');
    assert.deepEqual(fp32.seen, [null, null]);
    assert.equal(a16.dtype, 'float32', 'the adversarial images stay float32');
    assert.ok(a16.sub(a32).abs().max().item() > 0, 'bfloat16 passes give another direction than float32 ones');
    // The registry's grid (evaluate, advml attack) passes the precision on too.
    const grid = autocastSeen(model);
    A.attackGrid(grid.model, xs, y.narrow(0, 0, 64), ['kl'], [16], { seed: 5, precision: 'bf16-autocast' });
    assert.ok(grid.seen.length > 0 && grid.seen.every((d) => d === 'bfloat16'), `the grid's KL passes: ${grid.seen.join(', ')}`);
  });
});
