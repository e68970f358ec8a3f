/**
 * The operator table: for each supported ONNX operator, a builder that reads
 * and checks the node's attributes once, when the model loads, and returns
 * the kernel that runs the node with engine ops (so autograd sees every
 * step). Attribute values the kernel cannot honour are refused by the
 * builder, so a model that loads runs as its operators specify.
 *
 * Inputs that carry shapes, axes or bounds (Reshape's shape, Slice's starts,
 * Pad's pads, ...) are read back as numbers; the loader folds them into
 * constants when they come from constants, so that read is a cached lookup.
 */
import {
  type DType, type Generator, Tensor, adaptiveAvgPool2d, avgPool2d, batchNorm, cat, conv2d, convTranspose2d, dropout, linear, maxPool2d, ones,
  pad, padMode, tensor, where,
} from '../../engine/index.js';
import type { Attributes } from './attributes.js';
import { dtypeOf, tensorOf, typeName } from './tensors.js';

/** Run-time state a kernel may depend on. */
export interface RunState {
  training: boolean;
  /** Where dropout draws its masks (the module's dropoutGenerator; the global stream when undefined). */
  dropoutGenerator?: Generator;
}

/** Runs one node: the inputs in order (undefined for an omitted optional input), the outputs in order. */
export type Kernel = (inputs: (Tensor | undefined)[], state: RunState) => Tensor[];

export interface BuildContext {
  opset: number;
  attrs: Attributes;
  /** Which outputs another node or the graph's outputs read. */
  outputUsed: boolean[];
  /** Throws the load error for this node. */
  refuse(problem: string): never;
}

export interface OperatorSpec {
  build(ctx: BuildContext): Kernel;
  /** Input positions read as numbers (shapes, axes, bounds): a float initialiser there is a constant, not a parameter. */
  staticInputs?: number[];
  /** Input positions that are batch-norm running statistics: registered as buffers. */
  bufferInputs?: number[];
  /** False for operators whose output is random (never folded at load). */
  deterministic?: boolean;
}

// ---- reading numbers from tensors ----

const numbersCache = new WeakMap<Tensor, number[]>();

/** The elements of a small tensor as numbers; constants are read once. */
export function numbers(t: Tensor): number[] {
  let v = numbersCache.get(t);
  if (!v) {
    v = Array.from(t.dataSync() as ArrayLike<number | bigint>, Number);
    numbersCache.set(t, v);
  }
  return v;
}

function need(t: Tensor | undefined, what: string): Tensor {
  if (!t) throw new Error(`the ${what} input is required`);
  return t;
}

const normAxis = (axis: number, rank: number): number => {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) throw new Error(`axis ${axis} is out of range for rank ${rank}`);
  return a;
};

const product = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

// ---- spatial helpers (2-D only: image classifiers) ----

interface Spatial {
  kernel: [number, number] | null;
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] as ONNX lists them, or null for auto_pad SAME_*. */
  pads: [number, number, number, number];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
}

function pair(ctx: BuildContext, name: string, fallback: number): [number, number] {
  const v = ctx.attrs.ints(name);
  if (v === undefined) return [fallback, fallback];
  if (v.length !== 2) ctx.refuse(`attribute '${name}' has ${v.length} values; only 2-D (image) operators are supported`);
  if (v.some((x) => !(x >= 1))) ctx.refuse(`attribute '${name}' must be positive, got [${v}]`);
  return [v[0] as number, v[1] as number];
}

function spatial(ctx: BuildContext, opts: { kernelRequired: boolean; dilations: boolean }): Spatial {
  const k = ctx.attrs.ints('kernel_shape');
  if (k === undefined && opts.kernelRequired) ctx.refuse("attribute 'kernel_shape' is required");
  if (k !== undefined && k.length !== 2) ctx.refuse(`kernel_shape [${k}] is not 2-D; only 2-D (image) operators are supported`);
  const autoPad = ctx.attrs.string('auto_pad', 'NOTSET');
  if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(autoPad)) ctx.refuse(`auto_pad '${autoPad}' is not supported`);
  const p = ctx.attrs.ints('pads') ?? [0, 0, 0, 0];
  if (p.length !== 4 || p.some((x) => x < 0)) ctx.refuse(`pads [${p}] must be 4 non-negative values (2-D)`);
  if (autoPad !== 'NOTSET' && p.some((x) => x !== 0)) ctx.refuse('pads must not be given with auto_pad');
  return {
    kernel: k ? [k[0] as number, k[1] as number] : null,
    strides: pair(ctx, 'strides', 1),
    dilations: opts.dilations ? pair(ctx, 'dilations', 1) : [1, 1],
    pads: p as [number, number, number, number],
    autoPad: autoPad as Spatial['autoPad'],
  };
}

/** [top, left, bottom, right] for an input of spatial size [h, w] and kernel [kh, kw]. */
function resolvePads(s: Spatial, size: number[], kernel: [number, number]): [number, number, number, number] {
  if (s.autoPad === 'NOTSET') return s.pads;
  if (s.autoPad === 'VALID') return [0, 0, 0, 0];
  const out: number[] = [0, 0, 0, 0];
  for (let i = 0; i < 2; i++) {
    const n = size[i] as number;
    const stride = s.strides[i] as number;
    const extent = ((kernel[i] as number) - 1) * (s.dilations[i] as number) + 1;
    const total = Math.max(0, (Math.ceil(n / stride) - 1) * stride + extent - n);
    const small = Math.floor(total / 2);
    out[i] = s.autoPad === 'SAME_UPPER' ? small : total - small;
    out[i + 2] = total - (out[i] as number);
  }
  return out as [number, number, number, number];
}

/**
 * Splits ONNX pads into a symmetric part the engine op takes and the
 * remainder, applied beforehand with `pad` (F.pad order: left, right, top, bottom).
 */
function splitPads(p: [number, number, number, number], limit?: [number, number]): { sym: [number, number]; extra: number[] | null } {
  const [top, left, bottom, right] = p;
  let sh = Math.min(top, bottom);
  let sw = Math.min(left, right);
  if (limit) {
    sh = Math.min(sh, limit[0]);
    sw = Math.min(sw, limit[1]);
  }
  const extra = [left - sw, right - sw, top - sh, bottom - sh];
  return { sym: [sh, sw], extra: extra.some((v) => v !== 0) ? extra : null };
}

function check4d(x: Tensor, op: string): void {
  if (x.rank !== 4) throw new Error(`${op} input has rank ${x.rank}; only 4-d [N, C, H, W] inputs are supported`);
}

// ---- the operators ----

const unary = (f: (x: Tensor) => Tensor): OperatorSpec => ({ build: () => (i) => [f(need(i[0], 'X'))] });

/** Integer division truncates in ONNX; the engine's div gives a float. */
function divide(a: Tensor, b: Tensor): Tensor {
  const q = a.div(b);
  if (!(isInt(a.dtype) && isInt(b.dtype))) return q;
  const t = where(q.lt(0), q.ceil(), q.floor());
  const r = t.to(a.dtype);
  q.dispose();
  t.dispose();
  return r;
}

const isInt = (d: DType): boolean => d.startsWith('int') || d === 'uint8';

const binary = (f: (a: Tensor, b: Tensor) => Tensor): OperatorSpec => ({
  build: () => (i) => [f(need(i[0], 'A'), need(i[1], 'B'))],
});

const conv: OperatorSpec = {
  build(ctx) {
    const s = spatial(ctx, { kernelRequired: false, dilations: true });
    const groups = ctx.attrs.int('group', 1);
    if (!(groups >= 1)) ctx.refuse(`group must be positive, got ${groups}`);
    return (i) => {
      const x = need(i[0], 'X');
      const w = need(i[1], 'W');
      check4d(x, 'Conv');
      if (w.rank !== 4) throw new Error(`Conv weight has rank ${w.rank}; only 2-D convolutions are supported`);
      const k: [number, number] = [w.shape[2] as number, w.shape[3] as number];
      if (s.kernel && (s.kernel[0] !== k[0] || s.kernel[1] !== k[1])) throw new Error(`kernel_shape [${s.kernel}] does not match the weight's [${k}]`);
      const { sym, extra } = splitPads(resolvePads(s, x.shape.slice(2), k));
      const input = extra ? pad(x, extra) : x;
      const y = conv2d(input, w, i[2] ?? null, { stride: s.strides, padding: sym, dilation: s.dilations, groups });
      if (input !== x) input.dispose();
      return [y];
    };
  },
};

const convTranspose: OperatorSpec = {
  build(ctx) {
    const s = spatial(ctx, { kernelRequired: false, dilations: true });
    if (s.autoPad !== 'NOTSET' && s.autoPad !== 'VALID') ctx.refuse(`auto_pad '${s.autoPad}' is not supported for ConvTranspose`);
    if (ctx.attrs.ints('output_shape')) ctx.refuse("attribute 'output_shape' is not supported (give pads and output_padding)");
    const groups = ctx.attrs.int('group', 1);
    const outPad = ctx.attrs.ints('output_padding') ?? [0, 0];
    if (outPad.length !== 2) ctx.refuse(`output_padding [${outPad}] is not 2-D`);
    return (i) => {
      const x = need(i[0], 'X');
      const w = need(i[1], 'W');
      check4d(x, 'ConvTranspose');
      if (w.rank !== 4) throw new Error(`ConvTranspose weight has rank ${w.rank}; only 2-D is supported`);
      const [top, left, bottom, right] = s.pads;
      const sym: [number, number] = [Math.min(top, bottom), Math.min(left, right)];
      const y = convTranspose2d(x, w, i[2] ?? null, {
        stride: s.strides, padding: sym, dilation: s.dilations, groups, outputPadding: outPad as [number, number],
      });
      // Unequal pads crop the remainder from one side (a negative pad crops).
      const crop = [left - sym[1], right - sym[1], top - sym[0], bottom - sym[0]];
      if (crop.every((v) => v === 0)) return [y];
      const out = pad(y, crop.map((v) => -v));
      y.dispose();
      return [out];
    };
  },
};

const gemm: OperatorSpec = {
  build(ctx) {
    const alpha = ctx.attrs.float('alpha', 1);
    const beta = ctx.attrs.float('beta', 1);
    const transA = ctx.attrs.flag('transA', 0);
    const transB = ctx.attrs.flag('transB', 0);
    return (i) => {
      const a = need(i[0], 'A');
      const b = need(i[1], 'B');
      const c = i[2];
      // The layer PyTorch exports (x W^T + b) is one engine call.
      if (!transA && transB && alpha === 1 && beta === 1 && (!c || c.rank === 1)) return [linear(a, b, c ?? null)];
      const ta = transA ? a.transpose(0, 1) : a;
      const tb = transB ? b.transpose(0, 1) : b;
      let y = ta.matmul(tb);
      if (ta !== a) ta.dispose();
      if (tb !== b) tb.dispose();
      if (alpha !== 1) y = replace(y, y.mul(alpha));
      if (c && beta !== 0) y = replace(y, beta === 1 ? y.add(c) : y.add(c, beta));
      return [y];
    };
  },
};

/** Returns `next`, freeing `prev`. */
function replace(prev: Tensor, next: Tensor): Tensor {
  if (next !== prev) prev.dispose();
  return next;
}

const clip: OperatorSpec = {
  staticInputs: [1, 2],
  build(ctx) {
    if (ctx.opset < 11) {
      const min = ctx.attrs.float('min', -Infinity);
      const max = ctx.attrs.float('max', Infinity);
      return (i) => [clampTo(need(i[0], 'input'), min, max)];
    }
    return (i) => {
      const x = need(i[0], 'input');
      const min = i[1] ? numbers(i[1])[0] as number : -Infinity;
      const max = i[2] ? numbers(i[2])[0] as number : Infinity;
      return [clampTo(x, min, max)];
    };
  },
};

function clampTo(x: Tensor, min: number, max: number): Tensor {
  if (min === 0 && max === Infinity) return x.relu();
  if (Number.isFinite(min) && Number.isFinite(max)) return x.hardtanh(min, max);
  return x.clamp(Number.isFinite(min) ? min : null, Number.isFinite(max) ? max : null);
}

const hardSigmoid: OperatorSpec = {
  build(ctx) {
    const alpha = ctx.attrs.float('alpha', 0.2);
    const beta = ctx.attrs.float('beta', 0.5);
    // PyTorch's hardsigmoid is alpha 1/6, beta 1/2 (stored as float32).
    if (alpha === Math.fround(1 / 6) && beta === 0.5) return (i) => [need(i[0], 'X').hardsigmoid()];
    return (i) => {
      const t = need(i[0], 'X').mul(alpha);
      const u = t.add(beta);
      t.dispose();
      return [replace(u, u.hardtanh(0, 1))];
    };
  },
};

const batchNormalization: OperatorSpec = {
  bufferInputs: [3, 4],
  build(ctx) {
    const eps = ctx.attrs.float('epsilon', 1e-5);
    const momentum = ctx.attrs.float('momentum', 0.9);
    if (ctx.opset >= 14 && ctx.attrs.flag('training_mode', 0)) {
      ctx.refuse('training_mode=1 (a graph exported for training) is not supported; export in eval mode');
    }
    if (ctx.outputUsed.slice(1).some(Boolean)) ctx.refuse('the running-statistics outputs are not supported; export in eval mode');
    return (i, state) => {
      const [x, scale, bias, mean, variance] = [0, 1, 2, 3, 4].map((k) => need(i[k], ['X', 'scale', 'B', 'mean', 'var'][k] as string));
      // Statistics that are also trainable elsewhere (an exporter merged equal initialisers) are read as constants.
      const m = (mean as Tensor).requiresGrad ? (mean as Tensor).detach() : mean;
      const v = (variance as Tensor).requiresGrad ? (variance as Tensor).detach() : variance;
      // ONNX's momentum weighs the old statistics; the engine's (PyTorch's) the new batch.
      const y = batchNorm(x as Tensor, {
        weight: scale, bias, runningMean: m, runningVar: v, training: state.training, momentum: 1 - momentum, eps,
      });
      if (m !== mean) m?.dispose();
      if (v !== variance) v?.dispose();
      return [y];
    };
  },
};

function poolBuilder(kind: 'max' | 'avg'): OperatorSpec {
  return {
    build(ctx) {
      const s = spatial(ctx, { kernelRequired: true, dilations: kind === 'max' });
      const ceilMode = ctx.attrs.flag('ceil_mode', 0);
      const kernel = s.kernel as [number, number];
      if (kind === 'max') {
        if (ctx.attrs.int('storage_order', 0) !== 0) ctx.refuse('storage_order=1 is not supported');
        if (ctx.outputUsed[1]) ctx.refuse('the Indices output is not supported');
        return (i) => {
          const x = need(i[0], 'X');
          check4d(x, 'MaxPool');
          const { sym, extra } = splitPads(resolvePads(s, x.shape.slice(2), kernel), [Math.floor(kernel[0] / 2), Math.floor(kernel[1] / 2)]);
          const input = extra ? pad(x, extra, -Infinity) : x;
          const y = maxPool2d(input, kernel, { stride: s.strides, padding: sym, dilation: s.dilations, ceilMode });
          if (input !== x) input.dispose();
          return [y];
        };
      }
      const includePad = ctx.attrs.flag('count_include_pad', 0);
      return (i) => {
        const x = need(i[0], 'X');
        check4d(x, 'AveragePool');
        const { sym, extra } = splitPads(resolvePads(s, x.shape.slice(2), kernel), [Math.floor(kernel[0] / 2), Math.floor(kernel[1] / 2)]);
        const opts = { stride: s.strides, padding: sym, ceilMode, countIncludePad: includePad };
        if (!extra) return [avgPool2d(x, kernel, opts)];
        const padded = pad(x, extra);
        const sum = avgPool2d(padded, kernel, opts);
        padded.dispose();
        if (includePad) return [sum];
        // Without the padding in the count, divide by the share of real pixels in each window.
        const mask = pad(ones([1, 1, ...x.shape.slice(2)], { dtype: x.dtype }), extra);
        const share = avgPool2d(mask, kernel, opts);
        mask.dispose();
        const y = sum.div(share);
        sum.dispose();
        share.dispose();
        return [y];
      };
    },
  };
}

const globalAveragePool: OperatorSpec = {
  build: () => (i) => {
    const x = need(i[0], 'X');
    if (x.rank === 4) return [adaptiveAvgPool2d(x, 1)];
    return [x.mean(Array.from({ length: x.rank - 2 }, (_, k) => k + 2), { keepDim: true })];
  },
};

const flatten: OperatorSpec = {
  build(ctx) {
    const axis = ctx.attrs.int('axis', 1);
    return (i) => {
      const x = need(i[0], 'input');
      const a = axis < 0 ? axis + x.rank : axis;
      if (!(a >= 0 && a <= x.rank)) throw new Error(`axis ${axis} is out of range for rank ${x.rank}`);
      const s = x.shape;
      return [x.reshape([product(s.slice(0, a)), product(s.slice(a))])];
    };
  },
};

const reshape: OperatorSpec = {
  staticInputs: [1],
  build(ctx) {
    const allowZero = ctx.opset >= 14 && ctx.attrs.flag('allowzero', 0);
    return (i) => {
      const x = need(i[0], 'data');
      const s = x.shape;
      const target = numbers(need(i[1], 'shape')).map((d, k) => (d === 0 && !allowZero ? (s[k] as number) : d));
      return [x.reshape(target)];
    };
  },
};

const transpose: OperatorSpec = {
  build(ctx) {
    const perm = ctx.attrs.ints('perm');
    return (i) => {
      const x = need(i[0], 'data');
      return [x.permute(perm ?? Array.from({ length: x.rank }, (_, k) => x.rank - 1 - k))];
    };
  },
};

const concat: OperatorSpec = {
  build(ctx) {
    if (!ctx.attrs.has('axis')) ctx.refuse("attribute 'axis' is required");
    const axis = ctx.attrs.int('axis', 0);
    return (i) => {
      const parts = i.filter((t): t is Tensor => t !== undefined);
      if (parts.length === 1) return [(parts[0] as Tensor).reshape((parts[0] as Tensor).shape)];
      return [cat(parts, axis)];
    };
  },
};

const split: OperatorSpec = {
  staticInputs: [1],
  build(ctx) {
    const axis = ctx.attrs.int('axis', 0);
    const attrSplit = ctx.opset < 13 ? ctx.attrs.ints('split') : undefined;
    const parts = ctx.opset >= 18 ? ctx.attrs.int('num_outputs', ctx.outputUsed.length) : ctx.outputUsed.length;
    return (i) => {
      const x = need(i[0], 'input');
      const a = normAxis(axis, x.rank);
      const dim = x.shape[a] as number;
      let sizes = attrSplit ?? (i[1] ? numbers(i[1]) : undefined);
      if (!sizes) {
        const each = Math.ceil(dim / parts);
        sizes = Array.from({ length: parts }, (_, k) => Math.max(0, Math.min(each, dim - k * each)));
      }
      if (sizes.reduce((p, q) => p + q, 0) !== dim) throw new Error(`split sizes [${sizes}] do not add up to dimension ${a} (${dim})`);
      return x.split(sizes, a);
    };
  },
};

const slice: OperatorSpec = {
  staticInputs: [1, 2, 3, 4],
  build(ctx) {
    if (ctx.opset < 10) ctx.refuse('Slice before opset 10 is not supported');
    return (i) => {
      const x = need(i[0], 'data');
      const starts = numbers(need(i[1], 'starts'));
      const ends = numbers(need(i[2], 'ends'));
      const axes = i[3] ? numbers(i[3]) : starts.map((_, k) => k);
      const steps = i[4] ? numbers(i[4]) : starts.map(() => 1);
      let y = x;
      const shape = x.shape;
      for (let k = 0; k < starts.length; k++) {
        const a = normAxis(axes[k] as number, x.rank);
        const dim = shape[a] as number;
        const step = steps[k] as number;
        if (step === 0) throw new Error('Slice step must not be 0');
        const at = (v: number): number => (v < 0 ? v + dim : v);
        let next: Tensor;
        if (step > 0) {
          const start = Math.min(Math.max(at(starts[k] as number), 0), dim);
          const end = Math.min(Math.max(at(ends[k] as number), 0), dim);
          if (start === 0 && end === dim && step === 1) continue;
          next = y.slice(a, start, Math.max(start, end), step);
        } else {
          // A backward slice is a forward slice of the flipped axis.
          const start = Math.min(Math.max(at(starts[k] as number), -1), dim - 1);
          const end = Math.min(Math.max(at(ends[k] as number), -1), dim - 1);
          const flipped = y.flip([a]);
          const fs = dim - 1 - start;
          next = flipped.slice(a, fs, Math.max(fs, dim - 1 - end), -step);
          flipped.dispose();
        }
        if (y !== x) y.dispose();
        y = next;
      }
      return [y === x ? x.reshape(shape) : y];
    };
  },
};

function axesOf(ctx: BuildContext, fromInputOpset: number): (i: (Tensor | undefined)[]) => number[] | undefined {
  if (ctx.opset < fromInputOpset) {
    const a = ctx.attrs.ints('axes');
    return () => a;
  }
  return (i) => (i[1] ? numbers(i[1]) : undefined);
}

const squeeze: OperatorSpec = {
  staticInputs: [1],
  build(ctx) {
    const axes = axesOf(ctx, 13);
    return (i) => {
      const x = need(i[0], 'data');
      const s = x.shape;
      const drop = new Set((axes(i) ?? s.flatMap((d, k) => (d === 1 ? [k] : []))).map((a) => normAxis(a, x.rank)));
      for (const a of drop) if (s[a] !== 1) throw new Error(`cannot squeeze axis ${a} of size ${s[a]}`);
      return [x.reshape(s.filter((_, k) => !drop.has(k)))];
    };
  },
};

const unsqueeze: OperatorSpec = {
  staticInputs: [1],
  build(ctx) {
    const axes = axesOf(ctx, 13);
    return (i) => {
      const x = need(i[0], 'data');
      const list = axes(i);
      if (!list) throw new Error('Unsqueeze needs axes');
      const rank = x.rank + list.length;
      const add = new Set(list.map((a) => normAxis(a, rank)));
      const s = x.shape;
      const out: number[] = [];
      for (let k = 0, src = 0; k < rank; k++) out.push(add.has(k) ? 1 : (s[src++] as number));
      return [x.reshape(out)];
    };
  },
};

const padOp: OperatorSpec = {
  staticInputs: [1, 2, 3],
  build(ctx) {
    const mode = ctx.attrs.string('mode', 'constant');
    if (!['constant', 'reflect', 'edge'].includes(mode)) ctx.refuse(`mode '${mode}' is not supported`);
    const attrPads = ctx.opset < 11 ? ctx.attrs.ints('pads') : undefined;
    const attrValue = ctx.opset < 11 ? ctx.attrs.float('value', 0) : 0;
    return (i) => {
      const x = need(i[0], 'data');
      const rank = x.rank;
      const given = attrPads ?? numbers(need(i[1], 'pads'));
      const axes = i[3] ? numbers(i[3]).map((a) => normAxis(a, rank)) : Array.from({ length: rank }, (_, k) => k);
      if (given.length !== 2 * axes.length) throw new Error(`pads has ${given.length} values for ${axes.length} axes`);
      const begin = new Array<number>(rank).fill(0);
      const end = new Array<number>(rank).fill(0);
      axes.forEach((a, k) => {
        begin[a] = given[k] as number;
        end[a] = given[k + axes.length] as number;
      });
      // The engine's order: [before, after] pairs from the last dimension backwards.
      const torchPads: number[] = [];
      for (let d = rank - 1; d >= 0; d--) torchPads.push(begin[d] as number, end[d] as number);
      if (mode === 'constant') {
        const value = attrPads ? attrValue : i[2] ? (numbers(i[2])[0] as number) : 0;
        return [pad(x, torchPads, value)];
      }
      if ((rank !== 3 && rank !== 4) || torchPads.slice(4).some((v) => v !== 0)) {
        throw new Error(`mode '${mode}' pads only the last two dimensions of a 3-d or 4-d tensor`);
      }
      return [padMode(x, torchPads.slice(0, 4) as [number, number, number, number], mode === 'reflect' ? 'reflect' : 'replicate')];
    };
  },
};

const softmax: OperatorSpec = {
  build(ctx) {
    const axis = ctx.attrs.int('axis', ctx.opset < 13 ? 1 : -1);
    return (i) => {
      const x = need(i[0], 'input');
      const a = normAxis(axis, x.rank);
      if (ctx.opset >= 13 || a === x.rank - 1) return [x.softmax(a)];
      // Before opset 13 Softmax normalised over all dimensions from axis on, as one.
      const s = x.shape;
      const flat = x.reshape([product(s.slice(0, a)), product(s.slice(a))]);
      const y = flat.softmax(1);
      flat.dispose();
      return [replace(y, y.reshape(s))];
    };
  },
};

const reduceMean: OperatorSpec = {
  staticInputs: [1],
  build(ctx) {
    const axes = axesOf(ctx, 18);
    const keep = ctx.attrs.flag('keepdims', 1);
    const noopEmpty = ctx.opset >= 18 && ctx.attrs.flag('noop_with_empty_axes', 0);
    return (i) => {
      const x = need(i[0], 'data');
      const list = axes(i);
      if (!list || list.length === 0) return [noopEmpty ? x.reshape(x.shape) : x.mean(null, { keepDim: keep })];
      return [x.mean(list.map((a) => normAxis(a, x.rank)), { keepDim: keep })];
    };
  },
};

const constant: OperatorSpec = {
  build(ctx) {
    const a = ctx.attrs;
    let make: (() => Tensor) | null = null;
    const t = a.tensor('value');
    if (t) make = () => tensorOf(t);
    const f = a.has('value_float') ? a.float('value_float', 0) : undefined;
    if (f !== undefined) make = () => tensor(f, { shape: [] });
    const fs = a.floats('value_floats');
    if (fs) make = () => tensor(Float32Array.from(fs));
    const n = a.has('value_int') ? a.int('value_int', 0) : undefined;
    if (n !== undefined) make = () => tensor(Float64Array.from([n]), { shape: [], dtype: 'int64' });
    const ns = a.ints('value_ints');
    if (ns) make = () => tensor(Float64Array.from(ns), { dtype: 'int64' });
    if (a.has('sparse_value') || a.has('value_string') || a.has('value_strings')) ctx.refuse('sparse and string constants are not supported');
    if (!make) return ctx.refuse('the constant has no value');
    const value = make;
    try {
      value().dispose();
    } catch (e) {
      ctx.refuse((e as Error).message);
    }
    return () => [value()];
  },
};

const constantOfShape: OperatorSpec = {
  staticInputs: [0],
  build(ctx) {
    const t = ctx.attrs.tensor('value');
    const dtype = t ? dtypeOf(t.dataType) : 'float32';
    if (!dtype) return ctx.refuse(`value of type ${typeName(t?.dataType ?? 0)} is not supported`);
    let fill = 0;
    if (t) {
      const v = tensorOf(t);
      fill = v.item();
      v.dispose();
    }
    return (i) => {
      const dims = numbers(need(i[0], 'input'));
      const z = ones(dims, { dtype });
      return [fill === 1 ? z : replace(z, z.mul(fill))];
    };
  },
};

const cast: OperatorSpec = {
  build(ctx) {
    const to = ctx.attrs.int('to', 0);
    const dtype = dtypeOf(to);
    if (!dtype) return ctx.refuse(`cast to ${typeName(to)} is not supported`);
    return (i) => [need(i[0], 'input').to(dtype)];
  },
};

const dropoutOp: OperatorSpec = {
  staticInputs: [1, 2],
  deterministic: false,
  build(ctx) {
    if (ctx.outputUsed[1]) ctx.refuse('the mask output is not supported');
    const attrRatio = ctx.opset < 12 ? ctx.attrs.float('ratio', 0.5) : undefined;
    ctx.attrs.int('seed', 0); // not honoured: the run's dropout stream (or the global one) draws the mask
    return (i, state) => {
      const x = need(i[0], 'data');
      // Active in training mode only: the module's mode, not the graph's training_mode input, decides.
      if (!state.training) return [x];
      const ratio = attrRatio ?? (i[1] ? (numbers(i[1])[0] as number) : 0.5);
      return [dropout(x, ratio, true, state.dropoutGenerator)];
    };
  },
};

const shape: OperatorSpec = {
  build(ctx) {
    const start = ctx.opset >= 15 ? ctx.attrs.int('start', 0) : 0;
    const endAttr = ctx.opset >= 15 && ctx.attrs.has('end') ? ctx.attrs.int('end', 0) : undefined;
    return (i) => {
      const s = need(i[0], 'data').shape;
      const clampTo = (v: number): number => Math.min(Math.max(v < 0 ? v + s.length : v, 0), s.length);
      const dims = s.slice(clampTo(start), endAttr === undefined ? s.length : clampTo(endAttr));
      return [tensor(Float64Array.from(dims), { dtype: 'int64' })];
    };
  },
};

const gather: OperatorSpec = {
  build(ctx) {
    const axis = ctx.attrs.int('axis', 0);
    return (i) => {
      const data = need(i[0], 'data');
      const indices = need(i[1], 'indices');
      const a = normAxis(axis, data.rank);
      const dim = data.shape[a] as number;
      const s = data.shape;
      // Negative indices count from the end: (i + dim) mod dim.
      const wrapped = indices.to('int64').add(dim);
      const fixed = wrapped.remainder(dim);
      wrapped.dispose();
      const flat = fixed.reshape([-1]);
      const picked = data.indexSelect(a, flat);
      const out = [...s.slice(0, a), ...indices.shape, ...s.slice(a + 1)];
      fixed.dispose();
      flat.dispose();
      return [replace(picked, picked.reshape(out))];
    };
  },
};

const gelu: OperatorSpec = {
  build(ctx) {
    const approximate = ctx.attrs.string('approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') ctx.refuse(`approximate '${approximate}' is not supported`);
    const mode = approximate as 'none' | 'tanh';
    return (i) => [need(i[0], 'X').gelu(mode)];
  },
};

const leakyRelu: OperatorSpec = {
  build(ctx) {
    const alpha = ctx.attrs.float('alpha', 0.01);
    return (i) => [need(i[0], 'X').leakyRelu(alpha)];
  },
};

/** Every supported operator of the default domain. */
export const OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map<string, OperatorSpec>([
  ['Conv', conv],
  ['ConvTranspose', convTranspose],
  ['Gemm', gemm],
  ['MatMul', binary((a, b) => a.matmul(b))],
  ['Add', binary((a, b) => a.add(b))],
  ['Sub', binary((a, b) => a.sub(b))],
  ['Mul', binary((a, b) => a.mul(b))],
  ['Div', binary(divide)],
  ['Relu', unary((x) => x.relu())],
  ['LeakyRelu', leakyRelu],
  ['Sigmoid', unary((x) => x.sigmoid())],
  ['Tanh', unary((x) => x.tanh())],
  ['Erf', unary((x) => x.erf())],
  ['Gelu', gelu],
  ['Clip', clip],
  ['HardSigmoid', hardSigmoid],
  ['HardSwish', unary((x) => x.hardswish())],
  ['BatchNormalization', batchNormalization],
  ['MaxPool', poolBuilder('max')],
  ['AveragePool', poolBuilder('avg')],
  ['GlobalAveragePool', globalAveragePool],
  ['Flatten', flatten],
  ['Reshape', reshape],
  ['Transpose', transpose],
  ['Concat', concat],
  ['Split', split],
  ['Slice', slice],
  ['Squeeze', squeeze],
  ['Unsqueeze', unsqueeze],
  ['Pad', padOp],
  ['Softmax', softmax],
  ['ReduceMean', reduceMean],
  ['Constant', constant],
  ['ConstantOfShape', constantOfShape],
  ['Cast', cast],
  ['Identity', { build: () => (i) => [need(i[0], 'input')] }],
  ['Dropout', dropoutOp],
  ['Shape', shape],
  ['Gather', gather],
]);
