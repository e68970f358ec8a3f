/**
 * The Square attack: its schedule and side against the paper's numbers
 * (written out by hand here), then its properties on float64 affine models,
 * whose minimal distances to the boundary are known in closed form: z = W x + b,
 * far from the box, is broken in L-inf at min_k (z_y - z_k) / ||w_y - w_k||_1
 * and in L2 at min_k (z_y - z_k) / ||w_y - w_k||_2. The attack must break
 * images whose distance is well below eps and can never break one whose
 * distance is above it. Expected values are computed in plain float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, scope, tensor } from '../../src/index.js';
import { Flatten, Linear, Sequential } from '../../src/nn/index.js';
import { Classifier } from '../../src/models/index.js';
import { SQUARE, SQUARE_P_INIT, SQUARE_QUERIES, squareAttack, squareFraction, squareMetaPattern, squareSearch, squareSide } from '../../src/attacks/square.js';
import { B as B4, SHAPE as SHAPE4, W as W4, interiorBatch, linearClassifier, logits as logits4, toTensor } from './linear-model.js';

type SquareNorm = 'linf' | 'l2';
const NORMS: SquareNorm[] = ['linf', 'l2'];
const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
const labels = (ys: number[]): Tensor => tensor(BigInt64Array.from(ys.map(BigInt)));
const l1 = (v: number[]): number => v.reduce((s, a) => s + Math.abs(a), 0);
const l2 = (v: number[]): number => Math.sqrt(v.reduce((s, a) => s + a * a, 0));
const linf = (v: number[]): number => Math.max(...v.map(Math.abs));
const sizeOf = (v: number[], norm: SquareNorm): number => (norm === 'linf' ? linf(v) : l2(v));
const sub = (a: number[], b: number[]): number[] => a.map((v, i) => v - (b[i] as number));
/** Each image of a batch as a plain array of its values. */
const rows = (t: Tensor, d = 12): number[][] => {
  const flat = Array.from(t.to('float64').dataSync() as Float64Array);
  return Array.from({ length: t.shape[0] as number }, (_, k) => flat.slice(k * d, (k + 1) * d));
};

// ---- the schedule of p and the side of the squares ----

test('p follows the paper\'s schedule for 10000 queries: 0.8 halved after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000', () => {
  // [first iteration, last iteration, p], from the paper's schedule (p_init = 0.8).
  const table: [number, number, number][] = [
    [0, 10, 0.8], [11, 50, 0.4], [51, 200, 0.2], [201, 500, 0.1], [501, 1000, 0.05],
    [1001, 2000, 0.025], [2001, 4000, 0.0125], [4001, 6000, 0.00625], [6001, 8000, 0.003125], [8001, 9999, 0.0015625],
  ];
  for (const [a, b, p] of table) {
    for (const it of [a, a + 1, Math.floor((a + b) / 2), b - 1, b]) {
      if (it < a || it > b) continue;
      assert.equal(squareFraction(it, 10000), p, `iteration ${it} of 10000`);
    }
  }
  assert.equal(SQUARE_P_INIT, 0.8);
  assert.equal(SQUARE_QUERIES, 5000);
});

test('p is rescaled to the budget: iteration i of 5000 reads the schedule at int(i / 5000 * 10000) = 2 i', () => {
  const table: [number, number, number][] = [
    [0, 5, 0.8], [6, 25, 0.4], [26, 100, 0.2], [101, 250, 0.1], [251, 500, 0.05],
    [501, 1000, 0.025], [1001, 2000, 0.0125], [2001, 3000, 0.00625], [3001, 4000, 0.003125], [4001, 4999, 0.0015625],
  ];
  for (const [a, b, p] of table) for (const it of [a, b]) assert.equal(squareFraction(it, 5000), p, `iteration ${it} of 5000`);
  // A budget of 1000: iteration i reads 10 i (0.8 up to 1, 0.4 from 2 to 5, 0.2 from 6 to 20).
  assert.deepEqual([0, 1, 2, 5, 6, 20, 21].map((it) => squareFraction(it, 1000)), [0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1]);
  // Not rescaled (the standard suite's resc_schedule=False): the raw iteration.
  assert.deepEqual([10, 11, 50, 51, 4999].map((it) => squareFraction(it, 5000, 0.8, false)), [0.8, 0.4, 0.4, 0.2, 0.00625]);
  // Another p_init halves the same way.
  assert.equal(squareFraction(30, 10000, 0.05), 0.025);
});

test('the side of a square: max(round(sqrt(p H W)), 1) in L-inf, at least 3 and odd in L2, Python rounding, capped at the image', () => {
  // CIFAR-10 images [3, 32, 32]: p H W = 819.2, 409.6, 51.2, 25.6, 1.6 at p = 0.8, 0.4, 0.05, 0.025, 0.8 / 512.
  assert.deepEqual([0.8, 0.4, 0.05, 0.025, 0.8 / 512].map((p) => squareSide(p, [3, 32, 32], 'linf')), [29, 20, 7, 5, 1]);
  assert.deepEqual([0.8, 0.4, 0.05, 0.025, 0.8 / 512].map((p) => squareSide(p, [3, 32, 32], 'l2')), [29, 21, 7, 5, 3]);
  // Halves round to even as Python's round: sqrt(6.25) = 2.5 -> 2, sqrt(12.25) = 3.5 -> 4.
  assert.equal(squareSide(0.25, [1, 5, 5], 'linf'), 2);
  assert.equal(squareSide(0.49, [1, 5, 5], 'linf'), 4);
  // Capped at the image: the 2 x 2 images of the linear model.
  assert.equal(squareSide(0.8, [3, 2, 2], 'linf'), 2);
  assert.equal(squareSide(0.4, [3, 2, 2], 'linf'), 1);
  assert.equal(squareSide(0.0015625, [3, 2, 2], 'l2'), 2);
});

test('the meta pattern of L2: two rectangles of opposite sign, unit norm (side 1, 2 and 3 by hand)', () => {
  assert.deepEqual(squareMetaPattern(1), [-1]);
  // Side 2: the rows (1/4, 5/4) and their negative, unit norm.
  const n2 = Math.sqrt(2 * (1 / 16 + 25 / 16));
  squareMetaPattern(2).forEach((v, i) => assert.ok(Math.abs(v - [0.25, 1.25, -0.25, -1.25][i]! / n2) < 1e-15));
  // Side 3: top (1/4, 5/4, 1/4) / its norm; bottom -((1/4, 1/4, 1/4), (1/4, 5/4, 1/4)) / its norm; then unit norm.
  const top = [0.25, 1.25, 0.25].map((v) => v / Math.sqrt(0.0625 * 2 + 1.5625));
  const bottomRaw = [0.25, 0.25, 0.25, 0.25, 1.25, 0.25];
  const bottom = bottomRaw.map((v) => -v / l2(bottomRaw));
  const want = [...top, ...bottom].map((v) => v / Math.SQRT2);
  squareMetaPattern(3).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-15, `side 3, entry ${i}`));
  for (const s of [4, 5, 7, 10]) assert.ok(Math.abs(l2(squareMetaPattern(s)) - 1) < 1e-12);
});

// ---- properties on the float64 linear model of linear-model.ts ([3, 2, 2] images) ----

const model4 = linearClassifier();
const X4 = interiorBatch(8);
const Y4 = X4.map((x) => argmax(logits4(x)));

for (const norm of NORMS) {
  test(`${norm}: every image within its eps and in [0, 1], broken images misclassified, margins those of the images returned`, () => {
    scope(() => {
      // eps large enough that the range clips (values in [0.3, 0.7], eps up to 100 pixels), one per image.
      const eps = X4.map((_, k) => (norm === 'linf' ? [3, 100, 20, 50][k % 4]! : [10, 300, 60, 150][k % 4]!));
      const r = squareSearch(model4, toTensor(X4), { y: labels(Y4), eps, norm, queries: 300, generator: new Generator(3) });
      const adv = rows(r.adversarial);
      let broken = 0;
      X4.forEach((x, k) => {
        const a = adv[k] as number[];
        assert.ok(a.every((v) => v >= 0 && v <= 1), `image ${k} leaves [0, 1]`);
        const size = sizeOf(sub(a, x), norm) * 255;
        assert.ok(size <= eps[k]! * (1 + 1e-9), `image ${k}: size ${size} > eps ${eps[k]}`);
        const z = logits4(a);
        const y = Y4[k] as number;
        const m = z[y]! - Math.max(...z.filter((_, c) => c !== y));
        assert.ok(Math.abs(m - r.margins[k]!) < 1e-9, `image ${k}: margin ${r.margins[k]} vs ${m}`);
        if (r.margins[k]! < 0) {
          broken++;
          assert.notEqual(argmax(z), y);
        }
      });
      assert.ok(broken >= 4, `only ${broken} images broken`);
    });
  });

  test(`${norm}: eps 0 returns the images unchanged and makes no query`, () => {
    scope(() => {
      const x = toTensor(X4);
      const r = squareSearch(model4, x, { y: labels(Y4), eps: 0, norm, queries: 50, generator: new Generator(0) });
      assert.deepEqual(Array.from(r.adversarial.dataSync() as Float64Array), Array.from(x.dataSync() as Float64Array));
      assert.ok(r.queries.every((q) => q === 0));
    });
  });

  test(`${norm}: seeded runs repeat bit for bit; another seed draws other squares`, () => {
    scope(() => {
      const opts = { y: labels(Y4), eps: norm === 'linf' ? 2 : 6, norm, queries: 200 };
      const a = squareSearch(model4, toTensor(X4), { ...opts, generator: new Generator(11) });
      const b = squareSearch(model4, toTensor(X4), { ...opts, generator: new Generator(11) });
      const c = squareSearch(model4, toTensor(X4), { ...opts, generator: new Generator(12) });
      assert.deepEqual(Array.from(a.adversarial.dataSync() as Float64Array), Array.from(b.adversarial.dataSync() as Float64Array));
      assert.deepEqual(Array.from(a.queries), Array.from(b.queries));
      assert.notDeepEqual(Array.from(a.adversarial.dataSync() as Float64Array), Array.from(c.adversarial.dataSync() as Float64Array));
    });
  });

  test(`${norm}: early exit on and off give identical images and query counts (restarts included)`, () => {
    scope(() => {
      // Small eps: some images break, some do not, so the second run attacks a subset.
      const eps = X4.map((_, k) => (norm === 'linf' ? [0.5, 8, 1, 3][k % 4]! : [2, 30, 4, 10][k % 4]!));
      const opts = { y: labels(Y4), eps, norm, queries: 150, restarts: 2 };
      const steps: number[] = [];
      const on = squareSearch(model4, toTensor(X4), { ...opts, generator: new Generator(5), onProgress: (p) => steps.push(p.active) });
      const off = squareSearch(model4, toTensor(X4), { ...opts, generator: new Generator(5), earlyExit: false });
      assert.deepEqual(Array.from(on.adversarial.dataSync() as Float64Array), Array.from(off.adversarial.dataSync() as Float64Array));
      assert.deepEqual(Array.from(on.queries), Array.from(off.queries));
      assert.deepEqual(Array.from(on.margins), Array.from(off.margins));
      const broken = Array.from(on.margins).filter((m) => m < 0).length;
      assert.ok(broken > 0 && broken < X4.length, `${broken} of ${X4.length} broken: the test needs both`);
      assert.ok(steps.some((a) => a < X4.length) && steps.at(-1)! > 0, 'images left the batch and some stayed');
    });
  });
}

test('query counting: at most queries per image and run; an unbroken image uses all of them; a misclassified image none', () => {
  scope(() => {
    // Image 0 is misclassified on purpose (label 1 - its class); the others get an eps that breaks some only.
    const y = Y4.map((c, k) => (k === 0 ? (c + 1) % 4 : c));
    for (const norm of NORMS) {
      const eps = X4.map((_, k) => (norm === 'linf' ? [0.5, 8, 1, 3][k % 4]! : [2, 30, 4, 10][k % 4]!));
      for (const [queries, restarts] of [[40, 1], [25, 3]] as const) {
        let last = 0;
        let steps = 0;
        const r = squareSearch(model4, toTensor(X4), { y: labels(y), eps, norm, queries, restarts, generator: new Generator(9), onProgress: (p) => ((last = p.step), (steps = p.steps)) });
        assert.equal(steps, queries * restarts);
        assert.ok(last <= queries * restarts);
        assert.equal(r.queries[0], 0);
        assert.deepEqual(rows(r.adversarial)[0], X4[0]);
        X4.forEach((_, k) => {
          const q = r.queries[k] as number;
          assert.ok(Number.isInteger(q) && q <= queries * restarts, `${norm} image ${k}: ${q} queries`);
          if (k > 0 && r.margins[k]! >= 0) assert.equal(q, queries * restarts, `${norm} image ${k} unbroken after ${q} queries`);
          if (k > 0) assert.ok(q >= 1);
        });
        assert.ok(Array.from(r.margins).some((m, k) => k > 0 && m >= 0), `${norm}: the test needs an unbroken image`);
      }
    }
  });
});

// ---- breaking, and soundness, on an affine model of [3, 8, 8] images far from the box ----

const SHAPE: [number, number, number] = [3, 8, 8];
const D = 192;
const C = 4;
const W = Array.from({ length: C }, (_, c) => Array.from({ length: D }, (_, i) => Math.sin(1.3 * c + 0.7 * i + 0.2) * (1 + 0.1 * (i % 12))));
const B = [0.1, -0.2, 0.3, 0.05];
const logits = (x: number[]): number[] => W.map((w, c) => w.reduce((s, wi, i) => s + wi * (x[i] as number), B[c] as number));
const module = new Sequential(new Flatten(), new Linear(D, C));
module.toDtype('float64');
module.loadStateDict({ '1.weight': tensor(W, { dtype: 'float64' }), '1.bias': tensor(B, { dtype: 'float64' }) });
const model = new Classifier(module, { classes: C, inputShape: SHAPE, inputRange: [0, 1], memoryFormat: 'contiguous' });
// Values in [0.4, 0.6]; every eps below is under 0.1 (25 pixels), so the box never binds.
const X = Array.from({ length: 12 }, (_, k) => Array.from({ length: D }, (_, i) => 0.5 + 0.1 * Math.sin(2.1 * k + 1.7 * i)));
const Y = X.map((x) => argmax(logits(x)));
const batch = (xs: number[][]): Tensor => tensor(xs, { dtype: 'float64' }).reshape([xs.length, ...SHAPE]);

/** The minimal distance (pixel values) from x to another class of the affine model, ignoring the box. */
function minimalDistance(x: number[], y: number, norm: SquareNorm): number {
  const z = logits(x);
  let best = Number.POSITIVE_INFINITY;
  for (let c = 0; c < C; c++) {
    if (c === y) continue;
    const w = sub(W[c] as number[], W[y] as number[]);
    best = Math.min(best, ((z[y] as number) - (z[c] as number)) / (norm === 'linf' ? l1(w) : l2(w)));
  }
  return best * 255;
}

for (const norm of NORMS) {
  // L-inf reaches the optimal vertex's neighbourhood fast; the L2 search needs a wider margin (a random direction in 192 dimensions).
  const factor = norm === 'linf' ? 1.5 : 2;
  test(`${norm}: breaks every image whose minimal distance is below eps / ${factor}, misclassified and within eps`, () => {
    scope(() => {
      const d = X.map((x, k) => minimalDistance(x, Y[k] as number, norm));
      const eps = d.map((v) => factor * v);
      assert.ok(Math.max(...eps) < 25, 'the box must not bind');
      const r = squareSearch(model, batch(X), { y: labels(Y), eps, norm, generator: new Generator(0) });
      const adv = rows(r.adversarial, D);
      X.forEach((x, k) => {
        const a = adv[k] as number[];
        assert.ok(r.margins[k]! < 0, `image ${k} (distance ${d[k]}, eps ${eps[k]}) unbroken, margin ${r.margins[k]}`);
        assert.notEqual(argmax(logits(a)), Y[k]);
        assert.ok(sizeOf(sub(a, x), norm) * 255 <= eps[k]! * (1 + 1e-9));
        assert.ok(r.queries[k]! <= SQUARE_QUERIES);
      });
    });
  });

  test(`${norm}: never breaks an image whose minimal distance is above eps (sound)`, () => {
    scope(() => {
      const eps = X.map((x, k) => 0.97 * minimalDistance(x, Y[k] as number, norm));
      const r = squareSearch(model, batch(X), { y: labels(Y), eps, norm, queries: 1000, generator: new Generator(1) });
      const adv = rows(r.adversarial, D);
      X.forEach((x, k) => {
        assert.ok(r.margins[k]! >= 0);
        assert.equal(argmax(logits(adv[k] as number[])), Y[k]);
        assert.equal(r.queries[k], 1000);
        assert.ok(sizeOf(sub(adv[k] as number[], x), norm) * 255 <= eps[k]! * (1 + 1e-9));
      });
    });
  });
}

test('the spec: a score-based query attack in L-inf and L2; run() is squareAttack', () => {
  assert.equal(SQUARE.name, 'square');
  assert.equal(SQUARE.kind, 'query');
  assert.equal(SQUARE.gradients, false);
  assert.deepEqual(SQUARE.norms, ['linf', 'l2']);
  assert.deepEqual(SQUARE.options, ['queries', 'restarts', 'norm']);
  assert.deepEqual(SQUARE.defaults, { queries: 5000, restarts: 1 });
  scope(() => {
    const opts = { y: labels(Y4), eps: 4, queries: 60, generator: new Generator(2) };
    const a = SQUARE.run(model4, toTensor(X4), opts);
    const b = squareAttack(model4, toTensor(X4), { ...opts, generator: new Generator(2) });
    assert.deepEqual(Array.from(a.dataSync() as Float64Array), Array.from(b.dataSync() as Float64Array));
    assert.deepEqual(a.shape, [X4.length, ...SHAPE4]);
  });
  // The linear model of linear-model.ts is the one these tests assume.
  assert.equal(W4.length, B4.length);
});

test('bad options give errors that name them', () => {
  scope(() => {
    const x = toTensor(X4);
    const y = labels(Y4);
    for (const queries of [0, -5, 2.5, Number.NaN, '10']) {
      assert.throws(() => squareAttack(model4, x, { y, eps: 4, queries: queries as number }), /queries must be a positive integer/);
    }
    for (const restarts of [0, 1.5]) assert.throws(() => squareAttack(model4, x, { y, eps: 4, restarts }), /restarts must be a positive integer/);
    assert.throws(() => squareAttack(model4, x, { y, eps: 4, norm: 'l1' }), /square: norm must be 'linf' or 'l2', got the string 'l1'/);
    assert.throws(() => squareAttack(model4, x, { y, eps: 4, norm: 'L2' as 'l2' }), /norm must be 'linf' or 'l2'/);
    assert.throws(() => squareAttack(model4, x, { eps: 4 }), /needs the true labels y/);
    assert.throws(() => squareAttack(model4, x, { y, eps: -1 }), /eps must be/);
    assert.throws(() => squareAttack(model4, x, { y, eps: 4, pInit: 0 }), /pInit must be/);
    assert.throws(() => squareFraction(3, 0), /queries must be a positive integer/);
  });
});
