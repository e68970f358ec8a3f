/** Element types and their codes in libtorch's ScalarType enum. */

/** The element types a tensor may hold. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const CODES: Record<DType, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};

const NAMES = new Map<number, DType>(Object.entries(CODES).map(([k, v]) => [v, k as DType]));

/** The typed array a tensor of each dtype reads into (half types widen to float32). */
export type TypedArrayFor<D extends DType> = D extends 'float64'
  ? Float64Array
  : D extends 'int64'
    ? BigInt64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'int16'
        ? Int16Array
        : D extends 'int8'
          ? Int8Array
          : D extends 'uint8' | 'bool'
            ? Uint8Array
            : Float32Array;

export type AnyTypedArray =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** libtorch's code for a dtype name; throws on an unknown name. */
export function dtypeCode(d: DType): number {
  const code = CODES[d];
  if (code === undefined) throw new Error(`unknown dtype '${String(d)}': expected one of ${Object.keys(CODES).join(', ')}`);
  return code;
}

/** The dtype name for a libtorch code. */
export function dtypeName(code: number): DType {
  const name = NAMES.get(code);
  if (!name) throw new Error(`libtorch returned dtype code ${code}, which advml does not expose`);
  return name;
}

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

/** The dtype whose bytes a typed array holds as they are. */
export function dtypeOfArray(a: AnyTypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  return 'uint8';
}

/** Views the bytes libtorch returned as the typed array matching `d`. */
export function viewBuffer(buf: ArrayBuffer, d: DType): AnyTypedArray {
  switch (d) {
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
    default:
      return new Float32Array(buf);
  }
}
