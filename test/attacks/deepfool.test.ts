/**
 * DeepFool against closed forms: on an affine classifier z = W x + b far from
 * the box, the nearest point of another class is at L2 distance
 * min_c (z_y - z_c) / ||w_y - w_c||_2 and L-inf distance
 * min_c (z_y - z_c) / ||w_y - w_c||_1, and DeepFool reaches that boundary in
 * one step (plus the reference code's 1e-4), times 1 + overshoot: the found
 * size is compared to 1.02 (distance + 1e-4) to 1e-9, and with overshoot 0 to
 * the distance itself (within 1%, never below). Then its properties: range,
 * failures, misclassified images, early exit, repeats, per-image eps, errors. Expected values are computed here in plain float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Tensor, scope, tensor } from '../../src/index.js';
import { Flatten, Linear, Sequential } from '../../src/nn/index.js';
import { Classifier } from '../../src/models/index.js';
import { checkMinimalResult, mlpFixture, predictions } from './linear-model.js';
import { DEEPFOOL, deepFool } from '../../src/attacks/deepfool.js';

const D = 12;
const SHAPE: [number, number, number] = [3, 2, 2];
/** The step-size padding of the reference code, in model units. */
const PAD = 1e-4;

function affine(w: number[][], b: number[], range: [number, number]): Classifier {
  const module = new Sequential(new Flatten(), new Linear(D, w.length));
  module.toDtype('float64');
  module.loadStateDict({ '1.weight': tensor(w, { dtype: 'float64' }), '1.bias': tensor(b, { dtype: 'float64' }) });
  return new Classifier(module, { classes: w.length, inputShape: SHAPE, inputRange: range, memoryFormat: 'contiguous' });
}

const C = 5;
const W = Array.from({ length: C }, (_, c) => Array.from({ length: D }, (_, i) => Math.sin(1.3 * c + 0.7 * i + 0.2) * (1 + 0.1 * i)));
const B = [0.1, -0.2, 0.3, 0.05, -0.1];
const logits = (x: number[]): number[] => W.map((w, c) => w.reduce((s, wi, i) => s + wi * (x[i] as number), B[c] as number));
const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
const l1 = (v: number[]): number => v.reduce((s, a) => s + Math.abs(a), 0);
const l2 = (v: number[]): number => Math.sqrt(v.reduce((s, a) => s + a * a, 0));
const rows = (t: Tensor): number[][] => {
  const flat = Array.from(t.to('float64').dataSync() as Float64Array);
  return Array.from({ length: t.shape[0] as number }, (_, k) => flat.slice(k * D, (k + 1) * D));
};
const batch = (xs: number[][]): Tensor => tensor(xs, { dtype: 'float64' }).reshape([xs.length, ...SHAPE]);
const labels = (ys: number[]): Tensor => tensor(BigInt64Array.from(ys.map(BigInt)));

// Far from the box: points within +-4 in the range [-100, 100], so no step is clipped.
const wide = affine(W, B, [-100, 100]);
const X = Array.from({ length: 8 }, (_, k) => Array.from({ length: D }, (_, i) => 4 * Math.sin(1.1 * k + 0.37 * k * i + 0.5 * i)));
const Y = X.map((x) => argmax(logits(x)));

/** The nearest other class's boundary of the affine model: its distance (model units) and the step that reaches it. */
function nearest(x: number[], y: number, norm: 'l2' | 'linf', classes: number[] = [...Array(C).keys()]): { d: number; dir: number[] } {
  const z = logits(x);
  let best = { d: Number.POSITIVE_INFINITY, dir: [] as number[] };
  for (const c of classes) {
    if (c === y) continue;
    const w = (W[c] as number[]).map((v, i) => v - ((W[y] as number[])[i] as number));
    const d = ((z[y] as number) - (z[c] as number)) / (norm === 'l2' ? l2(w) : l1(w));
    if (d < best.d) best = { d, dir: norm === 'l2' ? w.map((v) => v / l2(w)) : w.map(Math.sign) };
  }
  return best;
}

for (const norm of ['l2', 'linf'] as const) {
  test(`DeepFool ${norm} on an affine model: one step, size exactly 1.02 (minimal distance + 1e-4), misclassified`, () => {
    scope(() => {
      const scale = wide.pixelScale;
      let progress = 0;
      const found = deepFool(wide, batch(X), { y: labels(Y), norm, onProgress: () => progress++ });
      // Every image is fooled by the first step, so the search takes one step.
      assert.equal(progress, 1);
      const adv = rows(found.adversarial);
      X.forEach((x, k) => {
        const { d, dir } = nearest(x, Y[k] as number, norm);
        const expected = (1.02 * (d + PAD)) / scale;
        const got = found.norms[k] as number;
        assert.ok(Math.abs(got / expected - 1) < 1e-9, `image ${k}: size ${got}, expected ${expected}`);
        // The image itself is x + 1.02 (d + 1e-4) times the unit step towards that boundary.
        (adv[k] as number[]).forEach((v, i) => assert.ok(Math.abs(v - ((x[i] as number) + 1.02 * (d + PAD) * (dir[i] as number))) < 1e-9));
        assert.notEqual(argmax(logits(adv[k] as number[])), Y[k]);
      });
    });
  });

  test(`DeepFool ${norm} with overshoot 0: size within 1% of the minimal distance (exactly distance + 1e-4), misclassified`, () => {
    scope(() => {
      const found = deepFool(wide, batch(X), { y: labels(Y), norm, overshoot: 0 });
      X.forEach((x, k) => {
        const d = nearest(x, Y[k] as number, norm).d / wide.pixelScale;
        const got = found.norms[k] as number;
        assert.ok(got >= d && got <= 1.01 * d, `image ${k}: ${got} vs minimal ${d}`);
        assert.ok(Math.abs(got - (d + PAD / wide.pixelScale)) < 1e-9 * d);
      });
      // Past the boundary (by the reference code's 1e-4): every image is misclassified.
      rows(found.adversarial).forEach((r, k) => assert.notEqual(argmax(logits(r)), Y[k], `image ${k}`));
    });
  });
}

test('DeepFool on a binary affine model: one step to its one boundary, in L2 and L-inf', () => {
  scope(() => {
    const two = affine(W.slice(0, 2), B.slice(0, 2), [-100, 100]);
    const z2 = (x: number[]): number[] => logits(x).slice(0, 2);
    const y2 = X.map((x) => argmax(z2(x)));
    for (const norm of ['l2', 'linf'] as const) {
      let progress = 0;
      const found = deepFool(two, batch(X), { y: labels(y2), norm, onProgress: () => progress++ });
      assert.equal(progress, 1);
      const adv = rows(found.adversarial);
      X.forEach((x, k) => {
        const { d } = nearest(x, y2[k] as number, norm, [0, 1]);
        const got = found.norms[k] as number;
        assert.ok(Math.abs(got / ((1.02 * (d + PAD)) / two.pixelScale) - 1) < 1e-9, `${norm} image ${k}: ${got}`);
        assert.notEqual(argmax(z2(adv[k] as number[])), y2[k]);
      });
    }
  });
});

test('DeepFool with 2 candidates steps to the boundary of the second most likely class', () => {
  scope(() => {
    const found = deepFool(wide, batch(X), { y: labels(Y), norm: 'l2', candidates: 2 });
    X.forEach((x, k) => {
      const z = logits(x);
      const second = argmax(z.map((v, c) => (c === Y[k] ? Number.NEGATIVE_INFINITY : v)));
      const { d } = nearest(x, Y[k] as number, 'l2', [second]);
      assert.ok(Math.abs((found.norms[k] as number) / ((1.02 * (d + PAD)) / wide.pixelScale) - 1) < 1e-9);
    });
    // More candidates than classes means all classes.
    const all = deepFool(wide, batch(X), { y: labels(Y), candidates: 100 });
    const ten = deepFool(wide, batch(X), { y: labels(Y) });
    assert.deepEqual(Array.from(all.norms), Array.from(ten.norms));
  });
});

// ---- properties on a small nonlinear model over [0, 1] ----
const mlp = mlpFixture();
const { net, X: XN, x: xn, Y: YN } = mlp;

for (const norm of ['l2', 'linf'] as const) {
  test(`DeepFool ${norm}: within the range, misclassified images size 0 and clean, sizes measured on the images, repeatable`, () => {
    scope(() => {
      const found = deepFool(net, xn, { y: labels(YN), norm });
      checkMinimalResult(found, mlp, norm);
      const adv = rows(found.adversarial);
      assert.ok(Array.from(found.norms).slice(1).some((n) => Number.isFinite(n) && n > 0), 'some image must be fooled');
      const again = deepFool(net, xn, { y: labels(YN), norm });
      assert.deepEqual(rows(again.adversarial), adv);
      assert.deepEqual(Array.from(again.norms), Array.from(found.norms));
    });
  });

  test(`DeepFool ${norm}: a fooled image's result is frozen (later iterations never change it), with and without early exit`, () => {
    scope(() => {
      for (const earlyExit of [true, false]) {
        // The first 3 iterations run on the same batches whatever the step limit, so they agree bit for bit.
        const short = deepFool(net, xn, { y: labels(YN), norm, steps: 3, earlyExit });
        const long = deepFool(net, xn, { y: labels(YN), norm, steps: 50, earlyExit });
        const [s, l] = [rows(short.adversarial), rows(long.adversarial)];
        let frozen = 0;
        let later = 0;
        Array.from(short.norms).forEach((n, k) => {
          if (Number.isFinite(n)) {
            frozen++;
            assert.equal(long.norms[k], n, `image ${k}`);
            assert.deepEqual(l[k], s[k], `image ${k}`);
          } else {
            if (Number.isFinite(long.norms[k] as number)) later++;
            assert.deepEqual(s[k], XN[k]);
          }
        });
        // Both kinds of image are present (else this test shows nothing).
        assert.ok(frozen > 1 && later > 0, `${frozen} fooled within 3 steps, ${later} later`);
      }
    });
  });

  test(`DeepFool ${norm}: early exit changes no decision and no result beyond the rounding of batched passes`, () => {
    scope(() => {
      const steps: number[] = [];
      const on = deepFool(net, xn, { y: labels(YN), norm, onProgress: (p) => steps.push(p.active) });
      const off = deepFool(net, xn, { y: labels(YN), norm, earlyExit: false });
      // Images leave the batch at different iterations (else this test shows nothing).
      assert.ok(new Set(steps).size > 1, `active counts ${steps}`);
      // The same images fooled, failed and skipped. The sizes and images agree to rounding only: the
      // engine's float64 matrix product rounds a row differently by its place in the batch (the last
      // row of an odd-sized batch), and early exit changes the batches the images still going are in.
      assert.deepEqual(Array.from(off.norms, (n) => (n === 0 ? 0 : Number.isFinite(n) ? 1 : -1)), Array.from(on.norms, (n) => (n === 0 ? 0 : Number.isFinite(n) ? 1 : -1)));
      Array.from(on.norms).forEach((n, k) => {
        const m = off.norms[k] as number;
        assert.ok(n === m || Math.abs(n - m) <= 1e-12 * n, `image ${k}: ${n} with early exit, ${m} without`);
      });
      const [a, b] = [rows(on.adversarial), rows(off.adversarial)];
      a.forEach((r, k) => r.forEach((v, i) => assert.ok(Math.abs(v - ((b[k] as number[])[i] as number)) <= 1e-12, `image ${k}`)));
      const [pa, pb] = [predictions(net, on.adversarial), predictions(net, off.adversarial)];
      assert.deepEqual(pa, pb);
    });
  });
}

test('DeepFool fails where the box stops it: size Infinity and the clean image, after the last step', () => {
  scope(() => {
    // Class 0 wins everywhere in [0, 1]: each step is clipped back into the box.
    const stuck = affine(W.slice(0, 4), [60, 0, 0, 0], [0, 1]);
    const xs = batch(XN.slice(0, 3));
    let last = 0;
    const found = deepFool(stuck, xs, { y: labels([0, 0, 1]), steps: 7, onProgress: (p) => (last = p.step) });
    assert.deepEqual(Array.from(found.norms), [Infinity, Infinity, 0]);
    assert.deepEqual(rows(found.adversarial), XN.slice(0, 3));
    assert.equal(last, 7);
  });
});

test('run() keeps each image whose DeepFool perturbation fits within its own eps', () => {
  scope(() => {
    const y = labels(YN);
    const found = deepFool(net, xn, { y, norm: 'linf' });
    const sizes = Array.from(found.norms);
    // Just above the size for even images, just below for odd ones (failures and image 0 get 3).
    const eps = sizes.map((n, k) => (Number.isFinite(n) ? (k % 2 === 0 ? n * 1.001 : n * 0.999) : 3));
    const out = rows(DEEPFOOL.run(net, xn, { eps, y, norm: 'linf' }));
    const adv = rows(found.adversarial);
    out.forEach((r, k) => assert.deepEqual(r, Number.isFinite(sizes[k] as number) && k % 2 === 0 ? adv[k] : XN[k], `image ${k}`));
    assert.deepEqual(rows(DEEPFOOL.run(net, xn, { eps: 0, y })), XN);
    assert.equal(DEEPFOOL.minimal, deepFool);
    assert.deepEqual([DEEPFOOL.name, DEEPFOOL.kind, DEEPFOOL.label, [...DEEPFOOL.norms], [...DEEPFOOL.options]], ['deepfool', 'minimal', 'predicted', ['l2', 'linf'], ['steps', 'norm']]);
  });
});

test('DeepFool: bad options give errors that name them', () => {
  scope(() => {
    const y = labels(YN);
    assert.throws(() => deepFool(net, xn, {}), /deepfool needs the true labels y/);
    assert.throws(() => deepFool(net, xn, { y, steps: 0 }), /steps must be a positive integer, got 0/);
    assert.throws(() => deepFool(net, xn, { y, steps: 1.5 }), /steps must be a positive integer, got 1.5/);
    assert.throws(() => deepFool(net, xn, { y, norm: 'l1' }), /deepfool: norm must be 'l2' or 'linf', got the string 'l1'/);
    assert.throws(() => deepFool(net, xn, { y, overshoot: -0.1 }), /overshoot must be a finite number >= 0, got -0.1/);
    assert.throws(() => deepFool(net, xn, { y, candidates: 1 }), /candidates must be an integer >= 2 .* got 1/);
    assert.throws(() => deepFool(net, xn, { y: labels([0, 1]) }), /y must have shape \[10\]/);
    assert.throws(() => DEEPFOOL.run(net, xn, { eps: -1, y }), /eps must be .* got -1/);
    assert.throws(() => DEEPFOOL.run(net, xn, { eps: 1, y, steps: -2 }), /steps must be a positive integer, got -2/);
  });
});
