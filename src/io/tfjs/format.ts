/**
 * The TensorFlow.js LayersModel format (what `tf.loadLayersModel` reads and
 * `model.save` writes):
 *
 * ```
 * model.json = {
 *   "format": "layers-model", "generatedBy": "...", "convertedBy": "...",
 *   "modelTopology": {"class_name": "Model" | "Functional" | "Sequential", "config": {...}, ...}
 *                  | {"model_config": {... as above}, "keras_version": "...", "backend": "..."},
 *   "weightsManifest": [{"paths": ["group1-shard1of2.bin", ...],
 *                        "weights": [{"name": "conv1/kernel", "shape": [7, 7, 3, 64], "dtype": "float32"}, ...]}]
 * }
 * ```
 *
 * Each manifest group's weights are stored back to back, row-major,
 * little-endian, in the concatenation of that group's shard files, which are
 * just consecutive slices of it. Layer configs are Keras' (snake_case keys,
 * channels-last tensors, kernels [kh, kw, in, out], dense kernels [in, out]).
 *
 * This module holds the types and the error every reader fault becomes.
 */

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Element types a weight can be stored as. */
export type WeightDType = 'float32' | 'int32' | 'bool';

/** Quantisation of a stored weight: uint8/uint16 as q * scale + min, or float16 halves. */
export interface WeightQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
  original_dtype?: WeightDType;
}

/** One weight in a manifest group. */
export interface WeightSpec {
  /** `<layer name>/<weight name>`, e.g. `conv1/kernel`, `bn_conv1/moving_mean`. */
  name: string;
  /** Its shape in Keras layout. */
  shape: number[];
  dtype: WeightDType;
  quantization?: WeightQuantization;
}

/** One manifest group: the shard files and the weights stored across them. */
export interface WeightsManifestGroup {
  /** Shard file names, relative to model.json's directory, in order. */
  paths: string[];
  weights: WeightSpec[];
}

/** The parsed contents of a model.json. */
export interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  /** The Keras topology (a functional or sequential model config). */
  modelTopology: JsonObject;
  weightsManifest: WeightsManifestGroup[];
  /** Free-form metadata; advml stores its classifier preprocessing here on export. */
  userDefinedMetadata?: JsonObject;
}

/**
 * A malformed or unsupported TensorFlow.js model, or unreadable or wrong-sized
 * weight data. The message names the file (`source`) and the fault
 * (`problem`), including the path of the offending entry in model.json.
 */
export class TfjsModelError extends Error {
  constructor(
    /** The model.json path (or the caller's label for an in-memory model). */
    readonly source: string,
    /** What is wrong, without the file name. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`TensorFlow.js model ${source}: ${problem}`, options);
    this.name = 'TfjsModelError';
  }
}

/** @internal A short description of a JSON value for error messages. */
export function describeJson(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return `${typeof v} ${String(v)}`;
}

/**
 * @internal Reads fields of model.json with errors that name the file and the
 * JSON path of the value ("modelTopology.config.layers[3].config.strides must
 * be ..."): model.json comes from outside, so nothing is assumed about it.
 */
export class JsonReader {
  constructor(readonly source: string) {}

  /** Throws a {@link TfjsModelError} for this file. */
  fail(problem: string, cause?: unknown): never {
    throw new TfjsModelError(this.source, problem, cause === undefined ? undefined : { cause });
  }

  /** Throws "`path` must be `expected`, got ...". */
  expect(path: string, expected: string, got: unknown): never {
    return this.fail(`${path} must be ${expected}, got ${describeJson(got)}`);
  }

  object(v: unknown, path: string): JsonObject {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.expect(path, 'an object', v);
    return v as JsonObject;
  }

  array(v: unknown, path: string): JsonValue[] {
    if (!Array.isArray(v)) return this.expect(path, 'an array', v);
    return v as JsonValue[];
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') return this.expect(path, 'a string', v);
    return v;
  }

  number(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.expect(path, 'a finite number', v);
    return v;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') return this.expect(path, 'true or false', v);
    return v;
  }

  /** An integer >= min. */
  int(v: unknown, path: string, min = 0): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return this.expect(path, `an integer >= ${min}`, v);
    return v;
  }

  /** An integer or a list of two (Keras' kernel_size, strides, ...), as [rows, cols]. */
  intPair(v: unknown, path: string, min = 1): [number, number] {
    if (typeof v === 'number') {
      const n = this.int(v, path, min);
      return [n, n];
    }
    if (!Array.isArray(v) || v.length !== 2) return this.expect(path, `an integer >= ${min} or a list of two`, v);
    return [this.int(v[0], `${path}[0]`, min), this.int(v[1], `${path}[1]`, min)];
  }

  /** `obj[key]`, or `dflt` when absent or null. */
  opt<T>(obj: JsonObject, key: string, dflt: T, read: (v: unknown, path: string) => T, path: string): T {
    const v = obj[key];
    return v === undefined || v === null ? dflt : read(v, `${path}.${key}`);
  }
}
