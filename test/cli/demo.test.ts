import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

test('advml demo (tiny scale) trains both models and writes the table, the JSON and the chart report', () => {
  const out = mkdtempSync(join(tmpdir(), 'advml-demo-'));
  const r = runCli(['demo', '--out', out, '--train-images', '640', '--eval-images', '50', '--eps', '8,32'], { timeoutMs: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /^\| plain \| \d+ s \| [\d.]+ ± [\d.]+ \|/m);
  assert.match(md, /^\| adversarial \| \d+ s \|/m);
  assert.match(md, /\| fgsm 8 \| fgsm 32 \| step-ll 8 \|/);
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runs: { name: string; k: number; result: { images: number } }[] };
  assert.deepEqual(json.runs.map((x) => [x.name, x.k]), [['plain', 0], ['adversarial', 32]]);
  assert.equal(json.runs[0]!.result.images, 50);
  const html = readFileSync(join(out, 'report', 'index.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.doesNotMatch(html, /https?:\/\//);
  assert.ok(existsSync(join(out, 'plain.safetensors')) && existsSync(join(out, 'adversarial.safetensors')));
});
