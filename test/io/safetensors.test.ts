/**
 * safetensors reading and writing: round trips of every dtype, a file built by
 * hand from the specification, interop with an independent PyTorch
 * implementation (safetensors_ref.py), every validation error, and atomic
 * replacement of files.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor, memory, cudaDeviceCount, type Tensor, type DType, type AnyTypedArray } from '../../src/engine/index.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  loadSafetensorsSync,
  readSafetensorsHeader,
  saveSafetensors,
  saveSafetensorsSync,
  SafetensorsError,
  MAX_HEADER_BYTES,
} from '../../src/io/safetensors.js';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/io/atomic.js';

const here = dirname(fileURLToPath(import.meta.url));
const REF_SCRIPT = join(here, 'safetensors_ref.py');
const PYTHON = '/usr/bin/python3';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'advml-st-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The bytes a file would hold: 8-byte LE length, header text, padding, data. */
function buildFile(header: string | object, data: Uint8Array | number[] = [], pad = 0): Uint8Array {
  const text = (typeof header === 'string' ? header : JSON.stringify(header)) + ' '.repeat(pad);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.byteLength + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** The header of a safetensors file, parsed by JSON.parse (not by the code under test). */
function parseHeader(bytes: Uint8Array): { n: number; text: string; json: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { n, text, json: JSON.parse(text) as Record<string, unknown> };
}

function flat(t: Tensor): (number | bigint)[] {
  return Array.from(t.dataSync() as ArrayLike<number | bigint>);
}

/** Equal element lists, NaN equal to NaN and -0 distinct from 0. */
function assertSameValues(actual: readonly (number | bigint)[], expected: readonly (number | bigint)[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    assert.ok(Object.is(a, e) || (typeof a === 'bigint' && a === e), `${what}[${i}]: got ${String(a)}, expected ${String(e)}`);
  }
}

function disposeAll(m: Map<string, Tensor>): void {
  for (const t of m.values()) t.dispose();
}

// Values of each dtype, all exactly representable in that dtype.
interface Case {
  name: string;
  dtype: DType;
  shape: number[];
  data: AnyTypedArray;
  /** What dataSync() reads back (16-bit floats widen to float32, bool to 0/1). */
  expected: (number | bigint)[];
}

const CASES: Case[] = [
  { name: 'f32', dtype: 'float32', shape: [2, 3], data: new Float32Array([0, -0, 1.5, Infinity, -Infinity, 3.4028234663852886e38]), expected: [0, -0, 1.5, Infinity, -Infinity, 3.4028234663852886e38] },
  { name: 'f64', dtype: 'float64', shape: [3], data: new Float64Array([Math.PI, -1e-300, 5e-324]), expected: [Math.PI, -1e-300, 5e-324] },
  // bfloat16: 8 significant bits; these are exact.
  { name: 'bf16', dtype: 'bfloat16', shape: [2, 2], data: new Float32Array([1, -0.5, 3.140625, -65536]), expected: [1, -0.5, 3.140625, -65536] },
  // float16: max 65504, smallest subnormal 2^-24.
  { name: 'f16', dtype: 'float16', shape: [4], data: new Float32Array([65504, -2.5, 2 ** -24, 0.099975586]), expected: [65504, -2.5, 2 ** -24, Math.fround(0.099975586)] },
  { name: 'i64', dtype: 'int64', shape: [4], data: new BigInt64Array([0n, -1n, 2n ** 62n + 12345n, -(2n ** 63n)]), expected: [0n, -1n, 2n ** 62n + 12345n, -(2n ** 63n)] },
  { name: 'i32', dtype: 'int32', shape: [2, 1], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]), expected: [-(2 ** 31), 2 ** 31 - 1] },
  { name: 'i16', dtype: 'int16', shape: [3], data: new Int16Array([-32768, 32767, 1]), expected: [-32768, 32767, 1] },
  { name: 'i8', dtype: 'int8', shape: [4], data: new Int8Array([-128, 127, 0, -1]), expected: [-128, 127, 0, -1] },
  { name: 'u8', dtype: 'uint8', shape: [3], data: new Uint8Array([0, 255, 128]), expected: [0, 255, 128] },
  { name: 'bool', dtype: 'bool', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]), expected: [1, 0, 0, 1] },
  { name: 'scalar', dtype: 'float32', shape: [], data: new Float32Array([7.25]), expected: [7.25] },
  { name: 'empty', dtype: 'float32', shape: [0, 3], data: new Float32Array([]), expected: [] },
  { name: 'empty.bf16', dtype: 'bfloat16', shape: [2, 0, 4], data: new Float32Array([]), expected: [] },
];

function makeCases(): Map<string, Tensor> {
  return new Map(CASES.map((c) => [c.name, tensor(c.data, { shape: c.shape, dtype: c.dtype })]));
}

describe('round trip in advml', () => {
  test('every dtype, 0-dim and empty tensors keep dtype, shape, values and exact bytes', () => {
    const src = makeCases();
    const bytes = encodeSafetensors(src, { purpose: 'round trip' });
    const { tensors, metadata } = decodeSafetensors(bytes);
    assert.deepEqual(metadata, { purpose: 'round trip' });
    assert.deepEqual([...tensors.keys()].sort(), CASES.map((c) => c.name).sort());
    for (const c of CASES) {
      const t = tensors.get(c.name) as Tensor;
      assert.equal(t.dtype, c.dtype, `${c.name} dtype`);
      assert.deepEqual(t.shape, c.shape, `${c.name} shape`);
      assertSameValues(flat(t), c.expected, c.name);
      assert.deepEqual(t.rawBytes(), (src.get(c.name) as Tensor).rawBytes(), `${c.name} bytes`);
    }
    disposeAll(src);
    disposeAll(tensors);
  });

  test('NaN payloads and bfloat16 bit patterns survive unchanged', () => {
    // 0x7fc1 is a quiet NaN with a payload; 0x0001 the smallest bfloat16 subnormal; 0x8000 is -0.
    const patterns = new Uint8Array([0xc1, 0x7f, 0x01, 0x00, 0x00, 0x80, 0x80, 0xff]);
    const file = buildFile({ x: { dtype: 'BF16', shape: [4], data_offsets: [0, 8] } }, patterns);
    const { tensors } = decodeSafetensors(file);
    const x = tensors.get('x') as Tensor;
    assert.deepEqual(x.rawBytes(), patterns);
    const again = encodeSafetensors(tensors);
    assert.deepEqual(again.subarray(again.byteLength - 8), patterns);
    disposeAll(tensors);
  });

  test('a channels-last tensor is written row-major and reads back equal', () => {
    const values = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i - 5.5);
    const x = tensor(values, { shape: [2, 3, 2, 2] });
    const cl = x.contiguous('channelsLast');
    assert.ok(cl.isContiguous('channelsLast') && !cl.isContiguous(), 'test setup: memory is channels-last');
    const bytes = encodeSafetensors({ cl });
    // The data region is exactly the row-major float32 bytes of `values`.
    assert.deepEqual(bytes.subarray(bytes.byteLength - values.byteLength), new Uint8Array(values.buffer));
    const { tensors } = decodeSafetensors(bytes);
    const back = tensors.get('cl') as Tensor;
    assert.deepEqual(back.shape, [2, 3, 2, 2]);
    assertSameValues(flat(back), Array.from(values), 'channels-last');
    x.dispose();
    cl.dispose();
    disposeAll(tensors);
  });

  test('a transposed view is written as its row-major values', () => {
    const x = tensor(new Int32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
    const xt = x.transpose(0, 1);
    const { tensors } = decodeSafetensors(encodeSafetensors({ xt }));
    assertSameValues(flat(tensors.get('xt') as Tensor), [1, 4, 2, 5, 3, 6], 'transposed');
    x.dispose();
    xt.dispose();
    disposeAll(tensors);
  });

  test('save and load through files, async and sync, Record input, no tensors', async (t) => {
    const dir = tempDir(t);
    const src = makeCases();
    const record = Object.fromEntries(src);
    await saveSafetensors(join(dir, 'a.safetensors'), record, { k: 'v' });
    saveSafetensorsSync(join(dir, 'b.safetensors'), src);
    assert.deepEqual(readFileSync(join(dir, 'a.safetensors')), Buffer.from(encodeSafetensors(src, { k: 'v' })));
    const a = await loadSafetensors(join(dir, 'a.safetensors'));
    const b = loadSafetensorsSync(join(dir, 'b.safetensors'));
    assert.deepEqual(a.metadata, { k: 'v' });
    assert.deepEqual(b.metadata, {});
    for (const c of CASES) {
      assertSameValues(flat(a.tensors.get(c.name) as Tensor), c.expected, `async ${c.name}`);
      assertSameValues(flat(b.tensors.get(c.name) as Tensor), c.expected, `sync ${c.name}`);
    }
    // No tensors at all is a valid file.
    const none = decodeSafetensors(encodeSafetensors(new Map()));
    assert.equal(none.tensors.size, 0);
    assert.deepEqual(readdirSync(dir).sort(), ['a.safetensors', 'b.safetensors']);
    disposeAll(src);
    disposeAll(a.tensors);
    disposeAll(b.tensors);
  });

  test('encode is deterministic whatever the insertion order', () => {
    const a = tensor(new Float32Array([1, 2]));
    const b = tensor(new Int8Array([3]));
    const one = encodeSafetensors(new Map([['a', a], ['b', b]]), { y: '2', x: '1' });
    const two = encodeSafetensors(new Map([['b', b], ['a', a]]), { x: '1', y: '2' });
    assert.deepEqual(one, two);
    a.dispose();
    b.dispose();
  });

  test('metadata keys such as __proto__ are kept as plain entries', () => {
    const bytes = buildFile('{"__metadata__":{"__proto__":"x","constructor":"y"}}');
    const { metadata } = decodeSafetensors(bytes);
    assert.equal(Object.getPrototypeOf(metadata), Object.prototype);
    assert.deepEqual(Object.keys(metadata), ['__proto__', 'constructor']);
    assert.equal(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value, 'x');
  });

  test('encode rejects a tensor named __metadata__, a disposed tensor, and non-string metadata', () => {
    const x = tensor(new Float32Array([1]));
    assert.throws(() => encodeSafetensors({ __metadata__: x }), /reserved/);
    assert.throws(() => encodeSafetensors({ x }, { n: 3 as unknown as string }), /metadata value of "n" must be a string/);
    x.dispose();
    assert.throws(() => encodeSafetensors({ x }), /"x" is disposed/);
  });
});

describe('byte level', () => {
  // A file written out by hand from the specification.
  const headerText =
    '{"__metadata__":{"k":"v"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"c":{"dtype":"I64","shape":[],"data_offsets":[8,16]},' +
    '"b":{"dtype":"BF16","shape":[2,1],"data_offsets":[16,20]},' +
    '"d":{"dtype":"BOOL","shape":[3],"data_offsets":[20,23]}}';
  const data = [
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, // a: float32 1.0, -2.0
    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // c: int64 -2
    0x80, 0x3f, 0x00, 0xbf, // b: bfloat16 1.0, -0.5
    0x01, 0x00, 0x01, // d: true, false, true
  ];
  const file = buildFile(headerText, data, 3);

  test('a hand-built file decodes to the right values', () => {
    const { tensors, metadata } = decodeSafetensors(file);
    assert.deepEqual(metadata, { k: 'v' });
    assert.deepEqual([...tensors.keys()], ['a', 'c', 'b', 'd']);
    const get = (n: string): Tensor => tensors.get(n) as Tensor;
    assert.equal(get('a').dtype, 'float32');
    assertSameValues(flat(get('a')), [1, -2], 'a');
    assert.equal(get('c').dtype, 'int64');
    assert.deepEqual(get('c').shape, []);
    assertSameValues(flat(get('c')), [-2n], 'c');
    assert.equal(get('b').dtype, 'bfloat16');
    assert.deepEqual(get('b').shape, [2, 1]);
    assertSameValues(flat(get('b')), [1, -0.5], 'b');
    assert.equal(get('d').dtype, 'bool');
    assert.deepEqual(get('d').toArray(), [true, false, true]);
    disposeAll(tensors);
  });

  test('encoding the same tensors gives a header with the same fields and the same bytes per tensor', () => {
    const { tensors } = decodeSafetensors(file);
    const out = encodeSafetensors(tensors, { k: 'v' });
    const { n, text, json } = parseHeader(out);
    assert.equal(n % 8, 0, 'header length is a multiple of 8');
    assert.match(text, /^\{.*\} *$/, 'padding is spaces after the JSON');
    assert.deepEqual(Object.keys(json), ['__metadata__', 'a', 'b', 'c', 'd'], 'metadata first, names sorted');
    assert.deepEqual(json.__metadata__, { k: 'v' });
    const original = JSON.parse(headerText) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    for (const name of ['a', 'b', 'c', 'd']) {
      const mine = json[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const theirs = original[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      assert.equal(mine.dtype, theirs.dtype, `${name} dtype`);
      assert.deepEqual(mine.shape, theirs.shape, `${name} shape`);
      const [b0, e0] = theirs.data_offsets;
      const [b1, e1] = mine.data_offsets;
      assert.deepEqual(out.subarray(8 + n + b1, 8 + n + e1), Uint8Array.from(data.slice(b0, e0)), `${name} bytes`);
    }
    assert.equal(out.byteLength, 8 + n + data.length, 'no bytes beyond the tensors');
    disposeAll(tensors);
  });

  test('the exact bytes of a one-tensor file', () => {
    const x = tensor(new Float32Array([1, -2]));
    const json = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const expected = buildFile(padded, [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    assert.deepEqual(encodeSafetensors({ x }), expected);
    x.dispose();
  });

  test('each tensor starts at a multiple of its item size', () => {
    const src = makeCases();
    const bytes = encodeSafetensors(src);
    const { n, json } = parseHeader(bytes);
    const sizes: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
    for (const [name, v] of Object.entries(json)) {
      const e = v as { dtype: string; data_offsets: [number, number] };
      assert.equal((8 + n + e.data_offsets[0]) % (sizes[e.dtype] as number), 0, `${name} aligned`);
    }
    disposeAll(src);
  });

  test('readSafetensorsHeader lists entries without making tensors', () => {
    const before = memory().liveTensors;
    const h = readSafetensorsHeader(file, 'f');
    assert.equal(memory().liveTensors, before);
    assert.equal(h.dataStart, file.byteLength - data.length);
    assert.deepEqual(h.entries.map((e) => [e.name, e.dtype, e.shape, e.dataOffsets]), [
      ['a', 'float32', [2], [0, 8]],
      ['c', 'int64', [], [8, 16]],
      ['b', 'bfloat16', [2, 1], [16, 20]],
      ['d', 'bool', [3], [20, 23]],
    ]);
  });
});

function pythonHasTorch(): { ok: boolean; why: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return { ok: false, why: `${PYTHON} cannot run: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `${PYTHON} cannot import torch: ${r.stderr.trim().split('\n').pop() ?? ''}` };
  return { ok: true, why: '' };
}

interface RefOutput {
  metadata: Record<string, string>;
  header_len: number;
  checks: Record<string, boolean>;
  tensors: Record<string, { dtype: string; shape: number[]; values: (number | string | boolean)[] }>;
}

function runRef(mode: 'read' | 'write', file: string): RefOutput {
  const r = spawnSync(PYTHON, [REF_SCRIPT, mode, file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `safetensors_ref.py ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as RefOutput;
}

/** A value the reference script printed, as advml's dataSync() gives it. */
function fromRef(v: number | string | boolean, dtype: string): number | bigint {
  if (dtype === 'I64') return BigInt(v as string);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 'nan') return NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return v as number;
}

const FILE_DTYPE: Record<DType, string> = {
  float32: 'F32', float64: 'F64', bfloat16: 'BF16', float16: 'F16', int64: 'I64',
  int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

describe('interop with PyTorch (safetensors_ref.py)', () => {
  const py = pythonHasTorch();

  test('PyTorch reads what advml writes', (t) => {
    if (!py.ok) return t.skip(py.why);
    const dir = tempDir(t);
    const file = join(dir, 'advml.safetensors');
    const src = makeCases();
    const x = tensor(Float32Array.from({ length: 24 }, (_, i) => i / 4), { shape: [1, 2, 3, 4] });
    src.set('nhwc', x.contiguous('channelsLast'));
    x.dispose();
    saveSafetensorsSync(file, src, { writer: 'advml', note: 'ünïcode ✓' });
    const ref = runRef('read', file);
    assert.deepEqual(ref.metadata, { writer: 'advml', note: 'ünïcode ✓' });
    assert.deepEqual(ref.checks, {
      header_len_multiple_of_8: true,
      header_padding_is_spaces: true,
      data_contiguous: true,
      data_aligned: true,
    });
    const expected: Case[] = [
      ...CASES,
      { name: 'nhwc', dtype: 'float32', shape: [1, 2, 3, 4], data: new Float32Array(), expected: Array.from({ length: 24 }, (_, i) => i / 4) },
    ];
    assert.deepEqual(Object.keys(ref.tensors).sort(), expected.map((c) => c.name).sort());
    for (const c of expected) {
      const r = ref.tensors[c.name];
      assert.ok(r, c.name);
      assert.equal(r.dtype, FILE_DTYPE[c.dtype], `${c.name} dtype`);
      assert.deepEqual(r.shape, c.shape, `${c.name} shape`);
      assertSameValues(r.values.map((v) => fromRef(v, r.dtype)), c.expected, `PyTorch's ${c.name}`);
    }
    disposeAll(src);
  });

  test('advml reads what PyTorch writes (unpadded header, unsorted and unaligned data)', (t) => {
    if (!py.ok) return t.skip(py.why);
    const dir = tempDir(t);
    const file = join(dir, 'torch.safetensors');
    const ref = runRef('write', file);
    assert.notEqual(ref.header_len % 8, 0, 'test setup: the reference writes an unpadded header');
    const { tensors, metadata } = loadSafetensorsSync(file);
    assert.deepEqual(metadata, ref.metadata);
    assert.deepEqual([...tensors.keys()], Object.keys(ref.tensors), 'header order kept');
    const toDType = Object.fromEntries(Object.entries(FILE_DTYPE).map(([k, v]) => [v, k]));
    assert.ok(Object.keys(ref.tensors).includes('a.bf16'));
    for (const [name, r] of Object.entries(ref.tensors)) {
      const x = tensors.get(name) as Tensor;
      assert.equal(x.dtype, toDType[r.dtype], `${name} dtype`);
      assert.deepEqual(x.shape, r.shape, `${name} shape`);
      assertSameValues(flat(x), r.values.map((v) => fromRef(v, r.dtype)), `advml's ${name}`);
    }
    disposeAll(tensors);
  });
});

describe('validation', () => {
  const F = 'bad.safetensors';
  const f32 = (shape: number[], offsets: [number, number]): object => ({ dtype: 'F32', shape, data_offsets: offsets });

  /** Asserts decode fails with a SafetensorsError naming the file and matching `problem`. */
  function rejects(bytes: Uint8Array, problem: RegExp): void {
    const before = memory().liveTensors;
    assert.throws(
      () => decodeSafetensors(bytes, F),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${String(e)}`);
        assert.ok(e.message.startsWith(`safetensors ${F}: `), `message names the file: ${e.message}`);
        assert.match(e.problem, problem);
        return true;
      },
    );
    assert.ok(memory().liveTensors <= before, 'no tensor left alive');
  }

  test('file shorter than 8 bytes', () => {
    rejects(new Uint8Array(0), /0 bytes long, shorter than the 8-byte header length/);
    rejects(new Uint8Array(5), /5 bytes long, shorter than the 8-byte header length/);
  });

  test('header length larger than the file, absurd, or zero', () => {
    const f = buildFile({});
    new DataView(f.buffer).setBigUint64(0, 3n, true);
    rejects(f.subarray(0, 10), /header length 3 is larger than the 2 bytes after the length field/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    rejects(huge, /header length 18446744073709551615 is absurd/);
    new DataView(huge.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    rejects(huge, /is absurd/);
    rejects(buildFile(''), /header is empty/);
  });

  test('header not valid JSON, not UTF-8, or not an object', () => {
    rejects(buildFile('{"a": {'), /header is not valid JSON/);
    rejects(buildFile('{"a":1,}'), /header is not valid JSON/);
    rejects(buildFile('{} x'), /header is not valid JSON: unexpected text after the JSON value/);
    const bad = buildFile('{"\u00e9":1}');
    bad[10] = 0xff; // break the 2-byte UTF-8 sequence of é
    rejects(bad, /header is not valid UTF-8/);
    rejects(buildFile('[1, 2]'), /header must be a JSON object, got an array/);
    rejects(buildFile('"text"'), /header must be a JSON object, got the string "text"/);
    rejects(buildFile('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'), /nesting deeper than/);
  });

  test('entry not an object, or missing a field', () => {
    rejects(buildFile({ x: [1] }), /tensor "x": entry must be an object with dtype, shape and data_offsets, got an array/);
    rejects(buildFile({ x: { dtype: 'F32', shape: [0] } }), /tensor "x": entry has no 'data_offsets'/);
    rejects(buildFile({ x: { shape: [0], data_offsets: [0, 0] } }), /tensor "x": entry has no 'dtype'/);
  });

  test('unknown dtype', () => {
    rejects(buildFile({ x: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, [0]), /tensor "x": unknown or unsupported dtype "F8_E4M3"/);
    rejects(buildFile({ x: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /unknown or unsupported dtype "f32"/);
    rejects(buildFile({ x: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /dtype must be a string, got the number 4/);
  });

  test('shape not an array of non-negative integers', () => {
    const shape = /tensor "x": shape must be an array of non-negative integers/;
    rejects(buildFile({ x: f32(-1 as unknown as number[], [0, 4]) }, [0, 0, 0, 0]), shape);
    rejects(buildFile({ x: f32([-1], [0, 4]) }, [0, 0, 0, 0]), shape);
    rejects(buildFile({ x: f32([1.5], [0, 4]) }, [0, 0, 0, 0]), shape);
    rejects(buildFile('{"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', [0, 0, 0, 0]), shape);
    rejects(buildFile({ x: f32(['1'] as unknown as number[], [0, 4]) }, [0, 0, 0, 0]), shape);
    rejects(buildFile('{"x":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,4]}}', [0, 0, 0, 0]), shape);
  });

  test('data_offsets not [begin, end] integers with begin <= end', () => {
    const offs = /tensor "x": data_offsets must be \[begin, end\] with non-negative integers/;
    rejects(buildFile({ x: f32([1], [0] as unknown as [number, number]) }, [0, 0, 0, 0]), offs);
    rejects(buildFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, [0, 0, 0, 0]), offs);
    rejects(buildFile({ x: f32([1], [0, 4.5]) }, [0, 0, 0, 0]), offs);
    rejects(buildFile({ x: f32([1], [-4, 0]) }, [0, 0, 0, 0]), offs);
    rejects(buildFile({ x: { dtype: 'F32', shape: [1], data_offsets: { begin: 0, end: 4 } } }, [0, 0, 0, 0]), offs);
    rejects(buildFile({ x: f32([0], [4, 0]) }, [0, 0, 0, 0]), /tensor "x": data_offsets \[4, 0\] has begin > end/);
  });

  test('byte length not product(shape) * item size', () => {
    rejects(
      buildFile({ x: f32([2, 3], [0, 20]) }, new Uint8Array(20)),
      /tensor "x": data_offsets \[0, 20\] span 20 bytes, but shape \[2, 3\] of F32 needs 24/,
    );
    rejects(buildFile({ x: { dtype: 'BF16', shape: [3], data_offsets: [0, 3] } }, new Uint8Array(3)), /needs 6/);
    // A product far beyond 2^53 is not rounded into a false match.
    rejects(buildFile({ x: { dtype: 'U8', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 0] } }), /needs 1208925819614629174706176/);
  });

  test('offsets out of range', () => {
    rejects(buildFile({ x: f32([2], [0, 8]) }, new Uint8Array(4)), /tensor "x": data_offsets \[0, 8\] are out of range: the data region has 4 bytes/);
  });

  test('overlapping or gapped tensors, and trailing bytes', () => {
    rejects(
      buildFile({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, new Uint8Array(12)),
      /tensors "a" \[0, 8\) and "b" \[4, 12\) overlap/,
    );
    rejects(buildFile({ a: f32([1], [0, 4]), b: f32([1], [0, 4]) }, new Uint8Array(4)), /overlap/);
    rejects(buildFile({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, new Uint8Array(12)), /gap: 4 bytes between "a" \(ends at 4\) and "b" \(begins at 8\)/);
    rejects(buildFile({ a: f32([1], [4, 8]) }, new Uint8Array(8)), /gap: the first 4 bytes of the data region belong to no tensor/);
    rejects(buildFile({ a: f32([1], [0, 4]) }, new Uint8Array(6)), /2 trailing bytes in the data region after the last tensor/);
    rejects(buildFile({}, [1]), /1 trailing byte in the data region/);
    // Empty tensors may share an offset with their neighbours.
    const ok = decodeSafetensors(buildFile({ e: f32([0], [4, 4]), a: f32([1], [0, 4]), f: f32([0, 2], [0, 0]) }, new Uint8Array(4)));
    assert.equal(ok.tensors.size, 3);
    disposeAll(ok.tensors);
  });

  test('duplicate names', () => {
    rejects(
      buildFile('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', [1, 2]),
      /duplicate tensor name "x" in header/,
    );
    rejects(buildFile('{"__metadata__":{},"__metadata__":{}}'), /two __metadata__ entries/);
    rejects(buildFile('{"__metadata__":{"a":"1","a":"2"}}'), /duplicate key "a"/);
  });

  test('__metadata__ not an object of strings', () => {
    rejects(buildFile({ __metadata__: { epoch: 3 } }), /__metadata__ value of "epoch" must be a string, got the number 3/);
    rejects(buildFile({ __metadata__: { a: null } }), /__metadata__ value of "a" must be a string, got null/);
    rejects(buildFile({ __metadata__: ['a'] }), /__metadata__ must be an object of strings, got an array/);
  });

  test('BOOL bytes other than 0 and 1', () => {
    rejects(buildFile({ m: { dtype: 'BOOL', shape: [3], data_offsets: [0, 3] } }, [1, 0, 2]), /tensor "m": BOOL element 2 is the byte 2, expected 0 or 1/);
  });

  test('a truncated file', () => {
    const x = tensor(new Float32Array([1, 2, 3, 4]));
    const y = tensor(new Int32Array([5, 6]));
    const good = encodeSafetensors({ x, y });
    const n = Number(new DataView(good.buffer).getBigUint64(0, true));
    rejects(good.subarray(0, 7), /7 bytes long, shorter than the 8-byte header length/);
    rejects(good.subarray(0, 8 + 10), /header length \d+ is larger than the 10 bytes after the length field: truncated/);
    rejects(good.subarray(0, 8 + n + 10), /out of range: the data region has 10 bytes \(truncated file\?\)/);
    rejects(good.subarray(0, good.byteLength - 1), /out of range/);
    x.dispose();
    y.dispose();
  });

  test('a tampered header', () => {
    const x = tensor(new Float32Array([1, 2, 3, 4]));
    const good = encodeSafetensors({ x });
    const tamper = (from: string, to: string): Uint8Array => {
      assert.equal(from.length, to.length, 'test setup: same length keeps offsets');
      const text = new TextDecoder().decode(good);
      assert.ok(text.includes(from), `test setup: header contains ${from}`);
      return new TextEncoder().encode(text.replace(from, to));
    };
    rejects(tamper('"shape":[4]', '"shape":[5]'), /span 16 bytes, but shape \[5\] of F32 needs 20/);
    rejects(tamper('"F32"', '"F64"'), /span 16 bytes, but shape \[4\] of F64 needs 32/);
    rejects(tamper('"F32"', '"X32"'), /unknown or unsupported dtype "X32"/);
    rejects(tamper('[0,16]', '[0,17]'), /span 17 bytes/);
    rejects(tamper('"x":{', '"x":['), /header is not valid JSON/);
    const longer = good.slice();
    longer[0] = (longer[0] as number) + 8; // the header now runs into the float data (byte 0x80 of 1.0)
    rejects(longer, /header is not valid UTF-8/);
    const shorter = good.slice();
    shorter[0] = (shorter[0] as number) - 8; // the header now stops inside the JSON
    rejects(shorter, /header is not valid JSON/);
    x.dispose();
  });

  test('loadSafetensors names the path, also for a missing file', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'short.safetensors');
    writeFileSync(path, new Uint8Array(3));
    await assert.rejects(loadSafetensors(path), (e: unknown) => e instanceof SafetensorsError && e.message === `safetensors ${path}: file is 3 bytes long, shorter than the 8-byte header length: truncated or not a safetensors file`);
    assert.throws(() => loadSafetensorsSync(join(dir, 'nope')), /safetensors .*nope: cannot read the file: ENOENT/);
  });

  test('a failure while creating tensors leaves none alive', () => {
    // No CUDA device here (or an ordinal past the last one): creation fails in libtorch.
    const device = cudaDeviceCount() > 0 ? `cuda:${cudaDeviceCount() + 5}` : 'cuda:0';
    const file = buildFile({ a: f32([1], [0, 4]), b: f32([1], [4, 8]) }, new Uint8Array(8));
    const before = memory().liveTensors;
    assert.throws(() => decodeSafetensors(file, F, { device }), (e: unknown) => e instanceof SafetensorsError && /could not create tensor "a"/.test(e.message));
    assert.equal(memory().liveTensors, before);
  });
});

describe('atomic write', () => {
  const OLD = new Uint8Array([1, 2, 3, 4, 5]);

  function setup(t: { after: (fn: () => void) => void }): { dir: string; path: string } {
    const dir = tempDir(t);
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, OLD);
    return { dir, path };
  }

  function* failingChunks(): Generator<Uint8Array> {
    yield new Uint8Array(1000).fill(7);
    throw new Error('simulated failure in the middle of the write');
  }

  test('a failure in the middle of the write leaves the old file and no temporary file (async)', async (t) => {
    const { dir, path } = setup(t);
    await assert.rejects(writeFileAtomic(path, failingChunks()), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /could not write '.*model\.safetensors': simulated failure in the middle of the write; any previous file there is unchanged/);
      return true;
    });
    assert.deepEqual(new Uint8Array(readFileSync(path)), OLD);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });

  test('a failure in the middle of the write leaves the old file and no temporary file (sync)', (t) => {
    const { dir, path } = setup(t);
    assert.throws(() => writeFileAtomicSync(path, failingChunks()), /simulated failure/);
    assert.deepEqual(new Uint8Array(readFileSync(path)), OLD);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });

  test('an async chunk source that rejects is cleaned up too', async (t) => {
    const { dir, path } = setup(t);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('network went away');
    }
    await assert.rejects(writeFileAtomic(path, chunks()), /network went away/);
    assert.deepEqual(new Uint8Array(readFileSync(path)), OLD);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });

  test('a failing rename (target is a directory) leaves no temporary file', async (t) => {
    const dir = tempDir(t);
    const target = join(dir, 'taken');
    fs.mkdirSync(target);
    writeFileSync(join(target, 'inside'), OLD);
    await assert.rejects(writeFileAtomic(target, new Uint8Array(4)), (e: unknown) => e instanceof Error && /could not write/.test(e.message) && ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes((e as { code?: string }).code ?? ''));
    assert.throws(() => writeFileAtomicSync(target, new Uint8Array(4)), /could not write/);
    assert.deepEqual(readdirSync(dir), ['taken']);
    assert.deepEqual(new Uint8Array(readFileSync(join(target, 'inside'))), OLD);
  });

  test('a missing directory fails with an error naming the path', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'no', 'such', 'file');
    await assert.rejects(writeFileAtomic(path, 'x'), (e: unknown) => e instanceof Error && e.message.includes(path) && (e as { code?: string }).code === 'ENOENT');
  });

  test('a directory that is not writable leaves the old file', (t) => {
    if (typeof process.getuid === 'function' && process.getuid() === 0) {
      return t.skip('running as root, which may write to any directory');
    }
    const { dir, path } = setup(t);
    fs.chmodSync(dir, 0o555);
    t.after(() => fs.chmodSync(dir, 0o755));
    assert.throws(() => writeFileAtomicSync(path, new Uint8Array(8)), (e: unknown) => (e as { code?: string }).code === 'EACCES');
    assert.deepEqual(new Uint8Array(readFileSync(path)), OLD);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });

  test('success replaces the contents, keeps the permission bits, and writes through a symbolic link', async (t) => {
    const { dir, path } = setup(t);
    fs.chmodSync(path, 0o640);
    await writeFileAtomic(path, [new Uint8Array([9, 9]), new Uint8Array([8])]);
    assert.deepEqual(new Uint8Array(readFileSync(path)), new Uint8Array([9, 9, 8]));
    assert.equal(fs.statSync(path).mode & 0o777, 0o640);
    const link = join(dir, 'latest');
    fs.symlinkSync('model.safetensors', link);
    writeFileAtomicSync(link, 'hello');
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the link is kept');
    assert.equal(readFileSync(path, 'utf8'), 'hello');
    assert.deepEqual(readdirSync(dir).sort(), ['latest', 'model.safetensors']);
  });

  test('saveSafetensors: a failure leaves the previous file byte-identical and no temporary file', async (t) => {
    const { dir, path } = setup(t);
    const good = tensor(new Float32Array([1, 2]));
    const gone = tensor(new Float32Array([3]));
    gone.dispose();
    await assert.rejects(saveSafetensors(path, { good, gone }), /"gone" is disposed/);
    assert.throws(() => saveSafetensorsSync(path, { good, gone }), /"gone" is disposed/);
    assert.deepEqual(new Uint8Array(readFileSync(path)), OLD);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    await saveSafetensors(path, { good });
    const { tensors } = loadSafetensorsSync(path);
    assertSameValues(flat(tensors.get('good') as Tensor), [1, 2], 'saved');
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    good.dispose();
    disposeAll(tensors);
  });

  test('saveSafetensors snapshots the tensors before it yields', async (t) => {
    const { path } = setup(t);
    const x = tensor(new Float32Array([1, 2]));
    const pending = saveSafetensors(path, { x });
    x.fill_(5);
    await pending;
    const { tensors } = loadSafetensorsSync(path);
    assertSameValues(flat(tensors.get('x') as Tensor), [1, 2], 'values at call time');
    x.dispose();
    disposeAll(tensors);
  });
});
