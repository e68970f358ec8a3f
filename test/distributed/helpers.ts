/** Spawning ranks of test/distributed/worker.ts over loopback, and reading their results. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/distributed/launcher.js';

/** The worker script and how to run it (tsx, as the tests themselves run). */
export const workerScript = fileURLToPath(new URL('./worker.ts', import.meta.url));
export const workerArgs = (scenario: string): string[] => ['--import', 'tsx', workerScript, scenario];

export interface RankRun {
  rank: number;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the rank has printed `marker` on a line of its stdout. */
  printed(marker: string): Promise<void>;
}

/**
 * Starts `n` ranks of the worker on 127.0.0.1 at a port free now, each with
 * one libtorch thread. A safety timer kills them all after `killAfterMs`.
 */
export async function spawnRanks(n: number, scenario: string, env: Record<string, string> = {}, killAfterMs = 60_000): Promise<RankRun[]> {
  const port = await freePort();
  const runs: RankRun[] = [];
  for (let rank = 0; rank < n; rank++) {
    const child = spawn(process.execPath, workerArgs(scenario), {
      env: {
        ...process.env, ADVML_NUM_THREADS: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
        WORLD_SIZE: String(n), RANK: String(rank), LOCAL_RANK: String(rank), ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: RankRun = {
      rank, child, stdout: '', stderr: '',
      exited: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
      printed: (marker) => new Promise((resolve, reject) => {
        const check = (): boolean => run.stdout.split('\n').includes(marker);
        if (check()) return resolve();
        const onData = (): void => {
          if (check()) {
            child.stdout?.off('data', onData);
            resolve();
          }
        };
        child.stdout?.on('data', onData);
        child.once('close', () => (check() ? resolve() : reject(new Error(`rank ${rank} ended without printing ${marker}:\n${run.stderr}`))));
      }),
    };
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => (run.stdout += s));
    child.stderr?.on('data', (s: string) => (run.stderr += s));
    runs.push(run);
  }
  const timer = setTimeout(() => runs.forEach((r) => r.child.kill('SIGKILL')), killAfterMs);
  void Promise.all(runs.map((r) => r.exited)).then(() => clearTimeout(timer));
  return runs;
}

/** The JSON a worker printed as `RESULT {...}`. */
export function resultOf<T>(stdout: string, who = 'worker'): T {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`${who} printed no RESULT line; stdout was:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as T;
}

/** A nested array of numbers, as Tensor.toArray() gives. */
export type Nested = number | Nested[];

/** Elementwise combination of same-shaped nested arrays. */
export function zipWith(arrays: Nested[], f: (xs: number[]) => number): Nested {
  const first = arrays[0] as Nested;
  if (typeof first === 'number') return f(arrays as number[]);
  return first.map((_, i) => zipWith(arrays.map((a) => (a as Nested[])[i] as Nested), f));
}

/** Asserts two nested arrays are equal within a relative tolerance. */
export function close(actual: unknown, expected: Nested, rtol: number, path = ''): void {
  if (typeof expected === 'number') {
    if (typeof actual !== 'number' || Math.abs(actual - expected) > rtol * Math.max(1, Math.abs(expected))) {
      throw new Error(`${path || 'value'}: expected ${expected}, got ${JSON.stringify(actual)}`);
    }
    return;
  }
  if (!Array.isArray(actual) || actual.length !== expected.length) {
    throw new Error(`${path || 'value'}: expected an array of ${expected.length}, got ${JSON.stringify(actual)}`);
  }
  expected.forEach((e, i) => close(actual[i], e, rtol, `${path}[${i}]`));
}
