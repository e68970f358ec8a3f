/**
 * The Tensor class: a JavaScript owner of one libtorch tensor. Methods map one
 * to one onto ATen ops; every op returns a new Tensor (the `_`-suffixed ones
 * work in place and return `this`). Memory is freed by `dispose()`, by the
 * enclosing `scope()`, or, as a last resort, by the garbage collector.
 */
import { native, type GeneratorHandle, type Handle, type NativeArg, type OpName } from './native.js';
import { type AnyTypedArray, type DType, dtypeCode, dtypeName, viewBuffer } from './dtype.js';
import { track, type Tracked } from './tracking.js';

/** A tensor, or a number broadcast like a 0-dim tensor of the other operand's type. */
export type TensorLike = Tensor | number;

/** A nested array of numbers, as `toArray()` returns and `tensor()` accepts. */
export type NestedArray = number | boolean | NestedArray[];

export type MemoryFormat = 'contiguous' | 'channelsLast';

/** Argument of ops that reduce over dimensions. */
export interface ReduceOptions {
  /** Keep reduced dimensions with size 1 (default false). */
  keepDim?: boolean;
}

const call = native;

/** The handle every disposed tensor holds; ops given it throw "op: argument i is a disposed tensor". */
const DISPOSED = call.disposedHandle() as Handle;

/**
 * The safety net: frees tensors collected without dispose(). The addon's
 * handles carry no finalizer of their own (see native/common.h), so explicit
 * disposal frees all native memory at once, even inside a long synchronous loop.
 */
const collected = new FinalizationRegistry<Handle>((h) => {
  try {
    call.dispose(h);
  } catch {
    // nothing to report from a finalizer
  }
});

export class Tensor implements Tracked {
  // After dispose() this is DISPOSED: the addon then reports use of a disposed
  // tensor as an error of the op that received it ("add: argument 0 is a disposed tensor").
  private h: Handle;
  private cachedShape: number[] | null = null;
  private cachedDtype: DType | null = null;
  /** @internal The scope list owning this tensor. */
  owner: Tracked[] | null = null;
  /** @internal True once `keep()` took the tensor out of scope management. */
  kept = false;

  /** @internal Wraps a handle the addon returned; user code makes tensors with `tensor()` and friends. */
  constructor(handle: Handle) {
    this.h = handle;
    collected.register(this, handle, this);
    track(this);
  }

  /** @internal The native handle; ops given it after dispose() throw an error naming the op. */
  get handle(): Handle {
    return this.h;
  }

  /** Frees the native memory now. Calling it again is harmless. */
  dispose(): void {
    if (this.h !== DISPOSED) {
      collected.unregister(this);
      call.dispose(this.h);
      this.h = DISPOSED;
    }
  }

  get isDisposed(): boolean {
    return this.h === DISPOSED;
  }

  /** Takes this tensor out of scope management: no `scope()` will free it. */
  keep(): this {
    this.kept = true;
    return this;
  }

  // ---- metadata ----

  get shape(): number[] {
    if (this.cachedShape === null) this.cachedShape = call.shape(this.handle) as number[];
    return this.cachedShape.slice();
  }

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get dtype(): DType {
    if (this.cachedDtype === null) this.cachedDtype = dtypeName(call.dtype(this.handle) as number);
    return this.cachedDtype;
  }

  /** 'cpu', 'cuda:0', ... */
  get device(): string {
    return call.device(this.handle) as string;
  }

  isContiguous(format: MemoryFormat = 'contiguous'): boolean {
    return call.isContiguous(this.handle, format === 'channelsLast') as boolean;
  }

  // ---- data out ----

  /** A copy of the elements in row-major order. bfloat16/float16 widen to float32, bool reads as uint8. */
  dataSync(): AnyTypedArray {
    return viewBuffer(call.toBuffer(this.handle) as ArrayBuffer, this.dtype);
  }

  /** @internal The contiguous bytes exactly as stored (bfloat16 and float16 not widened), for serialisation. */
  rawBytes(): Uint8Array {
    return new Uint8Array(call.toBuffer(this.handle, true) as ArrayBuffer);
  }

  /** The elements as a nested array of numbers (int64 converted to number). */
  toArray(): NestedArray {
    const flat = Array.from(this.dataSync() as ArrayLike<number | bigint>, (v) =>
      this.dtype === 'bool' ? v !== 0 : Number(v),
    );
    const shape = this.shape;
    if (shape.length === 0) return flat[0] as number | boolean;
    const build = (dim: number, offset: number): NestedArray[] => {
      const n = shape[dim] as number;
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) {
        out.push(dim === shape.length - 1 ? (flat[offset + i] as number | boolean) : build(dim + 1, offset + i * stride));
      }
      return out;
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    return Number(call.item(this.handle));
  }

  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : (call.toString(this.handle) as string);
  }

  // ---- elementwise ----
  add(other: TensorLike, alpha?: number): Tensor { return this.op('add', arg(other, 'add', 'other'), alpha); }
  sub(other: TensorLike, alpha?: number): Tensor { return this.op('sub', arg(other, 'sub', 'other'), alpha); }
  mul(other: TensorLike): Tensor { return this.op('mul', arg(other, 'mul', 'other')); }
  div(other: TensorLike): Tensor { return this.op('div', arg(other, 'div', 'other')); }
  pow(exponent: TensorLike): Tensor { return this.op('pow', arg(exponent, 'pow', 'exponent')); }
  maximum(other: TensorLike): Tensor { return this.op('maximum', arg(other, 'maximum', 'other')); }
  minimum(other: TensorLike): Tensor { return this.op('minimum', arg(other, 'minimum', 'other')); }
  remainder(other: TensorLike): Tensor { return this.op('remainder', arg(other, 'remainder', 'other')); }
  eq(other: TensorLike): Tensor { return this.op('eq', arg(other, 'eq', 'other')); }
  ne(other: TensorLike): Tensor { return this.op('ne', arg(other, 'ne', 'other')); }
  lt(other: TensorLike): Tensor { return this.op('lt', arg(other, 'lt', 'other')); }
  le(other: TensorLike): Tensor { return this.op('le', arg(other, 'le', 'other')); }
  gt(other: TensorLike): Tensor { return this.op('gt', arg(other, 'gt', 'other')); }
  ge(other: TensorLike): Tensor { return this.op('ge', arg(other, 'ge', 'other')); }
  logicalAnd(other: TensorLike): Tensor { return this.op('logicalAnd', arg(other, 'logicalAnd', 'other')); }
  logicalOr(other: TensorLike): Tensor { return this.op('logicalOr', arg(other, 'logicalOr', 'other')); }
  logicalNot(): Tensor { return this.op('logicalNot'); }
  neg(): Tensor { return this.op('neg'); }
  abs(): Tensor { return this.op('abs'); }
  exp(): Tensor { return this.op('exp'); }
  log(): Tensor { return this.op('log'); }
  log1p(): Tensor { return this.op('log1p'); }
  sqrt(): Tensor { return this.op('sqrt'); }
  rsqrt(): Tensor { return this.op('rsqrt'); }
  square(): Tensor { return this.op('square'); }
  reciprocal(): Tensor { return this.op('reciprocal'); }
  sign(): Tensor { return this.op('sign'); }
  floor(): Tensor { return this.op('floor'); }
  ceil(): Tensor { return this.op('ceil'); }
  round(): Tensor { return this.op('round'); }
  erf(): Tensor { return this.op('erf'); }
  erfinv(): Tensor { return this.op('erfinv'); }
  sin(): Tensor { return this.op('sin'); }
  cos(): Tensor { return this.op('cos'); }
  isnan(): Tensor { return this.op('isnan'); }
  isfinite(): Tensor { return this.op('isfinite'); }
  relu(): Tensor { return this.op('relu'); }
  sigmoid(): Tensor { return this.op('sigmoid'); }
  tanh(): Tensor { return this.op('tanh'); }
  /** Clamps to [min, max]: min(max(x, min), max). */
  hardtanh(min = -1, max = 1): Tensor { return this.op('hardtanh', min, max); }
  leakyRelu(slope = 0.01): Tensor { return this.op('leakyRelu', slope); }
  /** x * Phi(x), exactly (erf) or with the tanh approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return this.op('gelu', approximate === 'tanh'); }
  /** x * relu6(x + 3) / 6 */
  hardswish(): Tensor { return this.op('hardswish'); }
  /** relu6(x + 3) / 6 */
  hardsigmoid(): Tensor { return this.op('hardsigmoid'); }
  elu(alpha = 1): Tensor { return this.op('elu', alpha); }
  softplus(beta = 1, threshold = 20): Tensor { return this.op('softplus', beta, threshold); }
  /** Element-wise clamp; each bound a number, a broadcastable tensor, or null for none. */
  clamp(min: TensorLike | null, max: TensorLike | null = null): Tensor {
    return this.op('clamp', min === null ? null : arg(min, 'clamp', 'min'), max === null ? null : arg(max, 'clamp', 'max'));
  }

  // ---- reductions; `dims` omitted or null reduces over all dimensions ----
  sum(dims?: number | number[] | null, opts: ReduceOptions & { dtype?: DType } = {}): Tensor {
    return this.op('sum', dimList(dims), opts.keepDim ?? false, opts.dtype === undefined ? null : dtypeCode(opts.dtype));
  }
  mean(dims?: number | number[] | null, opts: ReduceOptions = {}): Tensor {
    return this.op('mean', dimList(dims), opts.keepDim ?? false);
  }
  /** Maximum value over dims (values only; argmax gives the indices). */
  max(dims?: number | number[] | null, opts: ReduceOptions = {}): Tensor {
    return this.op('amax', dimList(dims), opts.keepDim ?? false);
  }
  min(dims?: number | number[] | null, opts: ReduceOptions = {}): Tensor {
    return this.op('amin', dimList(dims), opts.keepDim ?? false);
  }
  /** Variance with `correction` (1: unbiased, the default; 0: population). */
  var(dims?: number | number[] | null, opts: ReduceOptions & { correction?: number } = {}): Tensor {
    return this.op('var', dimList(dims), opts.correction ?? 1, opts.keepDim ?? false);
  }
  std(dims?: number | number[] | null, opts: ReduceOptions & { correction?: number } = {}): Tensor {
    return this.op('std', dimList(dims), opts.correction ?? 1, opts.keepDim ?? false);
  }
  /** The p-norm (p = Infinity for the max norm) over dims. */
  norm(p = 2, dims?: number | number[] | null, opts: ReduceOptions = {}): Tensor {
    return this.op('norm', p, dimList(dims), opts.keepDim ?? false);
  }
  logsumexp(dims: number | number[], opts: ReduceOptions = {}): Tensor {
    return this.op('logsumexp', dimList(dims), opts.keepDim ?? false);
  }
  argmax(dim?: number, opts: ReduceOptions = {}): Tensor { return this.op('argmax', dim ?? null, opts.keepDim ?? false); }
  argmin(dim?: number, opts: ReduceOptions = {}): Tensor { return this.op('argmin', dim ?? null, opts.keepDim ?? false); }
  /** The k largest (or smallest) entries along `dim`: values and int64 indices. */
  topk(k: number, opts: { dim?: number; largest?: boolean; sorted?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [values, indices] = this.ops('topk', k, opts.dim ?? -1, opts.largest ?? true, opts.sorted ?? true);
    return { values: values as Tensor, indices: indices as Tensor };
  }
  sort(opts: { dim?: number; descending?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [values, indices] = this.ops('sort', opts.dim ?? -1, opts.descending ?? false);
    return { values: values as Tensor, indices: indices as Tensor };
  }
  all(): Tensor { return this.op('all'); }
  any(): Tensor { return this.op('any'); }
  cumsum(dim: number): Tensor { return this.op('cumsum', dim); }

  // ---- linear algebra, softmax ----
  matmul(other: Tensor): Tensor { return this.op('matmul', tensorArg(other, 'matmul', 'other')); }
  softmax(dim: number): Tensor { return this.op('softmax', dim); }
  logSoftmax(dim: number): Tensor { return this.op('logSoftmax', dim); }

  // ---- shape and layout ----
  reshape(shape: number[]): Tensor { return this.op('reshape', shape); }
  permute(dims: number[]): Tensor { return this.op('permute', dims); }
  transpose(dim0: number, dim1: number): Tensor { return this.op('transpose', dim0, dim1); }
  flatten(startDim = 0, endDim = -1): Tensor { return this.op('flatten', startDim, endDim); }
  squeeze(dim?: number): Tensor { return this.op('squeeze', dim ?? null); }
  unsqueeze(dim: number): Tensor { return this.op('unsqueeze', dim); }
  expand(shape: number[]): Tensor { return this.op('expand', shape); }
  repeat(times: number[]): Tensor { return this.op('repeat', times); }
  flip(dims: number[]): Tensor { return this.op('flip', dims); }
  /** A dense copy in the given memory format, or this data unchanged when already so. */
  contiguous(format: MemoryFormat = 'contiguous'): Tensor { return this.op('contiguous', format === 'channelsLast'); }
  /**
   * A copy whose strides are exactly those of `format`, size-1 dimensions
   * included (PyTorch's t.to(memory_format=...)). Unlike contiguous(), a
   * [N, 1, H, W] tensor gets channels-last strides, which convolutions read
   * to choose their output layout.
   */
  copyInFormat(format: MemoryFormat): Tensor { return this.op('copyInFormat', format === 'channelsLast'); }
  narrow(dim: number, start: number, length: number): Tensor { return this.op('narrow', dim, start, length); }
  select(dim: number, index: number): Tensor { return this.op('select', dim, index); }
  /** Elements start, start+step, ... before end along dim (Python's x[start:end:step]). */
  slice(dim: number, start = 0, end?: number, step = 1): Tensor {
    return this.op('slice', dim, start, end ?? Number.MAX_SAFE_INTEGER, step);
  }
  indexSelect(dim: number, index: Tensor): Tensor { return this.op('indexSelect', dim, index.handle); }
  gather(dim: number, index: Tensor): Tensor { return this.op('gather', dim, index.handle); }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor { return this.op('scatter', dim, index.handle, src.handle); }
  /** A copy with the slices `index` along dim replaced by those of `source` (torch.index_copy). */
  indexCopy(dim: number, index: Tensor, source: Tensor): Tensor { return this.op('indexCopy', dim, index.handle, source.handle); }
  maskedFill(mask: Tensor, value: number): Tensor { return this.op('maskedFill', mask.handle, value); }
  maskedSelect(mask: Tensor): Tensor { return this.op('maskedSelect', mask.handle); }
  chunk(chunks: number, dim = 0): Tensor[] { return this.ops('chunk', chunks, dim); }
  split(sizes: number[], dim = 0): Tensor[] { return this.ops('split', sizes, dim); }

  // ---- type, device, copies ----
  to(dtype: DType): Tensor { return this.op('toDtype', dtypeCode(dtype)); }
  toDevice(device: string): Tensor { return this.op('toDevice', device); }
  clone(): Tensor { return this.op('clone'); }
  /** The same data, cut from the autograd graph. */
  detach(): Tensor { return this.op('detach'); }

  // ---- in place ----
  add_(other: TensorLike, alpha?: number): this { return this.inPlace('add_', arg(other, 'add_', 'other'), alpha); }
  mul_(other: TensorLike): this { return this.inPlace('mul_', arg(other, 'mul_', 'other')); }
  div_(other: TensorLike): this { return this.inPlace('div_', arg(other, 'div_', 'other')); }
  /** this += value * a * b */
  addcmul_(a: Tensor, b: Tensor, value = 1): this { return this.inPlace('addcmul_', a.handle, b.handle, value); }
  /** this += value * a / b */
  addcdiv_(a: Tensor, b: Tensor, value = 1): this { return this.inPlace('addcdiv_', a.handle, b.handle, value); }
  lerp_(end: Tensor, weight: number): this { return this.inPlace('lerp_', end.handle, weight); }
  copy_(src: Tensor): this { return this.inPlace('copy_', src.handle); }
  zero_(): this { return this.inPlace('zero_'); }
  fill_(value: number): this { return this.inPlace('fill_', value); }
  clamp_(min: Tensor | null, max: Tensor | null = null): this {
    return this.inPlace('clampInPlace_', min?.handle ?? null, max?.handle ?? null);
  }
  /** Fills with U(low, high) draws, from `generator` when given. */
  uniform_(low: number, high: number, generator?: { readonly handle: GeneratorHandle }): this {
    return this.inPlace('uniform_', low, high, generator?.handle ?? null);
  }
  /** Fills with N(mean, std^2) draws, from `generator` when given. */
  normal_(mean: number, std: number, generator?: { readonly handle: GeneratorHandle }): this {
    return this.inPlace('normal_', mean, std, generator?.handle ?? null);
  }
  /** @internal Replaces the data (layout, dtype or shape) keeping identity and leaf status. */
  setData(value: Tensor): this {
    this.cachedShape = null;
    this.cachedDtype = null;
    return this.inPlace('setData', value.handle);
  }

  // ---- autograd ----
  get requiresGrad(): boolean { return call.requiresGrad(this.handle) as boolean; }
  /** Marks this leaf as needing gradients (PyTorch's requires_grad_). */
  requiresGrad_(value = true): this { return this.inPlace('setRequiresGrad', value); }
  /** True for tensors made by the user rather than by an op on tensors that need gradients. */
  get isLeaf(): boolean { return call.isLeaf(this.handle) as boolean; }
  /** Name of the autograd node that made this tensor, or null. */
  get gradFn(): string | null { return call.gradFn(this.handle) as string | null; }
  /** The gradient accumulated by backward(), or null. The tensor returned shares its memory. */
  get grad(): Tensor | null {
    const g = call.getGrad(this.handle) as Handle | undefined;
    return g === undefined ? null : new Tensor(g);
  }
  set grad(value: Tensor | null) {
    call.setGrad(this.handle, value === null ? null : value.handle);
  }
  /**
   * Accumulates d(this)/d(leaf) into every leaf's `.grad`. `this` must be a scalar unless `gradient` is given.
   * `retainGraph` defaults to `createGraph`, as in PyTorch.
   */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    call.backward(this.handle, gradient?.handle ?? null, opts.retainGraph ?? opts.createGraph ?? false, opts.createGraph ?? false);
  }

  // ---- plumbing ----
  private op(name: OpName, ...args: NativeArg[]): Tensor {
    return new Tensor(call[name](this.handle, ...args) as Handle);
  }

  private ops(name: OpName, ...args: NativeArg[]): Tensor[] {
    return (call[name](this.handle, ...args) as Handle[]).map((h) => new Tensor(h));
  }

  private inPlace(name: OpName, ...args: NativeArg[]): this {
    call[name](this.handle, ...args);
    return this;
  }
}

/**
 * @internal Turns a tensor or number into what the op table takes. Anything
 * else is refused here, where the parameter's name is known ("add: other must
 * be a Tensor or a number, got the string 'a'"); the addon could only say
 * "argument 1". Booleans pass: the addon takes them as scalars.
 */
export function arg(x: TensorLike, op: string, name: string): Handle | number {
  if (x instanceof Tensor) return x.handle;
  if (typeof x === 'number' || typeof x === 'boolean') return x;
  throw operandError(op, name, 'a Tensor or a number', x);
}

/** @internal The handle of an operand that must be a tensor. */
export function tensorArg(x: Tensor, op: string, name: string): Handle {
  if (x instanceof Tensor) return x.handle;
  throw operandError(op, name, 'a Tensor', x);
}

/** An error shaped like the addon's own (message "op: ...", err.op set). */
function operandError(op: string, name: string, expected: string, x: unknown): Error {
  return Object.assign(new TypeError(`${op}: ${name} must be ${expected}, got ${describe(x)}`), { op });
}

function dimList(dims: number | number[] | null | undefined): number[] | null {
  if (dims === undefined || dims === null) return null;
  return typeof dims === 'number' ? [dims] : dims;
}

/** @internal A short description of a value for error messages: its kind, and its value when short. */
export function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `the string '${x.length > 40 ? `${x.slice(0, 40)}...` : x}'`;
  if (typeof x === 'number') return String(x);
  if (typeof x === 'object') {
    const name = (x as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return `${typeof x} ${String(x)}`;
}
