/**
 * The autograd API: leaf flags, backward and .grad accumulation, grad() with
 * allowUnused, retainGraph, createGraph and gradOutputs, and noGrad/enableGrad.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { enableGrad, grad, isGradEnabled, noGrad, tensor } from '../../src/engine/index.js';
import { assertClose, assertThrowsMatching } from '../helpers/assert.js';

const f64 = (data: number[]): E.Tensor => tensor(data, { dtype: 'float64' });

describe('leaves and graph nodes', () => {
  test('requiresGrad_, isLeaf, gradFn', () => {
    const x = f64([1, 2]);
    assert.equal(x.requiresGrad, false);
    assert.equal(x.requiresGrad_(), x);
    assert.equal(x.requiresGrad, true);
    assert.equal(x.isLeaf, true);
    assert.equal(x.gradFn, null);
    const y = x.mul(2);
    assert.equal(y.requiresGrad, true);
    assert.equal(y.isLeaf, false);
    assert.match(y.gradFn ?? '', /Mul/);
    x.requiresGrad_(false);
    assert.equal(x.requiresGrad, false);
    assert.equal(x.mul(2).requiresGrad, false);
  });

  test('requiresGrad_ on a non-leaf is an error from libtorch', () => {
    const y = f64([1]).requiresGrad_().mul(2);
    assertThrowsMatching(() => y.requiresGrad_(false), /^setRequiresGrad: /, /leaf variables/);
    assert.equal(y.requiresGrad, true);
    // integer tensors cannot require gradients
    assertThrowsMatching(() => tensor([1], { dtype: 'int64' }).requiresGrad_(), /^setRequiresGrad: /, /floating point/);
  });

  test('detach cuts the graph', () => {
    const x = f64([1, 2]).requiresGrad_();
    const d = x.mul(3).detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.gradFn, null);
  });
});

describe('backward', () => {
  test('fills .grad and accumulates over calls; setting null clears it', () => {
    const x = f64([1, -2, 3]).requiresGrad_();
    assert.equal(x.grad, null);
    x.mul(x).sum().backward();
    assertClose(x.grad!, [2, -4, 6]);
    x.mul(x).sum().backward();
    assertClose(x.grad!, [4, -8, 12]);
    x.mul(5).sum().backward();
    assertClose(x.grad!, [9, -3, 17]);
    x.grad = null;
    assert.equal(x.grad, null);
    x.sum().backward();
    assertClose(x.grad!, [1, 1, 1]);
  });

  test('the .grad tensor shares memory with the leaf gradient; zero_ resets in place', () => {
    const x = f64([1, 2]).requiresGrad_();
    x.sum().backward();
    x.grad!.zero_();
    assertClose(x.grad!, [0, 0]);
    x.mul(2).sum().backward();
    assertClose(x.grad!, [2, 2]);
  });

  test('assigning .grad checks dtype and shape, as PyTorch does', () => {
    const x = f64([1, 2]).requiresGrad_();
    assertThrowsMatching(() => { x.grad = f64([1, 2, 3]); }, /^setGrad: /, /different size/);
    assertThrowsMatching(() => { x.grad = tensor([1, 2]); }, /^setGrad: /, /different type/);
    assert.equal(x.grad, null);
    x.grad = f64([0.5, 0.5]);
    x.sum().backward();
    assertClose(x.grad!, [1.5, 1.5]);
  });

  test('a gradient for a non-scalar output', () => {
    const x = f64([1, 2, 3]).requiresGrad_();
    x.square().backward(f64([1, 0.5, -1]));
    assertClose(x.grad!, [2, 2, -6]);
  });

  test('a non-scalar output without a gradient is an error', () => {
    const x = f64([1, 2]).requiresGrad_();
    assertThrowsMatching(() => x.mul(2).backward(), /^backward: /, /scalar outputs/);
  });

  test('retainGraph allows a second backward; without it the second fails', () => {
    const x = f64([0.5, 1]).requiresGrad_();
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    assertClose(x.grad!, [2 * Math.exp(0.5), 2 * Math.exp(1)], { rtol: 1e-12 });
    assertThrowsMatching(() => y.backward(), /^backward: /, /second time/);
  });

  test('createGraph gives a differentiable .grad and retains the graph', () => {
    const x = f64([2]).requiresGrad_();
    const y = x.pow(3).sum();
    y.backward(undefined, { createGraph: true });
    const g = x.grad!;
    assertClose(g, [12]);
    assert.equal(g.requiresGrad, true);
    const [g2] = grad(g.sum(), x);
    assertClose(g2!, [12]); // d(3x^2)/dx = 6x = 12
    // the graph of y was retained, as PyTorch does when create_graph is set
    y.backward();
  });
});

describe('grad()', () => {
  test('gradients w.r.t. the inputs only; parameters keep .grad untouched', () => {
    const x = f64([1, 2, 3]).requiresGrad_();
    const w = f64([0.5, -1, 2]).requiresGrad_();
    const loss = x.mul(w).sum().add(w.square().sum());
    const [gx] = grad(loss, x);
    assertClose(gx!, [0.5, -1, 2]);
    assert.equal(w.grad, null);
    assert.equal(x.grad, null);
    // an existing .grad is not changed either
    w.grad = f64([7, 7, 7]);
    const [gx2] = grad(x.mul(w).sum(), [x]);
    assertClose(gx2!, [0.5, -1, 2]);
    assertClose(w.grad!, [7, 7, 7]);
  });

  test('several outputs and inputs', () => {
    const a = f64([1, 2]).requiresGrad_();
    const b = f64([3]).requiresGrad_();
    const [ga, gb] = grad([a.sum().mul(b), b.square().sum()], [a, b]);
    assertClose(ga!, [3, 3]);
    assertClose(gb!, [3 + 6]);
  });

  test('gradOutputs: a vector-Jacobian product', () => {
    const x = f64([1, 2]).requiresGrad_();
    const y = x.square().mul(f64([1, 3]));
    const [g] = grad(y, x, { gradOutputs: [f64([10, 1])] });
    assertClose(g!, [20, 12]);
  });

  test('allowUnused returns null for an input the output does not use', () => {
    const x = f64([1]).requiresGrad_();
    const unused = f64([5]).requiresGrad_();
    const out = grad(x.mul(4).sum(), [x, unused], { allowUnused: true });
    assertClose(out[0]!, [4]);
    assert.equal(out[1], null);
    const e = assertThrowsMatching(() => grad(x.mul(4).sum(), [x, unused]), /^grad: /, /not have been used/);
    assert.equal((e as Error & { op?: string }).op, 'grad');
  });

  test('retainGraph: without it a second grad() through the graph fails', () => {
    const x = f64([0.3]).requiresGrad_();
    const y = x.sin().sum();
    const [g1] = grad(y, x, { retainGraph: true });
    const [g2] = grad(y, x);
    assertClose(g1!, [Math.cos(0.3)], { rtol: 1e-12 });
    assertClose(g2!, [Math.cos(0.3)], { rtol: 1e-12 });
    assertThrowsMatching(() => grad(y, x), /^grad: /, /second time/);
  });

  test('createGraph: second and third derivatives of x^3', () => {
    const x = f64([1.5, -2]).requiresGrad_();
    const y = x.pow(3).sum();
    const [g1] = grad(y, x, { createGraph: true });
    assertClose(g1!, [3 * 1.5 ** 2, 3 * 4]);
    assert.equal(g1!.requiresGrad, true);
    const [g2] = grad(g1!.sum(), x, { createGraph: true });
    assertClose(g2!, [6 * 1.5, -12]);
    const [g3] = grad(g2!.sum(), x);
    assertClose(g3!, [6, 6]);
    // without createGraph the gradient is a constant
    const [plain] = grad(x.pow(3).sum(), x);
    assert.equal(plain!.requiresGrad, false);
  });

  test('an input that does not require grad is an error', () => {
    const x = f64([1]);
    assertThrowsMatching(() => grad(x.mul(2).sum(), x), /^grad: /);
  });
});

describe('noGrad and enableGrad', () => {
  test('noGrad builds no graph and restores the mode', () => {
    const x = f64([1, 2]).requiresGrad_();
    assert.equal(isGradEnabled(), true);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return x.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(isGradEnabled(), true);
    assert.equal(x.mul(2).requiresGrad, true);
  });

  test('the mode is restored when fn throws', () => {
    assert.throws(
      () =>
        noGrad(() => {
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(isGradEnabled(), true);
    // a native error inside too
    assert.throws(() => noGrad(() => E.ones([2]).add(E.ones([3]))), /^Error: add: /);
    assert.equal(isGradEnabled(), true);
  });

  test('nesting: enableGrad inside noGrad, and back', () => {
    const x = f64([1]).requiresGrad_();
    noGrad(() => {
      const inner = enableGrad(() => {
        assert.equal(isGradEnabled(), true);
        return x.mul(2);
      });
      assert.equal(inner.requiresGrad, true);
      assert.equal(isGradEnabled(), false);
      noGrad(() => assert.equal(isGradEnabled(), false));
      assert.equal(isGradEnabled(), false);
    });
    assert.equal(isGradEnabled(), true);
  });

  test('an async fn is refused and the mode restored', () => {
    assert.throws(() => noGrad(async () => 1), /must be synchronous/);
    assert.equal(isGradEnabled(), true);
  });

  test('in-place updates of a leaf under noGrad keep it a leaf that requires grad', () => {
    const w = f64([1, 2]).requiresGrad_();
    w.mul(w).sum().backward();
    noGrad(() => w.add_(w.grad!, -0.1));
    assertClose(w, [0.8, 1.6]);
    assert.equal(w.isLeaf, true);
    assert.equal(w.requiresGrad, true);
    // outside noGrad the same in-place update of a leaf is refused by libtorch
    assertThrowsMatching(() => w.add_(1), /^add_: /, /leaf Variable that requires grad/);
  });
});
