/**
 * The safetensors format (Hugging Face; https://github.com/huggingface/safetensors):
 *
 * ```
 * [8 bytes: N, unsigned little-endian] [N bytes: UTF-8 JSON header, may end in spaces] [data region]
 * header = {"__metadata__"?: {string: string},
 *           "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * ```
 *
 * Offsets are relative to the start of the data region; each tensor is stored
 * row-major, little-endian, and the tensors tile the data region exactly (no
 * gaps, no overlaps, nothing after the last one).
 *
 * Reading validates every one of those rules and fails with a
 * {@link SafetensorsError} naming the file and the fault, rather than
 * returning a tensor that is silently wrong. Writing is deterministic (header
 * keys sorted) and, for files, atomic (see {@link writeFileAtomic}).
 */
import { endianness } from 'node:os';
import { Tensor, type DType } from '../engine/index.js';
import { itemSize, tensorFromBytes } from '../engine/bytes.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
import { FileReadError, readRegularFile, readRegularFileSync } from './read-file.js';
import { JsonDuplicateKeyError, JsonSyntaxError, parseStrictJson, type JsonValue } from './strict-json.js';

/** The dtype names safetensors uses for the dtypes advml has. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const TO_FILE: Record<DType, SafetensorsDType> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

const FROM_FILE = new Map<string, DType>(Object.entries(TO_FILE).map(([k, v]) => [v, k as DType]));

/** The largest header accepted when reading (100 MB); a larger length field means a corrupt file. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = '__metadata__';

/** A malformed or unreadable safetensors file; the message names the file (`source`) and the fault. */
export class SafetensorsError extends Error {
  constructor(
    /** The file path, or '<buffer>' (or the caller's label) for bytes decoded in memory. */
    readonly source: string,
    /** What is wrong, without the file name. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`safetensors ${source}: ${problem}`, options);
    this.name = 'SafetensorsError';
  }
}

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  /** The tensor's name (the header key). */
  name: string;
  /** Its advml dtype (the file says the matching {@link SafetensorsDType}). */
  dtype: DType;
  /** Its shape; `[]` for a 0-dim tensor. */
  shape: number[];
  /** [begin, end) of its bytes, relative to the start of the data region. */
  dataOffsets: [number, number];
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** The `__metadata__` map ({} when the file has none). */
  metadata: Record<string, string>;
  /** The tensors, in the order the header lists them. */
  entries: SafetensorsEntry[];
  /** Offset of the data region in the file: 8 + the header length. */
  dataStart: number;
}

/** The tensors and metadata read from a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name, in header order. The caller owns them (dispose, or read inside a `scope()`). */
  tensors: Map<string, Tensor>;
  /** The `__metadata__` map ({} when the file has none). */
  metadata: Record<string, string>;
}

/** Options of {@link decodeSafetensors} and {@link loadSafetensors}. */
export interface DecodeOptions {
  /** Device the tensors are created on: 'cpu' (default), 'cuda', 'cuda:1', ... */
  device?: string;
}

/** Tensors to write: a Map or a plain object from name to tensor. */
export type NamedTensors = Map<string, Tensor> | Record<string, Tensor>;

function checkHost(source: string): void {
  if (endianness() !== 'LE') {
    throw new SafetensorsError(source, 'this host is big-endian; advml reads and writes safetensors only on little-endian hosts');
  }
}

/** A plain object whose keys may include '__proto__' without touching the prototype. */
function recordFrom(entries: Iterable<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

function describeJson(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  if (typeof v === 'object') return `the number ${v.value}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return String(v);
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------- reading

/**
 * Parses and validates the header of a safetensors file held in `bytes` (the
 * whole file: the data region's length is checked against the offsets).
 * Creates no tensors. Throws a {@link SafetensorsError} naming `source` when
 * the file is shorter than 8 bytes; the header length is larger than the file
 * or over {@link MAX_HEADER_BYTES}; the header is not UTF-8 JSON, not an
 * object, or repeats a name; `__metadata__` is not an object of strings; an
 * entry has an unknown dtype, a shape that is not a list of non-negative
 * integers, data_offsets that are not [begin, end] integers with begin <= end,
 * a byte length other than product(shape) * item size, or offsets past the
 * data region; or the tensors leave gaps, overlap, or are followed by
 * trailing bytes.
 */
export function readSafetensorsHeader(bytes: Uint8Array, source = '<buffer>'): SafetensorsHeader {
  const fail = (problem: string, cause?: unknown): never => {
    throw new SafetensorsError(source, problem, cause === undefined ? undefined : { cause });
  };
  if (!(bytes instanceof Uint8Array)) fail('expected the file contents as a Uint8Array');
  if (bytes.byteLength < 8) {
    fail(`file is ${plural(bytes.byteLength, 'byte')} long, shorter than the 8-byte header length: truncated or not a safetensors file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen} is absurd (the limit is ${MAX_HEADER_BYTES} bytes): corrupt or not a safetensors file`);
  }
  const n = Number(headerLen);
  if (n > bytes.byteLength - 8) {
    fail(`header length ${n} is larger than the ${bytes.byteLength - 8} bytes after the length field: truncated or not a safetensors file`);
  }
  if (n === 0) fail('header is empty (length 0): expected a JSON object');

  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch (e) {
    fail('header is not valid UTF-8', e);
  }
  let root: JsonValue = null;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonDuplicateKeyError && e.depth === 1) {
      fail(e.key === METADATA_KEY ? 'header has two __metadata__ entries' : `duplicate tensor name ${JSON.stringify(e.key)} in header`, e);
    }
    if (e instanceof JsonSyntaxError) fail(`header is not valid JSON: ${e.message}`, e);
    throw e;
  }
  if (!(root instanceof Map)) fail(`header must be a JSON object, got ${describeJson(root)}`);
  const fields = root as Map<string, JsonValue>;

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of fields) {
    if (name === METADATA_KEY) {
      metadata = readMetadata(value, fail);
    } else {
      entries.push(readEntry(name, value, fail));
    }
  }

  const dataLen = bytes.byteLength - 8 - n;
  checkLayout(entries, dataLen, fail);
  return { metadata, entries, dataStart: 8 + n };
}

function readMetadata(value: JsonValue, fail: (p: string) => never): Record<string, string> {
  if (!(value instanceof Map)) return fail(`__metadata__ must be an object of strings, got ${describeJson(value)}`);
  const out: [string, string][] = [];
  for (const [k, v] of value) {
    if (typeof v !== 'string') fail(`__metadata__ value of ${JSON.stringify(k)} must be a string, got ${describeJson(v)}`);
    out.push([k, v as string]);
  }
  return recordFrom(out);
}

function readEntry(name: string, value: JsonValue, fail: (p: string) => never): SafetensorsEntry {
  const what = `tensor ${JSON.stringify(name)}`;
  if (!(value instanceof Map)) {
    return fail(`${what}: entry must be an object with dtype, shape and data_offsets, got ${describeJson(value)}`);
  }
  const dtypeV = value.get('dtype');
  const shapeV = value.get('shape');
  const offsetsV = value.get('data_offsets');
  for (const [key, v] of [['dtype', dtypeV], ['shape', shapeV], ['data_offsets', offsetsV]] as const) {
    if (v === undefined) fail(`${what}: entry has no '${key}'`);
  }
  if (typeof dtypeV !== 'string') return fail(`${what}: dtype must be a string, got ${describeJson(dtypeV ?? null)}`);
  const dtype = FROM_FILE.get(dtypeV);
  if (dtype === undefined) {
    return fail(`${what}: unknown or unsupported dtype ${JSON.stringify(dtypeV)} (advml reads ${[...FROM_FILE.keys()].join(', ')})`);
  }
  const intList = (v: JsonValue | undefined): number[] | null => {
    if (!Array.isArray(v)) return null;
    const out: number[] = [];
    for (const x of v) {
      if (x === null || typeof x !== 'object' || Array.isArray(x) || x instanceof Map) return null;
      if (!x.integer || !Number.isSafeInteger(x.value) || x.value < 0) return null;
      out.push(x.value);
    }
    return out;
  };
  const shape = intList(shapeV);
  if (shape === null) {
    return fail(`${what}: shape must be an array of non-negative integers, got ${JSON.stringify(toPlain(shapeV ?? null))}`);
  }
  const offsets = intList(offsetsV);
  if (offsets === null || offsets.length !== 2) {
    return fail(`${what}: data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(toPlain(offsetsV ?? null))}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`${what}: data_offsets [${begin}, ${end}] has begin > end`);
  const numel = shape.reduce((a, d) => a * BigInt(d), 1n);
  const expected = numel * BigInt(itemSize(dtype));
  if (expected !== BigInt(end - begin)) {
    fail(
      `${what}: data_offsets [${begin}, ${end}] span ${plural(end - begin, 'byte')}, but shape [${shape.join(', ')}] ` +
        `of ${dtypeV} needs ${expected} (${numel} elements x ${itemSize(dtype)} bytes)`,
    );
  }
  return { name, dtype, shape, dataOffsets: [begin, end] };
}

/** A JSON value back as plain data, for quoting it in a message. */
function toPlain(v: JsonValue): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  return v.value;
}

function checkLayout(entries: SafetensorsEntry[], dataLen: number, fail: (p: string) => never): void {
  for (const e of entries) {
    const [, end] = e.dataOffsets;
    if (end > dataLen) {
      fail(
        `tensor ${JSON.stringify(e.name)}: data_offsets [${e.dataOffsets.join(', ')}] are out of range: ` +
          `the data region has ${plural(dataLen, 'byte')} (truncated file?)`,
      );
    }
  }
  const sorted = [...entries].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let covered = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of sorted) {
    const [begin, end] = e.dataOffsets;
    if (begin < covered && prev !== null) {
      fail(
        `tensors ${JSON.stringify(prev.name)} [${prev.dataOffsets.join(', ')}) and ` +
          `${JSON.stringify(e.name)} [${begin}, ${end}) overlap`,
      );
    }
    if (begin > covered) {
      fail(
        prev === null
          ? `gap: the first ${plural(begin, 'byte')} of the data region belong to no tensor (${JSON.stringify(e.name)} begins at ${begin})`
          : `gap: ${plural(begin - covered, 'byte')} between ${JSON.stringify(prev.name)} (ends at ${covered}) and ` +
              `${JSON.stringify(e.name)} (begins at ${begin}) belong to no tensor`,
      );
    }
    covered = end;
    prev = e;
  }
  if (covered < dataLen) {
    fail(
      `${plural(dataLen - covered, 'trailing byte')} in the data region after the last tensor ` +
        `(tensors end at ${covered}, the data region has ${dataLen} bytes)`,
    );
  }
}

/**
 * Reads a safetensors file held in memory. Validates everything
 * {@link readSafetensorsHeader} does and that every BOOL byte is 0 or 1, then
 * copies each tensor out of `bytes` (the tensors do not share memory with
 * `bytes`). On any failure no tensor is left alive and a
 * {@link SafetensorsError} naming `source` is thrown.
 *
 * @param source  the name used in error messages (a path; default '<buffer>')
 */
export function decodeSafetensors(bytes: Uint8Array, source = '<buffer>', opts: DecodeOptions = {}): SafetensorsContents {
  checkHost(source);
  const header = readSafetensorsHeader(bytes, source);
  const region = (e: SafetensorsEntry): Uint8Array =>
    bytes.subarray(header.dataStart + e.dataOffsets[0], header.dataStart + e.dataOffsets[1]);
  for (const e of header.entries) {
    if (e.dtype !== 'bool') continue;
    const data = region(e);
    const bad = data.findIndex((b) => b > 1);
    if (bad >= 0) {
      throw new SafetensorsError(source, `tensor ${JSON.stringify(e.name)}: BOOL element ${bad} is the byte ${data[bad]}, expected 0 or 1`);
    }
  }
  const tensors = new Map<string, Tensor>();
  try {
    for (const e of header.entries) {
      tensors.set(e.name, tensorFromBytes(region(e), e.shape, e.dtype, { device: opts.device ?? 'cpu' }));
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    const msg = err instanceof Error ? err.message : String(err);
    throw new SafetensorsError(source, `could not create tensor ${JSON.stringify(header.entries[tensors.size]?.name)}: ${msg}`, {
      cause: err,
    });
  }
  return { tensors, metadata: header.metadata };
}

/** A failure of readRegularFile as a SafetensorsError: the system's error when the file cannot be read, else the refusal. */
function readError(path: string, e: unknown): SafetensorsError {
  const cause = e instanceof FileReadError ? e.cause : e;
  const problem = e instanceof FileReadError && !cause ? e.problem : `cannot read the file: ${cause instanceof Error ? cause.message : String(cause)}`;
  return new SafetensorsError(path, problem, { cause: e });
}

/**
 * Reads the safetensors file at `path` (see {@link decodeSafetensors}): a
 * regular file only (FIFOs and devices are refused without reading).
 * Errors name `path`: unreadable files as well as malformed ones.
 */
export async function loadSafetensors(path: string, opts: DecodeOptions = {}): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path, { what: 'safetensors' });
  } catch (e) {
    throw readError(path, e);
  }
  return decodeSafetensors(bytes, path, opts);
}

/** The synchronous form of {@link loadSafetensors}. */
export function loadSafetensorsSync(path: string, opts: DecodeOptions = {}): SafetensorsContents {
  let bytes: Uint8Array;
  try {
    bytes = readRegularFileSync(path, { what: 'safetensors' });
  } catch (e) {
    throw readError(path, e);
  }
  return decodeSafetensors(bytes, path, opts);
}

// ---------------------------------------------------------------- writing

interface Planned {
  name: string;
  tensor: Tensor;
  begin: number;
  end: number;
}

function namedEntries(tensors: NamedTensors): [string, Tensor][] {
  if (tensors instanceof Map) return [...tensors];
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    throw new TypeError('encodeSafetensors: tensors must be a Map or a plain object from name to Tensor');
  }
  return Object.entries(tensors);
}

/** Works out the header and where each tensor's bytes go. */
function plan(tensors: NamedTensors, metadata: Record<string, string> | undefined): { header: Uint8Array; items: Planned[]; total: number } {
  const entries = namedEntries(tensors);
  for (const [name, t] of entries) {
    if (typeof name !== 'string') throw new TypeError('encodeSafetensors: tensor names must be strings');
    if (name === METADATA_KEY) throw new Error(`encodeSafetensors: '${METADATA_KEY}' is reserved and cannot name a tensor`);
    if (!(t instanceof Tensor)) throw new TypeError(`encodeSafetensors: ${JSON.stringify(name)} is not a Tensor`);
    if (t.isDisposed) throw new Error(`encodeSafetensors: tensor ${JSON.stringify(name)} is disposed`);
  }
  const meta: [string, string][] = [];
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new TypeError('encodeSafetensors: metadata must be a plain object of strings');
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`encodeSafetensors: metadata value of ${JSON.stringify(k)} must be a string, got ${typeof v}`);
      meta.push([k, v]);
    }
  }
  const info = entries.map(([name, tensor]) => {
    const dtype = tensor.dtype;
    const shape = tensor.shape;
    return { name, tensor, dtype, shape, bytes: shape.reduce((a, b) => a * b, 1) * itemSize(dtype) };
  });
  // Data: widest elements first, then by name, so every tensor starts at a multiple of its item size.
  const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const dataOrder = [...info].sort((a, b) => itemSize(b.dtype) - itemSize(a.dtype) || byName(a, b));
  const items: Planned[] = [];
  const offsets = new Map<string, [number, number]>();
  let at = 0;
  for (const e of dataOrder) {
    items.push({ name: e.name, tensor: e.tensor, begin: at, end: at + e.bytes });
    offsets.set(e.name, [at, at + e.bytes]);
    at += e.bytes;
  }
  const parts: string[] = [];
  if (meta.length > 0) {
    meta.sort((a, b) => byName({ name: a[0] }, { name: b[0] }));
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  for (const e of [...info].sort(byName)) {
    const [b, end] = offsets.get(e.name) as [number, number];
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${TO_FILE[e.dtype]}","shape":[${e.shape.join(',')}],"data_offsets":[${b},${end}]}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, items, total: header.byteLength + at };
}

/**
 * The safetensors bytes of `tensors` (a Map or a plain object from name to
 * tensor) with optional `metadata` (string to string; omitted from the header
 * when empty). Deterministic: header keys are sorted by name (UTF-16 code
 * unit order); the header is padded with spaces to a multiple of 8 bytes; the
 * data region holds the tensors widest dtype first, then by name, so each one
 * is aligned to its item size. Each tensor is written as contiguous row-major
 * little-endian bytes whatever its memory format (channels-last included) or
 * device, with bfloat16/float16 bit patterns kept exactly.
 *
 * Throws on a name '__metadata__', a disposed tensor, or a non-string metadata value.
 */
export function encodeSafetensors(tensors: NamedTensors, metadata?: Record<string, string>): Uint8Array {
  checkHost('<buffer>');
  const { header, items, total } = plan(tensors, metadata);
  const out = new Uint8Array(total);
  out.set(header, 0);
  for (const it of items) {
    const raw = it.tensor.rawBytes();
    if (raw.byteLength !== it.end - it.begin) {
      throw new Error(`encodeSafetensors: tensor ${JSON.stringify(it.name)} gave ${raw.byteLength} bytes, expected ${it.end - it.begin}`);
    }
    out.set(raw, header.byteLength + it.begin);
  }
  return out;
}

/**
 * Writes `tensors` and `metadata` to `path` as safetensors (bytes as
 * {@link encodeSafetensors} makes them), atomically: the file at `path` is
 * either left as it was or replaced by the complete new file (see
 * {@link writeFileAtomic}). The tensors are read before this function first
 * yields, so changing them after the call does not affect what is written.
 */
export async function saveSafetensors(path: string, tensors: NamedTensors, metadata?: Record<string, string>): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata);
  await writeFileAtomic(path, bytes);
}

/** The synchronous form of {@link saveSafetensors}. */
export function saveSafetensorsSync(path: string, tensors: NamedTensors, metadata?: Record<string, string>): void {
  writeFileAtomicSync(path, encodeSafetensors(tensors, metadata));
}
