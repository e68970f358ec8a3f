/**
 * A small pool of worker threads for `advml serve`: jobs run off the event
 * loop, at most `size` at a time; at most `maxPending` are admitted (running
 * plus queued). A job past its deadline is rejected at once: dropped from the
 * queue or, if running, cancelled cooperatively through a shared flag the
 * worker checks between attack steps and batches; its worker counts as busy
 * until it has stopped. Workers are never terminated in the middle of a job:
 * a worker thread terminated inside a libtorch call takes the process down.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Job, JobResults, WorkerMessage } from './protocol.js';

/** The pool is full: the request should be refused (HTTP 503). */
export class BusyError extends Error {
  override name = 'BusyError';
}

/** A job ran past its deadline (HTTP 504). */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** A job failed inside its worker; the message is the worker's. */
export class JobError extends Error {
  override name = 'JobError';
}

/** Options of a {@link WorkerPool}. */
export interface PoolOptions {
  /** Worker threads, i.e. jobs running at once (default 1). */
  size?: number;
  /** Jobs admitted at once, running plus queued (default 4); more are refused with {@link BusyError}. */
  maxPending?: number;
  /** libtorch threads per worker (default: the machine's cores / size, at least 1; ADVML_NUM_THREADS wins). */
  threadsPerWorker?: number;
}

/** Options of one job. */
export interface RunOptions {
  /** Deadline from admission, in milliseconds. */
  timeoutMs: number;
  /** Progress the worker reports. */
  onProgress?: (done: number, total: number, what: string) => void;
  /** The server's own job (loading a model): admitted even when the pool is full. */
  internal?: boolean;
  /** Called when a worker takes the job off the queue (the time queued ends). */
  onStart?: () => void;
}

interface Pending {
  id: number;
  job: Job;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: RunOptions['onProgress'];
  onStart?: RunOptions['onStart'];
  timer: NodeJS.Timeout;
  settled: boolean;
}

interface Slot {
  worker: Worker;
  current: Pending | null;
  /** cancel[0] = id of the job to stop (shared with the worker). */
  cancel: Int32Array;
}

/** What a worker gets as workerData. */
export interface WorkerData {
  /** Int32Array over a SharedArrayBuffer: element 0 holds the id of a job to cancel. */
  cancel: Int32Array;
}

/** The worker script next to this module (.ts when running from source under tsx, .js when built). */
export function workerUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker${ext}`, import.meta.url);
}

function spawn(threads: number, cancel: Int32Array): Worker {
  const url = workerUrl();
  const workerData: WorkerData = { cancel };
  const options = { workerData, env: { ...process.env, ADVML_NUM_THREADS: process.env.ADVML_NUM_THREADS || String(threads) } };
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  // From source (tests under tsx): tsx's loader hooks are not inherited by worker threads, so register them first.
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(code, { ...options, eval: true });
}

/** Worker threads that run {@link Job}s; see the module comment. */
export class WorkerPool {
  readonly size: number;
  readonly maxPending: number;
  private readonly threads: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: PoolOptions = {}) {
    this.size = opts.size ?? 1;
    this.maxPending = opts.maxPending ?? 4;
    if (!Number.isInteger(this.size) || this.size < 1) throw new Error(`WorkerPool: size must be a positive integer, got ${this.size}`);
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) throw new Error(`WorkerPool: maxPending must be a positive integer, got ${this.maxPending}`);
    this.threads = opts.threadsPerWorker ?? Math.max(1, Math.floor(availableParallelism() / this.size));
    for (let i = 0; i < this.size; i++) this.slots.push(this.newSlot());
  }

  /** Jobs admitted and not yet finished (running plus queued). */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.current !== null).length;
  }

  /**
   * Runs a job on the next free worker. Rejects with {@link BusyError} at once
   * when `maxPending` jobs are already admitted, with {@link TimeoutError} past
   * the deadline, and with {@link JobError} when the job throws.
   */
  run<K extends Job['type']>(job: Extract<Job, { type: K }>, opts: RunOptions): Promise<JobResults[K]> {
    if (this.closed) return Promise.reject(new BusyError('the server is shutting down'));
    if (!opts.internal && this.pending >= this.maxPending) {
      return Promise.reject(new BusyError(`the server is busy (${this.pending} jobs admitted, limit ${this.maxPending}); try again shortly`));
    }
    return new Promise<JobResults[K]>((resolve, reject) => {
      const p: Pending = {
        id: this.nextId++,
        job,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: opts.onProgress,
        onStart: opts.onStart,
        settled: false,
        timer: setTimeout(() => this.expire(p, opts.timeoutMs), opts.timeoutMs),
      };
      this.queue.push(p);
      this.dispatch();
    });
  }

  /**
   * Rejects every admitted job, cancels running ones, waits (up to
   * `graceMs`, default 10 s) for the workers to stop, then ends them.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) this.settle(p, new BusyError('the server is shutting down'));
    for (const s of this.slots) {
      if (!s.current) continue;
      Atomics.store(s.cancel, 0, s.current.id);
      this.settle(s.current, new BusyError('the server is shutting down'));
    }
    const deadline = Date.now() + graceMs;
    while (this.slots.some((s) => s.current) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private newSlot(): Slot {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const slot: Slot = { worker: spawn(this.threads, cancel), current: null, cancel };
    this.listen(slot);
    return slot;
  }

  private listen(slot: Slot): void {
    const worker = slot.worker;
    worker.on('message', (m: WorkerMessage) => {
      const p = slot.current;
      if (slot.worker !== worker || !p || p.id !== m.id) return;
      if ('progress' in m) {
        p.onProgress?.(m.progress.done, m.progress.total, m.progress.what);
        return;
      }
      slot.current = null;
      if (m.ok) this.settle(p, null, m.result);
      else this.settle(p, new JobError(m.error));
      this.dispatch();
    });
    const died = (why: string): void => {
      if (slot.worker !== worker) return;
      if (this.closed) {
        slot.current = null;
        return;
      }
      const p = slot.current;
      slot.current = null;
      if (p) this.settle(p, new JobError(`the worker thread stopped: ${why}`));
      this.replace(slot);
      this.dispatch();
    };
    worker.on('error', (e) => died(e.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
  }

  private replace(slot: Slot): void {
    Atomics.store(slot.cancel, 0, 0);
    slot.worker = spawn(this.threads, slot.cancel);
    this.listen(slot);
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.current || this.queue.length === 0) continue;
      const p = this.queue.shift() as Pending;
      slot.current = p;
      p.onStart?.();
      slot.worker.postMessage({ id: p.id, job: p.job });
    }
  }

  private expire(p: Pending, ms: number): void {
    if (p.settled) return;
    const queued = this.queue.indexOf(p);
    if (queued >= 0) this.queue.splice(queued, 1);
    // A running job is told to stop; its slot stays busy until the worker answers.
    const slot = this.slots.find((s) => s.current === p);
    if (slot) Atomics.store(slot.cancel, 0, p.id);
    const seconds = ms / 1000;
    this.settle(p, new TimeoutError(`the job took longer than ${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s and was stopped`));
  }

  private settle(p: Pending, error: Error | null, value?: unknown): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(value);
  }
}

/** Runs one job in a worker of its own (start-up training), outside any pool's limits; `signal` cancels it. */
export function runInOwnWorker<K extends Job['type']>(
  job: Extract<Job, { type: K }>,
  opts: { onProgress?: RunOptions['onProgress']; signal?: AbortSignal } = {},
): Promise<JobResults[K]> {
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const worker = spawn(availableParallelism(), cancel);
  return new Promise<JobResults[K]>((resolve, reject) => {
    let done = false;
    const finish = (e: Error | null, v?: unknown): void => {
      if (done) return;
      done = true;
      void worker.terminate();
      if (e) reject(e);
      else resolve(v as JobResults[K]);
    };
    // Cancelled cooperatively: the job stops at its next step and answers, then the worker is ended.
    opts.signal?.addEventListener('abort', () => Atomics.store(cancel, 0, 1), { once: true });
    worker.on('message', (m: WorkerMessage) => {
      if ('progress' in m) opts.onProgress?.(m.progress.done, m.progress.total, m.progress.what);
      else if (m.ok) finish(null, m.result);
      else finish(new JobError(m.error));
    });
    worker.on('error', (e) => finish(e));
    worker.on('exit', (code) => finish(new JobError(`the worker thread stopped: exit code ${code}`)));
    worker.postMessage({ id: 1, job });
  });
}
