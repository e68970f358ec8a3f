/**
 * Weight manifests and binary shards of the TensorFlow.js format: validation
 * of the manifest, decoding of each group's shards into tensors (float32,
 * int32, bool, and the converter's uint8/uint16/float16 quantisations), and
 * encoding of float32 weights into shards for export.
 */
import { endianness } from 'node:os';
import { type Tensor, scope } from '../../engine/index.js';
import { tensorFromBytes } from '../../engine/bytes.js';
import { JsonReader, type WeightSpec, type WeightsManifestGroup } from './format.js';

const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** @internal Validates `weightsManifest` and returns it typed. */
export function readManifest(r: JsonReader, v: unknown): WeightsManifestGroup[] {
  const groups = r.array(v, 'weightsManifest');
  const seen = new Set<string>();
  return groups.map((g, gi) => {
    const path = `weightsManifest[${gi}]`;
    const o = r.object(g, path);
    const paths = r.array(o.paths, `${path}.paths`).map((p, i) => {
      const s = r.string(p, `${path}.paths[${i}]`);
      if (s === '' || s.includes('\0')) r.expect(`${path}.paths[${i}]`, 'a file name', s);
      return s;
    });
    const weights = r.array(o.weights, `${path}.weights`).map((w, wi): WeightSpec => {
      const wp = `${path}.weights[${wi}]`;
      const wo = r.object(w, wp);
      const name = r.string(wo.name, `${wp}.name`);
      if (seen.has(name)) r.fail(`${wp}.name: weight '${name}' is listed twice in the manifest`);
      seen.add(name);
      const shape = r.array(wo.shape, `${wp}.shape`).map((d, i) => r.int(d, `${wp}.shape[${i}]`, 0));
      const dtype = r.string(wo.dtype ?? 'float32', `${wp}.dtype`);
      if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') {
        r.fail(`${wp}.dtype: weight '${name}' has dtype ${JSON.stringify(dtype)}; only float32, int32 and bool are supported`);
      }
      const spec: WeightSpec = { name, shape, dtype };
      if (wo.quantization !== undefined && wo.quantization !== null) {
        const q = r.object(wo.quantization, `${wp}.quantization`);
        const qd = r.string(q.dtype, `${wp}.quantization.dtype`);
        if (qd !== 'uint8' && qd !== 'uint16' && qd !== 'float16') {
          r.fail(`${wp}.quantization.dtype: weight '${name}' is quantised as ${JSON.stringify(qd)}; expected uint8, uint16 or float16`);
        }
        if (qd !== 'float16') {
          spec.quantization = { dtype: qd, scale: r.number(q.scale, `${wp}.quantization.scale`), min: r.number(q.min, `${wp}.quantization.min`) };
        } else {
          spec.quantization = { dtype: qd };
        }
        if (dtype !== 'float32') r.fail(`${wp}: only float32 weights can be quantised, '${name}' is ${dtype}`);
      }
      return spec;
    });
    return { paths, weights };
  });
}

/** Bytes one weight occupies in its shards. */
export function storedBytes(w: WeightSpec): number {
  const per = STORED_BYTES[w.quantization?.dtype ?? w.dtype] as number;
  return w.shape.reduce((a, b) => a * b, 1) * per;
}

/**
 * @internal Reads every group's shards through `readShard` (which throws for a
 * missing file) and decodes each weight into a tensor in Keras layout.
 * Throws a TfjsModelError naming the shard files when their total size is not
 * exactly what the manifest's weights need.
 */
export function decodeWeights(
  r: JsonReader,
  manifest: WeightsManifestGroup[],
  readShard: (path: string) => Uint8Array,
): Map<string, Tensor> {
  if (endianness() !== 'LE') r.fail('reading TensorFlow.js weights (little-endian) on a big-endian host is not supported');
  const out = new Map<string, Tensor>();
  try {
    manifest.forEach((group, gi) => {
      const parts = group.paths.map((p) => {
        try {
          return readShard(p);
        } catch (e) {
          return r.fail(`weight shard '${p}' (weightsManifest[${gi}].paths) cannot be read: ${(e as Error).message}`, e);
        }
      });
      const total = parts.reduce((n, b) => n + b.byteLength, 0);
      const needed = group.weights.reduce((n, w) => n + storedBytes(w), 0);
      if (total !== needed) {
        const sizes = group.paths.map((p, i) => `${p}: ${(parts[i] as Uint8Array).byteLength}`).join(', ');
        r.fail(
          `the weight shards of weightsManifest[${gi}] hold ${total} bytes (${sizes}) but its ${group.weights.length} weights need ` +
            `${needed}: ${total < needed ? 'a shard is truncated or missing from paths' : 'the shards hold more than the manifest describes'}`,
        );
      }
      const data = parts.length === 1 ? (parts[0] as Uint8Array) : concat(parts, total);
      let offset = 0;
      for (const w of group.weights) {
        const n = storedBytes(w);
        out.set(w.name, decodeOne(w, data.subarray(offset, offset + n)));
        offset += n;
      }
    });
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  return out;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const data = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.byteLength;
  }
  return data;
}

function decodeOne(w: WeightSpec, bytes: Uint8Array): Tensor {
  const q = w.quantization;
  if (!q) {
    if (w.dtype === 'bool') return scope(() => tensorFromBytes(bytes, w.shape, 'uint8').ne(0));
    return tensorFromBytes(bytes, w.shape, w.dtype);
  }
  if (q.dtype === 'float16') return scope(() => tensorFromBytes(bytes, w.shape, 'float16').to('float32'));
  // uint8 / uint16: value = q * scale + min.
  const count = w.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scale = q.scale as number;
  const min = q.min as number;
  for (let i = 0; i < count; i++) {
    const v = q.dtype === 'uint8' ? view.getUint8(i) : view.getUint16(2 * i, true);
    values[i] = v * scale + min;
  }
  return tensorFromBytes(new Uint8Array(values.buffer), w.shape, 'float32');
}

/** A weight to export: its manifest name and its value in Keras layout. */
export interface NamedWeight {
  name: string;
  value: Tensor;
}

/**
 * @internal Encodes weights as float32 into shards of at most `shardBytes`
 * (TensorFlow.js' default is 4 MiB), named group1-shard{i}of{n}.bin.
 */
export function encodeWeights(weights: NamedWeight[], shardBytes: number): { group: WeightsManifestGroup; shards: Map<string, Uint8Array> } {
  const chunks = weights.map((w) => scope(() => w.value.to('float32').contiguous().rawBytes()));
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const data = concat(chunks, total);
  const n = Math.max(1, Math.ceil(total / shardBytes));
  const shards = new Map<string, Uint8Array>();
  for (let i = 0; i < n; i++) shards.set(`group1-shard${i + 1}of${n}.bin`, data.slice(i * shardBytes, Math.min(total, (i + 1) * shardBytes)));
  return {
    group: { paths: [...shards.keys()], weights: weights.map((w) => ({ name: w.name, shape: w.value.shape, dtype: 'float32' })) },
    shards,
  };
}
