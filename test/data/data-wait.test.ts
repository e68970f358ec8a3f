/**
 * The training loop's data-wait figures on its step events: with data in
 * memory the loop hardly waits; with a dataset that takes far longer to hand
 * out a batch than a step takes, most of each step is waiting, and the
 * milliseconds match the delay.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dataset, TensorDataset, loadMnist } from '../../src/data/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { type TrainConfig, type TrainEvent, runTraining } from '../../src/training/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';

const train = TensorDataset.from(loadMnist('train', { limit: 96 }));
const dir = mkdtempSync(join(tmpdir(), 'advml-data-wait-'));
after(() => {
  train.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const config: TrainConfig = {
  batchSize: 16, epochs: 1, maxSteps: 6, seed: 1, checkpointEvery: 0, optimizer: { name: 'sgd', lr: 0.01 },
  adversarial: { k: 8, lambda: 0.3, method: 'fgsm', eps: { kind: 'fixed', value: 8 } },
};

type StepEvent = Extract<TrainEvent, { type: 'step' }>;

async function steps(data: Dataset, name: string): Promise<StepEvent[]> {
  const model = buildClassifier(MNIST_SPEC);
  const out: StepEvent[] = [];
  try {
    await runTraining({ model, train: data, config, checkpoint: join(dir, `${name}.safetensors`), onEvent: (e) => e.type === 'step' && out.push(e) });
  } finally {
    model.dispose();
  }
  assert.equal(out.length, 6);
  for (const e of out) assert.ok(e.dataWait >= 0 && e.dataWait <= 1 && e.dataWaitMs >= 0, JSON.stringify(e));
  return out;
}

/** Waiting over the whole run, as a fraction of the steps' time. */
const overall = (es: StepEvent[]): number => {
  const wait = es.reduce((s, e) => s + e.dataWaitMs, 0);
  // Each event's own work follows from its fraction: work = wait (1 - f) / f.
  const work = es.reduce((s, e) => s + (e.dataWait > 0 ? (e.dataWaitMs * (1 - e.dataWait)) / e.dataWait : 0), 0);
  return wait / Math.max(wait + work, 1e-9);
};

test('data in memory: the loop barely waits for batches', async () => {
  const es = await steps(train, 'memory');
  assert.ok(overall(es) < 0.5, `waited ${overall(es)} of the time: ${es.map((e) => e.dataWaitMs.toFixed(1))}`);
});

test('a dataset slower than the step: the wait dominates and is measured in milliseconds', async () => {
  const DELAY = 150;
  // One batch at a time, each DELAY ms: prefetching cannot hide it, every step waits about DELAY minus its own work.
  let chain = Promise.resolve();
  const slow: Dataset = {
    length: train.length,
    classNames: train.classNames,
    range: train.range,
    get: (indices, opts) => {
      const done = chain.then(() => new Promise<void>((r) => setTimeout(r, DELAY)));
      chain = done;
      return done.then(() => train.get(indices, opts));
    },
  } as Dataset;
  const es = await steps(slow, 'slow');
  assert.ok(overall(es) > 0.5, `waited only ${overall(es)} of the time: ${es.map((e) => e.dataWaitMs.toFixed(1))}`);
  assert.ok(es[0]!.dataWaitMs >= DELAY * 0.9, `the first batch waits its whole delay: ${es[0]!.dataWaitMs}`);
});
