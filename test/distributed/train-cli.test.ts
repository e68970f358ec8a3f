/**
 * Data-parallel training through the CLI: advml launch runs advml train on 2
 * processes; and the kill test: kill -9 one worker of a group of 3, the others
 * stop with a clear error in bounded time, and --resume completes the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorkers } from '../../src/distributed/launcher.js';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';
import { runCli } from '../helpers/cli.js';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'advml-dp-cli-'));
const TRAIN = ['train', '--limit', '1536', '--batch', '32', '--k', '16', '--eval-images', '64', '--checkpoint-every', '4', '--json', '--seed', '2'];

const stepOf = (path: string): number => {
  const c = loadCheckpointSync(path);
  const s = c.step as number;
  disposeCheckpoint(c);
  return s;
};

test('advml launch --nproc-per-node 2 -- train: one checkpoint, written by rank 0, with every rank\'s generators', () => {
  const out = join(dir, 'two');
  const r = runCli(['launch', '--nproc-per-node', '2', '--', ...TRAIN, '--steps', '8', '--sync-bn', '--out', out], { timeoutMs: 180_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /\[rank 0\] trained 8 steps/);
  assert.doesNotMatch(r.stdout, /\[rank 1\] trained/);
  const c = loadCheckpointSync(join(out, 'checkpoint.safetensors'));
  assert.equal(c.step, 8);
  assert.deepEqual(Object.keys(c.rng ?? {}).sort(), ['attack.0', 'attack.1', 'dropout.0', 'dropout.1', 'eps.0', 'eps.1']);
  disposeCheckpoint(c);
});

test('kill -9 one of 3 workers: the others stop with an error naming the failure; --resume completes the run', { timeout: 240_000 }, async () => {
  const out = join(dir, 'three');
  const lines: string[] = [];
  let killed = false;
  const group = await startWorkers({
    command: process.execPath, args: [main, ...TRAIN, '--steps', '12', '--out', out], nprocPerNode: 3, threadsPerWorker: 1, graceMs: 20_000,
    env: { ...process.env, ADVML_DIST_TIMEOUT_MS: '30000' },
    onOutput: (l) => {
      lines.push(`[${l.rank}] ${l.text}`);
      if (!killed && l.rank === 0 && /"type":"checkpoint","step":(4|8)\b/.test(l.text)) {
        killed = true;
        process.kill(group.pids[1] as number, 'SIGKILL');
      }
    },
  });
  const t0 = Date.now();
  const result = await group.result;
  assert.ok(killed, `no checkpoint seen:\n${lines.join('\n')}`);
  assert.equal(result.ok, false);
  assert.equal(result.failed?.rank, 1);
  assert.equal(result.failed?.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 60_000, 'the group stopped in bounded time');
  const saved = stepOf(join(out, 'checkpoint.safetensors'));
  assert.ok(saved >= 4 && saved < 12, `checkpoint at step ${saved}`);
  const r = runCli(['launch', '--nproc-per-node', '3', '--', ...TRAIN, '--steps', '12', '--out', out, '--resume'], { timeoutMs: 180_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`"type":"resume","step":${saved}`));
  assert.equal(stepOf(join(out, 'checkpoint.safetensors')), 12);
});
