/**
 * Dropout from a seeded generator: the same stream gives the same mask, the
 * kept elements are scaled by 1/(1-p), gradients follow the mask, and a
 * module tree hands its stream to every dropout layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, dropout, globalGeneratorState, ones, scope, setGlobalGeneratorState } from '../../src/index.js';
import { Dropout, Linear, Sequential } from '../../src/nn/index.js';

test('dropout with a generator: the mask follows the stream, not the global generator; kept elements are 1/(1-p)', () => {
  scope(() => {
    const x = ones([4, 1000]);
    const global = globalGeneratorState();
    const a = dropout(x, 0.3, true, new Generator(5)).dataSync() as Float32Array;
    // The global stream is untouched by a seeded draw...
    assert.deepEqual(globalGeneratorState(), global);
    // ...and moving it does not change the seeded mask.
    dropout(x, 0.5, true).dispose();
    const b = dropout(x, 0.3, true, new Generator(5)).dataSync() as Float32Array;
    assert.deepEqual(b, a);
    const c = dropout(x, 0.3, true, new Generator(6)).dataSync() as Float32Array;
    assert.notDeepEqual(c, a);
    const kept = a.filter((v) => v !== 0);
    for (const v of new Set(kept)) assert.ok(Math.abs(v - 1 / 0.7) < 1e-6, `kept element ${v}, expected ${1 / 0.7}`);
    const fraction = kept.length / a.length;
    assert.ok(Math.abs(fraction - 0.7) < 0.03, `kept ${fraction} of the elements, expected about 0.7`);
    // Inference mode and p = 0 are the identity and draw nothing.
    const g = new Generator(1);
    const before = g.getState();
    assert.deepEqual(dropout(x, 0.3, false, g).dataSync(), x.dataSync());
    assert.deepEqual(dropout(x, 0, true, g).dataSync(), x.dataSync());
    assert.deepEqual(g.getState(), before);
    setGlobalGeneratorState(global);
  });
});

test('dropout with a generator is differentiable: the gradient is the mask', () => {
  scope(() => {
    const x = ones([3, 50]).requiresGrad_(true);
    const y = dropout(x, 0.5, true, new Generator(2));
    y.sum().backward();
    assert.deepEqual(x.grad?.dataSync(), y.detach().dataSync());
  });
});

test('setDropoutGenerator reaches every dropout layer of a tree; the same state gives the same masks', () => {
  scope(() => {
    const net = new Sequential(new Linear(8, 64, { generator: new Generator(1) }), new Dropout(0.5), new Dropout(0.25, { generator: new Generator(9) }));
    const g = new Generator(3);
    net.setDropoutGenerator(g);
    for (const m of net.modules()) assert.equal(m.dropoutGenerator, g);
    const x = ones([2, 8]);
    const state = g.getState();
    const first = net.forward(x).dataSync();
    g.setState(state);
    assert.deepEqual(net.forward(x).dataSync(), first);
    net.setDropoutGenerator(undefined);
    assert.equal((net.layers[2] as Dropout).dropoutGenerator, undefined);
    for (const p of net.parameters()) p.dispose();
  });
});
