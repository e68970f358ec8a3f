/**
 * --model with a foreign file: the contract from the card beside it, from
 * options over it, and refusals that name the file, the field or the option.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';
import { runCli } from '../helpers/cli.js';
import { PYTHON, hasTorch } from '../helpers/python.js';

const noTorch = !hasTorch() && 'the reference Python cannot import torch (scripts/setup.sh installs python3-torch)';
const dir = mkdtempSync(join(tmpdir(), 'advml-model-contract-'));
const pt = join(dir, 'mine.pt');
const bare = join(dir, 'bare.pt');
const ckpt = join(dir, 'mnist.safetensors');

before(() => {
  if (noTorch) return;
  const export_ = fileURLToPath(new URL('../../examples/export_torchscript.py', import.meta.url));
  for (const file of [pt, bare]) assert.equal(spawnSync(PYTHON, [export_, file]).status, 0);
  writeFileSync(join(dir, 'bare.card.json'), '{}');
  writeFileSync(join(dir, 'digits.txt'), Array.from({ length: 10 }, (_, i) => `digit ${i}`).join('\n') + '\n');
  writeMnistCheckpoint(ckpt);
});

test('advml info --model: the card, then options over it; classes counted from one pass', { skip: noTorch }, () => {
  const fromCard = runCli(['info', '--model', pt, '--json']);
  assert.equal(fromCard.status, 0, fromCard.stderr);
  const a = JSON.parse(fromCard.stdout) as { contract: { inputShape: number[]; classNames: string[]; inputRange: number[] }; selfCheck: { ok: boolean } };
  assert.deepEqual(a.contract.inputShape, [1, 28, 28]);
  assert.equal(a.contract.classNames[3], '3');
  assert.ok(a.selfCheck.ok);
  const over = runCli(['info', '--model', bare, '--input-size', '28', '--input-range', '0,255', '--class-names', join(dir, 'digits.txt'), '--json']);
  assert.equal(over.status, 0, over.stderr);
  const b = JSON.parse(over.stdout) as { contract: { inputShape: number[]; classes: number; classNames: string[]; inputRange: number[] } };
  assert.deepEqual(b.contract.inputShape, [1, 28, 28], 'one channel, from the first convolution');
  assert.deepEqual(b.contract.inputRange, [0, 255]);
  assert.equal(b.contract.classNames[9], 'digit 9');
  const counted = runCli(['info', '--model', bare, '--input-size', '28,28', '--json']);
  assert.equal((JSON.parse(counted.stdout) as { contract: { classes: number } }).contract.classes, 10);
});

test('refusals name the file, the field or the option', { skip: noTorch }, () => {
  writeFileSync(join(dir, 'odd.card.json'), '{"inputRange": [0, 1], "colour": "red"}');
  spawnSync('cp', [pt, join(dir, 'odd.pt')]);
  const cases: [string[], number, RegExp][] = [
    [['info', '--model', bare], 1, /bare\.pt: the input size is not known: give it \(--input-size H,W\) or write it into .*bare\.card\.json/],
    [['info', '--model', join(dir, 'odd.pt')], 1, /odd\.card\.json: unknown field colour/],
    [['info', '--model', bare, '--input-size', '28', '--input-range', '1,0'], 1, /bare\.pt: .*inputRange must be \[low, high\] with finite low < high, got \[1,0\]/],
    [['info', '--model', bare, '--input-size', '28', '--input-range', '0,0x10'], 2, /--input-range value 2/],
    [['info', '--model', bare, '--input-size', '28,28,3'], 2, /--input-size must be H,W or one size/],
    [['eval', '--model', ckpt, '--mean', '0.5'], 1, /carries its own input contract/],
    [['eval', '--model', pt, '--data', 'mnist', '--input-size', '32', '--limit', '8'], 1, /the evaluation data gives images of shape \[1, 28, 28\], the model takes \[1, 32, 32\]/],
  ];
  for (const [args, status, re] of cases) {
    const r = runCli(args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});
