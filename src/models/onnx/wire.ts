/**
 * Rewrites initialisers of an encoded ONNX model at the protobuf wire level.
 * The decoding schema (proto.ts) lists only the fields the loader reads, so a
 * decode and re-encode would drop the rest (doc strings, value_info,
 * metadata_props, fields of newer ONNX versions). Here every field is copied
 * byte for byte except the data of the initialisers being replaced.
 */
import protobuf from 'protobufjs/light.js';

// Field numbers of onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
/** float_data, int32_data, string_data, int64_data, raw_data, double_data, uint64_data: all dropped for the new raw_data. */
const TENSOR_DATA_FIELDS = new Set([4, 5, 6, 7, TENSOR_RAW_DATA, 10, 11]);
const LENGTH_DELIMITED = 2;

interface Field {
  id: number;
  /** The whole field as encoded: tag, length and payload. */
  raw: Uint8Array;
  /** The payload of a length-delimited field, else null. */
  body: Uint8Array | null;
}

/** The top-level fields of one encoded message, in file order. */
function fieldsOf(message: Uint8Array): Field[] {
  const reader = protobuf.Reader.create(message);
  const fields: Field[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    let body: Uint8Array | null = null;
    if ((tag & 7) === LENGTH_DELIMITED) {
      const length = reader.uint32();
      const from = reader.pos;
      reader.skip(length);
      body = message.subarray(from, from + length);
    } else {
      reader.skipType(tag & 7);
    }
    fields.push({ id: tag >>> 3, raw: message.subarray(start, reader.pos), body });
  }
  return fields;
}

function lengthDelimited(id: number, body: Uint8Array): Uint8Array {
  return protobuf.Writer.create().uint32((id << 3) | LENGTH_DELIMITED).bytes(body).finish();
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** A TensorProto with its data replaced by `raw` (when its name is in `data`), every other field as it was. */
function rewriteTensor(tensor: Uint8Array, data: ReadonlyMap<string, Uint8Array>, done: Set<string>): Uint8Array | null {
  const fields = fieldsOf(tensor);
  const nameField = fields.filter((f) => f.id === TENSOR_NAME).pop();
  const name = nameField?.body ? Buffer.from(nameField.body).toString('utf8') : '';
  const raw = data.get(name);
  if (raw === undefined) return null;
  done.add(name);
  const kept = fields.filter((f) => !TENSOR_DATA_FIELDS.has(f.id)).map((f) => f.raw);
  return concat([...kept, lengthDelimited(TENSOR_RAW_DATA, raw)]);
}

function rewriteGraph(graph: Uint8Array, data: ReadonlyMap<string, Uint8Array>, done: Set<string>): Uint8Array {
  return concat(fieldsOf(graph).map((f) => {
    const tensor = f.id === GRAPH_INITIALIZER && f.body ? rewriteTensor(f.body, data, done) : null;
    return tensor ? lengthDelimited(GRAPH_INITIALIZER, tensor) : f.raw;
  }));
}

/**
 * The encoded model with the main graph's initialisers named in `data` now
 * holding those bytes as raw_data (little-endian elements of the initialiser's
 * own data type; dims and data type are kept). Throws naming any initialiser
 * in `data` the graph does not have.
 */
export function replaceInitializers(model: Uint8Array, data: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const done = new Set<string>();
  const out = concat(fieldsOf(model).map((f) => (f.id === MODEL_GRAPH && f.body ? lengthDelimited(MODEL_GRAPH, rewriteGraph(f.body, data, done)) : f.raw)));
  const missing = [...data.keys()].filter((n) => !done.has(n));
  if (missing.length) throw new Error(`the graph has no initialiser ${missing.map((n) => `'${n}'`).join(', ')}`);
  return out;
}
