/**
 * Tensors from raw bytes, for deserialisers (safetensors, checkpoints). Unlike
 * `tensor()`, which converts the values of a typed array, these functions take
 * the bytes as they are stored: bfloat16 and float16 as their 2-byte patterns,
 * bool as one byte per element, everything in the host's byte order.
 */
import { native, type Handle } from './native.js';
import { type DType, dtypeCode } from './dtype.js';
import { Tensor } from './tensor.js';

const ITEM_SIZES: Record<DType, number> = {
  float64: 8,
  int64: 8,
  float32: 4,
  int32: 4,
  float16: 2,
  bfloat16: 2,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Bytes per element of `dtype` (bool: 1, bfloat16 and float16: 2). Throws on an unknown dtype. */
export function itemSize(dtype: DType): number {
  const size = ITEM_SIZES[dtype];
  if (size === undefined) throw new Error(`itemSize: unknown dtype '${String(dtype)}'`);
  return size;
}

/** Options of {@link tensorFromBytes}. */
export interface FromBytesOptions {
  /** 'cpu' (default), 'cuda', 'cuda:1', ... */
  device?: string;
}

/**
 * A new tensor of `dtype` and `shape` whose row-major elements are `bytes`,
 * read as stored in memory (host byte order; bfloat16/float16 as 2-byte
 * patterns, bool as 0/1 bytes). The bytes are copied; `bytes` may be a view at
 * any offset into a larger buffer (a misaligned view is copied once more to an
 * aligned one first). Throws unless `bytes.byteLength` is exactly
 * product(shape) * itemSize(dtype).
 */
export function tensorFromBytes(bytes: Uint8Array, shape: readonly number[], dtype: DType, opts: FromBytesOptions = {}): Tensor {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('tensorFromBytes: bytes must be a Uint8Array');
  const size = itemSize(dtype);
  let numel = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new Error(`tensorFromBytes: shape [${shape.join(', ')}] must hold non-negative integers`);
    }
    numel *= d;
  }
  if (numel * size !== bytes.byteLength) {
    throw new Error(
      `tensorFromBytes: shape [${shape.join(', ')}] of ${dtype} needs ${numel * size} bytes, got ${bytes.byteLength}`,
    );
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const code = dtypeCode(dtype);
  return new Tensor(native.fromBuffer(aligned, [...shape], code, code, opts.device ?? 'cpu') as Handle);
}
