/** Helpers of the tests that run `advml train` for real: a checkpoint's weights, the JSON log, a run killed with SIGKILL. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../../src/index.js';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** A checkpoint's step and weights, as plain numbers (deepEqual compares them bit for bit). */
export function weightsOf(path: string): { step: number; weights: Map<string, number[]> } {
  const c = loadCheckpointSync(path);
  try {
    return { step: c.step ?? 0, weights: new Map([...c.weights].map(([k, v]) => [k, Array.from((v as Tensor).dataSync() as Float32Array)])) };
  } finally {
    disposeCheckpoint(c);
  }
}

/** The events of a run's train.jsonl. */
export function events(out: string): { type: string; [k: string]: unknown }[] {
  return readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
}

/**
 * Starts `node dist/cli/main.js ARGS` (train with --json, or launch) and kills
 * its whole process group with SIGKILL after the first checkpoint at a step of
 * at least `afterStep`; resolves to that step (-1 when it never came).
 */
export function startAndKill(args: string[], afterStep = 4): Promise<number> {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let killedAfter = -1;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = /"type":"checkpoint","step":(\d+)/.exec(line);
    if (m && Number(m[1]) >= afterStep && killedAfter < 0) {
      killedAfter = Number(m[1]);
      // The whole process group: under launch, the launcher and both workers.
      process.kill(-(child.pid as number), 'SIGKILL');
    }
  });
  return new Promise((resolve) => child.on('exit', () => resolve(killedAfter)));
}
