import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-transfer-'));
const a = join(dir, 'a.safetensors');
const b = join(dir, 'b.safetensors');
before(() => {
  writeMnistCheckpoint(a, 30, 1);
  writeMnistCheckpoint(b, 30, 7);
});

interface Cell { method: string; eps: number; source: string; target: string; sourceFooled: number; transferred: number; targetErrors: number; n: number; transferRate: { value: number } }

test('advml transfer: the source x target matrix with transfer and error rates', () => {
  const json = join(dir, 't.json');
  const r = runCli(['transfer', '--model', a, '--model', b, '--samples', '120', '--methods', 'fgsm,iter-ll', '--eps', '48', '--json', json]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /fgsm at eps 48: transfer rate %/);
  const { cells } = JSON.parse(readFileSync(json, 'utf8')) as { cells: Cell[] };
  assert.equal(cells.length, 8);
  for (const c of cells) {
    assert.equal(c.n, 120);
    assert.ok(c.transferred <= c.sourceFooled && c.targetErrors <= c.n);
    if (c.source === c.target) assert.equal(c.transferred, c.sourceFooled);
  }
  const cross = cells.find((c) => c.method === 'fgsm' && c.source === 'a' && c.target === 'b')!;
  assert.ok(cross.sourceFooled > 0, 'FGSM at eps 48 fools the source on some images');
  assert.ok(cross.transferRate.value > 0 && cross.transferRate.value <= 1);
});

test('advml transfer: option errors', () => {
  for (const [args, re] of [
    [['transfer', '--model', a], /at least two --model/],
    [['transfer', '--model', a, '--model', a], /model names must differ/],
    [['transfer', '--model', a, '--model', b, '--name', 'x'], /--name has 1 names for 2 models/],
  ] as [string[], RegExp][]) {
    const r = runCli(args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});
