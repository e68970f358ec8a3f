/**
 * Numeric precision of compute-heavy work. 'fp32' runs everything in float32.
 * 'bf16-autocast' runs convolutions and matrix products in bfloat16 through
 * libtorch's CPU autocast (weights and inputs stay float32; oneDNN uses
 * AVX512-BF16 or AMX where the CPU has them). 'auto' is bf16-autocast where the
 * CPU has bfloat16 instructions, fp32 otherwise. Losses should be computed in
 * float32: cast logits with `.to('float32')` outside the autocast region.
 */
import { readFileSync } from 'node:fs';
import { dtypeCode, dtypeName } from './dtype.js';
import { native } from './native.js';

export type Precision = 'fp32' | 'bf16-autocast' | 'auto';

export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16-autocast', 'auto'];

let cpuBf16: boolean | undefined;

/** True when the CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16). */
export function cpuHasBf16(): boolean {
  if (cpuBf16 === undefined) {
    try {
      cpuBf16 = /\b(avx512_bf16|amx_bf16)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      cpuBf16 = false;
    }
  }
  return cpuBf16;
}

/** 'auto' made concrete for this machine; other values checked and returned. */
export function resolvePrecision(p: Precision): 'fp32' | 'bf16-autocast' {
  if (p === 'auto') return cpuHasBf16() ? 'bf16-autocast' : 'fp32';
  if (p !== 'fp32' && p !== 'bf16-autocast') throw new Error(`precision must be one of ${PRECISIONS.join(', ')}, got '${String(p)}'`);
  return p;
}

let depth = 0;

/** Runs `fn` at precision `p` (synchronously); nested regions restore what was before. */
export function withPrecision<T>(p: Precision, fn: () => T): T {
  if (resolvePrecision(p) === 'fp32') return fn();
  const [wasOn, wasDtype] = native.setAutocast(true, dtypeCode('bfloat16')) as [boolean, number];
  depth++;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('withPrecision: fn must be synchronous');
    return result;
  } finally {
    depth--;
    native.setAutocast(wasOn, dtypeCode(dtypeName(wasDtype)), depth === 0);
  }
}
