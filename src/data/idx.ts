/**
 * The IDX format of MNIST and Fashion-MNIST: a magic number whose third byte
 * is the element type (0x08 = uint8) and fourth the rank, big-endian dimension
 * sizes, then the data. Gzipped files (Debian ships Fashion-MNIST so) are
 * inflated first.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** An IDX array: its dimension sizes and its elements in row-major order. */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/**
 * Parses IDX bytes (uint8 elements), inflating gzip first; `source` names the
 * file in errors (bad magic, unsupported type, rank, truncated or overlong data).
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const fail = (why: string): never => {
    throw new Error(`IDX file ${source}: ${why}`);
  };
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      fail(`corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) fail(`${bytes.length} bytes is too short for a header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0) fail('bad magic number (the first two bytes must be zero)');
  const type = bytes[2] as number;
  if (type !== 0x08) fail(`element type 0x${type.toString(16)} is not supported (only 0x08, unsigned bytes)`);
  const rank = bytes[3] as number;
  if (rank < 1 || rank > 4) fail(`rank ${rank} is out of range 1..4`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) fail('truncated header');
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerBytes + count) {
    fail(`shape [${shape}] needs ${count} data bytes, the file has ${bytes.length - headerBytes}`);
  }
  return { shape, data: bytes.subarray(headerBytes) };
}

/** Reads and parses an IDX file (gzipped or not); errors name `path`. */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`IDX file ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseIdx(bytes, path);
}
