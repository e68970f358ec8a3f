/**
 * The launcher: starts the worker processes of a data-parallel job on this
 * machine with the environment {@link initProcessGroup} reads (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR,
 * MASTER_PORT; the same variables as `torchrun`), relays their output line by
 * line, and supervises them: when one worker fails (a non-zero exit code or a
 * signal), the others get SIGTERM and, after a grace period, SIGKILL, and the
 * result names the rank that failed and how.
 *
 * `advml launch` (src/cli/launch.ts) is a thin wrapper over {@link launch};
 * the functions here run any command, so they can be tested with tiny scripts.
 * The library never prints: output and events go to callbacks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';

/** One line a worker wrote (without its line break). */
export interface OutputLine {
  /** Global rank of the worker. */
  rank: number;
  /** Rank among this machine's workers. */
  localRank: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

/** What happened to one worker. */
export interface WorkerExit {
  rank: number;
  localRank: number;
  /** Process id; 0 when the process could not be started. */
  pid: number;
  /** Exit code, or null when a signal ended the process (or it never started). */
  code: number | null;
  /** The signal that ended the process, or null. */
  signal: NodeJS.Signals | null;
  /** True when the launcher had sent it a signal (stopping after a failure or an interrupt) before it ended. */
  stoppedByLauncher: boolean;
  /** Set when the process could not be started (spawn error). */
  spawnError?: string;
  /** "exit code 3", "signal SIGKILL", "could not start: ...". */
  description: string;
  /**
   * The last lines (up to {@link STDERR_TAIL_LINES}, blank ones left out) the
   * worker wrote to stderr, usually its own error message; set once its
   * output is drained, when `stdio` is `'pipe'`.
   */
  stderrTail?: string[];
}

/** How many of a worker's last stderr lines {@link WorkerExit.stderrTail} keeps. */
export const STDERR_TAIL_LINES = 5;

/** Events of a launch, in order, for progress displays and logs. */
export type LaunchEvent =
  | { type: 'start'; rank: number; localRank: number; pid: number }
  | { type: 'exit'; worker: WorkerExit }
  /** The first worker to fail; the others are being stopped. */
  | { type: 'failure'; worker: WorkerExit }
  /** The launcher sends `signal` to the worker (forwarding, stopping, or killing after the grace period). */
  | { type: 'signal'; rank: number; signal: NodeJS.Signals };

/** Options of {@link startWorkers} and {@link launch}. */
export interface LaunchOptions {
  /** Executable each worker runs (for advml commands: `process.execPath`). */
  command: string;
  /** Its arguments. Default none. */
  args?: readonly string[];
  /** Workers to start on this machine (at least 1). */
  nprocPerNode: number;
  /** Machines in the job (default 1). Each runs its own launcher with the same options but its own `nodeRank`. */
  nnodes?: number;
  /** This machine's index in [0, nnodes) (default 0); ranks `nodeRank * nprocPerNode + localRank` run here. */
  nodeRank?: number;
  /** Address of the machine running global rank 0 (default `'127.0.0.1'`; required when nnodes > 1). */
  masterAddr?: string;
  /** Rendezvous port on that machine (default: a free port on 127.0.0.1; required when nnodes > 1). */
  masterPort?: number;
  /** Base environment of the workers (default `process.env`); the launcher's variables are added to it. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Working directory of the workers (default: the launcher's). */
  cwd?: string;
  /**
   * Intra-op threads per worker, passed as ADVML_NUM_THREADS unless the base
   * environment sets it. Default: this machine's cores divided by nprocPerNode
   * (at least 1), so the workers do not oversubscribe the cores.
   */
  threadsPerWorker?: number;
  /**
   * `'pipe'` (default): each output line goes to `onOutput` (dropped without it);
   * `'inherit'`: workers write straight to the launcher's stdout and stderr.
   */
  stdio?: 'pipe' | 'inherit';
  /** Receives each line the workers write, when `stdio` is `'pipe'`. */
  onOutput?: (line: OutputLine) => void;
  /** Receives start, exit, failure and signal events. */
  onEvent?: (event: LaunchEvent) => void;
  /** Milliseconds between SIGTERM and SIGKILL when stopping workers (default 5000). */
  graceMs?: number;
}

/** The outcome of a launch, once every worker has ended. */
export interface LaunchResult {
  /** True when every worker exited with code 0 and no interrupt came. */
  ok: boolean;
  /**
   * The exit code the launcher should end with: 0 when ok; else the failed
   * worker's exit code, or 128 + the signal number when a signal ended it;
   * for an interrupt without a failure, 128 + the interrupting signal's number.
   */
  exitCode: number;
  /** The first worker that failed (the cause; the others were stopped), or null. */
  failed: WorkerExit | null;
  /** The signal forwarded by {@link WorkerGroup.signal} (SIGINT, SIGTERM), if any came. */
  interrupted: NodeJS.Signals | null;
  /** Every worker, in local rank order. */
  workers: WorkerExit[];
  masterAddr: string;
  masterPort: number;
  worldSize: number;
}

/** "exit code 3", "signal SIGKILL", or "exit code 0". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `signal ${signal}`;
  return `exit code ${code ?? 'unknown'}`;
}

function signalNumber(sig: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number | undefined>)[sig] ?? 1;
}

/** A TCP port that was free on `host` a moment ago (bound to port 0, then released). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error(`freePort: no port from ${host}`))));
    });
  });
}

function checkInt(what: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    throw new RangeError(`${what} must be ${range}, got ${String(value)}`);
  }
  return value;
}

/** @internal A worker process as the launcher tracks it. */
export interface WorkerState {
  rank: number;
  localRank: number;
  child: ChildProcess;
  exit: WorkerExit | null;
  signalled: boolean;
  spawnError?: string;
  /** Its last stderr lines, when piped. */
  stderrTail?: string[];
}

/**
 * A running set of workers. {@link result} resolves when all have ended;
 * {@link signal} forwards an interrupt.
 */
export class WorkerGroup {
  /** Process ids in local rank order (0 for a worker that could not start). */
  readonly pids: number[];
  /** The rendezvous address and port the workers were given. */
  readonly masterAddr: string;
  readonly masterPort: number;
  readonly worldSize: number;
  /** Resolves once every worker has ended and its output is drained. Never rejects. */
  readonly result: Promise<LaunchResult>;
  private readonly workers: WorkerState[];
  private readonly graceMs: number;
  private readonly onEvent: (event: LaunchEvent) => void;
  private failed: WorkerExit | null = null;
  private interrupted: NodeJS.Signals | null = null;
  private stopping = false;
  private killTimer: NodeJS.Timeout | null = null;

  /** @internal Use {@link startWorkers}. */
  constructor(workers: WorkerState[], info: { masterAddr: string; masterPort: number; worldSize: number; graceMs: number },
    onEvent: (event: LaunchEvent) => void, closed: Promise<void>[]) {
    this.workers = workers;
    this.pids = workers.map((w) => w.child.pid ?? 0);
    this.masterAddr = info.masterAddr;
    this.masterPort = info.masterPort;
    this.worldSize = info.worldSize;
    this.graceMs = info.graceMs;
    this.onEvent = onEvent;
    this.result = Promise.all(closed).then(() => this.finish());
  }

  /**
   * Forwards `sig` (SIGINT or SIGTERM, as the launcher received it) to every
   * live worker; any still alive after the grace period get SIGKILL. The
   * launch then counts as interrupted, not failed.
   */
  signal(sig: NodeJS.Signals): void {
    if (!this.interrupted && !this.failed) this.interrupted = sig;
    this.stopAll(sig);
  }

  /** @internal Called when a worker has exited (or could not start). */
  workerEnded(w: WorkerState, code: number | null, signal: NodeJS.Signals | null): void {
    if (w.exit) return;
    const description = w.spawnError ? `could not start: ${w.spawnError}` : describeExit(code, signal);
    w.exit = {
      rank: w.rank, localRank: w.localRank, pid: w.child.pid ?? 0, code, signal,
      stoppedByLauncher: w.signalled, description, ...(w.spawnError ? { spawnError: w.spawnError } : {}),
    };
    this.onEvent({ type: 'exit', worker: w.exit });
    const bad = w.spawnError !== undefined || code !== 0 || signal !== null;
    if (bad && !this.stopping) {
      this.failed = w.exit;
      this.onEvent({ type: 'failure', worker: w.exit });
      this.stopAll('SIGTERM');
    }
    if (this.workers.every((x) => x.exit) && this.killTimer) {
      clearTimeout(this.killTimer);
      this.killTimer = null;
    }
  }

  private stopAll(sig: NodeJS.Signals): void {
    this.stopping = true;
    for (const w of this.workers) this.send(w, sig);
    if (!this.killTimer && this.workers.some((w) => !w.exit)) {
      this.killTimer = setTimeout(() => {
        this.killTimer = null;
        for (const w of this.workers) this.send(w, 'SIGKILL');
      }, this.graceMs);
    }
  }

  private send(w: WorkerState, sig: NodeJS.Signals): void {
    if (w.exit || w.child.pid === undefined || w.child.exitCode !== null || w.child.signalCode !== null) return;
    w.signalled = true;
    this.onEvent({ type: 'signal', rank: w.rank, signal: sig });
    try {
      w.child.kill(sig);
    } catch {
      // already gone
    }
  }

  private finish(): LaunchResult {
    if (this.killTimer) clearTimeout(this.killTimer);
    // Output is drained only now: the tail is added to the exits reported earlier.
    for (const w of this.workers) if (w.exit && w.stderrTail) w.exit.stderrTail = [...w.stderrTail];
    const workers = this.workers.map((w) => w.exit as WorkerExit);
    let exitCode = 0;
    if (this.failed) {
      const f = this.failed;
      exitCode = f.signal ? 128 + signalNumber(f.signal) : f.code && f.code > 0 && f.code < 256 ? f.code : 1;
    } else if (this.interrupted) {
      exitCode = 128 + signalNumber(this.interrupted);
    }
    return {
      ok: exitCode === 0, exitCode, failed: this.failed, interrupted: this.interrupted, workers,
      masterAddr: this.masterAddr, masterPort: this.masterPort, worldSize: this.worldSize,
    };
  }
}

function pipeLines(stream: Readable | null, emit: (text: string) => void): Promise<void> {
  if (!stream) return Promise.resolve();
  return new Promise((resolve) => {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        emit(pending.slice(0, nl).replace(/\r$/, ''));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
    });
    const end = (): void => {
      if (pending !== '') emit(pending);
      pending = '';
      resolve();
    };
    stream.once('end', end);
    stream.once('error', end);
    stream.once('close', end);
  });
}

/**
 * Starts `nprocPerNode` workers running `command args` and returns at once
 * (after picking a free port when none is given). Worker `localRank` gets
 * RANK = nodeRank * nprocPerNode + localRank, WORLD_SIZE = nnodes *
 * nprocPerNode, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK = nodeRank,
 * MASTER_ADDR, MASTER_PORT and ADVML_NUM_THREADS (see `threadsPerWorker`).
 *
 * @throws RangeError for invalid counts, ranks, ports or a missing master address with nnodes > 1
 */
export async function startWorkers(options: LaunchOptions): Promise<WorkerGroup> {
  const nproc = checkInt('launch: nprocPerNode', options.nprocPerNode, 1);
  const nnodes = checkInt('launch: nnodes', options.nnodes ?? 1, 1);
  const nodeRank = checkInt(`launch: nodeRank (nnodes ${nnodes})`, options.nodeRank ?? 0, 0, nnodes - 1);
  const graceMs = checkInt('launch: graceMs', options.graceMs ?? 5000, 0);
  if (typeof options.command !== 'string' || options.command === '') throw new TypeError('launch: command must be a non-empty string');
  if (nnodes > 1 && (options.masterAddr === undefined || options.masterPort === undefined)) {
    throw new RangeError('launch: with nnodes > 1, masterAddr and masterPort are required (the same on every machine)');
  }
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  if (masterAddr === '') throw new RangeError('launch: masterAddr must not be empty');
  const masterPort = checkInt('launch: masterPort', options.masterPort ?? (await freePort('127.0.0.1')), 1, 65535);
  const worldSize = nnodes * nproc;
  const baseEnv = options.env ?? process.env;
  const threads = options.threadsPerWorker === undefined
    ? Math.max(1, Math.floor(availableParallelism() / nproc))
    : checkInt('launch: threadsPerWorker', options.threadsPerWorker, 1);
  const stdio = options.stdio ?? 'pipe';
  if (stdio !== 'pipe' && stdio !== 'inherit') throw new RangeError(`launch: stdio must be 'pipe' or 'inherit', got '${String(stdio)}'`);
  const onEvent = options.onEvent ?? ((): void => {});
  const onOutput = options.onOutput ?? ((): void => {});

  const workers: WorkerState[] = [];
  const closed: Promise<void>[] = [];
  let group: WorkerGroup | null = null;
  const ended: [WorkerState, number | null, NodeJS.Signals | null][] = [];
  const report = (w: WorkerState, code: number | null, signal: NodeJS.Signals | null): void => {
    if (group) group.workerEnded(w, code, signal);
    else ended.push([w, code, signal]);
  };

  for (let localRank = 0; localRank < nproc; localRank++) {
    const rank = nodeRank * nproc + localRank;
    const env: Record<string, string | undefined> = {
      ...baseEnv,
      RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      LOCAL_RANK: String(localRank),
      LOCAL_WORLD_SIZE: String(nproc),
      GROUP_RANK: String(nodeRank),
      MASTER_ADDR: masterAddr,
      MASTER_PORT: String(masterPort),
    };
    if (baseEnv.ADVML_NUM_THREADS === undefined || baseEnv.ADVML_NUM_THREADS === '') env.ADVML_NUM_THREADS = String(threads);
    const child = spawn(options.command, [...(options.args ?? [])], {
      env, cwd: options.cwd, stdio: stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    });
    const w: WorkerState = { rank, localRank, child, exit: null, signalled: false, ...(stdio === 'pipe' ? { stderrTail: [] } : {}) };
    workers.push(w);
    if (child.pid !== undefined) onEvent({ type: 'start', rank, localRank, pid: child.pid });
    const keep = (text: string): void => {
      if (text.trim() === '' || !w.stderrTail) return;
      w.stderrTail.push(text);
      if (w.stderrTail.length > STDERR_TAIL_LINES) w.stderrTail.shift();
    };
    const streams = stdio === 'pipe'
      ? [pipeLines(child.stdout, (text) => onOutput({ rank, localRank, stream: 'stdout', text })),
        pipeLines(child.stderr, (text) => {
          keep(text);
          onOutput({ rank, localRank, stream: 'stderr', text });
        })]
      : [];
    closed.push(new Promise<void>((resolve) => {
      let done = false;
      const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (done) return;
        done = true;
        report(w, code, signal);
        void Promise.all(streams).then(() => resolve());
      };
      child.once('error', (err) => {
        if (child.pid === undefined) {
          w.spawnError = err.message;
          settle(null, null);
        }
      });
      child.once('exit', (code, signal) => settle(code, signal));
    }));
  }
  group = new WorkerGroup(workers, { masterAddr, masterPort, worldSize, graceMs }, onEvent, closed);
  for (const [w, code, signal] of ended) group.workerEnded(w, code, signal);
  return group;
}

/** Options of {@link launch}: those of {@link startWorkers}, plus signal forwarding. */
export interface LaunchRunOptions extends LaunchOptions {
  /**
   * Forward SIGINT and SIGTERM received by this process to the workers while
   * they run (default false; `advml launch` turns it on). The handlers are
   * removed when the launch ends.
   */
  forwardSignals?: boolean;
}

/**
 * Starts the workers ({@link startWorkers}) and waits for all of them to end.
 * When one fails, the others are stopped (SIGTERM, then SIGKILL after
 * `graceMs`) and `result.failed` says which rank and how.
 */
export async function launch(options: LaunchRunOptions): Promise<LaunchResult> {
  const group = await startWorkers(options);
  if (!options.forwardSignals) return group.result;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const h = (): void => group.signal(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    return await group.result;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
