/** Properties every method must have: eps ball, valid range, eps = 0, targets, errors, many-eps grid. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, noGrad, scope, tensor } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { C, D, SHAPE, linearClassifier, rows, toTensor } from './linear-model.js';

const model = linearClassifier();
// Values across the whole range, 0 and 1 included, so clipping is exercised.
const X = Array.from({ length: 4 }, (_, k) => Array.from({ length: D }, (_, i) => [0, 1, 0.5, 0.02, 0.98, 0.3][(k + i) % 6] as number));
const x = toTensor(X);
const y = tensor(new BigInt64Array([1n, 3n, 0n, 2n]));
const run = (name: A.MethodName, eps: A.Eps, extra: Partial<A.OneStepOptions & A.IterativeOptions> = {}): Tensor =>
  A.attackSpec(name).run(model, x, { eps, y, generator: new Generator(3), ...extra });


for (const name of A.METHOD_NAMES) {
  test(`${name}: perturbation within eps in its norm, output within the range, eps = 0 is the identity`, () => {
    scope(() => {
      const eps = [16, 4, 8, 0];
      const adv = run(name, eps);
      const delta = rows(adv).map((r, k) => r.map((v, i) => v - ((X[k] as number[])[i] as number)));
      rows(adv).flat().forEach((v) => assert.ok(v >= 0 && v <= 1, `${name}: ${v} is outside [0, 1]`));
      delta.forEach((d, k) => {
        const e = (eps[k] as number) / 255;
        const size = name === 'fast-l2' ? Math.hypot(...d) : name === 'fast-l1' ? d.reduce((s, v) => s + Math.abs(v), 0) : Math.max(...d.map(Math.abs));
        // Random normal noise has std eps, truncated at 2 std: its L-inf bound is 2 eps.
        const bound = name === 'random-normal' ? 2 * e : e;
        assert.ok(size <= bound + 1e-12, `${name}: image ${k} moved ${size * 255} pixel values for eps ${eps[k]}`);
        if (eps[k] === 0) assert.ok(d.every((v) => v === 0), `${name}: eps 0 changed image ${k}`);
      });
      const same = run(name, 0);
      assert.deepEqual(rows(same), X.map((r) => r.map((v) => v)), `${name}: eps = 0 must return the input`);
    });
  });
}

const sizeIn = (d: number[], norm: A.Norm): number =>
  norm === 'l2' ? Math.hypot(...d) : norm === 'l1' ? d.reduce((s, v) => s + Math.abs(v), 0) : Math.max(...d.map(Math.abs));

for (const spec of A.attacks()) {
  const norms = spec.options.includes('norm') ? spec.norms : [];
  for (const norm of norms) {
    test(`${spec.name} ${norm}: within eps in ${norm} and within the range`, () => {
      scope(() => {
        const eps = [40, 10, 25, 0];
        const adv = rows(run(spec.name, eps, { norm } as Partial<A.RunOptions>));
        adv.forEach((r, k) => {
          const d = r.map((v, i) => v - ((X[k] as number[])[i] as number));
          assert.ok(r.every((v) => v >= 0 && v <= 1), `${spec.name} ${norm}: image ${k} left [0, 1]`);
          assert.ok(sizeIn(d, norm) <= (eps[k] as number) / 255 + 1e-12, `${spec.name} ${norm}: image ${k} moved ${sizeIn(d, norm) * 255} for eps ${eps[k]}`);
        });
      });
    });
  }
  test(`${spec.name}: seeded runs repeat bit for bit${spec.kind === 'one-step' ? '' : ', and early exit changes no result'}`, () => {
    scope(() => {
      const eps = [40, 10, 25, 6];
      const a = rows(run(spec.name, eps));
      assert.deepEqual(rows(run(spec.name, eps)), a, `${spec.name}: a second run with the same seed differs`);
      if (spec.kind !== 'one-step') assert.deepEqual(rows(run(spec.name, eps, { earlyExit: false } as Partial<A.RunOptions>)), a, `${spec.name}: earlyExit: false changed a result`);
    });
  });
}

test('FGSM, step l.l. and random sign move every unclipped pixel by exactly eps', () => {
  scope(() => {
    for (const name of ['fgsm', 'step-ll', 'fast-predicted', 'random-sign'] as const) {
      const adv = rows(run(name, 8));
      adv.forEach((r, k) => r.forEach((v, i) => {
        const x0 = (X[k] as number[])[i] as number;
        if (x0 > 0.04 && x0 < 0.96) assert.ok(Math.abs(Math.abs(v - x0) - 8 / 255) < 1e-12, `${name}: pixel moved ${Math.abs(v - x0) * 255}`);
      }));
    }
    // fast gradient L2 on interior images: ||delta||_2 = eps exactly.
    const interior = toTensor(X.map((r) => r.map((v) => 0.4 + 0.2 * v)));
    const adv = rows(A.fastGradientL2(model, interior, { eps: 4, y }));
    adv.forEach((r, k) => {
      const d = r.map((v, i) => v - (0.4 + 0.2 * ((X[k] as number[])[i] as number)));
      assert.ok(Math.abs(Math.hypot(...d) - 4 / 255) < 1e-12);
    });
  });
});

test('targeted methods raise the probability of their target', () => {
  scope(() => {
    const probs = (t: Tensor): Tensor => noGrad(() => model.logits(t).softmax(1));
    const ll = A.chooseLabels(model, x, 'leastLikely');
    const before = probs(x).gather(1, ll.reshape([-1, 1]));
    for (const name of ['step-ll', 'iter-ll'] as const) {
      const after = probs(run(name, 8)).gather(1, ll.reshape([-1, 1]));
      assert.ok(after.sub(before).min().item() > 0, `${name} lowered p(y_LL)`);
    }
    const target = A.chooseLabels(model, x, 'random', { generator: new Generator(3) });
    const p0 = probs(x).gather(1, target.reshape([-1, 1]));
    const p1 = probs(run('step-rnd', 8)).gather(1, target.reshape([-1, 1]));
    assert.ok(p1.sub(p0).min().item() > 0, 'step-rnd lowered p(target)');
  });
});

test('label helper: true, predicted, least likely, random other class, explicit', () => {
  scope(() => {
    const logits = noGrad(() => model.logits(x));
    assert.deepEqual(A.chooseLabels(model, x, 'predicted').toArray(), logits.argmax(1).toArray());
    assert.deepEqual(A.chooseLabels(model, x, 'leastLikely').toArray(), logits.argmin(1).toArray());
    assert.deepEqual(A.chooseLabels(model, x, 'true', { y }).toArray(), y.toArray());
    assert.deepEqual(A.chooseLabels(model, x, y).toArray(), y.toArray());
    // Random targets are never the prediction and cover every other class.
    const big = toTensor(Array.from({ length: 400 }, () => X[0] as number[]));
    const pred = noGrad(() => model.logits(big.narrow(0, 0, 1)).argmax(1).item());
    const r = A.chooseLabels(model, big, 'random', { generator: new Generator(9) }).toArray() as number[];
    assert.ok(r.every((c) => c !== pred));
    assert.equal(new Set(r).size, C - 1);
  });
});

test('bad arguments give errors that name the argument', () => {
  scope(() => {
    assert.throws(() => A.fgsm(model, x, { eps: -1, y }), /eps must be a number in \[0, 255\] pixel values, got -1/);
    assert.throws(() => A.fgsm(model, x, { eps: NaN, y }), /eps must be a number .* got NaN/);
    assert.throws(() => A.fgsm(model, x, { eps: 300, y }), /eps must be .* got 300/);
    assert.throws(() => A.fgsm(model, x, { eps: [1, 2], y }), /eps has 2 values for a batch of 4 images/);
    assert.throws(() => A.fgsm(model, x, { eps: [1, 2, NaN, 4], y }), /eps\[2\] must be/);
    assert.throws(() => A.fgsm(model, tensor([[1, 2]]), { eps: 1, y }), /x must have shape \[N, 3, 2, 2\], got \[1,2\]/);
    assert.throws(() => A.fgsm(model, x, { eps: 1, y: tensor(new BigInt64Array([0n, 1n, 2n, 9n])) }), /y holds class 9, outside 0..3/);
    assert.throws(() => A.fgsm(model, x, { eps: 1, y: tensor([0, 1, 2, 3]) }), /y must be an int64 tensor/);
    assert.throws(() => A.fgsm(model, x, { eps: 1, y: tensor(new BigInt64Array([0n, 1n])) }), /y must have shape \[4\]/);
    assert.throws(() => A.fgsm(model, x, { eps: 1 }), /label source 'true' needs the true labels: pass y/);
    assert.throws(() => A.attackSpec('no-such-attack'), /unknown attack method 'no-such-attack': expected one of fgsm, /);
    assert.throws(() => A.basicIter(model, x, { eps: 4, y, steps: 1.5 }), /steps must be a non-negative integer, got 1.5/);
    assert.throws(() => A.pgd(model, x, { eps: 4, y, alpha: -1 }), /alpha must be a non-negative number, got -1/);
    assert.throws(() => A.oneStepGrid(model, x, [A.FGSM, A.FGSM], { eps: [2], y }), /method 'fgsm' is listed twice/);
    assert.throws(() => A.oneStepGrid(model, x, [A.FGSM], { eps: [], y }), /eps must be a non-empty list/);
    assert.throws(() => A.oneStepGrid(model, x, [A.FGSM], { eps: [2, -3], y }), /eps\[1\] must be a number/);
  });
});

test('the many-eps grid returns the same tensors as one call per method and eps, from fewer passes', () => {
  scope(() => {
    const methods = A.attacks().flatMap((a) => (a.oneStep ? [a.oneStep] : []));
    const epsList = [2, 4, [8, 16, 1, 0], 16];
    const grid = A.oneStepGrid(model, x, methods, { eps: epsList, y, seed: 42 });
    for (const m of methods) {
      const got = grid.get(m.name) as Tensor[];
      assert.equal(got.length, epsList.length);
      epsList.forEach((eps, i) => {
        const single = A.runOneStep(model, x, m, { eps, y, generator: new Generator(42) });
        assert.deepEqual(rows(got[i] as Tensor), rows(single), `${m.name} at eps ${JSON.stringify(eps)}`);
      });
    }
    // Count forward passes: FGSM, L2 and L1 share one gradient; step l.l. needs its labels and one gradient.
    // At fp32 the labels come from the gradient's own forward pass; under bf16 autocast from a separate
    // fp32 pass (so the counts are pinned per precision, not left to what 'auto' means on this CPU).
    let calls = 0;
    const forward = model.module.forward.bind(model.module);
    model.module.forward = (t: Tensor) => {
      calls++;
      return forward(t);
    };
    const shared = [A.FGSM, A.FAST_GRADIENT_L2, A.FAST_GRADIENT_L1, A.STEP_LL];
    try {
      for (const [precision, gridPasses, loopPasses] of [['fp32', 2, 16], ['bf16-autocast', 3, 20]] as const) {
        calls = 0;
        A.oneStepGrid(model, x, shared, { eps: [2, 4, 8, 16], y, precision });
        assert.equal(calls, gridPasses, `grid passes at ${precision}`);
        calls = 0;
        for (const eps of [2, 4, 8, 16]) for (const m of shared) A.runOneStep(model, x, m, { eps, y, precision });
        assert.equal(calls, loopPasses, `per-eps passes at ${precision}`);
      }
    } finally {
      model.module.forward = forward;
    }
  });
});

test('attacks run in inference mode by default and restore the mode; training: true keeps batch statistics', () => {
  model.module.train();
  scope(() => void A.fgsm(model, x, { eps: 2, y }));
  assert.ok(model.module.modules().every((m) => m.training));
  let seen: boolean | undefined;
  const forward = model.module.forward.bind(model.module);
  model.module.forward = (t: Tensor) => {
    seen = model.module.training;
    return forward(t);
  };
  scope(() => void A.fgsm(model, x, { eps: 2, y }));
  assert.equal(seen, false);
  scope(() => void A.fgsm(model, x, { eps: 2, y, training: true }));
  assert.equal(seen, true);
  model.module.forward = forward;
  model.module.eval();
  assert.deepEqual(SHAPE, [3, 2, 2]);
});

test('attacks work when called under noGrad() and return tensors outside any graph', () => {
  scope(() => {
    const inside = noGrad(() => A.fgsm(model, x, { eps: 4, y }));
    const outside = A.fgsm(model, x, { eps: 4, y });
    assert.deepEqual(rows(inside), rows(outside));
    assert.equal(outside.requiresGrad, false);
    const it = noGrad(() => A.basicIter(model, x, { eps: 4, y, steps: 2 }));
    assert.equal(it.requiresGrad, false);
  });
});
