/**
 * The precision decision: which setting 'auto' picks on which hardware (from
 * /proc/cpuinfo texts of CPUs with and without bfloat16 instructions), and the
 * float32 loss under autocast.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choosePrecision, cpuinfoHasBf16, linear, lossPrecision, randn, scope, withPrecision } from '../../src/index.js';

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

test("'auto' is bf16-autocast on CUDA and on CPUs with bfloat16 instructions, fp32 elsewhere; explicit settings stay", () => {
  const cases: [string, 'cpu' | 'cuda', boolean, string][] = [
    ['auto', 'cpu', cpuinfoHasBf16(SAPPHIRE_RAPIDS), 'bf16-autocast'],
    ['auto', 'cpu', cpuinfoHasBf16(ZEN4), 'bf16-autocast'],
    ['auto', 'cpu', cpuinfoHasBf16(SKYLAKE_SP), 'fp32'],
    ['auto', 'cuda', false, 'bf16-autocast'],
    ['fp32', 'cpu', true, 'fp32'],
    ['fp32', 'cuda', false, 'fp32'],
    ['bf16-autocast', 'cpu', false, 'bf16-autocast'],
  ];
  for (const [p, device, cpuBf16, expected] of cases) {
    assert.equal(choosePrecision(p as 'auto', { device, cpuBf16 }), expected, `${p} on ${device} (bf16 ${cpuBf16})`);
  }
  assert.throws(() => choosePrecision('fp16' as 'auto', { device: 'cpu', cpuBf16: true }), /precision must be one of fp32, bf16-autocast, auto, got 'fp16'/);
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
