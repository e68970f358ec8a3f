/**
 * Process groups: the processes of one data-parallel job and the collectives
 * between them, on PyTorch's own distributed engine (c10d) inside libtorch.
 *
 * Rendezvous goes through c10d's TCPStore at MASTER_ADDR:MASTER_PORT (rank 0
 * hosts it), with the same environment variables as `torchrun`: RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. Tensors
 * travel over Gloo (TCP) on CPU, or NCCL where the addon is built against a
 * CUDA libtorch with NCCL.
 *
 * Every collective is **synchronous**: it blocks the calling JavaScript thread
 * until all ranks have taken part, it fails, or its timeout passes. Timers,
 * I/O callbacks and signal handlers of the process wait meanwhile. This suits
 * training and evaluation loops, which cannot go on before the result is in.
 *
 * Without WORLD_SIZE (or with WORLD_SIZE=1) the group has a single process and
 * no network: every collective is an identity (after the same argument checks),
 * so library code may call them unconditionally.
 *
 * @example
 * ```ts
 * const pg = initProcessGroup({ timeoutMs: 30_000 });
 * pg.broadcast(model.parameters(), 0);      // start from rank 0's weights
 * // ... backward pass ...
 * pg.allReduce(grads, 'avg');               // average the gradients in place
 * pg.destroy();
 * ```
 */
// The collectives are addon ops that take and return tensor handles, like the
// engine's own ops; this is the one module outside src/engine that calls the
// addon directly.
import { native, type Handle } from '../engine/native.js';
import { Tensor, isFloating, tensor } from '../engine/index.js';

/** How all-reduce combines the ranks' values. `'avg'` sums, then divides by the world size (floating dtypes only). */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

/** The transport of a multi-process group; `'none'` for the single-process group. */
export type Backend = 'gloo' | 'nccl' | 'none';

/**
 * How a list of tensors travels in all-reduce.
 * - `'auto'` (default): within each dtype, every tensor of 1 MiB or more is reduced on its own (in
 *   place when contiguous) and the smaller ones are copied into one flat buffer, reduced as one
 *   message, and copied back. A model's many small gradients (biases, norms, small layers) thus
 *   cost one message, and its large ones no copies.
 * - `'flatten'`: each dtype's tensors all in one flat buffer (one message per dtype).
 * - `'coalesced'`: c10d's `allreduce_coalesced`, one call per dtype (c10d flattens internally).
 * - `'each'`: one all-reduce per tensor.
 *
 * All four give the same values; docs/distributed.md gives the measurements behind the default.
 */
export type Coalescing = 'auto' | 'flatten' | 'coalesced' | 'each';

/** The default timeout of every operation when neither options nor ADVML_DIST_TIMEOUT_MS give one: 60 s. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** Options of {@link initProcessGroup}. Each field overrides the environment variable named. */
export interface ProcessGroupOptions {
  /** This process's rank in [0, worldSize). Default: RANK (required when worldSize > 1). */
  rank?: number;
  /** Number of processes. Default: WORLD_SIZE, or 1 when unset. */
  worldSize?: number;
  /** Rank among the processes of this machine (to pick a GPU, say). Default: LOCAL_RANK, else `rank`. */
  localRank?: number;
  /** Processes on this machine. Default: LOCAL_WORLD_SIZE, else `worldSize`. */
  localWorldSize?: number;
  /** Address of rank 0, where the rendezvous store listens. Default: MASTER_ADDR (required when worldSize > 1). */
  masterAddr?: string;
  /** Port of the rendezvous store on rank 0. Default: MASTER_PORT (required when worldSize > 1). */
  masterPort?: number;
  /** Transport. Default `'gloo'`; `'nccl'` needs an addon built against a CUDA libtorch with NCCL. */
  backend?: 'gloo' | 'nccl';
  /**
   * Default timeout in milliseconds of the rendezvous and of every collective (each call may
   * override it). Default: ADVML_DIST_TIMEOUT_MS, else {@link DEFAULT_TIMEOUT_MS}.
   */
  timeoutMs?: number;
  /**
   * Milliseconds the rendezvous may take: rank 0 waits this long for the others to join, the others
   * for rank 0's store to accept them. Allow for processes that start at different times.
   * Default: ADVML_DIST_INIT_TIMEOUT_MS, else `timeoutMs`.
   */
  initTimeoutMs?: number;
  /**
   * Network interface Gloo binds to (e.g. `'eth0'`). Default: GLOO_SOCKET_IFNAME. Without it Gloo
   * binds 127.0.0.1 when MASTER_ADDR is a loopback address, and otherwise the address this
   * machine's hostname resolves to.
   */
  interface?: string;
  /** Where the variables above are read from. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Per-call options of a collective. */
export interface CollectiveOptions {
  /**
   * Milliseconds to wait for the other ranks before failing. Default: the group's `timeoutMs`.
   * Gloo also applies its own limit, the larger of the group's `timeoutMs` and `initTimeoutMs`, to
   * each receive inside a collective; a longer per-call value is cut short by that.
   */
  timeoutMs?: number;
}

/** Per-call options of {@link ProcessGroup.allReduce}. */
export interface AllReduceOptions extends CollectiveOptions {
  /** How a list of tensors travels (default `'auto'`); see {@link Coalescing}. */
  coalesce?: Coalescing;
}

/** Options of {@link ProcessGroup.gradientReducer}. */
export interface GradientReducerOptions {
  /** Bytes of gradients per bucket (one all-reduce message each). Default {@link DEFAULT_BUCKET_BYTES} (25 MiB, as PyTorch DDP). */
  bucketBytes?: number;
  /** Bytes of the first bucket (the last layers' gradients), smaller so the first message leaves early. Default 1 MiB, as DDP. */
  firstBucketBytes?: number;
  /** Milliseconds {@link GradientReducer.finish} waits for each bucket. Default: the group's `timeoutMs`. */
  timeoutMs?: number;
}

/** Default bucket size of {@link ProcessGroup.gradientReducer}: 25 MiB, DDP's `bucket_cap_mb`. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;
/** Default size of the first bucket: 1 MiB, as DDP's first bucket. */
export const DEFAULT_FIRST_BUCKET_BYTES = 1024 * 1024;

/**
 * Sums gradients across the ranks while backward runs, as PyTorch's
 * DistributedDataParallel does: the parameters are grouped into buckets of
 * about `bucketBytes` in reverse order (roughly the order backward produces
 * their gradients), and a bucket's asynchronous all-reduce starts as soon as
 * backward has accumulated every gradient in it. Use it around each backward:
 *
 * ```ts
 * const reducer = pg.gradientReducer(model.parameters());
 * reducer.prepare(loss);   // before backward
 * loss.backward();         // buckets go out as their gradients are ready
 * reducer.finish();        // waits; every .grad now holds the sum over the ranks
 * ```
 *
 * The sums are Gloo's elementwise sums, as {@link ProcessGroup.allReduce}
 * computes them. A parameter that gets no gradient on a rank (unused, not
 * reached by the loss) contributes zeros there, so the step never hangs; one
 * that no rank has a gradient for keeps `.grad` null, as reduce-after-backward
 * leaves it. One backward between prepare() and finish(). In a single-process
 * group both are no-ops.
 */
export class GradientReducer {
  /** The parameters reduced (those given that require grad), in the order given. */
  readonly params: readonly Tensor[];
  private readonly handle: Handle | null;

  /** @internal Use {@link ProcessGroup.gradientReducer}. */
  constructor(private readonly group: ProcessGroup, params: readonly Tensor[], private readonly groupHandle: Handle | null, private readonly timeoutMs: number, bucketBytes: number, firstBucketBytes: number) {
    this.params = params;
    this.handle = groupHandle && params.length
      ? group.callNative('allReduce', timeoutMs, () =>
        native.distReducer(groupHandle, params.map((p) => p.handle), bucketBytes, firstBucketBytes, timeoutMs)) as Handle
      : null;
  }

  /**
   * The buckets, in the order they are sent: each a list of indices into
   * {@link params}. Empty for a single process.
   */
  buckets(): number[][] {
    return this.handle ? native.distReducerBuckets(this.handle) as number[][] : [];
  }

  /**
   * Arms the reducer for one backward pass. Given the loss that backward will
   * start from, parameters its graph does not reach are marked ready at once,
   * so their buckets do not wait for the end of backward.
   */
  prepare(loss?: Tensor): void {
    if (!this.handle) return;
    this.group.callNative('allReduce', this.timeoutMs, () =>
      native.distReducerPrepare(this.groupHandle as Handle, this.handle as Handle, loss?.handle));
  }

  /**
   * Sends the buckets not yet sent, waits for all of them and writes the sums
   * into the parameters' `.grad`. Returns how many buckets had left during
   * backward (before this call).
   *
   * @throws DistributedError (op `'allReduce'`) when a rank fails, disconnects, or the timeout passes
   */
  finish(): { sentDuringBackward: number; buckets: number } {
    if (!this.handle) return { sentDuringBackward: 0, buckets: 0 };
    const sent = this.group.callNative('allReduce', this.timeoutMs, () =>
      native.distReducerFinish(this.groupHandle as Handle, this.handle as Handle)) as number;
    return { sentDuringBackward: sent, buckets: this.buckets().length };
  }
}

/** Why a collective failed, read from c10d's message. */
export type FailureReason =
  /** a rank did not take part within the timeout */
  | 'timeout'
  /** a peer's connection closed or reset (the process died or destroyed its group) */
  | 'connection'
  /** the ranks passed tensors that do not fit together (allGather checks dtype and shape) */
  | 'mismatch'
  /** an earlier failure left the group unusable */
  | 'broken'
  /** anything else c10d reported */
  | 'other';

/**
 * An operation of a multi-process group failed: a timeout, a dead peer, or
 * ranks that disagree. The message names the operation and the rank that
 * raised it: `allReduce failed on rank 1 of 2 (timeout 5000 ms): ...`.
 * After such an error the group is unusable; destroy it (the process usually exits).
 */
export class DistributedError extends Error {
  /** The operation: `'init'`, `'allReduce'`, `'broadcast'`, `'allGather'` or `'barrier'`. */
  readonly op: string;
  /** The rank that raised the error. */
  readonly rank: number;
  /** The group's world size. */
  readonly worldSize: number;
  /** What went wrong, classified from c10d's message. */
  readonly reason: FailureReason;

  constructor(op: string, rank: number, worldSize: number, timeoutMs: number, detail: string, cause?: unknown) {
    super(`${op} failed on rank ${rank} of ${worldSize} (timeout ${timeoutMs} ms): ${detail}`, { cause });
    this.name = 'DistributedError';
    this.op = op;
    this.rank = rank;
    this.worldSize = worldSize;
    this.reason = classify(detail);
  }
}

function classify(detail: string): FailureReason {
  if (/unusable after an earlier failure/.test(detail)) return 'broken';
  if (/timed? ?out|timeout/i.test(detail)) return 'timeout';
  if (/ranks disagree/.test(detail)) return 'mismatch';
  if (/closed by peer|connection reset|broken pipe|connection refused|ECONNRESET|EPIPE|socket closed|Connection closed/i.test(detail)) {
    return 'connection';
  }
  return 'other';
}

/** A process group's handle in the addon. */
interface GroupHandle {
  readonly __processGroup: unique symbol;
}

const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];
const COALESCING: readonly Coalescing[] = ['auto', 'flatten', 'coalesced', 'each'];

type Env = Readonly<Record<string, string | undefined>>;

function intFrom(env: Env, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`initProcessGroup: environment variable ${name} must be an integer >= ${min}, got '${raw}'`);
  }
  return n;
}

function checkInt(what: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    throw new RangeError(`${what} must be ${range}, got ${String(value)}`);
  }
  return value;
}

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || /^127\.\d+\.\d+\.\d+$/.test(addr);
}

/** The parameters a group was started with, as resolved from options and environment. */
export interface ProcessGroupInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  backend: Backend;
  timeoutMs: number;
  /** Rendezvous address and port; null for the single-process group. */
  masterAddr: string | null;
  masterPort: number | null;
}

/**
 * A group of processes that take part in collectives together. Make one with
 * {@link initProcessGroup}. All ranks must call the same collectives in the
 * same order with tensors of the same dtypes and shapes (allGather alone
 * accepts a different size of dimension 0 per rank).
 */
export class ProcessGroup {
  /** This process's rank in [0, worldSize). */
  readonly rank: number;
  /** Number of processes in the group. */
  readonly worldSize: number;
  /** Rank among the processes of this machine. */
  readonly localRank: number;
  /** Number of the group's processes on this machine. */
  readonly localWorldSize: number;
  /** The transport; `'none'` for a single process. */
  readonly backend: Backend;
  /** Default timeout of each collective, in milliseconds. */
  readonly timeoutMs: number;
  private handle: GroupHandle | null;
  private destroyed = false;
  private readonly masterAddr: string | null;
  private readonly masterPort: number | null;

  /** @internal Use {@link initProcessGroup}. */
  constructor(info: ProcessGroupInfo, handle: GroupHandle | null) {
    this.rank = info.rank;
    this.worldSize = info.worldSize;
    this.localRank = info.localRank;
    this.localWorldSize = info.localWorldSize;
    this.backend = info.backend;
    this.timeoutMs = info.timeoutMs;
    this.masterAddr = info.masterAddr;
    this.masterPort = info.masterPort;
    this.handle = handle;
  }

  /** True when the group has more than one process (collectives communicate). */
  get isDistributed(): boolean {
    return this.worldSize > 1;
  }

  /** True once {@link destroy} ran. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** The parameters the group was started with. */
  info(): ProcessGroupInfo {
    return {
      rank: this.rank, worldSize: this.worldSize, localRank: this.localRank, localWorldSize: this.localWorldSize,
      backend: this.backend, timeoutMs: this.timeoutMs, masterAddr: this.masterAddr, masterPort: this.masterPort,
    };
  }

  /**
   * Reduces `tensors` across all ranks, in place: afterwards every rank holds
   * `op` over the ranks' values, elementwise (`'avg'` = sum / worldSize).
   * Tensors may differ in shape and dtype (any but bool; int16 and bfloat16
   * are summed in int32 and float32 buffers, as Gloo cannot reduce them), and
   * need not be contiguous; by
   * default small tensors of a dtype share one message and large ones travel
   * alone without copies (see {@link Coalescing}). Runs without recording
   * autograd history, so leaf parameters may be passed. Blocks until done.
   *
   * @param tensors one tensor or a list; every rank passes the same shapes and dtypes in the same order
   * @param op `'sum'` (default), `'avg'` (floating dtypes only), `'max'` or `'min'`
   * @throws DistributedError when a rank fails, disconnects, or the timeout passes
   */
  allReduce(tensors: Tensor | readonly Tensor[], op: ReduceOp = 'sum', options: AllReduceOptions = {}): void {
    const list = this.tensorList('allReduce', tensors);
    if (!REDUCE_OPS.includes(op)) throw new RangeError(`allReduce: op must be one of ${REDUCE_OPS.join(', ')}, got '${String(op)}'`);
    const coalesce = options.coalesce ?? 'auto';
    if (!COALESCING.includes(coalesce)) {
      throw new RangeError(`allReduce: options.coalesce must be one of ${COALESCING.join(', ')}, got '${String(coalesce)}'`);
    }
    list.forEach((t, i) => {
      if (t.dtype === 'bool') throw new TypeError(`allReduce: tensors[${i}] is bool, which cannot be reduced`);
      if (op === 'avg' && !isFloating(t.dtype)) {
        throw new TypeError(`allReduce: 'avg' needs floating-point tensors; tensors[${i}] is ${t.dtype} (use 'sum')`);
      }
    });
    const timeoutMs = this.timeout('allReduce', options);
    if (!this.isDistributed || list.length === 0) return;
    this.call('allReduce', timeoutMs, () =>
      native.distAllReduce(this.live('allReduce'), list.map((t) => t.handle), op, timeoutMs, coalesce));
  }

  /**
   * The sum of `t` over the ranks as a new tensor that autograd
   * differentiates (its gradient is the sum of the incoming gradients over
   * the ranks), for statistics that enter the loss, such as synchronised
   * batch norm. A single process returns `t` itself.
   */
  allReduceDifferentiable(t: Tensor, options: CollectiveOptions = {}): Tensor {
    const [x] = this.tensorList('allReduceDifferentiable', t);
    if (!isFloating((x as Tensor).dtype)) throw new TypeError(`allReduceDifferentiable: needs a floating-point tensor, got ${(x as Tensor).dtype}`);
    const timeoutMs = this.timeout('allReduceDifferentiable', options);
    if (!this.isDistributed) return t;
    return this.call('allReduceDifferentiable', timeoutMs, () =>
      new Tensor(native.distAllReduceAutograd(this.live('allReduceDifferentiable'), (x as Tensor).handle, timeoutMs) as Handle));
  }

  /**
   * A {@link GradientReducer} for `params` (those that require grad; the
   * others are skipped): gradients summed across the ranks in buckets while
   * backward runs. Every rank passes the same parameters in the same order.
   */
  gradientReducer(params: readonly Tensor[], options: GradientReducerOptions = {}): GradientReducer {
    const list = this.tensorList('gradientReducer', params).filter((p) => p.requiresGrad);
    const timeoutMs = this.timeout('gradientReducer', options);
    const bucketBytes = checkInt('gradientReducer: options.bucketBytes', options.bucketBytes ?? DEFAULT_BUCKET_BYTES, 1);
    const firstBucketBytes = checkInt('gradientReducer: options.firstBucketBytes', options.firstBucketBytes ?? Math.min(DEFAULT_FIRST_BUCKET_BYTES, bucketBytes), 1);
    return new GradientReducer(this, list, this.isDistributed ? this.live('gradientReducer') : null, timeoutMs, bucketBytes, firstBucketBytes);
  }

  /**
   * All-reduces plain numbers (counts, sums of losses) through one float64
   * tensor and returns the results: `[correct, seen] = pg.allReduceNumbers([c, n])`.
   * Exact for integers up to 2^53.
   */
  allReduceNumbers(values: readonly number[], op: ReduceOp = 'sum', options: CollectiveOptions = {}): number[] {
    values.forEach((v, i) => {
      if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`allReduceNumbers: values[${i}] must be a number, got ${String(v)}`);
    });
    if (values.length === 0) return [];
    const t = tensor(Float64Array.from(values), { dtype: 'float64' });
    try {
      this.allReduce(t, op, options);
      return Array.from(t.dataSync() as Float64Array);
    } finally {
      t.dispose();
    }
  }

  /**
   * Copies `root`'s values of `tensors` into every other rank's `tensors`, in
   * place (messages grouped as all-reduce's `'auto'`; any dtype, bool included). Use it to start all ranks from rank 0's
   * weights. Runs without recording autograd history. Blocks until done.
   *
   * @param root the rank whose values are sent (default 0)
   * @throws DistributedError when a rank fails, disconnects, or the timeout passes
   */
  broadcast(tensors: Tensor | readonly Tensor[], root = 0, options: CollectiveOptions = {}): void {
    const list = this.tensorList('broadcast', tensors);
    checkInt(`broadcast: root (world size ${this.worldSize})`, root, 0, this.worldSize - 1);
    const timeoutMs = this.timeout('broadcast', options);
    if (!this.isDistributed || list.length === 0) return;
    this.call('broadcast', timeoutMs, () =>
      native.distBroadcast(this.live('broadcast'), list.map((t) => t.handle), root, timeoutMs));
  }

  /**
   * Every rank's `tensor`, in rank order, on every rank: new tensors the
   * caller owns (in the single-process group, a copy of `tensor`). Ranks may
   * differ in the size of dimension 0, as the last shard of a sharded
   * evaluation does; dtype and the other dimensions must agree, which is
   * checked on all ranks (a mismatch throws the same DistributedError
   * everywhere, reason `'mismatch'`). At most 16 dimensions.
   * Concatenate with `cat(pg.allGather(x))` for the whole set.
   */
  allGather(tensor: Tensor, options: CollectiveOptions = {}): Tensor[] {
    if (!(tensor instanceof Tensor)) throw new TypeError('allGather: tensor must be a Tensor');
    const timeoutMs = this.timeout('allGather', options);
    if (!this.isDistributed) {
      const d = tensor.detach();
      try {
        return [d.clone()];
      } finally {
        d.dispose();
      }
    }
    const handles = this.call('allGather', timeoutMs, () =>
      native.distAllGather(this.live('allGather'), tensor.handle, timeoutMs)) as Handle[];
    return handles.map((h) => new Tensor(h));
  }

  /** Returns once every rank has called `barrier()`. */
  barrier(options: CollectiveOptions = {}): void {
    const timeoutMs = this.timeout('barrier', options);
    if (!this.isDistributed) return;
    this.call('barrier', timeoutMs, () => native.distBarrier(this.live('barrier'), timeoutMs));
  }

  /**
   * Closes the group's connections and threads (rank 0 also stops the
   * rendezvous store). Collectives afterwards throw; calling it again is
   * harmless. No collective is implied: ranks may destroy at different times.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (current === this) current = null;
    const h = this.handle;
    this.handle = null;
    if (h) native.distDestroy(h as unknown as Handle);
  }

  private live(op: string): Handle {
    if (this.destroyed || !this.handle) throw new Error(`${op}: the process group was destroyed`);
    return this.handle as unknown as Handle;
  }

  private tensorList(op: string, tensors: Tensor | readonly Tensor[]): Tensor[] {
    if (this.destroyed) throw new Error(`${op}: the process group was destroyed`);
    const list = tensors instanceof Tensor ? [tensors] : tensors;
    if (!Array.isArray(list)) throw new TypeError(`${op}: tensors must be a Tensor or an array of Tensors`);
    list.forEach((t: unknown, i: number) => {
      if (!(t instanceof Tensor)) throw new TypeError(`${op}: tensors[${i}] must be a Tensor`);
      if (t.isDisposed) throw new Error(`${op}: tensors[${i}] is a disposed tensor`);
    });
    return list as Tensor[];
  }

  private timeout(op: string, options: CollectiveOptions): number {
    if (this.destroyed) throw new Error(`${op}: the process group was destroyed`);
    if (options.timeoutMs === undefined) return this.timeoutMs;
    return checkInt(`${op}: options.timeoutMs`, options.timeoutMs, 1);
  }

  /** @internal An addon call whose failure becomes a DistributedError naming `op`. */
  callNative<T>(op: string, timeoutMs: number, fn: () => T): T {
    return this.call(op, timeoutMs, fn);
  }

  private call<T>(op: string, timeoutMs: number, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw toDistributedError(op, this.rank, this.worldSize, timeoutMs, e);
    }
  }
}

function toDistributedError(op: string, rank: number, worldSize: number, timeoutMs: number, e: unknown): DistributedError {
  const message = e instanceof Error ? e.message : String(e);
  // The addon prefixes its op name ("distAllReduce: ..."); the DistributedError names the API op instead.
  const detail = message.replace(/^dist[A-Za-z]+: /, '');
  return new DistributedError(op, rank, worldSize, timeoutMs, detail, e);
}

let current: ProcessGroup | null = null;
let single: ProcessGroup | null = null;

/**
 * Starts this process's member of a process group and makes it the current
 * group. Every value comes from `options` or else from the environment
 * `torchrun` and `advml launch` set (RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ADVML_DIST_TIMEOUT_MS,
 * GLOO_SOCKET_IFNAME).
 *
 * With worldSize 1 (WORLD_SIZE unset) nothing touches the network and every
 * collective is an identity. Otherwise rank 0 opens the rendezvous store on
 * MASTER_PORT and waits for the others; each call blocks until all
 * `worldSize` processes have joined and connected to each other, or throws a
 * DistributedError (op `'init'`) within `initTimeoutMs`.
 *
 * @throws Error when a group is already active (destroy it first) or a variable is malformed
 */
export function initProcessGroup(options: ProcessGroupOptions = {}): ProcessGroup {
  if (current && !current.isDestroyed) {
    throw new Error(`initProcessGroup: a process group is already active (rank ${current.rank} of ${current.worldSize}); destroy() it first`);
  }
  const env = options.env ?? process.env;
  const worldSize = checkInt('initProcessGroup: worldSize', options.worldSize ?? intFrom(env, 'WORLD_SIZE', 1) ?? 1, 1);
  const timeoutMs = checkInt(
    'initProcessGroup: timeoutMs', options.timeoutMs ?? intFrom(env, 'ADVML_DIST_TIMEOUT_MS', 1) ?? DEFAULT_TIMEOUT_MS, 1);
  const initTimeoutMs = checkInt(
    'initProcessGroup: initTimeoutMs', options.initTimeoutMs ?? intFrom(env, 'ADVML_DIST_INIT_TIMEOUT_MS', 1) ?? timeoutMs, 1);
  const backend = options.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw new RangeError(`initProcessGroup: backend must be 'gloo' or 'nccl', got '${String(backend)}'`);

  if (worldSize === 1) {
    const rank = options.rank ?? intFrom(env, 'RANK', 0) ?? 0;
    checkInt('initProcessGroup: rank (world size 1)', rank, 0, 0);
    current = new ProcessGroup(singleInfo(timeoutMs), null);
    return current;
  }

  const need = (what: string, value: string | number | undefined, variable: string): string | number => {
    if (value === undefined || value === '') {
      throw new Error(`initProcessGroup: ${what} is not set (pass options.${what} or set ${variable}); world size is ${worldSize}`);
    }
    return value;
  };
  const rank = checkInt(`initProcessGroup: rank (world size ${worldSize})`,
    need('rank', options.rank ?? intFrom(env, 'RANK', 0), 'RANK') as number, 0, worldSize - 1);
  const masterAddr = need('masterAddr', options.masterAddr ?? env.MASTER_ADDR, 'MASTER_ADDR') as string;
  const masterPort = checkInt('initProcessGroup: masterPort',
    need('masterPort', options.masterPort ?? intFrom(env, 'MASTER_PORT', 1), 'MASTER_PORT') as number, 1, 65535);
  const localRank = checkInt('initProcessGroup: localRank', options.localRank ?? intFrom(env, 'LOCAL_RANK', 0) ?? rank, 0);
  const localWorldSize = checkInt('initProcessGroup: localWorldSize',
    options.localWorldSize ?? intFrom(env, 'LOCAL_WORLD_SIZE', 1) ?? worldSize, 1);
  const iface = options.interface ?? env.GLOO_SOCKET_IFNAME ?? '';
  const hostname = iface === '' && isLoopback(masterAddr) ? (masterAddr === '::1' ? '::1' : '127.0.0.1') : '';

  let handle: GroupHandle;
  try {
    handle = native.distInit(masterAddr, masterPort, rank, worldSize, initTimeoutMs, timeoutMs, backend, iface || null, hostname || null) as GroupHandle;
  } catch (e) {
    throw toDistributedError('init', rank, worldSize, initTimeoutMs, e);
  }
  current = new ProcessGroup({ rank, worldSize, localRank, localWorldSize, backend, timeoutMs, masterAddr, masterPort }, handle);
  return current;
}

function singleInfo(timeoutMs: number): ProcessGroupInfo {
  return { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, backend: 'none', timeoutMs, masterAddr: null, masterPort: null };
}

/**
 * The current group: the one {@link initProcessGroup} started and that is not
 * destroyed, or else a shared single-process group (collectives are
 * identities). Library code calls collectives on it unconditionally.
 */
export function currentGroup(): ProcessGroup {
  if (current && !current.isDestroyed) return current;
  if (!single || single.isDestroyed) single = new ProcessGroup(singleInfo(DEFAULT_TIMEOUT_MS), null);
  return single;
}

/** True when the current group has more than one process. */
export function isDistributed(): boolean {
  return currentGroup().isDistributed;
}

/** This process's rank in the current group (0 without one). */
export function rank(): number {
  return currentGroup().rank;
}

/** Number of processes in the current group (1 without one). */
export function worldSize(): number {
  return currentGroup().worldSize;
}
