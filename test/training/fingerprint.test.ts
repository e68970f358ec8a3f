/**
 * What a resumed run must share with the one that wrote the checkpoint: the
 * fingerprint includes the precision the run resolved and the training set's
 * size, so a resume at another precision or on another number of images is
 * refused by name, and checkpoints written before k was renamed
 * (`adversarial.adversarial`), before the precision was fingerprinted (then
 * fp32 unless the config named one) or before the size was still resume.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Json, disposeCheckpoint, loadCheckpointSync, saveCheckpointSync } from '../../src/io/index.js';
import { TensorDataset, loadMnist } from '../../src/data/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { type TrainConfig, type TrainEvent, readFingerprint, runTraining, trainTimePath } from '../../src/training/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';

const train = TensorDataset.from(loadMnist('train', { limit: 64 }));
after(() => train.dispose());
const dir = mkdtempSync(join(tmpdir(), 'advml-fingerprint-'));

const config = (maxSteps: number, precision?: TrainConfig['precision']): TrainConfig => ({
  batchSize: 16, epochs: 1, maxSteps, seed: 1, checkpointEvery: 0, optimizer: { name: 'sgd', lr: 0.01 },
  adversarial: { k: 8, lambda: 0.3, method: 'fgsm', eps: { kind: 'fixed', value: 8 } },
  ...(precision ? { precision } : {}),
});

/** Trains (or resumes) into `checkpoint`; returns the step a resume started from (-1: none). */
async function run(checkpoint: string, c: TrainConfig, resume = false, data = train): Promise<number> {
  const model = buildClassifier(MNIST_SPEC);
  let resumedAt = -1;
  try {
    await runTraining({ model, train: data, config: c, checkpoint, resume, onEvent: (e: TrainEvent) => { if (e.type === 'resume') resumedAt = e.step; } });
  } finally {
    model.dispose();
  }
  return resumedAt;
}

/** Rewrites a checkpoint's config as a run from before the rename and before precision was fingerprinted wrote it. */
function makeOld(path: string, precisionInConfig?: string): void {
  const saved = loadCheckpointSync(path);
  try {
    const f = JSON.parse(saved.config?.fingerprint as string) as { adversarial: { k: number }; precision?: string; trainExamples?: number };
    const { k, ...rest } = f.adversarial;
    delete f.precision;
    delete f.trainExamples;
    // The old key in the old position: first, as the presets wrote it.
    const oldFingerprint = JSON.stringify({ ...f, adversarial: { adversarial: k, ...rest } });
    const { precision: _, ...oldConfig } = saved.config as { [key: string]: Json };
    saveCheckpointSync(path, {
      ...saved,
      config: { ...oldConfig, fingerprint: oldFingerprint, adversarial: { adversarial: k, ...rest }, ...(precisionInConfig ? { precision: precisionInConfig } : {}) },
    });
  } finally {
    disposeCheckpoint(saved);
  }
}

test('readFingerprint: the old key is read as k, and a missing precision as the one given (fp32 by default)', () => {
  const old = JSON.stringify({ batchSize: 16, adversarial: { adversarial: 8, lambda: 0.3 }, seed: 1 });
  assert.deepEqual(readFingerprint(old), { precision: 'fp32', batchSize: 16, adversarial: { lambda: 0.3, k: 8 }, seed: 1 });
  assert.deepEqual(readFingerprint(old, 'bf16-autocast')?.precision, 'bf16-autocast');
  const now = JSON.stringify({ adversarial: { k: 4 }, precision: 'bf16-autocast' });
  assert.deepEqual(readFingerprint(now), { adversarial: { k: 4 }, precision: 'bf16-autocast' });
  // A missing training-set size reads as the one given; a recorded one is kept.
  assert.equal(readFingerprint(old, 'fp32', 500)?.trainExamples, 500);
  assert.equal(readFingerprint(JSON.stringify({ trainExamples: 64 }), 'fp32', 500)?.trainExamples, 64);
  assert.equal(readFingerprint(undefined), null);
  assert.equal(readFingerprint('not json'), null);
});

test('resuming at another precision is refused, naming the difference; at the same one it resumes', async () => {
  const checkpoint = join(dir, 'precision.safetensors');
  await run(checkpoint, config(2));
  await assert.rejects(run(checkpoint, config(3, 'bf16-autocast'), true),
    /written by a run with other settings \(precision: "fp32" then, "bf16-autocast" now\); resume with the same options/);
  await assert.rejects(run(checkpoint, { ...config(3), adversarial: { ...config(3).adversarial, k: 4 } }, true), /adversarial\.k: 8 then, 4 now/);
  assert.equal(await run(checkpoint, config(3, 'fp32'), true), 2);
});

test('resuming on a training set of another size is refused, naming both sizes', async () => {
  const checkpoint = join(dir, 'size.safetensors');
  await run(checkpoint, config(2));
  const fewer = TensorDataset.from(loadMnist('train', { limit: 48 }));
  try {
    await assert.rejects(run(checkpoint, config(3), true, fewer), /trainExamples: 64 then, 48 now/);
  } finally {
    fewer.dispose();
  }
  assert.equal(await run(checkpoint, config(3), true), 2);
});

test('a checkpoint written before the rename of k and without a precision in its fingerprint resumes as fp32', async () => {
  const checkpoint = join(dir, 'old.safetensors');
  await run(checkpoint, config(2));
  makeOld(checkpoint);
  await assert.rejects(run(checkpoint, config(3, 'bf16-autocast'), true), /precision: "fp32" then, "bf16-autocast" now/);
  assert.equal(await run(checkpoint, config(3), true), 2);
  // The resumed run's checkpoint is in today's terms.
  const saved = loadCheckpointSync(checkpoint);
  const f = JSON.parse(saved.config?.fingerprint as string) as { adversarial: { k?: number; adversarial?: number }; precision: string; trainExamples: number };
  disposeCheckpoint(saved);
  assert.deepEqual([f.adversarial.k, f.adversarial.adversarial, f.precision, f.trainExamples], [8, undefined, 'fp32', 64]);
});

test('an old checkpoint whose config named a precision resumes at that one', async () => {
  const checkpoint = join(dir, 'old-bf16.safetensors');
  await run(checkpoint, config(2, 'bf16-autocast'));
  makeOld(checkpoint, 'bf16-autocast');
  await assert.rejects(run(checkpoint, config(3), true), /precision: "bf16-autocast" then, "fp32" now/);
  assert.equal(await run(checkpoint, config(3, 'bf16-autocast'), true), 2);
});

test("the cyclic schedule's rates follow its triangle, and a resume must keep the run's length", async () => {
  const cyclicConfig = (epochs: number): TrainConfig => ({ ...config(Infinity), epochs, optimizer: { name: 'sgd', lr: 0.01, schedule: 'cyclic' } });
  const checkpoint = join(dir, 'cyclic.safetensors');
  const rates: number[] = [];
  const model = buildClassifier(MNIST_SPEC);
  try {
    await runTraining({ model, train, config: { ...cyclicConfig(2), maxSteps: 8 }, checkpoint, onEvent: (e) => { if (e.type === 'step') rates.push(e.lr); } });
  } finally {
    model.dispose();
  }
  // 64 images in batches of 16: 8 steps over 2 epochs; step s at (s + 1) / 8 of the triangle peaking at 0.4.
  const expected = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => { const t = n / 8; return t <= 0.4 ? 0.01 * t / 0.4 : 0.01 * (1 - t) / 0.6; });
  assert.equal(rates.length, 8);
  rates.forEach((r, i) => assert.ok(Math.abs(r - expected[i]!) < 1e-12, `step ${i}: ${r} vs ${expected[i]}`));
  await assert.rejects(run(checkpoint, cyclicConfig(3), true), /cycleSteps: 8 then, 12 now/);
  assert.equal(await run(checkpoint, cyclicConfig(2), true), 8);
});

test('the training time is recorded beside each checkpoint and a resumed run adds its own to it', async () => {
  const checkpoint = join(dir, 'seconds.safetensors');
  const train2 = async (maxSteps: number, resume: boolean): Promise<number> => {
    const model = buildClassifier(MNIST_SPEC);
    try {
      return (await runTraining({ model, train, config: config(maxSteps), checkpoint, resume })).trainSeconds;
    } finally {
      model.dispose();
    }
  };
  const first = await train2(2, false);
  const recorded = (JSON.parse(readFileSync(trainTimePath(checkpoint), 'utf8')) as { step: number; trainSeconds: number }).trainSeconds;
  assert.ok(first > 0 && recorded === first, `${recorded} recorded after ${first} s`);
  const resumed = await train2(4, true);
  assert.ok(resumed > recorded, `${resumed} s after resuming from ${recorded} s`);
});
