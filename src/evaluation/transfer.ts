/**
 * Transfer between models: adversarial examples made on a source model from
 * randomly sampled clean test images, classified by a target model.
 *   transfer rate = among the images whose adversarial example the SOURCE
 *                   misclassifies, the fraction the TARGET misclassifies too;
 *   error rate    = the fraction of all adversarial images the target misclassifies.
 * With `cleanCorrectOnly`, a pair counts only the images both of its models
 * classify correctly when clean: where attacks fool few images (MNIST at small
 * eps), the clean errors, which every model shares, would otherwise make up
 * most of the fooled images and decide the transfer rate.
 */
import { type ConcretePrecision, Generator, type Precision, type Tensor, noGrad, randperm, resolvePrecision, scope, withPrecision } from '../engine/index.js';
import * as A from '../attacks/index.js';
import { type Dataset, forEachBatch } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { type Sharding, shardIndices } from './evaluate.js';
import { type Interval, proportion } from './stats.js';

export interface TransferOptions {
  methods: A.MethodName[];
  eps?: number[];
  /** Number of test images sampled at random (default 1000, or all if fewer). */
  samples?: number;
  seed?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Shard the sampled images over a process group; counts are summed exactly. */
  group?: Sharding;
  /** Count, for each source and target, only the images both classify correctly when clean (default false: all, as the paper). */
  cleanCorrectOnly?: boolean;
  /** Precision of the attacks and of every classification, clean and adversarial (default A.DEFAULT_ATTACK_PRECISION). */
  precision?: Precision;
}

export interface TransferCell {
  method: A.MethodName;
  eps: number;
  source: string;
  target: string;
  /** Adversarial examples the source misclassifies (the denominator of the transfer rate). */
  sourceFooled: number;
  /** Of those, the ones the target misclassifies too. */
  transferred: number;
  /** Adversarial examples the target misclassifies, of all. */
  targetErrors: number;
  /** Images counted: all sampled, or with `cleanCorrectOnly` those both models classify correctly. */
  n: number;
  transferRate: Interval;
  errorRate: Interval;
}

/** Samples `count` distinct indices of the dataset with a seeded permutation. */
export function sampleIndices(length: number, count: number, seed: number): number[] {
  return scope(() => Array.from(randperm(length, { generator: new Generator(seed) }).narrow(0, 0, Math.min(count, length)).dataSync() as BigInt64Array, Number));
}

/** Per image, 1 where `model` (in inference mode, whatever mode it is in) misclassifies it at `precision`. */
const wrong = (model: Classifier, x: Tensor, y: Tensor, precision: ConcretePrecision): Uint8Array =>
  model.inMode(false, () => noGrad(() => scope(() => withPrecision(precision, () => model.logits(x), x.device).argmax(1).ne(y).to('uint8').dataSync() as Uint8Array)));

/** The full source x target matrix for every method and eps. Models are named by the keys of `models`. */
export async function transferMatrix(models: Map<string, Classifier>, data: Dataset, opts: TransferOptions): Promise<TransferCell[]> {
  const eps = opts.eps ?? [2, 4, 8, 16];
  const indices = shardIndices(sampleIndices(data.length, opts.samples ?? 1000, opts.seed ?? 0), opts.group);
  const batchSize = opts.batchSize ?? 128;
  const cells = new Map<string, TransferCell>();
  const names = [...models.keys()];
  // Resolved once per model (for its device): each attacks and classifies at that one precision.
  const precision = new Map([...models].map(([name, m]) => [name, resolvePrecision(opts.precision ?? A.DEFAULT_ATTACK_PRECISION, m.device)]));
  const precisionOf = (name: string): ConcretePrecision => precision.get(name) as ConcretePrecision;
  for (const m of opts.methods) for (const e of eps) for (const s of names) for (const t of names) {
    cells.set(`${m}@${e}:${s}>${t}`, { method: m, eps: e, source: s, target: t, sourceFooled: 0, transferred: 0, targetErrors: 0, n: 0, transferRate: proportion(0, 0), errorRate: proportion(0, 0) });
  }
  await forEachBatch(data, indices, batchSize, (batch) => scope(() => {
    // Each model's view of the clean batch, and with cleanCorrectOnly the images it gets wrong.
    const inputs = new Map([...models].map(([name, m]) => [name, m.fromData(batch.images, data.range, 'the transfer data')]));
    const cleanWrong = new Map([...models].map(([name, m]) => [name, opts.cleanCorrectOnly ? wrong(m, inputs.get(name) as Tensor, batch.labels, precisionOf(name)) : undefined]));
    for (const [s, source] of models) {
      const x = inputs.get(s) as Tensor;
      const advs = A.attackGrid(source, x, batch.labels, opts.methods, eps, { seed: opts.seed ?? 0, precision: precisionOf(s) });
      for (const [m, list] of advs) {
        list.forEach((adv, i) => {
          const fooled = wrong(source, adv, batch.labels, precisionOf(s));
          for (const [t, target] of models) {
            // The source's images, in its input range, as the target takes them.
            const targetWrong = t === s ? fooled : wrong(target, target.fromData(adv, source.inputRange, `model ${s}'s adversarial images`), batch.labels, precisionOf(t));
            const cell = cells.get(`${m}@${eps[i]}:${s}>${t}`) as TransferCell;
            const [sourceClean, targetClean] = [cleanWrong.get(s), cleanWrong.get(t)];
            for (let j = 0; j < fooled.length; j++) {
              if (sourceClean?.[j] || targetClean?.[j]) continue;
              cell.n++;
              cell.targetErrors += targetWrong[j] as number;
              if (fooled[j]) {
                cell.sourceFooled++;
                cell.transferred += targetWrong[j] as number;
              }
            }
          }
        });
      }
    }
  }), { onProgress: opts.onProgress });
  if (opts.group && opts.group.worldSize > 1) {
    const list = [...cells.values()];
    const total = opts.group.allReduceNumbers(list.flatMap((c) => [c.sourceFooled, c.transferred, c.targetErrors, c.n]), 'sum');
    list.forEach((c, i) => {
      [c.sourceFooled, c.transferred, c.targetErrors, c.n] = total.slice(4 * i, 4 * i + 4) as [number, number, number, number];
    });
  }
  for (const c of cells.values()) {
    c.transferRate = proportion(c.transferred, c.sourceFooled);
    c.errorRate = proportion(c.targetErrors, c.n);
  }
  return [...cells.values()];
}
