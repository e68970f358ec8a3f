import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

interface Interval { value: number; low: number; high: number }
interface Cell { method: string; eps: number; top1: Interval; labelLeaking: boolean; aboveClean: boolean }
interface Result { clean: { top1: Interval; counts: { top1: number } }; cells: Cell[] }
interface Transfer { method: string; eps: number; source: string; target: string; n: number; transferRate: { value: number | null } }
interface Results { plain: Result; stepLL: Result; fgsmTrue: Result; labelLeak: Result; transfer: Transfer[]; findings: Record<string, boolean> }

/** The four criteria of docs/results.md, applied to the recorded figures. */
function judge(r: Results, eps: number[]): Record<'f1' | 'f2' | 'f3' | 'f4', boolean> {
  const cell = (x: Result, m: string, e: number): Cell => x.cells.find((c) => c.method === m && c.eps === e)!;
  const gain = (m: string, e: number): number => cell(r.stepLL, m, e).top1.value - cell(r.plain, m, e).top1.value;
  const rate = (m: string, e: number): number => r.transfer.find((c) => c.method === m && c.eps === e && c.source === 'plain' && c.target === 'plain-b')!.transferRate.value ?? NaN; // JSON writes NaN (no image fooled) as null
  const top = eps[eps.length - 1]!;
  return {
    f1: eps.some((e) => cell(r.stepLL, 'step-ll', e).top1.low > cell(r.plain, 'step-ll', e).top1.high) && r.plain.clean.top1.value - r.stepLL.clean.top1.value <= 0.015,
    f2: gain('basic-iter', top) < gain('step-ll', top),
    f3: eps.every((e) => rate('fgsm', e) >= rate('iter-ll', e)) && eps.filter((e) => rate('fgsm', e) > rate('basic-iter', e)).length >= eps.length / 2,
    f4: cell(r.labelLeak, 'fgsm', 128).labelLeaking && !eps.some((e) => cell(r.stepLL, 'step-ll', e).aboveClean),
  };
}

test('advml reproduce (tiny scale) writes the four findings with verdicts, tables and timings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-repro-'));
  const out = join(dir, 'results.md');
  const r = runCli(['reproduce', '--datasets', 'mnist', '--train-images', '640', '--eval-images', '48', '--eps', '8,24', '--out', out, '--checkpoints', join(dir, 'models')], { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(out, 'utf8');
  assert.match(md, /^# Results: the paper's four findings/m);
  assert.match(md, /Produced by `advml reproduce --datasets mnist --train-images 640 --eval-images 48 --eps 8,24 --out .* --checkpoints .*` in [\d.]+ minutes/);
  assert.match(md, /^## MNIST$/m);
  assert.match(md, /^\| plain \| [\d.]+ ± [\d.]+ \|/m);
  assert.match(md, /^- \*\*fgsm-true\*\*: FGSM \(true label\) adversarial training, every example adversarial \(k = m = 64, lambda 1\) at eps 128; trained in \d+ s\./m);
  const json = (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { mnist: Results }).mnist;
  assert.deepEqual(Object.keys(json.findings), ['f1', 'f2', 'f3', 'f4']);
  // Each verdict is the one its criterion gives on the figures the JSON records, and the Markdown says the same.
  const expected = judge(json, [8, 24]);
  assert.deepEqual(json.findings, expected);
  for (let i = 1; i <= 4; i++) {
    const verdict = expected[`f${i}` as keyof typeof expected] ? 'reproduced' : 'not reproduced';
    assert.match(md, new RegExp(`^${i}\\. .*: \\*\\*${verdict}\\*\\*`, 'm'), `finding ${i}`);
  }
  // The transfer finding counts only images both plain models classify correctly.
  const plainWrong = 48 - json.plain.clean.counts.top1;
  for (const c of json.transfer) assert.ok(c.n <= 48 - (c.source === 'plain' || c.target === 'plain' ? plainWrong : 0), `${c.source}>${c.target}: ${c.n}`);
  // The step-l.l. model's audit, every check listed with a status and its evidence.
  assert.match(md, /^### Gradient-masking audit of the step-l\.l\. model$/m);
  for (const id of ['randomized', 'softmax-output', 'zero-gradients', 'iterative-weaker', 'black-box-stronger', 'accuracy-rises-with-eps', 'unbounded-not-chance', 'more-steps-help', 'label-leaking', 'random-step-stronger']) {
    assert.match(md, new RegExp(`^\\| ${id} \\| (\\*\\*fired\\*\\*|passed|not-run) \\| .+ \\|$`, 'm'), id);
  }
  assert.ok(existsSync(join(dir, 'models', 'mnist-step-ll.safetensors')));
});
