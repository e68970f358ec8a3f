/**
 * Resumption with real processes: a run killed with SIGKILL and resumed, and
 * a run stopped with SIGTERM and resumed, end with exactly the weights of a
 * run that never stopped. A corrupt checkpoint on resume is refused and left
 * as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Tensor, scope } from '../../src/index.js';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';
import { runCli } from '../helpers/cli.js';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'advml-resume-'));
const ARGS = ['train', '--steps', '40', '--limit', '2560', '--checkpoint-every', '8', '--eval-images', '100', '--json', '--seed', '3'];

/** Starts a training process and calls `onEvent` for each JSON event it prints; resolves with its exit code and signal. */
function start(out: string, extra: string[], onEvent: (e: { type: string; step?: number }, kill: (s: NodeJS.Signals) => void) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [main, ...ARGS, '--out', out, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      onEvent(JSON.parse(line) as { type: string; step?: number }, (s) => child.kill(s));
    } catch {
      // Non-JSON lines (the final summary) are not events.
    }
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

function weightsOf(path: string): Map<string, Float32Array | BigInt64Array> {
  const c = loadCheckpointSync(path);
  const out = new Map([...c.weights].map(([k, v]) => [k, (v as Tensor).dataSync() as Float32Array]));
  assert.equal(c.step, 40);
  disposeCheckpoint(c);
  return out;
}

const reference = join(dir, 'reference');

test('an uninterrupted reference run', () => {
  const r = runCli([...ARGS, '--out', reference]);
  assert.equal(r.status, 0, r.stderr);
});

test('kill -9 during training, then --resume: the same weights as the run that never stopped', async () => {
  const out = join(dir, 'killed');
  let killedAfter = -1;
  const first = await start(out, [], (e, kill) => {
    if (e.type === 'checkpoint' && (e.step ?? 0) >= 16 && killedAfter < 0) {
      killedAfter = e.step as number;
      kill('SIGKILL');
    }
  });
  assert.equal(first.signal, 'SIGKILL');
  assert.ok(killedAfter >= 16 && killedAfter < 40);
  let resumedAt = -1;
  const second = await start(out, ['--resume'], (e) => {
    if (e.type === 'resume') resumedAt = e.step as number;
  });
  assert.equal(second.code, 0);
  assert.ok(resumedAt >= killedAfter, `resumed at ${resumedAt}, last checkpoint seen at ${killedAfter}`);
  const a = weightsOf(join(reference, 'checkpoint.safetensors'));
  const b = weightsOf(join(out, 'checkpoint.safetensors'));
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${k} differs after kill -9 and resume`);
});

test('SIGTERM writes a checkpoint and exits; --resume finishes with the same weights', async () => {
  const out = join(dir, 'term');
  let sent = false;
  const first = await start(out, ['--checkpoint-every', '0'], (e, kill) => {
    if (e.type === 'step' && (e.step ?? 0) === 13 && !sent) {
      sent = true;
      kill('SIGTERM');
    }
  });
  assert.equal(first.code, 143);
  const c = loadCheckpointSync(join(out, 'checkpoint.safetensors'));
  assert.ok((c.step as number) >= 13 && (c.step as number) < 40, `checkpoint at step ${c.step}`);
  disposeCheckpoint(c);
  const second = await start(out, ['--resume', '--checkpoint-every', '0'], () => {});
  assert.equal(second.code, 0);
  const a = weightsOf(join(reference, 'checkpoint.safetensors'));
  const b = weightsOf(join(out, 'checkpoint.safetensors'));
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${k} differs after SIGTERM and resume`);
});

test('a corrupt checkpoint on resume is refused with a clear error and left untouched', () => {
  const out = join(dir, 'corrupt');
  const src = readFileSync(join(reference, 'checkpoint.safetensors'));
  src[src.length - 3] = (src[src.length - 3] as number) ^ 0x55;
  runCli(['train', '--out', out, '--steps', '1', '--limit', '64']);
  const path = join(out, 'checkpoint.safetensors');
  writeFileSync(path, src);
  const r = runCli([...ARGS, '--out', out, '--resume']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /checkpoint .*checkpoint\.safetensors: its record or tensors do not match the checksum/);
  assert.deepEqual(readFileSync(path), src);
  const other = runCli([...ARGS, '--out', reference, '--resume', '--lambda', '0.9']);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /written by a run with other settings/);
  scope(() => undefined);
});
