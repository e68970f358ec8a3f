/**
 * Same seed, same run: training a model with dropout twice with the same
 * --seed gives byte-identical checkpoints (separate processes, whose global
 * generators are seeded differently by libtorch), another seed other
 * weights; the same for a 2-rank data-parallel run, whose ranks draw their
 * masks from different streams. In one process, the trainer's dropout stream
 * is independent of libtorch's global generator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, type Tensor, dropout, ones, rand, randint, scope } from '../../src/index.js';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';
import { buildClassifier, inceptionV3Spec } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';
import { AdversarialTrainer, streamSeeds } from '../../src/training/index.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-seed-'));
const TRAIN = ['train', '--steps', '6', '--limit', '384', '--batch', '32', '--k', '16', '--eval-images', '50', '--dropout', '0.5', '--json'];

function train(name: string, seed: number, launch?: number): string {
  const out = join(dir, name);
  const args = [...TRAIN, '--seed', String(seed), '--out', out];
  const r = runCli(launch ? ['launch', '--nproc-per-node', String(launch), '--', ...args] : args, { timeoutMs: 180_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  return join(out, 'checkpoint.safetensors');
}

function weightsDiffer(a: string, b: string): boolean {
  const [x, y] = [loadCheckpointSync(a), loadCheckpointSync(b)];
  try {
    return scope(() => [...x.weights].some(([k, v]) => v.sub(y.weights.get(k) as Tensor).abs().max().item() > 0));
  } finally {
    disposeCheckpoint(x);
    disposeCheckpoint(y);
  }
}

test('the MNIST CNN with dropout, trained twice with the same seed: byte-identical checkpoints; another seed, other weights', () => {
  const a = train('one-a', 4);
  const b = train('one-b', 4);
  assert.ok(readFileSync(a).equals(readFileSync(b)), 'two runs with --seed 4 wrote different checkpoints');
  const c = loadCheckpointSync(a);
  assert.deepEqual(Object.keys(c.rng ?? {}).sort(), ['attack', 'dropout', 'eps']);
  assert.ok(c.weights.has('dropout') === false && (c.model.options as { dropout?: number }).dropout === 0.5);
  disposeCheckpoint(c);
  assert.ok(weightsDiffer(a, train('one-other', 5)), '--seed 5 trained the same weights as --seed 4');
});

test('a 2-rank data-parallel run with dropout, twice with the same seed: byte-identical checkpoints; the ranks draw different masks', { timeout: 300_000 }, () => {
  const a = train('two-a', 4, 2);
  const b = train('two-b', 4, 2);
  assert.ok(readFileSync(a).equals(readFileSync(b)), 'two 2-rank runs with --seed 4 wrote different checkpoints');
  const c = loadCheckpointSync(a);
  try {
    const rng = c.rng ?? {};
    assert.deepEqual(Object.keys(rng).sort(), ['attack.0', 'attack.1', 'dropout.0', 'dropout.1', 'eps.0', 'eps.1']);
    // The next masks each rank would draw, from its saved stream.
    const masks = [0, 1].map((r) => {
      const g = new Generator(0);
      g.setState(rng[`dropout.${r}`] as Uint8Array);
      return scope(() => dropout(ones([256]), 0.5, true, g).dataSync() as Float32Array);
    });
    assert.notDeepEqual(masks[0], masks[1]);
  } finally {
    disposeCheckpoint(c);
  }
  assert.ok(weightsDiffer(a, train('two-other', 5, 2)), '--seed 5 trained the same weights as --seed 4 on 2 ranks');
});

test('streams: every (seed, rank) has its own eps, attack and dropout seeds', () => {
  for (const world of [1, 2, 3]) {
    const own = new Set<number>();
    for (let seed = 0; seed < 20; seed++) {
      for (let rank = 0; rank < world; rank++) for (const s of Object.values(streamSeeds(seed, rank, world))) own.add(s);
    }
    assert.equal(own.size, 20 * world * 3, `world ${world}: some streams share a seed`);
  }
  assert.deepEqual(streamSeeds(3, 1, 2), { eps: 15, attack: 16, dropout: 2 ** 48 + 7 });
  assert.throws(() => streamSeeds(2 ** 46, 0, 1), /seed 70368744177664 is too large for 1 rank\(s\)/);
});

test('a narrow Inception v3 (dropout 0.5): plain training follows the trainer seed, whatever the global generator does', () => {
  const run = (seed: number): Float32Array =>
    scope(() => {
      const model = buildClassifier(inceptionV3Spec({ width: 0.125, auxLogits: false, seed: 1 }, { classes: 5, inputShape: [3, 75, 75] }));
      const opt = new SGD(model.module.parameters(), 0.1);
      // k = 0: dropout is the only random draw of a step.
      const trainer = new AdversarialTrainer(model, opt, { k: 0 }, { seed });
      const g = new Generator(11);
      for (let i = 0; i < 2; i++) {
        rand([1000]).dispose(); // moves the global stream between steps
        trainer.trainStep(rand([4, 3, 75, 75], { generator: g }).mul(2).sub(1), randint(0, 5, [4], { generator: g }));
      }
      const w = (model.module.stateDict().get('fc.weight') as Tensor).dataSync() as Float32Array;
      opt.dispose();
      model.dispose();
      return w;
    });
  const a = run(3);
  assert.deepEqual(run(3), a);
  assert.notDeepEqual(run(4), a);
});
