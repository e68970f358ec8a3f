/**
 * A linear softmax classifier whose input gradients are known in closed form,
 * with a plain-JavaScript float64 implementation of the formulas the attack
 * tests compare against (independent of src/attacks).
 */
import { type Tensor, noGrad, scope, tensor } from '../../src/index.js';
import assert from 'node:assert/strict';
import type { MinimalResult } from '../../src/attacks/index.js';
import { Activation, Flatten, Linear, Sequential } from '../../src/nn/index.js';
import { Classifier } from '../../src/models/index.js';

export const SHAPE: [number, number, number] = [3, 2, 2];
export const D = 12;
export const C = 4;

/** W [C, D] and b [C], fixed and irregular so no gradient entry is zero. */
export const W: number[][] = Array.from({ length: C }, (_, c) => Array.from({ length: D }, (_, i) => Math.sin(1.3 * c + 0.7 * i + 0.2) * (1 + 0.1 * i)));
export const B: number[] = [0.1, -0.2, 0.3, 0.05];

export function linearClassifier(inputRange: [number, number] = [0, 1]): Classifier {
  const linear = new Linear(D, C);
  const module = new Sequential(new Flatten(), linear);
  // float64 parameters (converted before loading, so W is not rounded to float32): comparisons hold to 1e-12.
  module.toDtype('float64');
  module.loadStateDict({ '1.weight': tensor(W, { dtype: 'float64' }), '1.bias': tensor(B, { dtype: 'float64' }) });
  return new Classifier(module, { classes: C, inputShape: SHAPE, inputRange, memoryFormat: 'contiguous' });
}

/** A batch of images with every value in [0.3, 0.7] (so steps of a few pixels never clip). */
export function interiorBatch(n: number): number[][] {
  return Array.from({ length: n }, (_, k) => Array.from({ length: D }, (_, i) => 0.5 + 0.2 * Math.sin(2.1 * k + 1.7 * i)));
}

export const toTensor = (xs: number[][]): Tensor => tensor(xs, { dtype: 'float64' }).reshape([xs.length, ...SHAPE]);
export const rows = (t: Tensor): number[][] => {
  const flat = Array.from(t.to('float64').dataSync() as Float64Array);
  const n = t.shape[0] as number;
  return Array.from({ length: n }, (_, k) => flat.slice(k * D, (k + 1) * D));
};

/** A small nonlinear float64 classifier (12 -> 8 tanh -> 4) over [0, 1], fixed irregular weights: attack properties beyond the affine case. */
export const MLP_CLASSES = 4;
export function tanhMlp(): Classifier {
  const hidden = 8;
  const module = new Sequential(new Flatten(), new Linear(D, hidden), new Activation('tanh'), new Linear(hidden, MLP_CLASSES));
  module.toDtype('float64');
  const w1 = Array.from({ length: hidden }, (_, h) => Array.from({ length: D }, (_, i) => 1.5 * Math.sin(0.9 * h + 1.9 * i + 0.3)));
  const w2 = Array.from({ length: MLP_CLASSES }, (_, c) => Array.from({ length: hidden }, (_, h) => 2 * Math.cos(1.7 * c + 0.8 * h)));
  module.loadStateDict({
    '1.weight': tensor(w1, { dtype: 'float64' }), '1.bias': tensor(Array.from({ length: hidden }, (_, h) => 0.2 * Math.sin(h)), { dtype: 'float64' }),
    '3.weight': tensor(w2, { dtype: 'float64' }), '3.bias': tensor([0.1, -0.1, 0.2, 0], { dtype: 'float64' }),
  });
  return new Classifier(module, { classes: MLP_CLASSES, inputShape: SHAPE, inputRange: [0, 1], memoryFormat: 'contiguous' });
}

/** The model's predicted class per image. */
export const predictions = (model: Classifier, t: Tensor): number[] => scope(() => noGrad(() => model.logits(t).argmax(1)).toArray() as number[]);

/** The tanh MLP with 10 images across [0, 1] (0 and 1 included); image 0 is labelled wrongly (already misclassified), the others with the MLP's prediction. */
export function mlpFixture(): { net: Classifier; X: number[][]; x: Tensor; Y: number[] } {
  const net = tanhMlp();
  const X = Array.from({ length: 10 }, (_, k) => Array.from({ length: D }, (_, i) => [0, 1, 0.5, 0.1, 0.9, 0.3, 0.7][(3 * k + i) % 7] as number));
  const x = toTensor(X);
  const Y = predictions(net, x).map((p, k) => (k === 0 ? (p + 1) % MLP_CLASSES : p));
  return { net, X, x, Y };
}

/**
 * What every minimal-perturbation result on {@link mlpFixture} must satisfy:
 * inside [0, 1]; image 0 size 0 and returned clean; each found size equal to
 * the perturbation measured on the image (pixel units, in `norm`) with the
 * image misclassified; each failed image returned clean.
 */
export function checkMinimalResult(found: MinimalResult, f: ReturnType<typeof mlpFixture>, norm: 'linf' | 'l2' | 'l1'): void {
  const adv = rows(found.adversarial);
  adv.flat().forEach((v) => assert.ok(v >= 0 && v <= 1, `${v} is outside [0, 1]`));
  assert.equal(found.norms[0], 0);
  assert.deepEqual(adv[0], f.X[0]);
  const predicted = predictions(f.net, found.adversarial);
  adv.forEach((r, k) => {
    if (k === 0) return;
    const n = found.norms[k] as number;
    const delta = r.map((v, i) => v - ((f.X[k] as number[])[i] as number));
    if (Number.isFinite(n)) {
      const size = norm === 'linf' ? Math.max(...delta.map(Math.abs)) : norm === 'l2' ? Math.hypot(...delta) : delta.reduce((s, v) => s + Math.abs(v), 0);
      assert.ok(Math.abs(size * 255 - n) < 1e-9 * Math.max(1, n), `image ${k}: reported ${n}, measured ${size * 255}`);
      assert.notEqual(predicted[k], f.Y[k], `image ${k} has a size but is not fooled`);
    } else {
      assert.deepEqual(r, f.X[k]);
    }
  });
}

// ---- the analytic model ----
export const logits = (x: number[]): number[] => W.map((w, c) => w.reduce((s, wi, i) => s + wi * (x[i] as number), B[c] as number));
export function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
/** W^T v: the input gradient for a logit-space gradient v. */
export const backLogits = (v: number[]): number[] => Array.from({ length: D }, (_, i) => W.reduce((s, w, c) => s + (w[i] as number) * (v[c] as number), 0));
/** d CE(x, y) / dx = W^T (softmax(z) - onehot(y)). */
export const ceGrad = (x: number[], y: number): number[] => backLogits(softmax(logits(x)).map((p, c) => p - (c === y ? 1 : 0)));
/** d H(softmax(z)) / dx, with dH/dz_j = -p_j (log p_j + H). */
export function entropyGrad(x: number[]): number[] {
  const p = softmax(logits(x));
  const h = -p.reduce((s, q) => s + q * Math.log(q), 0);
  return backLogits(p.map((q) => -q * (Math.log(q) + h)));
}
export const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
export const argmin = (v: number[]): number => v.indexOf(Math.min(...v));
export const sign = (v: number[]): number[] => v.map(Math.sign);
export const norm = (v: number[], p: 1 | 2): number => (p === 1 ? v.reduce((s, a) => s + Math.abs(a), 0) : Math.sqrt(v.reduce((s, a) => s + a * a, 0)));
export const clip = (v: number[], lo = 0, hi = 1): number[] => v.map((a) => Math.min(hi, Math.max(lo, a)));
export const axpy = (x: number[], a: number, d: number[]): number[] => x.map((v, i) => v + a * (d[i] as number));
/** Clip_{X, eps} in L-inf, then the range. */
export const projectLinf = (x: number[], adv: number[], eps: number): number[] =>
  clip(adv.map((v, i) => Math.min((x[i] as number) + eps, Math.max((x[i] as number) - eps, v))));
