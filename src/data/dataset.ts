/**
 * The dataset contract the loader works on, and the in-memory dataset over
 * whole tensors (MNIST, Fashion-MNIST, anything already loaded).
 *
 * A dataset is random access by index and asynchronous: `get(indices)` returns
 * a batch of exactly those samples, in that order, except samples that could
 * not be read (a corrupt image file), which are left out and reported. The
 * tensors of a returned batch belong to the caller.
 */
import { type Tensor, scope, tensor } from '../engine/index.js';
import type { ImageDataset } from './mnist.js';

/** A sample that could not be read and was left out of its batch. */
export interface SkippedSample {
  /** Index of the sample in the dataset. */
  index: number;
  /** The file it comes from. */
  file: string;
  /** Why it was skipped (the decoder's or the file system's message). */
  reason: string;
}

/** A warning from the data layer; the library never prints, it calls `onWarning`. */
export interface DataWarning extends SkippedSample {
  kind: 'skipped-sample';
  /** A one-line message naming the file, ready to print. */
  message: string;
}

/** Receives data warnings (corrupt or unreadable files). */
export type WarningHandler = (warning: DataWarning) => void;

/** A batch of samples. */
export interface Batch {
  /** The samples: float32 [N, C, H, W] in the dataset's `range` ([0, 1] for the image datasets here). */
  images: Tensor;
  /** int64 [N], class indices. */
  labels: Tensor;
  /** The dataset index of each row, in order (skipped samples are not among them). */
  indices: number[];
  /** Requested samples left out because they could not be read. */
  skipped: SkippedSample[];
}

/** What a dataset's `get` may use besides the indices. */
export interface GetOptions {
  /** The epoch, which random transforms key their draws on (default 0). */
  epoch?: number;
  /** The seed of random transforms (default 0). */
  seed?: number;
  /** Called once per skipped sample. */
  onWarning?: WarningHandler;
}

/**
 * A random-access, asynchronous dataset. `get` returns the samples at
 * `indices` in order (duplicates allowed), leaving out and reporting those that
 * cannot be read; the tensors it returns belong to the caller, who disposes them.
 */
export interface Dataset {
  /** Number of samples. */
  readonly length: number;
  /** Class names, indexed by label. */
  readonly classNames: readonly string[];
  /**
   * The range the images' values lie in (default [0, 1]). A classifier maps
   * them onto its own input range with `Classifier.fromData`.
   */
  readonly range?: readonly [number, number];
  /** The samples at `indices` as one batch. */
  get(indices: readonly number[], opts?: GetOptions): Promise<Batch>;
}

/**
 * Reads `indices` from `data` in batches of `batchSize`, in order, and calls
 * `fn` on each batch with at least one readable sample; the batch's tensors
 * are freed once `fn` returns or throws. `onProgress(done, total)` follows
 * each batch, read or not.
 */
export async function forEachBatch(
  data: Dataset,
  indices: readonly number[],
  batchSize: number,
  fn: (batch: Batch) => void,
  opts: GetOptions & { onProgress?: (done: number, total: number) => void } = {},
): Promise<void> {
  const { onProgress, ...get } = opts;
  for (let start = 0; start < indices.length; start += batchSize) {
    const batch = await data.get(indices.slice(start, start + batchSize), get);
    try {
      if (batch.indices.length > 0) fn(batch);
    } finally {
      batch.images.dispose();
      batch.labels.dispose();
    }
    onProgress?.(Math.min(start + batchSize, indices.length), indices.length);
  }
}

/** Checks that each index is an integer in [0, length). */
export function checkIndices(fn: string, indices: readonly number[], length: number): void {
  if (!Array.isArray(indices)) throw new Error(`${fn}: indices must be an array of integers, got ${String(indices)}`);
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i] as number;
    if (!Number.isInteger(v) || v < 0 || v >= length) {
      throw new Error(`${fn}: indices[${i}] = ${v} is out of range 0..${length - 1}`);
    }
  }
}

/** Options of {@link TensorDataset}. */
export interface TensorDatasetOptions {
  /** Class names, indexed by label (default: none). */
  classNames?: readonly string[];
  /** A name for error messages (default 'TensorDataset'). */
  name?: string;
  /** The range the images' values lie in (default [0, 1]). */
  range?: readonly [number, number];
}

/**
 * A dataset over whole tensors in memory: images [N, ...] and int64 labels [N].
 * `get` gathers rows with `indexSelect` (a copy the caller owns). The dataset
 * does not copy the tensors it is given: keep them alive while it is used, or
 * let `dispose()` free them when done.
 */
export class TensorDataset implements Dataset {
  /** Number of samples (rows of `images`). */
  readonly length: number;
  /** Class names, indexed by label. */
  readonly classNames: readonly string[];
  /** The name used in error messages. */
  readonly name: string;
  /** The range the images' values lie in. */
  readonly range: readonly [number, number];

  /**
   * @param images [N, ...] samples (any dtype; MNIST's are float32 [N, 1, 28, 28]).
   * @param labels int64 [N] class indices.
   */
  constructor(
    readonly images: Tensor,
    readonly labels: Tensor,
    opts: TensorDatasetOptions = {},
  ) {
    this.name = opts.name ?? 'TensorDataset';
    this.range = opts.range ?? [0, 1];
    const n = images.shape[0];
    if (images.rank < 1 || n === undefined) throw new Error(`${this.name}: images must have a batch dimension, got shape [${images.shape}]`);
    if (labels.rank !== 1 || labels.shape[0] !== n) {
      throw new Error(`${this.name}: labels must have shape [${n}] to match images [${images.shape}], got [${labels.shape}]`);
    }
    if (labels.dtype !== 'int64') throw new Error(`${this.name}: labels must be int64, got ${labels.dtype}`);
    this.length = n;
    this.classNames = [...(opts.classNames ?? [])];
  }

  /** Wraps a loaded {@link ImageDataset} (as `loadMnist` returns); `dispose()` then frees its tensors. */
  static from(ds: ImageDataset): TensorDataset {
    return new TensorDataset(ds.images, ds.labels, { classNames: ds.classNames, name: ds.name, range: ds.range });
  }

  /** Rows `indices` of images and labels, as new tensors the caller owns. */
  async get(indices: readonly number[], _opts: GetOptions = {}): Promise<Batch> {
    checkIndices(`${this.name}.get`, indices, this.length);
    // Make the tensors after an await, so they are never created inside a
    // caller's synchronous scope() that would free them on exit.
    await null;
    const list = [...indices];
    return scope(() => {
      const idx = tensor(BigInt64Array.from(list, (i) => BigInt(i)));
      return { images: this.images.indexSelect(0, idx), labels: this.labels.indexSelect(0, idx), indices: list, skipped: [] };
    });
  }

  /** Frees the images and labels tensors. */
  dispose(): void {
    this.images.dispose();
    this.labels.dispose();
  }
}
