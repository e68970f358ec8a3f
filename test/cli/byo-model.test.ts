/**
 * The README's "Bring your own model" commands, run as written (npx advml as
 * the built CLI, python3 as Debian's): a TorchScript model exported by
 * PyTorch is evaluated, hardened with Algorithm 1 and handed back as a .pt
 * that PyTorch loads and that advml scores better than the untrained one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { PYTHON, hasTorch } from '../helpers/python.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const noTorch = !hasTorch() && 'the reference Python cannot import torch (scripts/setup.sh installs python3-torch)';

/** The commands of the README's fenced block marked for this test. */
function readmeCommands(): string[][] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const m = /<!-- byo:[^>]*-->\s*```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'the README has the marked "Bring your own model" block');
  return m[1]!.trim().split('\n').map((line) => line.replace(/#.*$/, '').trim().split(/\s+/));
}

test('README: export a TorchScript model, advml eval, advml train --init: the model comes back trained', { skip: noTorch, timeout: 300_000 }, () => {
  const cwd = mkdtempSync(join(tmpdir(), 'advml-byo-'));
  try {
    const commands = readmeCommands();
    assert.deepEqual(commands.map((c) => c.slice(0, 2).join(' ')), ['python3 examples/export_torchscript.py', 'npx advml', 'npx advml']);
    const outputs: string[] = [];
    for (const cmd of commands) {
      let r;
      if (cmd[0] === 'python3') {
        const p = spawnSync(PYTHON, [join(root, cmd[1]!), ...cmd.slice(2)], { cwd, encoding: 'utf8' });
        r = { status: p.status, stdout: p.stdout, stderr: p.stderr };
      } else {
        r = runCli(cmd.slice(2), { cwd, timeoutMs: 280_000 });
      }
      assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stderr}`);
      outputs.push(r.stdout);
    }
    const clean = (out: string): number => Number(/clean top-1\s+([\d.]+)/.exec(out)![1]);
    const before = clean(outputs[1]!);
    assert.match(outputs[1]!, /^iter-ll\s+32\s/m, 'eval printed the grid');
    const handedBack = join(cwd, 'runs', 'mine', 'model.pt');
    assert.ok(existsSync(handedBack) && existsSync(join(cwd, 'runs', 'mine', 'model.card.json')));
    // PyTorch loads what advml wrote; advml scores it well above the untrained model.
    const load = spawnSync(PYTHON, ['-c', 'import sys, torch; m = torch.jit.load(sys.argv[1]); print(sum(p.numel() for p in m.parameters()))', handedBack], { encoding: 'utf8' });
    assert.equal(load.status, 0, load.stderr);
    const after = runCli(['eval', '--model', handedBack, '--limit', '1000', '--methods', 'fgsm', '--eps', '8'], { cwd });
    assert.equal(after.status, 0, after.stderr);
    assert.ok(clean(after.stdout) > Math.max(80, before + 30), `clean accuracy went from ${before}% to ${clean(after.stdout)}%`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
