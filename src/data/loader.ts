/**
 * The data loader: seeded shuffling, sharding across data-parallel ranks,
 * batching and prefetching, over any {@link Dataset} (in-memory tensors or an
 * image folder streamed from disk).
 *
 * Epoch order. Each epoch's order is `randperm(N)` from a libtorch generator
 * seeded with `seed + epoch` (or 0..N-1 without shuffling): every rank computes
 * the same permutation from the shared seed, a given (seed, epoch) always gives
 * the same order, and epochs differ. This is PyTorch's `DistributedSampler`
 * rule, and the orders are the same as PyTorch's for the same seed and epoch.
 *
 * Sharding. With `worldSize` W, rank r takes positions r, r + W, r + 2W, ...
 * of the epoch order, so ranks get disjoint parts. When W does not divide N,
 * `uneven` decides, so that every rank has the same number of samples (and so
 * of batches, which synchronous training needs: every rank must reach each
 * all-reduce):
 * - 'pad' (default): each rank gets ceil(N / W) samples; the order is extended
 *   with its own first samples, so a few samples (fewer than W) are seen twice
 *   in the epoch. Every sample is seen at least once.
 * - 'drop': each rank gets floor(N / W) samples; the last N mod W samples of the
 *   epoch order are seen by no rank in that epoch (different ones each epoch).
 * Batching then cuts each rank's part into `batchSize` pieces; a last partial
 * batch is kept unless `dropLast`. Both choices give the same batch count on
 * every rank. Samples skipped because their file is corrupt make a batch
 * smaller but never change the batch count (a batch may even be empty).
 */
import { Generator, randperm } from '../engine/index.js';
import type { Batch, Dataset, SkippedSample, WarningHandler } from './dataset.js';

/** How sharding evens out a dataset whose size the world size does not divide. */
export type UnevenPolicy = 'pad' | 'drop';

/** One rank's part of an epoch order. */
export interface Shard {
  /** Dataset indices this rank takes, in order. */
  indices: number[];
  /** How many of them repeat a sample to even out the shards ('pad'). */
  padded: number;
  /** Samples of the epoch that no rank takes ('drop'); the same on every rank. */
  unassigned: number;
}

function checkInt(fn: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${fn}: ${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * The order of an epoch: `randperm(length)` from a generator seeded with
 * `seed + epoch` when `shuffle`, else 0..length-1.
 */
export function epochOrder(length: number, opts: { shuffle?: boolean; seed?: number; epoch?: number } = {}): number[] {
  const { shuffle = true, seed = 0, epoch = 0 } = opts;
  checkInt('epochOrder', 'length', length, 0);
  checkInt('epochOrder', 'seed', seed, 0);
  checkInt('epochOrder', 'epoch', epoch, 0);
  if (!Number.isSafeInteger(seed + epoch)) throw new Error(`epochOrder: seed + epoch (${seed} + ${epoch}) exceeds 2^53`);
  if (!shuffle || length === 0) return Array.from({ length }, (_, i) => i);
  const perm = randperm(length, { generator: new Generator(seed + epoch) });
  try {
    return Array.from(perm.dataSync() as BigInt64Array, Number);
  } finally {
    perm.dispose();
  }
}

/**
 * Rank `rank`'s part of an epoch `order` among `worldSize` ranks: positions
 * rank, rank + W, ... of the order, after padding it with its own first
 * entries ('pad') or cutting it ('drop') to a multiple of W.
 */
export function shardOrder(order: readonly number[], rank: number, worldSize: number, uneven: UnevenPolicy = 'pad'): Shard {
  checkInt('shardOrder', 'worldSize', worldSize, 1);
  checkInt('shardOrder', 'rank', rank, 0);
  if (rank >= worldSize) throw new Error(`shardOrder: rank ${rank} must be below worldSize ${worldSize}`);
  if (uneven !== 'pad' && uneven !== 'drop') throw new Error(`shardOrder: uneven must be 'pad' or 'drop', got '${String(uneven)}'`);
  const n = order.length;
  const perRank = uneven === 'drop' ? Math.floor(n / worldSize) : Math.ceil(n / worldSize);
  const total = perRank * worldSize;
  const indices = new Array<number>(perRank);
  let padded = 0;
  for (let k = 0; k < perRank; k++) {
    const pos = rank + k * worldSize;
    if (pos >= n) padded++;
    indices[k] = order[pos % n] as number;
  }
  return { indices, padded, unassigned: Math.max(0, n - total) };
}

/** What one rank's pass over an epoch did; `onEpochEnd` receives it, and {@link EpochRun.summary} holds it. */
export interface EpochSummary {
  /** The epoch number. */
  epoch: number;
  /** The rank this summary is for. */
  rank: number;
  /** The number of ranks. */
  worldSize: number;
  /** Batches handed out. */
  batches: number;
  /** Samples handed out (in all batches). */
  samples: number;
  /** Samples left out because their file could not be read. */
  skipped: number;
  /** Each of them, with file and reason. */
  skippedSamples: SkippedSample[];
  /** Samples of this rank's part that repeat a sample to even out the shards ('pad'). */
  padded: number;
  /** Samples of the epoch that no rank takes ('drop'). */
  unassigned: number;
  /** Samples of this rank's part left out by `dropLast`. */
  droppedLast: number;
  /** True once every batch was handed out (false when the loop stopped early). */
  complete: boolean;
  /** Wall-clock seconds from the start of the pass to its end. */
  seconds: number;
}

/** A batch from the loader: a dataset batch, plus where it sits in the epoch. */
export interface LoaderBatch extends Batch {
  /** The epoch this batch belongs to. */
  epoch: number;
  /** Position of this batch in the epoch, from 0. */
  batch: number;
}

/** Options of {@link DataLoader}. */
export interface LoaderOptions {
  /** Shuffle each epoch (default true; false keeps dataset order, e.g. for evaluation). */
  shuffle?: boolean;
  /** Seed of the shuffle and of random transforms; must be the same on every rank (default 0). */
  seed?: number;
  /** Leave out each rank's last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Batches prepared ahead while the caller works on the current one (default 2; 0 disables). */
  prefetch?: number;
  /** This process's rank, 0 .. worldSize-1 (default 0). */
  rank?: number;
  /** Number of data-parallel ranks (default 1). */
  worldSize?: number;
  /** How shards are evened out when worldSize does not divide the dataset (default 'pad'; see the module comment). */
  uneven?: UnevenPolicy;
  /** Called for each skipped sample (corrupt or unreadable file). */
  onWarning?: WarningHandler;
  /** Called with the summary when an epoch has been handed out completely. */
  onEpochEnd?: (summary: EpochSummary) => void;
}

/**
 * Batches of a dataset for one rank, epoch by epoch:
 * ```ts
 * const loader = new DataLoader(dataset, 128, { seed: 1, rank, worldSize });
 * for (let e = 0; e < epochs; e++) {
 *   for await (const { images, labels } of loader.epoch(e)) {
 *     // ... images and labels belong to this code: dispose them
 *     images.dispose(); labels.dispose();
 *   }
 * }
 * ```
 * The tensors of each batch belong to the caller. Batches prefetched but never
 * handed out (the loop stopped early, or threw) are disposed by the loader.
 */
export class DataLoader {
  /** Whether epochs are shuffled. */
  readonly shuffle: boolean;
  /** Seed of the shuffle (epoch e uses seed + e) and of random transforms. */
  readonly seed: number;
  /** Whether each rank's last partial batch is left out. */
  readonly dropLast: boolean;
  /** Batches prepared ahead of the caller. */
  readonly prefetch: number;
  /** This process's rank. */
  readonly rank: number;
  /** Number of data-parallel ranks. */
  readonly worldSize: number;
  /** How shards are evened out. */
  readonly uneven: UnevenPolicy;
  /** Samples this rank takes per epoch (the same on every rank). */
  readonly samplesPerEpoch: number;
  /** Batches this rank gets per epoch (the same on every rank). */
  readonly batchesPerEpoch: number;
  private readonly onWarning: WarningHandler | undefined;
  private readonly onEpochEnd: ((s: EpochSummary) => void) | undefined;

  /**
   * @param dataset what to load from.
   * @param batchSize samples per batch (the last may be smaller unless `dropLast`).
   * @param opts shuffling, sharding, prefetching and callbacks; see {@link LoaderOptions} for defaults.
   */
  constructor(
    readonly dataset: Dataset,
    readonly batchSize: number,
    opts: LoaderOptions = {},
  ) {
    const { shuffle = true, seed = 0, dropLast = false, prefetch = 2, rank = 0, worldSize = 1, uneven = 'pad' } = opts;
    if (dataset === null || typeof dataset !== 'object' || typeof dataset.get !== 'function') {
      throw new Error('DataLoader: dataset must implement Dataset (length and get(indices))');
    }
    checkInt('DataLoader', 'dataset.length', dataset.length, 1);
    checkInt('DataLoader', 'batchSize', batchSize, 1);
    checkInt('DataLoader', 'seed', seed, 0);
    checkInt('DataLoader', 'prefetch', prefetch, 0);
    checkInt('DataLoader', 'worldSize', worldSize, 1);
    checkInt('DataLoader', 'rank', rank, 0);
    if (rank >= worldSize) throw new Error(`DataLoader: rank ${rank} must be below worldSize ${worldSize}`);
    if (uneven !== 'pad' && uneven !== 'drop') throw new Error(`DataLoader: uneven must be 'pad' or 'drop', got '${String(uneven)}'`);
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.prefetch = prefetch;
    this.rank = rank;
    this.worldSize = worldSize;
    this.uneven = uneven;
    const n = dataset.length;
    this.samplesPerEpoch = uneven === 'drop' ? Math.floor(n / worldSize) : Math.ceil(n / worldSize);
    this.batchesPerEpoch = dropLast ? Math.floor(this.samplesPerEpoch / batchSize) : Math.ceil(this.samplesPerEpoch / batchSize);
    this.onWarning = opts.onWarning;
    this.onEpochEnd = opts.onEpochEnd;
  }

  /** This rank's part of epoch `epoch`: the dataset indices it takes, in order, before batching. */
  shard(epoch: number): Shard {
    checkInt('DataLoader.shard', 'epoch', epoch, 0);
    const order = epochOrder(this.dataset.length, { shuffle: this.shuffle, seed: this.seed, epoch });
    return shardOrder(order, this.rank, this.worldSize, this.uneven);
  }

  /**
   * The batches of epoch `epoch` for this rank, as an async iterable (iterate
   * it once). `startBatch` resumes mid-epoch: earlier batches are neither read
   * nor decoded, and the batches that follow are the ones a full pass gives.
   */
  epoch(epoch: number, opts: { startBatch?: number } = {}): EpochRun {
    checkInt('DataLoader.epoch', 'epoch', epoch, 0);
    const startBatch = opts.startBatch ?? 0;
    checkInt('DataLoader.epoch', 'startBatch', startBatch, 0);
    if (startBatch > this.batchesPerEpoch) throw new Error(`DataLoader.epoch: startBatch ${startBatch} is past the epoch's ${this.batchesPerEpoch} batches`);
    if (!Number.isSafeInteger(this.seed + epoch)) throw new Error(`DataLoader.epoch: seed + epoch (${this.seed} + ${epoch}) exceeds 2^53`);
    return new EpochRun(this, epoch, this.onWarning, this.onEpochEnd, startBatch);
  }
}

/**
 * One rank's pass over one epoch: `for await` over it gives the batches;
 * `summary` counts what was handed out and skipped (final once the loop ends).
 */
export class EpochRun implements AsyncIterable<LoaderBatch> {
  /** The running summary; `complete` turns true when the last batch has been handed out. */
  readonly summary: EpochSummary;
  private started = false;

  /** @internal Use {@link DataLoader.epoch}. */
  constructor(
    private readonly loader: DataLoader,
    /** The epoch number. */
    readonly epoch: number,
    private readonly onWarning: WarningHandler | undefined,
    private readonly onEpochEnd: ((s: EpochSummary) => void) | undefined,
    /** The first batch handed out (resuming mid-epoch). */
    readonly startBatch = 0,
  ) {
    this.summary = {
      epoch,
      rank: loader.rank,
      worldSize: loader.worldSize,
      batches: 0,
      samples: 0,
      skipped: 0,
      skippedSamples: [],
      padded: 0,
      unassigned: 0,
      droppedLast: 0,
      complete: false,
      seconds: 0,
    };
  }

  /** The batches, prefetching `prefetch` ahead; throws if iterated a second time. */
  [Symbol.asyncIterator](): AsyncIterator<LoaderBatch> {
    if (this.started) throw new Error(`DataLoader: epoch ${this.epoch} was already iterated; call loader.epoch(${this.epoch}) again for a new pass`);
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<LoaderBatch, void, undefined> {
    const { loader, summary, epoch } = this;
    const start = performance.now();
    const { dataset, batchSize, prefetch, seed } = loader;
    const shard = loader.shard(epoch);
    const count = loader.batchesPerEpoch;
    summary.padded = shard.padded;
    summary.unassigned = shard.unassigned;
    summary.droppedLast = shard.indices.length - Math.min(shard.indices.length, count * batchSize);
    const onWarning = this.onWarning;
    const queue: Promise<Batch>[] = [];
    let requested = this.startBatch;
    const fill = (depth: number): void => {
      while (requested < count && queue.length < depth) {
        const b = requested++;
        const p = dataset.get(shard.indices.slice(b * batchSize, (b + 1) * batchSize), { epoch, seed, onWarning });
        // Mark as handled: a prefetched batch may fail before it is awaited below.
        p.catch(() => undefined);
        queue.push(p);
      }
    };
    try {
      for (let b = this.startBatch; b < count; b++) {
        fill(Math.max(1, prefetch));
        const batch = await (queue.shift() as Promise<Batch>);
        fill(prefetch);
        summary.batches++;
        summary.samples += batch.indices.length;
        summary.skipped += batch.skipped.length;
        summary.skippedSamples.push(...batch.skipped);
        summary.seconds = (performance.now() - start) / 1000;
        yield { ...batch, epoch, batch: b };
      }
      summary.complete = true;
      summary.seconds = (performance.now() - start) / 1000;
      this.onEpochEnd?.(summary);
    } finally {
      // Batches prepared but never handed out are the loader's to free.
      for (const p of queue.splice(0)) {
        try {
          const batch = await p;
          batch.images.dispose();
          batch.labels.dispose();
        } catch {
          // its error was either already reported or is moot once the loop stopped
        }
      }
      summary.seconds = (performance.now() - start) / 1000;
    }
  }
}
