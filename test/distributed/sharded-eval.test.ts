/** advml eval and advml transfer under advml launch split the images and merge exact counts. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-shard-'));
const a = join(dir, 'a.safetensors');
const b = join(dir, 'b.safetensors');
before(() => {
  writeMnistCheckpoint(a, 20, 1);
  writeMnistCheckpoint(b, 20, 4);
});

test('sharded advml eval over 2 and 3 processes gives exactly the counts of one process', () => {
  const args = ['eval', '--model', a, '--limit', '151', '--methods', 'fgsm,step-ll,basic-iter', '--eps', '8,32'];
  const one = join(dir, 'one.json');
  assert.equal(runCli([...args, '--json', one]).status, 0);
  const expected = JSON.parse(readFileSync(one, 'utf8')) as { images: number; clean: { counts: unknown }; cells: { counts: unknown }[] };
  for (const n of ['2', '3']) {
    const file = join(dir, `shard${n}.json`);
    const r = runCli(['launch', '--nproc-per-node', n, '--', ...args, '--json', file], { timeoutMs: 120_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const got = JSON.parse(readFileSync(file, 'utf8')) as typeof expected;
    assert.equal(got.images, 151);
    assert.deepEqual(got.clean.counts, expected.clean.counts);
    assert.deepEqual(got.cells.map((c) => c.counts), expected.cells.map((c) => c.counts));
  }
});

test('sharded advml transfer gives exactly the counts of one process', () => {
  const args = ['transfer', '--model', a, '--model', b, '--samples', '90', '--methods', 'fgsm', '--eps', '32'];
  const one = join(dir, 't1.json');
  const two = join(dir, 't2.json');
  assert.equal(runCli([...args, '--json', one]).status, 0);
  const r = runCli(['launch', '--nproc-per-node', '2', '--', ...args, '--json', two], { timeoutMs: 120_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const pick = (f: string): unknown => (JSON.parse(readFileSync(f, 'utf8')) as { cells: { sourceFooled: number; transferred: number; targetErrors: number; n: number }[] }).cells
    .map(({ sourceFooled, transferred, targetErrors, n }) => [sourceFooled, transferred, targetErrors, n]);
  assert.deepEqual(pick(two), pick(one));
});

test('sharded advml eval with a suite and a minimal-perturbation method gives the counts and sizes of one process', () => {
  // Deterministic attacks only: a seeded random start depends on how the images are batched.
  const args = ['eval', '--model', a, '--limit', '61', '--methods', 'deepfool', '--suite', 'fgsm,basic-iter', '--eps', '8,32', '--no-audit'];
  type Out = { suite: { rows: { n: number; robust: number; attacks: { attack: string; broken: number; attacked: number }[] }[] }; minimal: unknown[] };
  const pick = (f: string): unknown => {
    const o = JSON.parse(readFileSync(f, 'utf8')) as Out;
    return { suite: o.suite.rows.map((r) => [r.n, r.robust, r.attacks.map((x) => [x.attack, x.broken, x.attacked])]), minimal: o.minimal };
  };
  const one = join(dir, 's1.json');
  const two = join(dir, 's2.json');
  assert.equal(runCli([...args, '--json', one]).status, 0);
  const r = runCli(['launch', '--nproc-per-node', '2', '--', ...args, '--json', two], { timeoutMs: 120_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const expected = pick(one) as { suite: [number, number][] };
  assert.equal(expected.suite[0]?.[0], 61);
  assert.deepEqual(pick(two), expected);
});
