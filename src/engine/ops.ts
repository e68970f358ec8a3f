/**
 * Free functions of the engine: tensor creation, joining, and the functional
 * forms of network layers and losses (PyTorch's torch.* and torch.nn.functional).
 */
import { native, type Handle } from './native.js';
import { type AnyTypedArray, type DType, dtypeCode, dtypeOfArray } from './dtype.js';
import { Tensor, type NestedArray, type TensorLike, arg, describe } from './tensor.js';
import type { Generator } from './random.js';

export interface CreateOptions {
  dtype?: DType;
  /** 'cpu' (default), 'cuda', 'cuda:1', ... */
  device?: string;
}

const wrap = (h: unknown): Tensor => new Tensor(h as Handle);

/**
 * A tensor from a number, a nested array or a typed array. Typed arrays keep
 * their element type unless `dtype` says otherwise; nested arrays of numbers
 * become float32 and of booleans bool. The data is copied.
 */
export function tensor(data: NestedArray | AnyTypedArray, opts: CreateOptions & { shape?: number[] } = {}): Tensor {
  let flat: AnyTypedArray;
  let shape: number[];
  let srcType: DType;
  if (ArrayBuffer.isView(data)) {
    flat = data;
    srcType = dtypeOfArray(data);
    shape = opts.shape ?? [data.length];
  } else {
    const inferred = inferShape(data);
    shape = opts.shape ?? inferred;
    const values = (Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data]) as (number | boolean)[];
    const isBool = values.length > 0 && typeof values[0] === 'boolean';
    srcType = isBool ? 'uint8' : 'float64';
    flat = isBool ? Uint8Array.from(values, (v) => (v ? 1 : 0)) : Float64Array.from(values, (v) => checkNumber(v));
    if (isBool && opts.dtype === undefined) opts = { ...opts, dtype: 'bool' };
  }
  const dst = opts.dtype ?? (srcType === 'float64' && !ArrayBuffer.isView(data) ? 'float32' : srcType);
  return wrap(native.fromBuffer(flat, shape, dtypeCode(srcType), dtypeCode(dst), opts.device ?? 'cpu'));
}

function checkNumber(v: number | boolean): number {
  if (typeof v !== 'number') throw new TypeError(`tensor(): nested arrays must hold only numbers or only booleans, found ${describe(v)}`);
  return v;
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let level: NestedArray = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0] as NestedArray;
  }
  const check = (x: NestedArray, dim: number): void => {
    if (dim === shape.length) {
      if (Array.isArray(x)) throw new Error(`tensor(): ragged nested array: too deep at dimension ${dim}`);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[dim]) {
      throw new Error(`tensor(): ragged nested array: dimension ${dim} should have length ${shape[dim]}`);
    }
    for (const v of x) check(v, dim + 1);
  };
  check(data, 0);
  return shape;
}

/** A 0-dim tensor. */
export function scalar(value: number, opts: CreateOptions = {}): Tensor {
  return tensor(value, { ...opts, shape: [] });
}

const opt = (o: CreateOptions, d: DType = 'float32'): [number, string] => [dtypeCode(o.dtype ?? d), o.device ?? 'cpu'];

export function zeros(shape: number[], opts: CreateOptions = {}): Tensor { return wrap(native.zeros(shape, ...opt(opts))); }
export function ones(shape: number[], opts: CreateOptions = {}): Tensor { return wrap(native.ones(shape, ...opt(opts))); }
export function full(shape: number[], value: number, opts: CreateOptions = {}): Tensor { return wrap(native.full(shape, value, ...opt(opts))); }
export function empty(shape: number[], opts: CreateOptions = {}): Tensor { return wrap(native.empty(shape, ...opt(opts))); }
export function eye(n: number, opts: CreateOptions = {}): Tensor { return wrap(native.eye(n, ...opt(opts))); }
export function zerosLike(t: Tensor): Tensor { return wrap(native.zerosLike(t.handle)); }
export function onesLike(t: Tensor): Tensor { return wrap(native.onesLike(t.handle)); }
/**
 * start, start + step, ... below end. The dtype defaults as in PyTorch: int64
 * when start, end and step are all integers, else float32.
 */
export function arange(start: number, end: number, step = 1, opts: CreateOptions = {}): Tensor {
  const integral = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return wrap(native.arange(start, end, step, ...opt(opts, integral ? 'int64' : 'float32')));
}
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  return wrap(native.linspace(start, end, steps, ...opt(opts)));
}

/** Joins tensors along an existing dimension. */
export function cat(tensors: Tensor[], dim = 0): Tensor { return wrap(native.cat(tensors.map((t) => t.handle), dim)); }
/** Joins tensors along a new dimension. */
export function stack(tensors: Tensor[], dim = 0): Tensor { return wrap(native.stack(tensors.map((t) => t.handle), dim)); }
/** Element-wise `cond ? a : b`. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor { return wrap(native.where(cond.handle, arg(a, 'where', 'a'), arg(b, 'where', 'b'))); }

// ---- functional network layers ----

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/** 2-D convolution: x [N, C, H, W], weight [O, C/groups, kH, kW], bias [O]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  return wrap(
    native.conv2d(x.handle, weight.handle, bias?.handle ?? null, pair(opts.stride ?? 1), pair(opts.padding ?? 0),
      pair(opts.dilation ?? 1), opts.groups ?? 1),
  );
}

/** x W^T + b, with weight [out, in] as in PyTorch. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return wrap(native.linear(x.handle, weight.handle, bias?.handle ?? null));
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows and columns added on one side of the output (PyTorch's output_padding). */
  outputPadding?: number | [number, number];
}

/** Transposed 2-D convolution: x [N, C, H, W], weight [C, O/groups, kH, kW], bias [O]. */
export function convTranspose2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: ConvTranspose2dOptions = {}): Tensor {
  return wrap(
    native.convTranspose2d(x.handle, weight.handle, bias?.handle ?? null, pair(opts.stride ?? 1), pair(opts.padding ?? 0),
      pair(opts.outputPadding ?? 0), opts.groups ?? 1, pair(opts.dilation ?? 1)),
  );
}

export interface PoolOptions {
  /** Default: the kernel size. */
  stride?: number | [number, number];
  padding?: number | [number, number];
  ceilMode?: boolean;
}

export function maxPool2d(x: Tensor, kernel: number | [number, number], opts: PoolOptions & { dilation?: number | [number, number] } = {}): Tensor {
  return wrap(
    native.maxPool2d(x.handle, pair(kernel), pair(opts.stride ?? kernel), pair(opts.padding ?? 0),
      pair(opts.dilation ?? 1), opts.ceilMode ?? false),
  );
}

export function avgPool2d(x: Tensor, kernel: number | [number, number], opts: PoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  return wrap(
    native.avgPool2d(x.handle, pair(kernel), pair(opts.stride ?? kernel), pair(opts.padding ?? 0),
      opts.ceilMode ?? false, opts.countIncludePad ?? true),
  );
}

/**
 * Constant padding (PyTorch's F.pad in 'constant' mode): `padding` lists
 * [before, after] pairs from the last dimension backwards, so [left, right,
 * top, bottom] pads width then height of an [N, C, H, W] tensor. Negative
 * amounts crop. Differentiable.
 */
export function pad(x: Tensor, padding: number[], value = 0): Tensor {
  return wrap(native.pad(x.handle, padding, value));
}

/**
 * Reflecting or replicating padding of the last two dimensions of a 3-d or
 * 4-d tensor; `padding` is [left, right, top, bottom].
 */
export function padMode(x: Tensor, padding: [number, number, number, number], mode: 'reflect' | 'replicate'): Tensor {
  return wrap(mode === 'reflect' ? native.reflectionPad2d(x.handle, padding) : native.replicationPad2d(x.handle, padding));
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  return wrap(native.adaptiveAvgPool2d(x.handle, pair(outputSize)));
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  /** Normalise with batch statistics and update the running ones (default false). */
  training?: boolean;
  /** Weight of the new batch in the running statistics (default 0.1, PyTorch's convention). */
  momentum?: number;
  eps?: number;
}

/** Batch normalisation over dimension 1. */
export function batchNorm(x: Tensor, opts: BatchNormOptions = {}): Tensor {
  return wrap(
    native.batchNorm(x.handle, opts.weight?.handle ?? null, opts.bias?.handle ?? null, opts.runningMean?.handle ?? null,
      opts.runningVar?.handle ?? null, opts.training ?? false, opts.momentum ?? 0.1, opts.eps ?? 1e-5),
  );
}

/**
 * relu(batchNorm(x) + residual) in training mode as one native autograd node
 * (native/fused.cc), updating the running statistics as batchNorm does. x and
 * residual must be 4-d channels-last CPU tensors of one shape and dtype
 * (float32 or bfloat16); the parameters and running statistics float32
 * vectors. src/nn/fused.ts chooses between this and the separate ops.
 */
export function batchNormRelu(
  x: Tensor,
  params: { weight: Tensor; bias: Tensor; runningMean: Tensor; runningVar: Tensor },
  opts: { residual?: Tensor | null; momentum?: number; eps?: number } = {},
): Tensor {
  return wrap(
    native.batchNormRelu(x.handle, params.weight.handle, params.bias.handle, params.runningMean.handle, params.runningVar.handle,
      opts.residual?.handle ?? null, opts.momentum ?? 0.1, opts.eps ?? 1e-5),
  );
}

/**
 * Zeroes each element with probability p and scales the rest by 1/(1-p) when
 * training. The mask is drawn from `generator` when given (a seeded stream,
 * saved with a run), else from libtorch's global generator (at::dropout).
 */
export function dropout(x: Tensor, p: number, training: boolean, generator?: Generator): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!generator || !training || p === 0 || x.size === 0) return wrap(native.dropout(x.handle, p, training));
  // at::dropout takes no generator: its mask (bernoulli(1 - p) / (1 - p)) is drawn here. Generators are
  // CPU streams, so the mask is drawn on the CPU and moved to x's device.
  const keep = full(x.shape, 1 - p, { dtype: x.dtype });
  const mask = wrap(native.bernoulli(keep.handle, generator.handle)).div_(1 - p);
  keep.dispose();
  const onDevice = x.device === 'cpu' ? mask : mask.toDevice(x.device);
  if (onDevice !== mask) mask.dispose();
  const out = x.mul(onDevice);
  onDevice.dispose();
  return out;
}

export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

function reductionCode(r: Reduction | undefined): number {
  const code = REDUCTION[r ?? 'mean'];
  if (code === undefined) throw new Error(`reduction must be 'none', 'mean' or 'sum', got '${String(r)}'`);
  return code;
}

export interface CrossEntropyOptions {
  reduction?: Reduction;
  /** Mix the one-hot target with the uniform distribution: (1 - s) * onehot + s / classes. */
  labelSmoothing?: number;
  /** Per-class weights. */
  weight?: Tensor | null;
  /** Targets with this class index contribute nothing (default -100). */
  ignoreIndex?: number;
}

/**
 * Cross-entropy between logits [N, C] and int64 class indices [N] (or class
 * probabilities [N, C]), PyTorch's F.cross_entropy.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const s = opts.labelSmoothing ?? 0;
  if (!(s >= 0 && s <= 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${s}`);
  return wrap(native.crossEntropy(logits.handle, target.handle, opts.weight?.handle ?? null, reductionCode(opts.reduction),
    opts.ignoreIndex ?? -100, s));
}

export function nllLoss(logProbs: Tensor, target: Tensor, opts: { reduction?: Reduction; weight?: Tensor | null; ignoreIndex?: number } = {}): Tensor {
  return wrap(native.nllLoss(logProbs.handle, target.handle, opts.weight?.handle ?? null, reductionCode(opts.reduction), opts.ignoreIndex ?? -100));
}

export function mseLoss(x: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return wrap(native.mseLoss(x.handle, target.handle, reductionCode(opts.reduction)));
}

/**
 * KL divergence sum target * (log target - input), with `input` given as log
 * probabilities (PyTorch's F.kl_div); `logTarget` when target is log probabilities too.
 */
export function klDiv(input: Tensor, target: Tensor, opts: { reduction?: Reduction; logTarget?: boolean } = {}): Tensor {
  return wrap(native.klDiv(input.handle, target.handle, reductionCode(opts.reduction), opts.logTarget ?? false));
}

/** int64 class indices [...] to a one-hot int64 tensor [..., classes]. */
export function oneHot(indices: Tensor, classes: number): Tensor {
  return wrap(native.oneHot(indices.handle, classes));
}
