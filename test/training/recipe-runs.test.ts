/**
 * The hardening recipes as real runs of `advml train` on MNIST:
 * - the overfitting guard stays silent on a healthy fast-AT run and fires on
 *   one made to overfit catastrophically (FGSM without the random start at a
 *   large eps and rate, from the healthy model), whose rollback leaves the
 *   last good weights in the checkpoint;
 * - every recipe killed with SIGKILL and resumed ends with exactly the
 *   weights of a run that never stopped, alone and under `advml launch` with
 *   two processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { events, startAndKill, weightsOf } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-recipes-'));

const healthy = join(dir, 'healthy');
const GUARDED = ['--recipe', 'fast-at', '--epochs', '10', '--batch', '64', '--k', '64', '--optimizer', 'adam', '--lr', '0.001', '--limit', '12800', '--eval-images', '100', '--eval-eps', '38', '--json', '--checkpoint-every', '0'];

test('the guard stays silent on a healthy fast-AT run (RS-FGSM, eps 38)', { timeout: 300_000 }, () => {
  const r = runCli(['train', ...GUARDED, '--out', healthy, '--eps', '38', '--steps', '250', '--eval-every', '50', '--guard', 'rollback'], { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const verdicts = events(healthy).filter((e) => e.type === 'guard');
  assert.equal(verdicts.length, 5);
  assert.ok(verdicts.every((v) => v.collapsed === false), JSON.stringify(verdicts));
  // The run learned robustness: PGD accuracy at eps 38 well above an undefended model's.
  assert.ok((verdicts.at(-1)!.best as number) > 0.6, JSON.stringify(verdicts.at(-1)));
});

test('the guard fires on a run made to overfit catastrophically, and rollback ends on the last good weights', { timeout: 300_000 }, () => {
  const out = join(dir, 'overfit');
  const r = runCli(['train', ...GUARDED, '--out', out, '--init', join(healthy, 'checkpoint.safetensors'), '--eps', '128', '--no-random-start', '--lr', '0.003',
    '--steps', '200', '--eval-every', '25', '--guard', 'rollback'], { timeoutMs: 300_000 });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /the overfitting guard ended the run at step \d+: the checkpoint holds the weights of the last held-out evaluation before the collapse/);
  const verdicts = events(out).filter((e) => e.type === 'guard');
  const collapse = verdicts.at(-1)!;
  assert.equal(collapse.collapsed, true);
  assert.ok(verdicts.slice(0, -1).every((v) => v.collapsed === false));
  assert.ok((collapse.step as number) < 200, 'the run ended at the collapse');
  const good = weightsOf(join(out, 'checkpoint.good.safetensors'));
  const final = weightsOf(join(out, 'checkpoint.safetensors'));
  assert.equal(final.step, (collapse.step as number) - 25, 'the checkpoint is the evaluation before the collapse');
  assert.deepEqual(final, good);
});

const RECIPE_ARGS: Record<string, string[]> = {
  'pgd-at': ['--recipe', 'pgd-at', '--k', '16', '--eps', '76.5', '--attack-steps', '3'],
  trades: ['--recipe', 'trades', '--k', '16', '--eps', '76.5', '--attack-steps', '3', '--beta', '6'],
  'fast-at': ['--recipe', 'fast-at', '--k', '16', '--eps', '76.5', '--guard', 'report', '--eval-every', '4'],
  ensemble: ['--recipe', 'ensemble', '--k', '8', '--method', 'fgsm', '--eps', '76.5'],
};

const source = join(dir, 'source');
test('a static source model for ensemble training: plain training, 6 steps', () => {
  const r = runCli(['train', '--out', source, '--k', '0', '--steps', '6', '--limit', '512', '--batch', '16', '--eval-images', '16', '--seed', '9']);
  assert.equal(r.status, 0, r.stderr);
});

for (const [name, extra] of Object.entries(RECIPE_ARGS)) {
  for (const launch of [false, true]) {
    test(`${name}${launch ? ' under advml launch with 2 processes' : ''}: kill -9 after a checkpoint, --resume, the weights of the run that never stopped`, { timeout: 300_000 }, async () => {
      const where = join(dir, `${name}-${launch ? 'launch' : 'alone'}`);
      const args = (out: string): string[] => [
        ...(launch ? ['launch', '--nproc-per-node', '2', '--'] : []),
        'train', ...extra, '--out', out, '--batch', '16', '--steps', '12', '--limit', '512', '--checkpoint-every', '4', '--eval-images', '16', '--json', '--seed', '5',
        ...(name === 'ensemble' ? ['--sources', join(source, 'checkpoint.safetensors')] : []),
      ];
      const reference = runCli(args(`${where}-reference`), { timeoutMs: 240_000 });
      assert.equal(reference.status, 0, reference.stderr + reference.stdout);
      const killedAfter = await startAndKill(args(where));
      assert.ok(killedAfter >= 4 && killedAfter < 12, `killed after the checkpoint of step ${killedAfter}`);
      const resumed = runCli([...args(where), '--resume'], { timeoutMs: 240_000 });
      assert.equal(resumed.status, 0, resumed.stderr + resumed.stdout);
      assert.match(resumed.stdout, /"type":"resume","step":\d+/);
      const a = weightsOf(join(`${where}-reference`, 'checkpoint.safetensors'));
      const b = weightsOf(join(where, 'checkpoint.safetensors'));
      assert.equal(b.step, 12);
      assert.deepEqual(b, a);
    });
  }
}
