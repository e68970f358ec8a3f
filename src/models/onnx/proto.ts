/**
 * Decoding of ONNX model files (protocol buffers). The schema below lists only
 * the messages and fields the loader reads, with the field numbers of ONNX's
 * onnx.proto; protobuf skips every other field, so newer files still decode.
 * Decoded messages are turned into the plain, fully typed objects of this
 * module, so nothing past here sees protobufjs or its 64-bit integer objects.
 */
import { FileReadError, readRegularFileSync } from '../../io/index.js';
import protobuf from 'protobufjs/light.js';

/** A bad or unreadable ONNX file; the message names the file (`source`) and the fault. */
export class OnnxError extends Error {
  constructor(
    /** The file path, or '<buffer>' (or the caller's label) for bytes decoded in memory. */
    readonly source: string,
    /** What is wrong, without the file name. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`onnx ${source}: ${problem}`, options);
    this.name = 'OnnxError';
  }
}

/** The largest model file read (2 GiB, protobuf's own limit on one message). */
export const MAX_ONNX_BYTES = 2 ** 31 - 1;

// Field numbers from onnx.proto; `rule: 'repeated'` numeric fields are packed in proto3 files and
// unpacked in older proto2 ones, and protobufjs reads both.
const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            producerName: { type: 'string', id: 2 },
            producerVersion: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            modelVersion: { type: 'int64', id: 5 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
          },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            sparseInitializer: { rule: 'repeated', type: 'bytes', id: 15 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            domain: { type: 'string', id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            g: { type: 'bytes', id: 6 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
            tensors: { rule: 'repeated', type: 'TensorProto', id: 10 },
            type: { type: 'int32', id: 20 },
            refAttrName: { type: 'string', id: 21 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            floatData: { rule: 'repeated', type: 'float', id: 4 },
            int32Data: { rule: 'repeated', type: 'int32', id: 5 },
            int64Data: { rule: 'repeated', type: 'int64', id: 7 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
            doubleData: { rule: 'repeated', type: 'double', id: 10 },
            uint64Data: { rule: 'repeated', type: 'uint64', id: 11 },
            externalData: { rule: 'repeated', type: 'bytes', id: 13 },
            dataLocation: { type: 'int32', id: 14 },
          },
        },
        ValueInfoProto: {
          fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } },
        },
        TypeProto: {
          fields: { tensorType: { type: 'TensorTypeProto', id: 1 } },
        },
        TensorTypeProto: {
          fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'DimensionProto', id: 1 } },
        },
        DimensionProto: {
          fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(SCHEMA);
const ModelType = root.lookupType('onnx.ModelProto');

/** ONNX's TensorProto.DataType codes. */
export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
} as const;

/** AttributeProto.AttributeType codes. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9 } as const;

export interface TensorData {
  name: string;
  dims: number[];
  dataType: number;
  /** The little-endian element bytes, when stored as raw_data. */
  raw: Uint8Array | null;
  /** The elements, when stored in a typed field (float_data, int64_data, ...). */
  values: number[] | null;
  external: boolean;
}

export type AttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorData }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'other'; type: number };

export interface NodeData {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, AttributeValue>;
}

export interface ValueInfo {
  name: string;
  /** Element type code, 0 when not declared. */
  elemType: number;
  /** Dimensions; null for a symbolic or missing one; the whole shape null when not declared. */
  shape: (number | null)[] | null;
}

export interface ModelData {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Operator set versions by domain ('' is the default domain). */
  opsets: Map<string, number>;
  nodes: NodeData[];
  initializers: TensorData[];
  sparseInitializers: number;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** The encoded model these fields came from (not copied), so it can be written back with new weights. */
  bytes: Uint8Array;
}

type Msg = Record<string, unknown>;

/** An int64 as protobufjs gives it (a number, or a Long-like object when the `long` package is present). */
function int(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  const long = v as { low: number; high: number; unsigned?: boolean; toNumber?: () => number };
  const n = typeof long.toNumber === 'function' ? long.toNumber() : long.high * 2 ** 32 + (long.low >>> 0);
  if (!Number.isFinite(n)) throw new Error(`${what} is not a number`);
  // INT64_MAX and friends mean "to the end" (Slice): clamped, they keep that meaning.
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, n));
}

const ints = (v: unknown, what: string): number[] => ((v as unknown[] | undefined) ?? []).map((x) => int(x, what));
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const utf8 = (b: unknown): string => Buffer.from((b as Uint8Array | undefined) ?? new Uint8Array()).toString('utf8');

function tensorData(m: Msg): TensorData {
  const name = str(m.name);
  const dims = ints(m.dims, `tensor '${name}' dimension`);
  const dataType = int(m.dataType, 'data type');
  let values: number[] | null = null;
  for (const field of ['floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data']) {
    const v = m[field] as unknown[] | undefined;
    if (v && v.length) values = v.map((x) => int(x, `tensor '${name}' element`));
  }
  const raw = m.rawData instanceof Uint8Array && m.rawData.length ? m.rawData : null;
  const external = int(m.dataLocation, 'data location') === 1 || ((m.externalData as unknown[] | undefined)?.length ?? 0) > 0;
  return { name, dims, dataType, raw, values, external };
}

function attribute(m: Msg): AttributeValue {
  const type = int(m.type, 'attribute type');
  switch (type) {
    case AttributeType.FLOAT: return { kind: 'float', value: Number(m.f ?? 0) };
    case AttributeType.INT: return { kind: 'int', value: int(m.i, 'attribute') };
    case AttributeType.STRING: return { kind: 'string', value: utf8(m.s) };
    case AttributeType.TENSOR: return { kind: 'tensor', value: tensorData((m.t ?? {}) as Msg) };
    case AttributeType.FLOATS: return { kind: 'floats', value: ((m.floats as number[] | undefined) ?? []).map(Number) };
    case AttributeType.INTS: return { kind: 'ints', value: ints(m.ints, 'attribute') };
    case AttributeType.STRINGS: return { kind: 'strings', value: ((m.strings as unknown[] | undefined) ?? []).map(utf8) };
    default: return { kind: 'other', type };
  }
}

function valueInfo(m: Msg): ValueInfo {
  const tensorType = ((m.type as Msg | undefined)?.tensorType ?? null) as Msg | null;
  const shapeMsg = (tensorType?.shape ?? null) as Msg | null;
  const shape = shapeMsg
    ? ((shapeMsg.dim as Msg[] | undefined) ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && !d.dimParam ? int(d.dimValue, 'dimension') : null))
    : null;
  return { name: str(m.name), elemType: int(tensorType?.elemType, 'element type'), shape };
}

/** Decodes the bytes of an .onnx file; throws an {@link OnnxError} naming `source` on anything malformed. */
export function decodeModel(bytes: Uint8Array, source = '<buffer>'): ModelData {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeOnnx: bytes must be a Uint8Array');
  if (bytes.length === 0) throw new OnnxError(source, 'the file is empty');
  let m: Msg;
  try {
    m = ModelType.decode(bytes) as unknown as Msg;
  } catch (e) {
    throw new OnnxError(source, `not a valid ONNX model (truncated or corrupt protobuf: ${(e as Error).message})`, { cause: e });
  }
  try {
    const graph = m.graph as Msg | undefined;
    if (!graph) throw new Error('the model has no graph (truncated or not an ONNX file)');
    const opsets = new Map<string, number>();
    for (const o of (m.opsetImport as Msg[] | undefined) ?? []) {
      const domain = str(o.domain) === 'ai.onnx' ? '' : str(o.domain);
      opsets.set(domain, int(o.version, 'opset version'));
    }
    return {
      irVersion: int(m.irVersion, 'IR version'),
      producerName: str(m.producerName),
      producerVersion: str(m.producerVersion),
      opsets,
      nodes: ((graph.node as Msg[] | undefined) ?? []).map((n) => ({
        name: str(n.name),
        opType: str(n.opType),
        domain: str(n.domain) === 'ai.onnx' ? '' : str(n.domain),
        inputs: ((n.input as unknown[] | undefined) ?? []).map(str),
        outputs: ((n.output as unknown[] | undefined) ?? []).map(str),
        attributes: new Map(((n.attribute as Msg[] | undefined) ?? []).map((a) => [str(a.name), attribute(a)])),
      })),
      initializers: ((graph.initializer as Msg[] | undefined) ?? []).map(tensorData),
      sparseInitializers: ((graph.sparseInitializer as unknown[] | undefined) ?? []).length,
      inputs: ((graph.input as Msg[] | undefined) ?? []).map(valueInfo),
      outputs: ((graph.output as Msg[] | undefined) ?? []).map(valueInfo),
      bytes,
    };
  } catch (e) {
    if (e instanceof OnnxError) throw e;
    throw new OnnxError(source, (e as Error).message, { cause: e });
  }
}

/** Reads an .onnx file through the one regular-file reader (no FIFO, device or oversized file is read). */
export function readModelFile(path: string, maxBytes = MAX_ONNX_BYTES): ModelData {
  let bytes: Buffer;
  try {
    bytes = readRegularFileSync(path, { maxBytes, what: 'ONNX model' });
  } catch (e) {
    throw e instanceof FileReadError ? new OnnxError(path, e.problem, { cause: e }) : e;
  }
  return decodeModel(bytes, path);
}

/** Encodes model fields back to bytes (tests build edited models with it). */
export function encodeModelMessage(message: Record<string, unknown>): Uint8Array {
  return ModelType.encode(ModelType.fromObject(message)).finish();
}

/** Decodes to protobufjs's own object form (field names as in the schema above), for edits before re-encoding. */
export function decodeModelMessage(bytes: Uint8Array): Record<string, unknown> {
  return ModelType.toObject(ModelType.decode(bytes), { longs: Number }) as Record<string, unknown>;
}
