/**
 * Equivalence: N processes with M/N examples each reach the weights of one
 * process with the whole batch, for several steps of adversarial training of a
 * model with batch norm (synchronised), and every rank holds identical
 * weights after every step. Without synchronised batch norm, the ranks still
 * hold one model between steps (rank 0's buffers), which the sharded held-out
 * evaluation relies on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, scope } from '../../src/index.js';
import { launch } from '../../src/distributed/launcher.js';
import { disposeCheckpoint, loadCheckpointSync, loadSafetensorsSync } from '../../src/io/index.js';

const worker = fileURLToPath(new URL('./dp-worker.ts', import.meta.url));
const heldOutWorker = fileURLToPath(new URL('./dp-heldout-worker.ts', import.meta.url));
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

/** Runs the held-out worker on 2 processes; its RESULT lines by rank. */
async function runHeldOutWorker(args: string[] = []): Promise<{ rank: number; bufferSpread: number; heldOuts: unknown[]; alone: unknown }[]> {
  const lines: string[] = [];
  const r = await launch({ command: process.execPath, args: ['--import', 'tsx', heldOutWorker, ...args], nprocPerNode: 2, threadsPerWorker: 1, onOutput: (l) => lines.push(l.text) });
  assert.equal(r.ok, true, lines.join('\n'));
  const results = lines.filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)) as Awaited<ReturnType<typeof runHeldOutWorker>>[0]);
  assert.equal(results.length, 2, lines.join('\n'));
  return results.sort((a, b) => a.rank - b.rank);
}

test('without synchronised batch norm every rank holds rank 0\'s buffers after each step, and the held-out evaluation is sharded', { timeout: 120_000 }, async () => {
  const results = await runHeldOutWorker();
  const [lead, other] = results as [typeof results[0], typeof results[0]];
  // The batch statistics of the two halves differ, so without the broadcast the running statistics would too.
  for (const x of results) assert.equal(x.bufferSpread, 0, `rank ${x.rank}: buffers differ across ranks by ${x.bufferSpread}`);
  // Held out after steps 2, 4 and 6 (the last step's evaluation is also the final one), the same figures on both ranks (each evaluated half the images).
  assert.equal(lead.heldOuts.length, 3);
  assert.deepEqual(other.heldOuts, lead.heldOuts);
  // The sharded figures are those of rank 0's model evaluated alone on every image.
  assert.deepEqual(lead.heldOuts.at(-1), lead.alone);
});

test('without synchronised batch norm a run stopped after 3 steps and resumed ends with the weights and buffers of one that never stopped', { timeout: 180_000 }, async () => {
  const straight = join(dir, 'straight.safetensors');
  const resumed = join(dir, 'resumed.safetensors');
  await runHeldOutWorker(['--checkpoint', straight]);
  await runHeldOutWorker(['--checkpoint', resumed, '--steps', '3']);
  await runHeldOutWorker(['--checkpoint', resumed, '--resume']);
  const [a, b] = [loadCheckpointSync(straight), loadCheckpointSync(resumed)];
  try {
    assert.equal(b.step, a.step);
    assert.deepEqual([...b.weights.keys()], [...a.weights.keys()]);
    scope(() => {
      for (const [k, v] of a.weights) assert.equal(v.sub(b.weights.get(k) as Tensor).abs().max().item(), 0, `${k} differs after resuming`);
    });
  } finally {
    disposeCheckpoint(a);
    disposeCheckpoint(b);
  }
});
