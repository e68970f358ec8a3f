/**
 * Memory: scope() frees what it made except what it returns, nested scopes
 * hand returned tensors to their parent, throwing still frees, keep()
 * survives, dispose() is idempotent; and a 10,000-step training loop of raw
 * ops inside scopes ends with the same live-tensor count and native heap.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as E from '../../src/engine/index.js';
import { type Tensor, dispose, grad, memory, noGrad, scope } from '../../src/engine/index.js';

const live = (): number => memory().liveTensors;

describe('scope()', () => {
  test('frees everything made inside except the returned tensor', () => {
    const start = live();
    let inner: Tensor[] = [];
    const out = scope(() => {
      const a = E.ones([3]);
      const b = a.mul(2);
      const c = b.add(1);
      inner = [a, b];
      return c;
    });
    assert.equal(live(), start + 1);
    assert.ok(inner.every((t) => t.isDisposed));
    assert.equal(out.isDisposed, false);
    assert.deepEqual(out.toArray(), [3, 3, 3]);
    out.dispose();
    assert.equal(live(), start);
  });

  test('returned arrays, objects and maps of tensors survive', () => {
    const start = live();
    const r = scope(() => {
      const a = E.ones([1]);
      const b = E.zeros([1]);
      const c = E.full([1], 2);
      E.ones([5]); // garbage
      return { list: [a, [b]], nested: { c }, map: new Map([['k', a.add(1)]]), n: 4 };
    });
    assert.equal(live(), start + 4);
    assert.equal(r.n, 4);
    assert.deepEqual((r.list[0] as Tensor).toArray(), [1]);
    assert.deepEqual((r.list[1] as Tensor[])[0]!.toArray(), [0]);
    assert.deepEqual(r.nested.c.toArray(), [2]);
    assert.deepEqual(r.map.get('k')!.toArray(), [2]);
    dispose(r);
    assert.equal(live(), start);
  });

  test('a returned non-tensor value frees every tensor', () => {
    const start = live();
    const v = scope(() => E.ones([4]).sum().item());
    assert.equal(v, 4);
    assert.equal(live(), start);
  });

  test('nested scopes: an inner result belongs to the outer scope', () => {
    const start = live();
    let fromInner: Tensor | undefined;
    const out = scope(() => {
      fromInner = scope(() => {
        E.ones([2]);
        return E.zeros([2]);
      });
      assert.equal(fromInner.isDisposed, false);
      assert.equal(live(), start + 1);
      return fromInner.add(1);
    });
    // the outer scope did not return fromInner, so it freed it
    assert.equal(fromInner!.isDisposed, true);
    assert.equal(out.isDisposed, false);
    assert.equal(live(), start + 1);
    out.dispose();
    assert.equal(live(), start);
  });

  test('a tensor returned through two scopes survives both', () => {
    const start = live();
    const out = scope(() => scope(() => scope(() => E.ones([1]))));
    assert.equal(out.isDisposed, false);
    assert.equal(live(), start + 1);
    out.dispose();
  });

  test('a throwing fn still frees what it made, and the error propagates', () => {
    const start = live();
    let made: Tensor | undefined;
    assert.throws(
      () =>
        scope(() => {
          made = E.ones([3]);
          scope(() => {
            E.ones([2]);
            throw new Error('inner failure');
          });
        }),
      /inner failure/,
    );
    assert.equal(made!.isDisposed, true);
    assert.equal(live(), start);
    // a native error too
    assert.throws(() => scope(() => E.ones([2]).add(E.ones([3]))), /^Error: add: /);
    assert.equal(live(), start);
    // and later scopes work normally
    const ok = scope(() => E.ones([1]));
    assert.equal(live(), start + 1);
    ok.dispose();
  });

  test('a fn returning a Promise is refused and its tensors freed', () => {
    const start = live();
    assert.throws(() => scope(() => Promise.resolve(E.ones([1]))), /returned a Promise/);
    assert.equal(live(), start);
  });

  test('keep() survives any scope', () => {
    const start = live();
    let kept: Tensor | undefined;
    scope(() => {
      scope(() => {
        kept = E.ones([2]).keep();
      });
    });
    assert.equal(kept!.isDisposed, false);
    assert.equal(live(), start + 1);
    kept!.dispose();
    assert.equal(live(), start);
  });

  test('tensors made outside are untouched by a scope that uses or returns them', () => {
    const outside = E.ones([2]);
    const start = live();
    const same = scope(() => {
      outside.mul(3);
      return outside;
    });
    assert.equal(same, outside);
    assert.equal(outside.isDisposed, false);
    assert.equal(live(), start);
    outside.dispose();
  });

  test('dispose() is idempotent; dispose(structure) frees nested tensors', () => {
    const start = live();
    const t = E.ones([2]);
    t.dispose();
    t.dispose();
    assert.equal(t.isDisposed, true);
    assert.equal(live(), start);
    const a = E.ones([1]);
    const b = E.ones([1]);
    dispose({ x: [a, { y: b }] });
    dispose([a, b]);
    assert.ok(a.isDisposed && b.isDisposed);
    assert.equal(live(), start);
  });

  test('gradients read with .grad and grad() are tracked like other tensors', () => {
    const w = E.ones([3], { dtype: 'float64' }).requiresGrad_();
    const start = live();
    scope(() => {
      w.mul(w).sum().backward();
      const g1 = w.grad!;
      const [g2] = grad(w.exp().sum(), w);
      assert.ok(g1 && g2);
    });
    assert.equal(live(), start);
    w.grad = null;
    w.dispose();
  });

  test('tensorBytes follows the storage of live tensors', () => {
    const before = memory().tensorBytes;
    const t = E.zeros([1000], { dtype: 'float64' });
    assert.equal(memory().tensorBytes, before + 8000);
    t.dispose();
    assert.equal(memory().tensorBytes, before);
  });
});

describe('the garbage collector as a safety net', () => {
  test('tensors dropped without dispose() are freed once collected', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const start = live();
    const bytes = memory().tensorBytes;
    (() => {
      for (let i = 0; i < 100; i++) E.zeros([256]);
    })();
    assert.equal(live(), start + 100);
    for (let k = 0; k < 20 && live() > start; k++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(live(), start);
    assert.equal(memory().tensorBytes, bytes);
  });
});

describe('a long training loop does not leak', () => {
  test('10,000 scoped SGD steps of a 2-layer MLP: live tensors and native heap return to their start', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // One thread: tiny ops run fastest so, and timings stay stable on a busy 2-core machine.
    const threads = E.getNumThreads();
    E.setNumThreads(1);
    try {
      const g = new E.Generator(2024);
      // A learnable task: labels from a random linear teacher.
      const data = E.randn([256, 10], { generator: g });
      const labels = data.matmul(E.randn([10, 3], { generator: g })).argmax(1);
      const params = [
        E.randn([10, 16], { generator: g }).mul(0.3),
        E.zeros([16]),
        E.randn([16, 3], { generator: g }).mul(0.3),
        E.zeros([3]),
      ];
      for (const p of params) p.requiresGrad_();
      const start = live();
      const startBytes = memory().tensorBytes;
      const lossOf = (): number =>
        scope(() => E.crossEntropy(data.matmul(params[0]!).add(params[1]!).relu().matmul(params[2]!).add(params[3]!), labels).item());
      const step = (i: number): number =>
        scope(() => {
          const idx = E.randint(0, 256, [32], { generator: g });
          const x = data.indexSelect(0, idx);
          const y = labels.indexSelect(0, idx);
          const h = E.linear(x, params[0]!.transpose(0, 1), params[1]!).relu();
          const loss = E.crossEntropy(h.matmul(params[2]!).add(params[3]!), y);
          let gs: Tensor[];
          if (i % 2 === 0) {
            gs = grad(loss, params);
          } else {
            loss.backward();
            gs = params.map((p) => p.grad!);
          }
          noGrad(() => params.forEach((p, k) => p.add_(gs[k]!, -0.1)));
          if (i % 2 === 1) for (const p of params) p.grad = null;
          return loss.item();
        });
      const initialLoss = lossOf();
      const t0 = Date.now();
      for (let i = 0; i < 500; i++) step(i);
      gc();
      const warmHeap = memory().heapBytes;
      // A full collection every 1,000 steps: V8's own malloc'd bookkeeping
      // swings by a few MiB with its collection schedule, and collecting at
      // fixed points keeps that out of the comparison. Tensors owe nothing to
      // it: disposal frees their native memory at once (no finalizer involved).
      for (let i = 500; i < 10_000; i++) {
        step(i);
        if (i % 1000 === 999) gc();
      }
      const seconds = (Date.now() - t0) / 1000;
      gc();
      const endHeap = memory().heapBytes;
      assert.equal(live(), start, 'live tensors after the loop');
      assert.equal(memory().tensorBytes, startBytes, 'tensor bytes after the loop');
      const drift = endHeap - warmHeap;
      assert.ok(Math.abs(drift) < 2 * 1024 * 1024, `native heap drifted by ${(drift / 1024).toFixed(0)} KiB over 9,500 steps`);
      // the steps did train
      const finalLoss = lossOf();
      assert.ok(finalLoss < initialLoss / 2, `loss ${initialLoss} -> ${finalLoss}`);
      assert.ok(seconds < 60, `10,000 steps took ${seconds} s`);
      dispose([data, labels, params]);
    } finally {
      E.setNumThreads(threads);
    }
  });
});
