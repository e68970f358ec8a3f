import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { type Tensor, noGrad, scope, tensor } from '../../src/index.js';
import { Adam, type Optimizer, RMSProp, SGD, constant, cosineDecay, cyclic, exponentialDecay, stepDecay } from '../../src/optim/index.js';
import { hasTorch, runPython } from '../helpers/python.js';

const SHAPES = [[3, 4], [5]];
const initial = (k: number, n: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + k));
const gradient = (k: number, n: number, t: number): number[] =>
  Array.from({ length: n }, (_, i) => Math.cos(0.7 * i + 0.3 * t + k) * (1 + 0.1 * t));

interface Case {
  name: string;
  kind: 'SGD' | 'RMSProp' | 'Adam';
  lr: number;
  opts: Record<string, unknown>;
  steps: number;
  lrAt?: number[];
}

const CASES: Case[] = [
  { name: 'sgd', kind: 'SGD', lr: 0.1, opts: {}, steps: 5 },
  { name: 'sgd-momentum', kind: 'SGD', lr: 0.1, opts: { momentum: 0.9 }, steps: 6 },
  { name: 'sgd-nesterov', kind: 'SGD', lr: 0.05, opts: { momentum: 0.9, nesterov: true }, steps: 6 },
  { name: 'sgd-decay-dampening', kind: 'SGD', lr: 0.1, opts: { momentum: 0.8, dampening: 0.1, weightDecay: 0.01 }, steps: 6 },
  { name: 'rmsprop', kind: 'RMSProp', lr: 0.01, opts: {}, steps: 6 },
  { name: 'rmsprop-momentum-centered', kind: 'RMSProp', lr: 0.01, opts: { momentum: 0.9, centered: true, weightDecay: 0.001 }, steps: 6 },
  { name: 'rmsprop-tf', kind: 'RMSProp', lr: 0.045, opts: { variant: 'tensorflow' }, steps: 6, lrAt: [0.045, 0.045, 0.03, 0.03, 0.02, 0.02] },
  { name: 'rmsprop-tf-eps', kind: 'RMSProp', lr: 0.1, opts: { variant: 'tensorflow', alpha: 0.95, eps: 1e-3, momentum: 0.5 }, steps: 5 },
  { name: 'adam', kind: 'Adam', lr: 0.01, opts: {}, steps: 6 },
  { name: 'adam-decay', kind: 'Adam', lr: 0.02, opts: { betas: [0.8, 0.99], weightDecay: 0.01, eps: 1e-6 }, steps: 6 },
];

function runAdvml(c: Case): number[][] {
  const params = SHAPES.map((s, k) => tensor(initial(k, s.reduce((a, b) => a * b, 1)), { dtype: 'float64' }).reshape(s).keep().requiresGrad_());
  let opt: Optimizer;
  if (c.kind === 'SGD') opt = new SGD(params, c.lr, c.opts);
  else if (c.kind === 'RMSProp') opt = new RMSProp(params, c.lr, c.opts);
  else opt = new Adam(params, c.lr, c.opts);
  for (let t = 0; t < c.steps; t++) {
    opt.lr = c.lrAt?.[t] ?? c.lr;
    scope(() => {
      params.forEach((p, k) => {
        p.grad = tensor(gradient(k, p.size, t), { dtype: 'float64' }).reshape(p.shape);
      });
    });
    opt.step();
  }
  const out = params.map((p) => Array.from(p.detach().dataSync() as Float64Array));
  opt.dispose();
  for (const p of params) p.dispose();
  return out;
}

test('optimizers match torch.optim (and TensorFlow RMSProp) step for step', { skip: !hasTorch() && 'python3-torch missing' }, () => {
  const script = fileURLToPath(new URL('./optim_ref.py', import.meta.url));
  const reference = JSON.parse(runPython(script, [], JSON.stringify({ cases: CASES }))) as Record<string, number[][]>;
  for (const c of CASES) {
    const ours = runAdvml(c);
    const theirs = reference[c.name];
    assert.ok(theirs, `reference has no result for ${c.name}`);
    ours.forEach((values, k) => {
      values.forEach((v, i) => {
        const r = (theirs[k] as number[])[i] as number;
        assert.ok(Math.abs(v - r) <= 1e-10 * (1 + Math.abs(r)), `${c.name} param ${k}[${i}]: advml ${v}, reference ${r}`);
      });
      // The optimizer moved the parameter: the check above is not comparing two untouched tensors.
      assert.notDeepEqual(values, initial(k, values.length));
    });
  }
});

test('SGD: one step by hand', () => {
  const p = tensor([1, 2], { dtype: 'float64' }).keep().requiresGrad_();
  const opt = new SGD([p], 0.5, { weightDecay: 0.1 });
  p.grad = tensor([0.2, -0.4], { dtype: 'float64' });
  opt.step();
  // p - lr (g + wd p) = [1 - 0.5 (0.2 + 0.1), 2 - 0.5 (-0.4 + 0.2)]
  assert.deepEqual(Array.from(p.detach().dataSync() as Float64Array).map((v) => +v.toFixed(12)), [0.85, 2.1]);
  p.dispose();
});

test('parameters without a gradient are left alone, zeroGrad clears', () => {
  const a = tensor([1, 1]).keep().requiresGrad_();
  const b = tensor([1, 1]).keep().requiresGrad_();
  const opt = new SGD([a, b], 1);
  a.grad = tensor([1, 2]);
  opt.step();
  assert.deepEqual(a.detach().toArray(), [0, -1]);
  assert.deepEqual(b.detach().toArray(), [1, 1]);
  opt.zeroGrad();
  assert.equal(a.grad, null);
  a.dispose();
  b.dispose();
});

test('optimizer state round-trips through stateDict', () => {
  const make = (): [Tensor, Adam] => {
    const p = tensor([0.5, -0.5, 2]).keep().requiresGrad_();
    return [p, new Adam([p], 0.1)];
  };
  const [p1, o1] = make();
  const [p2, o2] = make();
  for (let t = 0; t < 3; t++) {
    p1.grad = tensor([t, 1, -t]);
    o1.step();
  }
  noGrad(() => p2.copy_(p1));
  o2.loadStateDict(o1.stateDict());
  assert.equal(o2.stepCount, 3);
  p1.grad = tensor([1, 2, 3]);
  p2.grad = tensor([1, 2, 3]);
  o1.step();
  o2.step();
  assert.deepEqual(p1.detach().toArray(), p2.detach().toArray());
  assert.throws(() => new SGD([p1], 0.1).loadStateDict(o1.stateDict()), /state was saved by Adam/);
  o1.dispose();
  o2.dispose();
  p1.dispose();
  p2.dispose();
});

test('bad hyper-parameters are rejected with the name of the argument', () => {
  const p = tensor([1]).keep().requiresGrad_();
  assert.throws(() => new SGD([p], -1), /SGD: learning rate must be a finite number >= 0, got -1/);
  assert.throws(() => new SGD([p], NaN), /learning rate/);
  assert.throws(() => new SGD([p], 0.1, { momentum: 1.5 }), /SGD: momentum must be in \[0, 1\], got 1.5/);
  assert.throws(() => new SGD([p], 0.1, { nesterov: true }), /nesterov needs momentum/);
  assert.throws(() => new RMSProp([p], 0.1, { variant: 'keras' as 'pytorch' }), /variant must be 'pytorch' or 'tensorflow'/);
  assert.throws(() => new Adam([p], 0.1, { betas: [0.9, 2] }), /betas\[1\]/);
  assert.throws(() => new Adam([], 0.1), /no parameters/);
  p.dispose();
});

test('schedules: exponential decay (the paper: 0.045, 0.94 every 2 epochs), step, cosine', () => {
  const stepsPerEpoch = 100;
  const s = exponentialDecay({ initial: 0.045, rate: 0.94, decaySteps: 2 * stepsPerEpoch });
  assert.equal(s(0), 0.045);
  assert.equal(s(199), 0.045);
  assert.ok(Math.abs(s(200) - 0.045 * 0.94) < 1e-15);
  assert.ok(Math.abs(s(1000) - 0.045 * 0.94 ** 5) < 1e-15);
  const smooth = exponentialDecay({ initial: 1, rate: 0.5, decaySteps: 10, staircase: false });
  assert.ok(Math.abs(smooth(5) - Math.SQRT1_2) < 1e-15);
  const st = stepDecay({ initial: 1, gamma: 0.1, stepSize: 30 });
  assert.equal(st(29), 1);
  assert.ok(Math.abs(st(30) - 0.1) < 1e-15);
  const c = cosineDecay({ initial: 1, totalSteps: 100, min: 0.1 });
  assert.equal(c(0), 1);
  assert.ok(Math.abs(c(50) - 0.55) < 1e-12);
  assert.ok(Math.abs(c(100) - 0.1) < 1e-12);
  assert.ok(Math.abs(c(500) - 0.1) < 1e-12);
  assert.equal(constant(0.3)(1234), 0.3);
  assert.throws(() => exponentialDecay({ initial: 0.1, rate: 0.9, decaySteps: 0 }), /decaySteps must be a positive/);
});

test("schedules: fast AT's cyclic triangle, 0 up to the peak at 2/5 of the run and back to 0", () => {
  // Its reference sets the rate of batch i of epoch e to interp(e + (i + 1) / n, [0, 2E/5, E], [0, peak, 0]).
  const c = cyclic({ peak: 5e-3, totalSteps: 100 });
  const near = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-15, `${a} vs ${b}`);
  near(c(0), 5e-3 * 0.01 / 0.4);
  near(c(19), 5e-3 * 0.5);
  near(c(39), 5e-3);
  near(c(69), 5e-3 * 0.5);
  near(c(98), 5e-3 * 0.01 / 0.6);
  near(c(99), 0);
  near(c(150), 0);
  for (let s = 1; s < 100; s++) assert.ok(s <= 39 ? c(s) > c(s - 1) : c(s) < c(s - 1), `monotone on each side of the peak (step ${s})`);
  assert.throws(() => cyclic({ peak: 0, totalSteps: 10 }), /cyclic peak must be a positive/);
  assert.throws(() => cyclic({ peak: 1, totalSteps: 10, peakAt: 1 }), /peakAt must be in \(0, 1\)/);
});
