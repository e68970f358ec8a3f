/** ONNX TensorProto contents to engine tensors, and ONNX element types to engine dtypes. */
import { endianness } from 'node:os';
import { type DType, type Tensor, tensor } from '../../engine/index.js';
import { tensorFromBytes } from '../../engine/bytes.js';
import { DataType, type TensorData } from './proto.js';

const DTYPES = new Map<number, DType>([
  [DataType.FLOAT, 'float32'], [DataType.DOUBLE, 'float64'], [DataType.FLOAT16, 'float16'], [DataType.BFLOAT16, 'bfloat16'],
  [DataType.INT64, 'int64'], [DataType.INT32, 'int32'], [DataType.INT16, 'int16'], [DataType.INT8, 'int8'],
  [DataType.UINT8, 'uint8'], [DataType.BOOL, 'bool'],
]);

const TYPE_NAMES = new Map<number, string>(Object.entries(DataType).map(([k, v]) => [v, k]));

/** A readable name of an ONNX element type code. */
export function typeName(code: number): string {
  return TYPE_NAMES.get(code) ?? `type code ${code}`;
}

/** The engine dtype of an ONNX element type, or undefined for types the engine lacks (strings, unsigned wide ints). */
export function dtypeOf(code: number): DType | undefined {
  return DTYPES.get(code);
}

/** Makes the tensor a TensorProto holds; throws (plain Error) on unsupported types or inconsistent data. */
export function tensorOf(t: TensorData): Tensor {
  if (t.external) throw new Error(`tensor '${t.name}' keeps its data in an external file, which is not supported`);
  const dtype = dtypeOf(t.dataType);
  if (!dtype) throw new Error(`tensor '${t.name}' has element type ${typeName(t.dataType)}, which is not supported`);
  for (const d of t.dims) if (!Number.isSafeInteger(d) || d < 0) throw new Error(`tensor '${t.name}' has an invalid dimension ${d}`);
  const numel = t.dims.reduce((a, b) => a * b, 1);
  if (t.raw) {
    if (endianness() !== 'LE') throw new Error('ONNX raw data is little-endian; this host is big-endian');
    try {
      return tensorFromBytes(t.raw, t.dims, dtype);
    } catch (e) {
      throw new Error(`tensor '${t.name}' [${t.dims}] of ${typeName(t.dataType)}: raw data has ${t.raw.length} bytes, not what the shape needs (truncated?)`, { cause: e });
    }
  }
  const values = t.values ?? [];
  if (values.length !== numel) {
    throw new Error(`tensor '${t.name}' [${t.dims}] needs ${numel} values, the file holds ${values.length} (truncated?)`);
  }
  if (dtype === 'float16' || dtype === 'bfloat16') {
    // Half-precision values are stored as their bit patterns in int32_data.
    return tensorFromBytes(new Uint8Array(Uint16Array.from(values).buffer), t.dims, dtype);
  }
  return tensor(Float64Array.from(values), { shape: t.dims, dtype });
}
