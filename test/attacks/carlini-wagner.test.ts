/**
 * Carlini-Wagner L2 against the closed form: on an affine classifier
 * z = W x + b with the box not binding, the nearest point of another class is
 * at L2 distance min_c (z_y - z_c) / ||w_y - w_c||_2; C&W must find an
 * adversarial point within 1% above it (and never below it). Then its
 * properties. Expected values are computed here in plain float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, tensor } from '../../src/index.js';
import { Flatten, Linear, Sequential } from '../../src/nn/index.js';
import { Classifier } from '../../src/models/index.js';
import { CW_BINARY_STEPS, CW_L2, CW_LEARNING_RATE, CW_STEPS, carliniWagnerL2, carliniWagnerL2Within } from '../../src/attacks/cw.js';
import { B, D, SHAPE, W, logits, norm, rows, toTensor } from './linear-model.js';

function affine(): Classifier {
  const module = new Sequential(new Flatten(), new Linear(D, W.length));
  module.toDtype('float64');
  module.loadStateDict({ '1.weight': tensor(W, { dtype: 'float64' }), '1.bias': tensor(B, { dtype: 'float64' }) });
  return new Classifier(module, { classes: W.length, inputShape: SHAPE, inputRange: [0, 1], memoryFormat: 'contiguous' });
}

const labels = (ys: number[]): Tensor => tensor(BigInt64Array.from(ys.map(BigInt)));
const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
/** Images with every value in [0.35, 0.65]. */
const batch = (n: number): number[][] => Array.from({ length: n }, (_, k) => Array.from({ length: D }, (_, i) => 0.5 + 0.15 * Math.sin(1.37 * k * k + 0.91 * i + 0.3 * k)));

/** The nearest point of another class (box not binding) and its distance, in plain float64. */
function nearest(x: number[], y: number): { distance: number; point: number[] } {
  const z = logits(x);
  let best = { distance: Number.POSITIVE_INFINITY, point: x };
  for (let c = 0; c < W.length; c++) {
    if (c === y) continue;
    const d = (W[c] as number[]).map((v, i) => v - ((W[y] as number[])[i] as number));
    const distance = ((z[y] as number) - (z[c] as number)) / norm(d, 2);
    if (distance < best.distance) best = { distance, point: x.map((v, i) => v + (distance * (d[i] as number)) / norm(d, 2)) };
  }
  return best;
}

test('C&W L2 on an affine model finds the nearest boundary point within 1%, with the published settings', () => {
  assert.deepEqual([CW_BINARY_STEPS, CW_STEPS, CW_LEARNING_RATE], [9, 1000, 0.01]);
  const X = batch(6);
  const Y = X.map((x) => argmax(logits(x)));
  const expected = X.map((x, k) => nearest(x, Y[k] as number));
  expected.forEach((e, k) => assert.ok(e.point.every((v) => v > 0 && v < 1), `image ${k}: the box must not bind`));
  const found = carliniWagnerL2(affine(), toTensor(X), { y: labels(Y) });
  const adv = rows(found.adversarial);
  X.forEach((x, k) => {
    const size = norm(x.map((v, i) => (adv[k] as number[])[i] as number - v), 2);
    const d = (expected[k] as { distance: number }).distance;
    assert.notEqual(argmax(logits(adv[k] as number[])), Y[k], `image ${k}: the result is not adversarial`);
    assert.ok(size >= d * (1 - 1e-9), `image ${k}: ${size} below the minimal distance ${d}`);
    assert.ok(size <= d * 1.01, `image ${k}: ${size} more than 1% above the minimal distance ${d}`);
    assert.ok(Math.abs((found.norms[k] as number) / 255 - size) < 1e-9, `image ${k}: reported size ${found.norms[k]} vs measured ${size * 255}`);
  });
});

test('C&W L2: misclassified images size 0 and clean, eps 0 the identity, seeded runs and early exit change nothing', () => {
  const model = affine();
  const X = batch(5);
  const Y = X.map((x) => argmax(logits(x)));
  Y[1] = ((Y[1] as number) + 1) % W.length;
  const x = toTensor(X);
  const opts = { y: labels(Y), steps: 100, binarySteps: 4, generator: new Generator(2) };
  const a = carliniWagnerL2(model, x, opts);
  assert.equal(a.norms[1], 0);
  assert.deepEqual(rows(a.adversarial)[1], X[1]);
  const b = carliniWagnerL2(model, x, { ...opts, generator: new Generator(2) });
  const c = carliniWagnerL2(model, x, { ...opts, earlyExit: false });
  assert.deepEqual(rows(b.adversarial), rows(a.adversarial));
  assert.deepEqual(rows(c.adversarial), rows(a.adversarial));
  assert.deepEqual([...c.norms], [...a.norms]);
  rows(a.adversarial).flat().forEach((v) => assert.ok(v >= 0 && v <= 1));
  assert.deepEqual(rows(carliniWagnerL2Within(model, x, { ...opts, eps: 0 })), X);
});

test('C&W L2: clear errors for bad options', () => {
  const model = affine();
  const x = toTensor(batch(2));
  const y = labels([0, 1]);
  assert.throws(() => carliniWagnerL2(model, x, { y, steps: 0 }), /steps must be a positive integer, got 0/);
  assert.throws(() => carliniWagnerL2(model, x, { y, binarySteps: 2.5 }), /binarySteps must be a positive integer, got 2\.5/);
  assert.throws(() => carliniWagnerL2(model, x, { y, learningRate: -1 }), /learningRate must be a finite number > 0, got -1/);
  assert.throws(() => carliniWagnerL2(model, x, { y, norm: 'linf' }), /cw-l2: norm must be 'l2', got the string 'linf'/);
  assert.throws(() => carliniWagnerL2(model, x, {}), /cw-l2 needs the true labels y/);
  assert.equal(CW_L2.kind, 'minimal');
});
