import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

test('advml reproduce (tiny scale) writes the four findings with verdicts, tables and timings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-repro-'));
  const out = join(dir, 'results.md');
  const r = runCli(['reproduce', '--datasets', 'mnist', '--train-images', '640', '--eval-images', '48', '--eps', '8,24', '--out', out, '--checkpoints', join(dir, 'models')], { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(out, 'utf8');
  assert.match(md, /^# Results: the paper's four findings/m);
  assert.match(md, /Produced by `advml reproduce --datasets mnist --train-images 640 --eval-images 48 --eps 8,24 --out .* --checkpoints .*` in [\d.]+ minutes/);
  assert.match(md, /^## MNIST$/m);
  for (let i = 1; i <= 4; i++) assert.match(md, new RegExp(`^${i}\\. .*: \\*\\*(reproduced|not reproduced)\\*\\*`, 'm'));
  assert.match(md, /^\| plain \| [\d.]+ ± [\d.]+ \|/m);
  assert.match(md, /^- \*\*fgsm-true\*\*: FGSM \(true label\) adversarial training at eps 24; trained in \d+ s\./m);
  const json = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { mnist: { findings: Record<string, boolean> } };
  assert.deepEqual(Object.keys(json.mnist.findings), ['f1', 'f2', 'f3', 'f4']);
  // The step-l.l. model's audit, every check listed with a status and its evidence.
  assert.match(md, /^### Gradient-masking audit of the step-l\.l\. model$/m);
  for (const id of ['randomized', 'softmax-output', 'zero-gradients', 'iterative-weaker', 'black-box-stronger', 'accuracy-rises-with-eps', 'unbounded-not-chance', 'more-steps-help', 'label-leaking', 'random-step-stronger']) {
    assert.match(md, new RegExp(`^\\| ${id} \\| (\\*\\*fired\\*\\*|passed|not-run) \\| .+ \\|$`, 'm'), id);
  }
  assert.ok(existsSync(join(dir, 'models', 'mnist-step-ll.safetensors')));
});
