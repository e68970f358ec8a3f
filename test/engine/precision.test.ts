/**
 * The precision decision: which setting 'auto' picks on which hardware (from
 * /proc/cpuinfo texts of CPUs with and without bfloat16 instructions), and the
 * float32 loss under autocast.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  choosePrecision, cpuHasBf16, cpuinfoHasBf16, cudaDeviceCount, cudaHasBf16, linear, lossPrecision, randn, resolvePrecision, scope, withPrecision,
} from '../../src/index.js';

// Abbreviated /proc/cpuinfo texts: a Sapphire Rapids (AMX), a Zen 4 (AVX512-BF16, no AMX), a Skylake-SP (AVX-512 without BF16).
const cpuinfo = (flags: string): string => `processor\t: 0\nvendor_id\t: X\nmodel name\t: X\nflags\t\t: fpu vme sse sse2 avx2 ${flags}\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: fpu vme sse sse2 avx2 ${flags}\n`;
const SAPPHIRE_RAPIDS = cpuinfo('avx512f avx512_bf16 amx_bf16 amx_tile amx_int8');
const ZEN4 = cpuinfo('avx512f avx512_bf16 avx512_vnni');
const SKYLAKE_SP = cpuinfo('avx512f avx512cd avx512bw avx512vl');

test('bfloat16 instructions are read from the flags line of /proc/cpuinfo', () => {
  assert.equal(cpuinfoHasBf16(SAPPHIRE_RAPIDS), true);
  assert.equal(cpuinfoHasBf16(ZEN4), true);
  assert.equal(cpuinfoHasBf16(SKYLAKE_SP), false);
  assert.equal(cpuinfoHasBf16(''), false);
  assert.equal(cpuinfoHasBf16('model name\t: avx512_bf16 in a name\nflags\t\t: fpu sse2\n'), false, 'only the flags line counts');
  assert.equal(cpuinfoHasBf16(cpuinfo('avx512_bf16x')), false, 'whole flag names only');
});

test("'auto' is bf16-autocast on CPUs with bfloat16 instructions and on CUDA devices that have it, fp32 elsewhere; explicit settings stay", () => {
  // [precision, device, CPU has bf16, CUDA device has bf16 (compute capability >= 8.0), expected]
  const cases: [string, 'cpu' | 'cuda', boolean, boolean, string][] = [
    ['auto', 'cpu', cpuinfoHasBf16(SAPPHIRE_RAPIDS), false, 'bf16-autocast'],
    ['auto', 'cpu', cpuinfoHasBf16(ZEN4), false, 'bf16-autocast'],
    ['auto', 'cpu', cpuinfoHasBf16(SKYLAKE_SP), false, 'fp32'],
    ['auto', 'cpu', false, true, 'fp32'],
    ['auto', 'cuda', false, true, 'bf16-autocast'],
    ['auto', 'cuda', true, false, 'fp32'],
    ['fp32', 'cpu', true, true, 'fp32'],
    ['fp32', 'cuda', false, true, 'fp32'],
    ['bf16-autocast', 'cpu', false, false, 'bf16-autocast'],
    ['bf16-autocast', 'cuda', false, false, 'bf16-autocast'],
  ];
  for (const [p, device, cpuBf16, cudaBf16, expected] of cases) {
    assert.equal(choosePrecision(p as 'auto', { device, cpuBf16, cudaBf16 }), expected, `${p} on ${device} (CPU bf16 ${cpuBf16}, CUDA bf16 ${cudaBf16})`);
  }
  assert.throws(() => choosePrecision('fp16' as 'auto', { device: 'cpu', cpuBf16: true, cudaBf16: true }), /precision must be one of fp32, bf16-autocast, auto, got 'fp16'/);
});

test('this machine: CUDA bfloat16 is reported only where a CUDA device is present, and resolvePrecision follows the CPU flags', () => {
  if (cudaDeviceCount() === 0) assert.equal(cudaHasBf16(), false);
  assert.equal(resolvePrecision('auto'), cpuHasBf16() ? 'bf16-autocast' : 'fp32');
  assert.equal(resolvePrecision('auto', 'cuda:0'), cudaHasBf16() ? 'bf16-autocast' : 'fp32');
  assert.equal(resolvePrecision('fp32', 'cuda:0'), 'fp32');
});

test('lossPrecision: bfloat16 results of an autocast region become float32; float32 and float64 pass through', () => {
  scope(() => {
    const w = randn([4, 8]);
    const v = randn([3, 8]);
    const raw = withPrecision('bf16-autocast', () => linear(v, w));
    assert.equal(raw.dtype, 'bfloat16');
    assert.equal(lossPrecision(raw).dtype, 'float32');
    const f64 = v.to('float64');
    assert.equal(lossPrecision(f64), f64);
    assert.equal(lossPrecision(v), v);
  });
});
