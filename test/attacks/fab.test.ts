/**
 * FAB against closed forms, then its properties. On an affine classifier
 * z = W x + b far from the box, the nearest point of another class is at
 * L2 distance min_c (z_y - z_c) / ||w_y - w_c||_2, L-inf distance
 * min_c (z_y - z_c) / ||w_y - w_c||_1 and L1 distance
 * min_c (z_y - z_c) / ||w_y - w_c||_inf; FAB and FAB-T must find it within 1%
 * and never below it. Where the box binds, the minimal distance to the
 * half-space of the other class solves a one-dimensional monotone equation
 * (computed here by bisection, or greedily for L1). The projection onto a
 * hyperplane and the box is checked against the same plain-JS solutions.
 * Expected values are computed here in plain float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, scope, tensor } from '../../src/index.js';
import { Flatten, Linear, Sequential } from '../../src/nn/index.js';
import { Classifier } from '../../src/models/index.js';
import { checkMinimalResult, mlpFixture, predictions } from './linear-model.js';
import { FAB, FAB_T, fab, fabTargeted, projectHyperplaneBox } from '../../src/attacks/fab.js';

type NormName = 'linf' | 'l2' | 'l1';
const NORMS: NormName[] = ['linf', 'l2', 'l1'];
const D = 12;
const SHAPE: [number, number, number] = [3, 2, 2];

function affine(w: number[][], b: number[], range: [number, number]): Classifier {
  const module = new Sequential(new Flatten(), new Linear(D, w.length));
  module.toDtype('float64');
  module.loadStateDict({ '1.weight': tensor(w, { dtype: 'float64' }), '1.bias': tensor(b, { dtype: 'float64' }) });
  return new Classifier(module, { classes: w.length, inputShape: SHAPE, inputRange: range, memoryFormat: 'contiguous' });
}

const l1 = (v: number[]): number => v.reduce((s, a) => s + Math.abs(a), 0);
const l2 = (v: number[]): number => Math.sqrt(v.reduce((s, a) => s + a * a, 0));
const linf = (v: number[]): number => Math.max(...v.map(Math.abs));
const sizeOf = (v: number[], norm: NormName): number => (norm === 'linf' ? linf(v) : norm === 'l2' ? l2(v) : l1(v));
/** The dual norm of each norm: it measures the distance to a hyperplane. */
const dualOf = (v: number[], norm: NormName): number => (norm === 'linf' ? l1(v) : norm === 'l2' ? l2(v) : linf(v));
const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
const rows = (t: Tensor, d = D): number[][] => {
  const flat = Array.from(t.to('float64').dataSync() as Float64Array);
  return Array.from({ length: t.shape[0] as number }, (_, k) => flat.slice(k * d, (k + 1) * d));
};
const batch = (xs: number[][]): Tensor => tensor(xs, { dtype: 'float64' }).reshape([xs.length, ...SHAPE]);
const labels = (ys: number[]): Tensor => tensor(BigInt64Array.from(ys.map(BigInt)));

/**
 * Plain-JS solution of min ||delta|| s.t. <w, delta> = c, lo <= t + delta <= hi
 * (the box corner furthest along sign(c) w where that is infeasible): L-inf
 * and L2 by bisection on the one-dimensional dual, L1 greedily.
 */
function boxProjection(t: number[], w: number[], c: number, lo: number, hi: number, norm: NormName): number[] {
  const sg = c >= 0 ? 1 : -1;
  const ws = w.map((v) => v * sg);
  const target = Math.abs(c);
  const a = ws.map(Math.abs);
  const room = ws.map((v, i) => Math.max(0, v > 0 ? hi - (t[i] as number) : (t[i] as number) - lo));
  const dir = ws.map(Math.sign);
  const capacity = a.reduce((s, ai, i) => s + ai * (room[i] as number), 0);
  let s: number[];
  if (target >= capacity) {
    s = room;
  } else if (norm === 'l1') {
    const order = [...a.keys()].sort((i, j) => (a[j] as number) - (a[i] as number));
    let left = target;
    s = new Array<number>(t.length).fill(0);
    for (const i of order) {
      const take = Math.min(room[i] as number, left / (a[i] as number));
      if (!(take > 0)) continue;
      s[i] = take;
      left -= take * (a[i] as number);
      if (left <= 0) break;
    }
  } else {
    const step = (level: number): number[] => a.map((ai, i) => Math.min(room[i] as number, norm === 'linf' ? level : level * ai));
    const reach = (level: number): number => step(level).reduce((acc, si, i) => acc + si * (a[i] as number), 0);
    let lo2 = 0;
    let hi2 = 1;
    while (reach(hi2) < target) hi2 *= 2;
    for (let k = 0; k < 200; k++) {
      const mid = (lo2 + hi2) / 2;
      if (reach(mid) < target) lo2 = mid;
      else hi2 = mid;
    }
    s = step(hi2);
  }
  return s.map((v, i) => (a[i] === 0 ? 0 : v * (dir[i] as number)));
}

// A deterministic stream of numbers in [0, 1).
function stream(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

test('the projection onto a hyperplane and the box is exact in every norm (against plain-JS solutions)', () => {
  scope(() => {
    const next = stream(7);
    const d = 9;
    const cases: { t: number[]; w: number[]; c: number; lo: number; hi: number }[] = [];
    for (let k = 0; k < 40; k++) {
      const [lo, hi] = k % 2 === 0 ? [0, 1] : [-1, 2];
      // A third of the coordinates on an edge of the box (no room on one side).
      const t = Array.from({ length: d }, () => {
        const u = next();
        return lo + (hi - lo) * (u < 1 / 6 ? 0 : u < 1 / 3 ? 1 : next());
      });
      const w = Array.from({ length: d }, (_, i) => (i === k % d && k % 3 === 0 ? 0 : 4 * next() - 2));
      const reach = w.reduce((s, wi, i) => s + Math.abs(wi) * (hi - lo), 0);
      // Small, large and infeasible offsets of both signs, and 0.
      const c = k === 5 ? 0 : (k % 2 === 0 ? 1 : -1) * reach * [0.02, 0.2, 0.5, 1.5][k % 4]!;
      cases.push({ t, w, c, lo, hi });
    }
    for (const norm of NORMS) {
      for (const range of [[0, 1], [-1, 2]] as const) {
        const sel = cases.filter((q) => q.lo === range[0]);
        const delta = rows(projectHyperplaneBox(
          tensor(sel.map((q) => q.t), { dtype: 'float64' }), tensor(sel.map((q) => q.w), { dtype: 'float64' }),
          tensor(sel.map((q) => q.c), { dtype: 'float64' }), range[0], range[1], norm), d);
        sel.forEach((q, k) => {
          const got = delta[k] as number[];
          const want = boxProjection(q.t, q.w, q.c, q.lo, q.hi, norm);
          const scale = Math.max(1, sizeOf(want, norm));
          got.forEach((v, i) => {
            const z = (q.t[i] as number) + v;
            assert.ok(z >= q.lo - 1e-12 && z <= q.hi + 1e-12, `${norm} case ${k}: coordinate ${i} leaves the box (${z})`);
            if (q.w[i] === 0) assert.equal(v, 0);
          });
          const capacity = q.w.reduce((s, wi, i) => s + Math.abs(wi) * (wi * Math.sign(q.c || 1) > 0 ? q.hi - (q.t[i] as number) : (q.t[i] as number) - q.lo), 0);
          if (Math.abs(q.c) < capacity) {
            const moved = got.reduce((s, v, i) => s + v * (q.w[i] as number), 0);
            assert.ok(Math.abs(moved - q.c) < 1e-9 * Math.max(1, Math.abs(q.c)), `${norm} case ${k}: <w, delta> = ${moved}, not ${q.c}`);
          }
          // The minimal size; in L2 the minimiser is unique, so the step itself.
          assert.ok(Math.abs(sizeOf(got, norm) - sizeOf(want, norm)) < 1e-9 * scale, `${norm} case ${k}: size ${sizeOf(got, norm)}, minimal ${sizeOf(want, norm)}`);
          if (norm === 'l2') got.forEach((v, i) => assert.ok(Math.abs(v - (want[i] as number)) < 1e-9 * scale));
        });
        const zero = sel.findIndex((q) => q.c === 0);
        if (zero >= 0) assert.ok((delta[zero] as number[]).every((v) => v === 0));
      }
    }
  });
});

// ---- an affine model far from the box: the closed forms ----
const C = 5;
const W = Array.from({ length: C }, (_, c) => Array.from({ length: D }, (_, i) => Math.sin(1.3 * c + 0.7 * i + 0.2) * (1 + 0.1 * i)));
const B = [0.1, -0.2, 0.3, 0.05, -0.1];
const logits = (x: number[]): number[] => W.map((w, c) => w.reduce((s, wi, i) => s + wi * (x[i] as number), B[c] as number));
// Points within +-4 in the range [-100, 100]: no step ever reaches the box.
const wide = affine(W, B, [-100, 100]);
const X = Array.from({ length: 8 }, (_, k) => Array.from({ length: D }, (_, i) => 4 * Math.sin(1.1 * k + 0.37 * k * i + 0.5 * i)));
const Y = X.map((x) => argmax(logits(x)));

/** Distance (pixel values) from x to the boundary between y and class c of the affine model, in `norm`. */
function boundaryDistance(x: number[], y: number, c: number, norm: NormName): number {
  const z = logits(x);
  const w = (W[c] as number[]).map((v, i) => v - ((W[y] as number[])[i] as number));
  return ((z[y] as number) - (z[c] as number)) / dualOf(w, norm) / wide.pixelScale;
}
function nearest(x: number[], y: number, norm: NormName): { d: number; c: number } {
  let best = { d: Number.POSITIVE_INFINITY, c: -1 };
  for (let c = 0; c < C; c++) {
    if (c === y) continue;
    const d = boundaryDistance(x, y, c, norm);
    if (d < best.d) best = { d, c };
  }
  return best;
}
/** The second most likely class: FAB-T's first target. */
const secondClass = (x: number[]): number => {
  const z = logits(x);
  return [...z.keys()].sort((i, j) => (z[j] as number) - (z[i] as number))[1] as number;
};

for (const norm of NORMS) {
  test(`FAB ${norm} on an affine model far from the box finds the minimal distance within 1%`, () => {
    scope(() => {
      let last = 0;
      const found = fab(wide, batch(X), { y: labels(Y), norm, onProgress: (p) => (last = p.step) });
      assert.equal(last, 100);
      const adv = rows(found.adversarial);
      X.forEach((x, k) => {
        const { d } = nearest(x, Y[k] as number, norm);
        const got = found.norms[k] as number;
        assert.ok(got >= d * (1 - 1e-9) && got <= 1.01 * d, `image ${k}: ${got} vs minimal ${d}`);
        const delta = (adv[k] as number[]).map((v, i) => v - (x[i] as number));
        assert.ok(Math.abs(sizeOf(delta, norm) / wide.pixelScale - got) < 1e-9 * got);
        assert.notEqual(argmax(logits(adv[k] as number[])), Y[k]);
      });
    });
  });

  test(`FAB-T ${norm}: towards its first target within 1% of that boundary; with the right target within 1% of the minimum`, () => {
    scope(() => {
      const y = labels(Y);
      const first = fabTargeted(wide, batch(X), { y, norm, targets: 1 });
      let right = 0;
      X.forEach((x, k) => {
        const { d, c } = nearest(x, Y[k] as number, norm);
        const dt = boundaryDistance(x, Y[k] as number, secondClass(x), norm);
        const got = first.norms[k] as number;
        assert.ok(got >= d * (1 - 1e-9) && got <= 1.01 * dt, `image ${k}: ${got}, minimal ${d}, to the target ${dt}`);
        if (c === secondClass(x)) {
          right++;
          assert.ok(got <= 1.01 * d, `image ${k}: ${got} vs minimal ${d}`);
        }
      });
      assert.ok(right >= 2, `only ${right} images have the nearest class as first target`);
      // With eps 1% above the minimum, an image still unbroken goes on to the next target until the right one breaks it.
      const eps = X.map((x, k) => 1.01 * nearest(x, Y[k] as number, norm).d);
      const steps: number[] = [];
      const all = fabTargeted(wide, batch(X), { y, norm, eps, onProgress: (p) => steps.push(p.active) });
      assert.equal(steps.length > 100, true, 'some image needs a second target');
      X.forEach((x, k) => {
        const { d } = nearest(x, Y[k] as number, norm);
        const got = all.norms[k] as number;
        assert.ok(got >= d * (1 - 1e-9) && got <= 1.01 * d, `image ${k}: ${got} vs minimal ${d}`);
      });
    });
  });
}

// ---- the box binds: a two-class affine model on [0, 1] ----
test('FAB where the box binds: the minimal distance to the other class inside the box, within 1%, in every norm', () => {
  scope(() => {
    const w2 = [W[0] as number[], W[1] as number[]];
    const b2 = [5, 0];
    const model = affine(w2, b2, [0, 1]);
    const v = (w2[1] as number[]).map((a, i) => a - ((w2[0] as number[])[i] as number));
    // Coordinates where the step to class 1 would go are near their box edge; the others are mid-range.
    const xs = [0, 1, 2].map((k) => v.map((vi, i) => (i % 3 === k % 3 ? (vi > 0 ? 0.97 : 0.03) : 0.45 + 0.1 * Math.sin(i + k))));
    const z = (x: number[]): number[] => w2.map((w, c) => w.reduce((s, wi, i) => s + wi * (x[i] as number), b2[c] as number));
    xs.forEach((x) => assert.equal(argmax(z(x)), 0));
    for (const norm of NORMS) {
      const found = fab(model, batch(xs), { y: labels([0, 0, 0]), norm });
      xs.forEach((x, k) => {
        const gap = (z(x)[0] as number) - (z(x)[1] as number);
        const exact = sizeOf(boxProjection(x, v, gap, 0, 1, norm), norm) * 255;
        const free = (gap / dualOf(v, norm)) * 255;
        assert.ok(exact > 1.05 * free, `${norm} image ${k}: the box does not bind (${exact} vs ${free})`);
        const got = found.norms[k] as number;
        assert.ok(got >= exact * (1 - 1e-9) && got <= 1.01 * exact, `${norm} image ${k}: ${got} vs minimal ${exact}`);
      });
    }
  });
});

// ---- properties on a small nonlinear model over [0, 1] ----
const mlp = mlpFixture();
const { net, X: XN, x: xn, Y: YN } = mlp;

for (const norm of NORMS) {
  test(`FAB ${norm}: within the range, misclassified images size 0 and clean, sizes measured on the images, seeded repeats bit for bit`, () => {
    scope(() => {
      for (const search of [fab, fabTargeted]) {
        const opts = { y: labels(YN), norm, restarts: 2, steps: 30, generator: new Generator(11) };
        const found = search(net, xn, opts);
        checkMinimalResult(found, mlp, norm);
        const adv = rows(found.adversarial);
        assert.ok(Array.from(found.norms).slice(1).every((n) => Number.isFinite(n) && n > 0), 'every image must be fooled');
        const again = search(net, xn, { ...opts, generator: new Generator(11) });
        assert.deepEqual(rows(again.adversarial), adv);
        assert.deepEqual(Array.from(again.norms), Array.from(found.norms));
      }
    });
  });
}

test('FAB fails where the box stops it: size Infinity and the clean image', () => {
  scope(() => {
    // Class 0 wins everywhere in [0, 1].
    const stuck = affine(W.slice(0, 4), [60, 0, 0, 0], [0, 1]);
    const xs = batch(XN.slice(0, 3));
    for (const search of [fab, fabTargeted]) {
      const found = search(stuck, xs, { y: labels([0, 0, 1]), steps: 5 });
      assert.deepEqual(Array.from(found.norms), [Infinity, Infinity, 0]);
      assert.deepEqual(rows(found.adversarial), XN.slice(0, 3));
    }
  });
});

test('early exit between runs never changes a broken image\'s result (restarts and targets)', () => {
  scope(() => {
    const y = labels(YN);
    const plain = fab(net, xn, { y, norm: 'l2', steps: 20 });
    // eps between the sizes: some images are broken after the first run, the others get more runs.
    const sorted = Array.from(plain.norms).filter((n) => n > 0).sort((a, b) => a - b);
    const eps = sorted[Math.floor(sorted.length / 2)] as number;
    for (const [search, targets] of [[fab, undefined], [fabTargeted, 3]] as const) {
      const active: number[] = [];
      const opts = { y, norm: 'l2' as const, steps: 20, restarts: 3, eps, targets };
      const on = search(net, xn, { ...opts, generator: new Generator(4), onProgress: (p) => active.push(p.active) });
      const off = search(net, xn, { ...opts, generator: new Generator(4), earlyExit: false });
      assert.ok(new Set(active).size > 1, `active counts ${[...new Set(active)]}`);
      assert.deepEqual(Array.from(off.norms), Array.from(on.norms));
      assert.deepEqual(rows(off.adversarial), rows(on.adversarial));
    }
  });
});

test('the final search only shortens the perturbation and stays adversarial', () => {
  scope(() => {
    const y = labels(YN);
    for (const norm of NORMS) {
      const base = fab(net, xn, { y, norm, steps: 10 });
      const searched = fab(net, xn, { y, norm, steps: 10, finalSearch: 3 });
      const pred = predictions(net, searched.adversarial);
      let shorter = 0;
      Array.from(searched.norms).forEach((n, k) => {
        const b = base.norms[k] as number;
        assert.ok(n <= b * (1 + 1e-12), `${norm} image ${k}: ${n} after the final search, ${b} before`);
        if (n < b * (1 - 1e-6)) shorter++;
        if (k > 0) assert.notEqual(pred[k], YN[k]);
      });
      assert.ok(shorter > 0, `${norm}: the final search shortened nothing`);
    }
  });
});

test('run() keeps each image whose perturbation fits within its own eps', () => {
  scope(() => {
    const y = labels(YN);
    const found = fab(net, xn, { y, norm: 'linf', steps: 30 });
    const sizes = Array.from(found.norms);
    // Just above the size for even images, just below for odd ones (image 0 gets 3).
    const eps = sizes.map((n, k) => (n > 0 ? (k % 2 === 0 ? n * 1.001 : n * 0.999) : 3));
    const out = rows(FAB.run(net, xn, { eps, y, norm: 'linf', steps: 30 }));
    const adv = rows(found.adversarial);
    out.forEach((r, k) => assert.deepEqual(r, k > 0 && k % 2 === 0 ? adv[k] : XN[k], `image ${k}`));
    // FAB-T goes on to further targets for the images not broken within eps: whatever it returns fits.
    const outT = rows(FAB_T.run(net, xn, { eps, y, norm: 'linf', steps: 30 }));
    const predT = predictions(net, batch(outT));
    outT.forEach((r, k) => {
      const size = linf(r.map((v, i) => v - ((XN[k] as number[])[i] as number))) * 255;
      assert.ok(size <= (eps[k] as number) * (1 + 1e-6), `image ${k}: ${size} > eps ${eps[k]}`);
      if (size > 0) assert.notEqual(predT[k], YN[k]);
    });
    assert.deepEqual(rows(FAB.run(net, xn, { eps: 0, y })), XN);
    assert.deepEqual(rows(FAB_T.run(net, xn, { eps: 0, y })), XN);
    assert.equal(FAB.minimal, fab);
    assert.equal(FAB_T.minimal, fabTargeted);
    assert.deepEqual([FAB.name, FAB.kind, FAB.label, [...FAB.norms], [...FAB.options]], ['fab', 'minimal', 'true', ['linf', 'l2', 'l1'], ['steps', 'restarts', 'norm']]);
    assert.deepEqual([FAB_T.name, FAB_T.kind, FAB_T.label, [...FAB_T.options]], ['fab-t', 'minimal', 'targets', ['steps', 'restarts', 'targets', 'norm']]);
    assert.deepEqual(FAB_T.defaults, { steps: 100, restarts: 1, targets: 9 });
  });
});

test('FAB: bad options give errors that name them', () => {
  scope(() => {
    const y = labels(YN);
    assert.throws(() => fab(net, xn, {}), /fab needs the true labels y/);
    assert.throws(() => fabTargeted(net, xn, {}), /fab-t needs the true labels y/);
    assert.throws(() => fab(net, xn, { y, steps: 0 }), /steps must be a positive integer, got 0/);
    assert.throws(() => fab(net, xn, { y, steps: 1.5 }), /steps must be a positive integer, got 1.5/);
    assert.throws(() => fab(net, xn, { y, restarts: 0 }), /restarts must be a positive integer, got 0/);
    assert.throws(() => fabTargeted(net, xn, { y, targets: -1 }), /targets must be a positive integer, got -1/);
    assert.throws(() => fab(net, xn, { y, targets: 3 }), /targets applies to the targeted FAB \(fab-t\) only/);
    assert.throws(() => fab(net, xn, { y, norm: 'l0' as NormName }), /fab: norm must be 'linf', 'l2' or 'l1', got the string 'l0'/);
    assert.throws(() => fab(net, xn, { y, alphaMax: 2 }), /alphaMax must be a number in \[0, 1\], got 2/);
    assert.throws(() => fab(net, xn, { y, eta: 0.5 }), /eta must be a finite number >= 1, got 0.5/);
    assert.throws(() => fab(net, xn, { y, beta: 0 }), /beta must be a number in \(0, 1\], got 0/);
    assert.throws(() => fab(net, xn, { y, finalSearch: -1 }), /finalSearch must be a non-negative integer, got -1/);
    assert.throws(() => fab(net, xn, { y, eps: [1, 2] }), /eps has 2 values for a batch of 10 images/);
    assert.throws(() => fab(net, xn, { y: labels([0, 1]) }), /y must have shape \[10\]/);
    assert.throws(() => FAB.run(net, xn, { eps: -1, y }), /eps must be .* got -1/);
    assert.throws(() => FAB_T.run(net, xn, { eps: 1, y, steps: -2 }), /steps must be a positive integer, got -2/);
  });
});
