/**
 * Every method on a linear softmax model, against the closed-form formula
 * computed independently in float64 (test/attacks/linear-model.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, randint, randn, rand, tensor, truncatedNormal } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import {
  C, D, argmax, argmin, axpy, backLogits, ceGrad, clip, entropyGrad, interiorBatch, linearClassifier, logits, norm, projectLinf, rows,
  sign, softmax, toTensor,
} from './linear-model.js';

const model = linearClassifier();
const X = interiorBatch(3);
const x = toTensor(X);
const Y = [2, 0, 3];
const y = tensor(new BigInt64Array(Y.map(BigInt)));
const EPS = [4, 8, 12];
const px = EPS.map((e) => e / 255);
const SEED = 5;
const draws = (f: (g: Generator) => Tensor): number[][] => rows(f(new Generator(SEED)));

function assertClose(actual: Tensor, expected: number[][], what: string, tol = 1e-12): void {
  const got = rows(actual);
  expected.forEach((row, k) => row.forEach((v, i) => {
    const a = (got[k] as number[])[i] as number;
    assert.ok(Math.abs(a - v) <= tol, `${what}: image ${k} element ${i}: attack ${a}, formula ${v}`);
  }));
}

const oneStep = (dir: (xk: number[], k: number) => number[], sense = 1): number[][] =>
  X.map((xk, k) => clip(axpy(xk, sense * (px[k] as number), dir(xk, k))));

test('FGSM = x + eps sign(grad J(x, y_true))', () => {
  assertClose(A.fgsm(model, x, { eps: EPS, y }), oneStep((xk, k) => sign(ceGrad(xk, Y[k] as number))), 'fgsm');
});

test('fast gradient L2 and L1 = x + eps g / ||g||_p', () => {
  assertClose(A.fastGradientL2(model, x, { eps: EPS, y }), oneStep((xk, k) => {
    const g = ceGrad(xk, Y[k] as number);
    return g.map((v) => v / norm(g, 2));
  }), 'fast-l2');
  assertClose(A.fastGradientL1(model, x, { eps: EPS, y }), oneStep((xk, k) => {
    const g = ceGrad(xk, Y[k] as number);
    return g.map((v) => v / norm(g, 1));
  }), 'fast-l1');
});

test('step l.l. = x - eps sign(grad J(x, argmin p))', () => {
  assertClose(A.stepLL(model, x, { eps: EPS }), oneStep((xk) => sign(ceGrad(xk, argmin(logits(xk)))), -1), 'step-ll');
});

test('step rnd. descends towards a random class other than the prediction', () => {
  const offsets = rows(randint(1, C, [3], { generator: new Generator(SEED) }).to('float64').reshape([3, 1]).expand([3, D]));
  const targets = X.map((xk, k) => (argmax(logits(xk)) + ((offsets[k] as number[])[0] as number)) % C);
  targets.forEach((t, k) => assert.notEqual(t, argmax(logits(X[k] as number[]))));
  assertClose(A.stepRnd(model, x, { eps: EPS, generator: new Generator(SEED) }), oneStep((xk, k) => sign(ceGrad(xk, targets[k] as number)), -1), 'step-rnd');
});

test('fast predicted class = FGSM with argmax p', () => {
  assertClose(A.fastPredicted(model, x, { eps: EPS }), oneStep((xk) => sign(ceGrad(xk, argmax(logits(xk))))), 'fast-predicted');
});

test('fast entropy = x + eps sign(grad H(p))', () => {
  assertClose(A.fastEntropy(model, x, { eps: EPS }), oneStep((xk) => sign(entropyGrad(xk))), 'fast-entropy');
});

test('KL method = x + eps sign(grad_r KL(p(x) || p(x + r))) at r = xi d / ||d||', () => {
  const d = draws((g) => randn([3, 3, 2, 2], { generator: g, dtype: 'float64' }));
  const xi = 2 / 255;
  const expected = oneStep((xk, k) => {
    const dk = d[k] as number[];
    const r = dk.map((v) => (xi * v) / norm(dk, 2));
    const p = softmax(logits(xk));
    const q = softmax(logits(axpy(xk, 1, r)));
    return sign(backLogits(q.map((qc, c) => qc - (p[c] as number))));
  });
  assertClose(A.klAttack(model, x, { eps: EPS, xi: 2, generator: new Generator(SEED) }), expected, 'kl');
});

test('random sign and random normal perturbations', () => {
  const n = draws((g) => randn([3, 3, 2, 2], { generator: g, dtype: 'float64' }));
  assertClose(A.randomSign(model, x, { eps: EPS, generator: new Generator(SEED) }), oneStep((_, k) => sign(n[k] as number[])), 'random-sign');
  const t = draws((g) => truncatedNormal([3, 3, 2, 2], { std: 1, low: -2, high: 2, generator: g, dtype: 'float64' }));
  (t.flat() as number[]).forEach((v) => assert.ok(Math.abs(v) <= 2));
  assertClose(A.randomNormal(model, x, { eps: EPS, generator: new Generator(SEED) }), oneStep((_, k) => t[k] as number[]), 'random-normal');
});

test('R+Step-LL = random sign step of eps/2, then step l.l. of eps/2 from there', () => {
  const n = draws((g) => randn([3, 3, 2, 2], { generator: g, dtype: 'float64' }));
  const expected = X.map((xk, k) => {
    const half = (px[k] as number) / 2;
    const noisy = clip(axpy(xk, half, sign(n[k] as number[])));
    return clip(axpy(noisy, -half, sign(ceGrad(noisy, argmin(logits(xk))))));
  });
  assertClose(A.rStepLL(model, x, { eps: EPS, generator: new Generator(SEED) }), expected, 'r-step-ll');
});

function iterate(start: number[][], steps: number, alpha: number, grad: (xk: number[], k: number) => number[], sense: number): number[][] {
  return X.map((xk, k) => {
    let a = start[k] as number[];
    for (let i = 0; i < steps; i++) a = projectLinf(xk, axpy(a, sense * alpha, sign(grad(a, k))), px[k] as number);
    return a;
  });
}

test('basic iter. and iter. l.l. with the paper\'s defaults (alpha 1, ceil(min(eps+4, 1.25 eps)) steps)', () => {
  assert.equal(A.paperSteps(12), 15);
  assert.equal(A.paperSteps(16), 20);
  assert.equal(A.paperSteps(2), 3);
  const steps = A.paperSteps(12);
  assertClose(A.basicIter(model, x, { eps: EPS, y }), iterate(X, steps, 1 / 255, (a, k) => ceGrad(a, Y[k] as number), 1), 'basic-iter', 1e-10);
  const ll = X.map((xk) => argmin(logits(xk)));
  assertClose(A.iterLL(model, x, { eps: EPS }), iterate(X, steps, 1 / 255, (a, k) => ceGrad(a, ll[k] as number), -1), 'iter-ll', 1e-10);
});

test('PGD: uniform random start in the ball, then projected steps', () => {
  const u = draws((g) => rand([3, 3, 2, 2], { generator: g, dtype: 'float64' }));
  const start = X.map((xk, k) => projectLinf(xk, xk.map((v, i) => v + (2 * ((u[k] as number[])[i] as number) - 1) * (px[k] as number)), px[k] as number));
  const alpha = (2.5 * 12) / 10 / 255;
  assertClose(A.pgd(model, x, { eps: EPS, y, generator: new Generator(SEED) }), iterate(start, 10, alpha, (a, k) => ceGrad(a, Y[k] as number), 1), 'pgd', 1e-10);
});

test('MI-FGSM: g <- mu g + grad / ||grad||_1, x <- x + alpha sign(g)', () => {
  const mu = 0.5;
  const alpha = 12 / 6 / 255;
  const expected = X.map((xk, k) => {
    let a = xk;
    let v = new Array<number>(D).fill(0);
    for (let i = 0; i < 6; i++) {
      const g = ceGrad(a, Y[k] as number);
      v = v.map((vi, j) => mu * vi + (g[j] as number) / norm(g, 1));
      a = projectLinf(xk, axpy(a, alpha, sign(v)), px[k] as number);
    }
    return a;
  });
  assertClose(A.miFgsm(model, x, { eps: EPS, y, steps: 6, decay: mu }), expected, 'mi-fgsm', 1e-10);
});

test('eps is converted through the declared input range ([-1, 1] here: 1 pixel = 2/255)', () => {
  const wide = linearClassifier([-1, 1]);
  const xw = toTensor(X);
  const adv = rows(A.fgsm(wide, xw, { eps: 8, y }));
  adv.forEach((row, k) => row.forEach((v, i) => {
    assert.ok(Math.abs(Math.abs(v - ((X[k] as number[])[i] as number)) - 16 / 255) < 1e-12);
  }));
});
