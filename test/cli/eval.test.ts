import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-eval-'));
const ckpt = join(dir, 'mnist.safetensors');
before(() => writeMnistCheckpoint(ckpt));

interface Cell { method: string; eps: number; labelSource: string; top1: { value: number; low: number; high: number }; ratio: number; labelLeaking: boolean }

test('advml eval prints the grid and writes JSON with intervals, ratios and label sources', () => {
  const json = join(dir, 'eval.json');
  const r = runCli(['eval', '--model', ckpt, '--limit', '200', '--methods', 'fgsm,step-ll,random-sign', '--eps', '8,48', '--json', json]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^200 images\. clean top-1/m);
  assert.match(r.stdout, /^fgsm\s+48\s+true/m);
  assert.match(r.stderr, /"event":"eval","done":200,"total":200/);
  const out = JSON.parse(readFileSync(json, 'utf8')) as { images: number; clean: { top1: { value: number } }; cells: Cell[] };
  assert.equal(out.images, 200);
  assert.equal(out.cells.length, 6);
  const at = (m: string, e: number): Cell => out.cells.find((c) => c.method === m && c.eps === e)!;
  assert.equal(at('step-ll', 8).labelSource, 'leastLikely');
  assert.equal(at('random-sign', 8).labelSource, 'none');
  assert.ok(at('fgsm', 48).top1.value < at('fgsm', 8).top1.value);
  assert.ok(at('fgsm', 48).top1.value < at('random-sign', 48).top1.value);
  for (const c of out.cells) {
    assert.ok(c.top1.low <= c.top1.value && c.top1.value <= c.top1.high);
    assert.ok(Math.abs(c.ratio - c.top1.value / out.clean.top1.value) < 1e-12);
  }
});

test('advml eval rejects bad options by name', () => {
  for (const [args, re] of [
    [['eval', '--model', ckpt, '--methods', 'fgsm,xx'], /unknown method 'xx'/],
    [['eval', '--model', ckpt, '--eps', '8,'], /--eps value 2 must be a number in \[0, 255\] pixel values, got ''/],
    [['eval', '--model', ckpt, '--seed=-3'], /--seed must be a non-negative integer/],
    [['eval'], /--model is required/],
    [['eval', '--model', ckpt, '--precision', 'fp8'], /--precision must be one of fp32, bf16-autocast, auto/],
  ] as [string[], RegExp][]) {
    const r = runCli(args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('advml eval --suite autoattack: robust accuracy with its interval, what each attack broke, the audit', () => {
  const json = join(dir, 'suite.json');
  const r = runCli(['eval', '--model', ckpt, '--limit', '24', '--suite', 'autoattack', '--eps', '16,64', '--steps', '10', '--queries', '50', '--no-audit', '--json', json]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /suite autoattack \(apgd-ce, apgd-t, fab-t, square\), linf:/);
  const out = JSON.parse(readFileSync(json, 'utf8')) as {
    suite: { attacks: string[]; rows: { eps: number; n: number; robust: number; robustAccuracy: { value: number; low: number; high: number }; attacks: { attack: string; broken: number; attacked: number }[] }[] };
    audit: { checks: { id: string; status: string }[] };
  };
  assert.deepEqual(out.suite.attacks, ['apgd-ce', 'apgd-t', 'fab-t', 'square']);
  const [small, large] = out.suite.rows as [typeof out.suite.rows[number], typeof out.suite.rows[number]];
  for (const row of out.suite.rows) {
    assert.equal(row.n, 24);
    assert.equal(row.robustAccuracy.value, row.robust / row.n);
    assert.ok(row.robustAccuracy.low <= row.robustAccuracy.value && row.robustAccuracy.value <= row.robustAccuracy.high);
    // Each attack runs on what the previous ones left.
    row.attacks.forEach((a, k) => {
      if (k > 0) assert.equal(a.attacked, (row.attacks[k - 1] as { attacked: number; broken: number }).attacked - (row.attacks[k - 1] as { broken: number }).broken);
    });
  }
  assert.ok(large.robust < small.robust || large.robust === 0, `eps 64 robust ${large.robust} vs eps 16 ${small.robust}`);
  assert.ok(out.audit.checks.some((c) => c.id === 'accuracy-rises-with-eps'));
});
