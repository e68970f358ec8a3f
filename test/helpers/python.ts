/** Runs a committed reference script with Debian's Python and PyTorch. */
import { spawnSync } from 'node:child_process';

export const PYTHON = process.env.ADVML_PYTHON ?? '/usr/bin/python3';

let torchChecked: boolean | undefined;

/** True when the reference Python has torch (scripts/setup.sh installs python3-torch). */
export function hasTorch(): boolean {
  torchChecked ??= spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  return torchChecked;
}

/** Runs `script` with `args`, feeding `input` on stdin; returns stdout, throwing with stderr on failure. */
export function runPython(script: string, args: string[] = [], input = ''): string {
  const r = spawnSync(PYTHON, [script, ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
