/** Process-wide settings: threads, build information, memory counters. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';

test('setNumThreads / getNumThreads round-trip and validate', () => {
  const before = E.getNumThreads();
  try {
    E.setNumThreads(1);
    assert.equal(E.getNumThreads(), 1);
    E.setNumThreads(2);
    assert.equal(E.getNumThreads(), 2);
  } finally {
    E.setNumThreads(before);
  }
  assert.throws(() => E.setNumThreads(0), /setNumThreads: n must be a positive integer, got 0/);
  assert.throws(() => E.setNumThreads(1.5), /positive integer/);
});

test('defaultThreads reads ADVML_NUM_THREADS', () => {
  const saved = process.env.ADVML_NUM_THREADS;
  try {
    process.env.ADVML_NUM_THREADS = '3';
    assert.equal(E.defaultThreads(), 3);
    process.env.ADVML_NUM_THREADS = 'many';
    assert.throws(() => E.defaultThreads(), /ADVML_NUM_THREADS must be a positive integer, got 'many'/);
  } finally {
    if (saved === undefined) delete process.env.ADVML_NUM_THREADS;
    else process.env.ADVML_NUM_THREADS = saved;
  }
});

test('buildInfo names the libtorch version; device counts are numbers', () => {
  const info = E.buildInfo();
  assert.match(info.torchVersion, /^\d+\.\d+/);
  assert.equal(typeof info.parallel, 'string');
  assert.ok(Number.isInteger(E.cudaDeviceCount()) && E.cudaDeviceCount() >= 0);
  assert.equal(E.cudaAvailable(), E.cudaDeviceCount() > 0);
  assert.equal(E.ones([1]).device, 'cpu');
});

test('memory counters move with tensors', () => {
  const m0 = E.memory();
  assert.ok(m0.liveTensors >= 0 && m0.tensorBytes >= 0 && m0.heapBytes > 0);
  const t = E.zeros([256], { dtype: 'float32' });
  const m1 = E.memory();
  assert.equal(m1.liveTensors, m0.liveTensors + 1);
  assert.equal(m1.tensorBytes, m0.tensorBytes + 1024);
  t.dispose();
  assert.equal(E.memory().liveTensors, m0.liveTensors);
});

test('loadedBlas names the BLAS library libtorch was loaded with', () => {
  const blas = E.loadedBlas();
  assert.ok(blas.length > 0, 'libtorch links libblas.so.3, so one is mapped');
  for (const p of blas) assert.match(p, /^\/.*lib(open)?blas[^/]*\.so/);
});
