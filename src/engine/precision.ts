/**
 * Numeric precision of compute-heavy work. 'fp32' runs everything in float32.
 * 'bf16-autocast' runs convolutions and matrix products in bfloat16 through
 * libtorch's autocast (weights, optimizer state and inputs stay float32; on
 * CPU oneDNN uses AVX512-BF16 or AMX where the CPU has them). 'auto' is
 * bf16-autocast where the hardware computes in bfloat16 natively (such a CPU,
 * or a CUDA device of compute capability 8.0 or later), fp32 otherwise. Losses are computed in float32: pass
 * logits through {@link lossPrecision} outside the autocast region.
 */
import { readFileSync } from 'node:fs';
import { dtypeCode, dtypeName } from './dtype.js';
import { native } from './native.js';
import { cudaHasBf16 } from './runtime.js';
import type { Tensor } from './tensor.js';

export type Precision = 'fp32' | 'bf16-autocast' | 'auto';
/** A precision made concrete for some hardware. */
export type ConcretePrecision = Exclude<Precision, 'auto'>;

export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16-autocast', 'auto'];

/** Where the work runs: 'cpu' or a CUDA device ('cuda', 'cuda:1', ...). */
export type DeviceKind = 'cpu' | 'cuda';

/** True when a /proc/cpuinfo text lists bfloat16 instructions (AVX512-BF16 or AMX-BF16). */
export function cpuinfoHasBf16(cpuinfo: string): boolean {
  return /^flags\s*:.*\b(avx512_bf16|amx_bf16)\b/m.test(cpuinfo);
}

let cpuBf16: boolean | undefined;

/** True when this machine's CPU has bfloat16 instructions. */
export function cpuHasBf16(): boolean {
  if (cpuBf16 === undefined) {
    try {
      cpuBf16 = cpuinfoHasBf16(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      cpuBf16 = false;
    }
  }
  return cpuBf16;
}

/** True when `p` names a precision. */
export function isPrecision(p: unknown): p is Precision {
  return (PRECISIONS as readonly unknown[]).includes(p);
}

/**
 * Checks that `p` names a precision (input from users and files): the one check, which
 * {@link resolvePrecision} and everything that takes a precision go through. `what` names it in the error.
 */
export function checkPrecision(p: unknown, what = 'precision'): Precision {
  if (!isPrecision(p)) throw new Error(`${what} must be one of ${PRECISIONS.join(', ')}, got '${String(p)}'`);
  return p;
}

/** What the 'auto' decision looks at: where the work runs, and whether that hardware has bfloat16 arithmetic. */
export interface PrecisionHardware {
  device: DeviceKind;
  /** The CPU lists AVX512-BF16 or AMX-BF16 ({@link cpuHasBf16}). */
  cpuBf16: boolean;
  /** The CUDA device has compute capability 8.0 or later ({@link cudaHasBf16}). */
  cudaBf16: boolean;
}

/**
 * The decision behind 'auto', as a pure function of the hardware: bfloat16 on
 * CPUs with bfloat16 instructions (there it is 1.9-3.8x faster and attacks
 * find the same examples, docs/precision.md) and on CUDA devices of compute
 * capability 8.0 or later, float32 elsewhere, where bfloat16 would be emulated
 * and slower, or missing from older GPUs' kernels.
 */
export function choosePrecision(p: Precision, hardware: PrecisionHardware): ConcretePrecision {
  if (checkPrecision(p) !== 'auto') return p as ConcretePrecision;
  const bf16 = hardware.device === 'cuda' ? hardware.cudaBf16 : hardware.cpuBf16;
  return bf16 ? 'bf16-autocast' : 'fp32';
}

/**
 * 'auto' made concrete for this machine and device; other values checked and
 * returned. For CUDA the current device is asked (all of a machine's GPUs are
 * taken to be of one generation). Entry points (the CLI commands, evaluate,
 * transferMatrix, the trainer) call it once and pass the concrete value down.
 */
export function resolvePrecision(p: Precision, device = 'cpu'): ConcretePrecision {
  if (checkPrecision(p) !== 'auto') return p as ConcretePrecision;
  const kind = deviceKind(device);
  return choosePrecision(p, { device: kind, cpuBf16: kind === 'cpu' && cpuHasBf16(), cudaBf16: kind === 'cuda' && cudaHasBf16() });
}

function deviceKind(device: string): DeviceKind {
  return device.startsWith('cuda') ? 'cuda' : 'cpu';
}

let depth = 0;
/** Open bf16 regions per device kind (a region is for one kind). */
const open: Record<DeviceKind, number> = { cpu: 0, cuda: 0 };

/**
 * The dtype autocast computes in for tensors on `device` inside the current
 * withPrecision() region: 'bfloat16', or null where no such region is open.
 */
export function autocastDtype(device = 'cpu'): 'bfloat16' | null {
  return open[deviceKind(device)] > 0 ? 'bfloat16' : null;
}

/**
 * Runs `fn` at precision `p` (synchronously) for work on `device` (default
 * 'cpu'); nested regions restore what was before, also on exceptions.
 */
export function withPrecision<T>(p: Precision, fn: () => T, device = 'cpu'): T {
  if (resolvePrecision(p, device) === 'fp32') return fn();
  const kind = deviceKind(device);
  const cuda = kind === 'cuda';
  const [wasOn, wasDtype] = native.setAutocast(true, dtypeCode('bfloat16'), false, cuda) as [boolean, number];
  depth++;
  open[kind]++;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('withPrecision: fn must be synchronous');
    return result;
  } finally {
    depth--;
    open[kind]--;
    native.setAutocast(wasOn, dtypeCode(dtypeName(wasDtype)), depth === 0, cuda);
  }
}

/**
 * Logits as a loss should see them: bfloat16/float16 results of an autocast
 * region cast to float32 (a loss in bfloat16 breaks on confident examples);
 * float32 and float64 pass through.
 */
export function lossPrecision(logits: Tensor): Tensor {
  return logits.dtype === 'bfloat16' || logits.dtype === 'float16' ? logits.to('float32') : logits;
}
