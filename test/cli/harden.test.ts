/**
 * `advml harden` end to end at a tiny scale: every recipe trained on MNIST,
 * measured, and written as a table with its JSON; the table's figures are
 * those of the checkpoints it wrote, evaluated again on their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-harden-'));

test('advml harden: six rows, each with clean, attacks, PGD-40, AutoAttack and transfer; the targets judged', { timeout: 300_000 }, () => {
  const out = join(dir, 'hardening.md');
  const r = runCli(['harden', '--datasets', 'mnist', '--epochs', '1', '--train-images', '512', '--eval-images', '40', '--restarts', '1', '--queries', '50',
    '--out', out, '--checkpoints', join(dir, 'runs')], { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(out, 'utf8');
  const rows = md.split('\n').filter((l) => /^\| (plain|step-ll|ensemble|pgd-at|trades|fast-at) \|/.test(l));
  assert.deepEqual(rows.map((l) => l.split(' | ')[0]!.slice(2)), ['plain', 'step-ll', 'ensemble', 'pgd-at', 'trades', 'fast-at']);
  for (const l of rows) assert.equal(l.split('|').length - 2, 13, l);
  assert.match(md, /PGD-AT at least 88% under the strongest attack: [\d.]+%, \*\*(met|not met)\*\*/);
  assert.match(md, /Fast AT within 3 points of PGD-AT/);
  assert.match(md, /Ensemble AT above step-l.l. training under R\+Step-LL/);
  assert.match(md, /The overfitting guard of fast-at .*: (silent|\*\*fired\*\*)/);
  const json = JSON.parse(readFileSync(join(dir, 'hardening.json'), 'utf8')) as { mnist: { command: string; evalImages: number; models: Record<string, { clean: { value: number }; pgd: { value: number }; autoattack: { value: number }; seconds: number }> } };
  assert.equal(json.mnist.evalImages, 40);
  assert.match(json.mnist.command, /^advml harden --datasets mnist /);
  assert.match(md, /^Produced by `advml harden --datasets mnist .*` in [\d.]+ minutes, evaluated on the first 40 test images/m);
  for (const [name, row] of Object.entries(json.mnist.models)) {
    assert.ok(row.seconds > 0, name);
    // Robust accuracy counts images that are correct and survive every attack: never above clean.
    assert.ok(row.pgd.value <= row.clean.value && row.autoattack.value <= row.clean.value, `${name}: ${JSON.stringify(row)}`);
  }
  // The ensemble drew from three static plain models, none of them the transfer attacker plain-c.
  const ensemble = loadCheckpointSync(join(dir, 'runs', 'mnist-ensemble.safetensors'));
  const sources = (ensemble.config?.adversarial as { sources?: string[] } | undefined)?.sources;
  disposeCheckpoint(ensemble);
  assert.deepEqual(sources, ['plain-b', 'plain-d', 'plain-e']);
  // The plain row is its checkpoint's clean accuracy on the same 40 test images, measured again by advml eval.
  const again = runCli(['eval', '--model', join(dir, 'runs', 'mnist-plain.safetensors'), '--data', 'mnist', '--limit', '40', '--methods', 'fgsm', '--eps', '76.5', '--json', join(dir, 'plain.json'), '--no-audit']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((JSON.parse(readFileSync(join(dir, 'plain.json'), 'utf8')) as { clean: { top1: { value: number } } }).clean.top1.value, json.mnist.models.plain!.clean.value);
});

test('advml harden --resume reads the finished models back: the same figures, the training time carried over', { timeout: 300_000 }, () => {
  // Runs after the test above, on the checkpoints it wrote (node:test runs a file's tests in order).
  type Rows = Record<string, { clean: { value: number }; pgd: { value: number }; autoattack: { value: number }; seconds: number; collapses: string[] | null }>;
  const first = (JSON.parse(readFileSync(join(dir, 'hardening.json'), 'utf8')) as { mnist: { models: Rows } }).mnist.models;
  const out = join(dir, 'resumed.md');
  const r = runCli(['harden', '--datasets', 'mnist', '--recipes', 'pgd-at,fast-at', '--epochs', '1', '--train-images', '512', '--eval-images', '40', '--restarts', '1',
    '--queries', '50', '--out', out, '--checkpoints', join(dir, 'runs'), '--resume'], { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const again = (JSON.parse(readFileSync(join(dir, 'resumed.json'), 'utf8')) as { mnist: { models: Rows } }).mnist.models;
  assert.deepEqual(Object.keys(again), ['plain', 'pgd-at', 'fast-at']);
  for (const [name, row] of Object.entries(again)) {
    const before = first[name]!;
    assert.deepEqual([row.clean.value, row.pgd.value, row.autoattack.value, row.collapses], [before.clean.value, before.pgd.value, before.autoattack.value, before.collapses], name);
    // Reading a finished model back adds its load and save, not another training.
    assert.ok(row.seconds >= before.seconds && row.seconds < before.seconds + 5, `${name}: ${row.seconds} s after ${before.seconds} s`);
  }
});
