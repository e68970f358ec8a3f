/**
 * A user's own TorchScript model hardened data-parallel: `advml launch` with
 * two processes over loopback trains a PyTorch-exported CNN (batch norm,
 * dropout) with Algorithm 1, hands it back as .pt, and a run stopped halfway
 * and resumed ends with exactly the weights, buffers and optimizer state of
 * one that never stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSafetensorsSync } from '../../src/io/index.js';
import { runCli } from '../helpers/cli.js';
import { PYTHON, hasTorch } from '../helpers/python.js';

const noTorch = !hasTorch() && 'the reference Python cannot import torch (scripts/setup.sh installs python3-torch)';

test('launch -- train --init model.pt: two processes, handed back as .pt, stop and resume exact', { skip: noTorch, timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-foreign-dp-'));
  try {
    const pt = join(dir, 'mine.pt');
    const exported = spawnSync(PYTHON, [fileURLToPath(new URL('../../examples/export_torchscript.py', import.meta.url)), pt], { encoding: 'utf8' });
    assert.equal(exported.status, 0, exported.stderr);
    const train = (out: string, steps: number, resume = false): void => {
      const args = ['launch', '--nproc-per-node', '2', '--threads', '1', '--', 'train', '--init', pt, '--out', out, '--steps', String(steps),
        '--batch', '32', '--limit', '640', '--eval-images', '64', '--seed', '3', '--json', ...(resume ? ['--resume'] : [])];
      const r = runCli(args, { timeoutMs: 240_000 });
      assert.equal(r.status, 0, `${args.join(' ')}\n${r.stderr}`);
    };
    const whole = join(dir, 'whole');
    const halves = join(dir, 'halves');
    train(whole, 6);
    train(halves, 3);
    train(halves, 6, true);
    assert.ok(existsSync(join(whole, 'model.pt')) && existsSync(join(whole, 'model.card.json')), 'the model is handed back');
    const a = loadSafetensorsSync(join(whole, 'checkpoint.safetensors')).tensors;
    const b = loadSafetensorsSync(join(halves, 'checkpoint.safetensors')).tensors;
    assert.deepEqual([...b.keys()], [...a.keys()]);
    assert.ok([...a.keys()].some((k) => k.includes('running_mean')) && [...a.keys()].some((k) => k.startsWith('optimizer')), 'buffers and optimizer state are compared too');
    for (const [k, t] of a) {
      assert.deepEqual(Buffer.from((b.get(k)!.dataSync() as Uint8Array).buffer), Buffer.from((t.dataSync() as Uint8Array).buffer), `${k} differs after stop and resume`);
    }
    // PyTorch reads the handed-back file.
    const load = spawnSync(PYTHON, ['-c', 'import sys, torch; torch.jit.load(sys.argv[1])', join(whole, 'model.pt')], { encoding: 'utf8' });
    assert.equal(load.status, 0, load.stderr);
    for (const t of [...a.values(), ...b.values()]) t.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
