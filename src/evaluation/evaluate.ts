/**
 * The evaluation grid: for a classifier and a dataset, clean top-1 and top-5
 * accuracy and, for every method and eps, adversarial top-1/top-5 with 95%
 * intervals, the adversarial/clean ratio, the methods statistically tied with
 * the strongest, and label-leaking flags. One-step methods come from the
 * many-eps grid (one backward pass per label source, whatever the eps list),
 * minimal-perturbation methods from one search whatever the eps list (and
 * give the distribution of their sizes). With a suite (AutoAttack), its
 * robust accuracy per eps and which attack broke how many images. Every
 * evaluation ends with the gradient-masking audit (src/evaluation/audit.ts).
 */
import { type ConcretePrecision, type Precision, type Tensor, noGrad, resolvePrecision, scope, withPrecision } from '../engine/index.js';
import * as A from '../attacks/index.js';
import { type Dataset, forEachBatch } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { type Interval, type PairedCounts, overlaps, pairedDifference, proportion } from './stats.js';
import { type AuditResult, type ProbeResult, audit, probe } from './audit.js';
import {
  type MinimalSummary, MinimalSizes, type SuiteCounts, type SuiteSummary, addSuiteResult, emptySuiteCounts, setSuiteNumbers, suiteNumbers, suiteRow,
} from './robustness.js';

export interface EvalOptions {
  /** Attacks of the grid (may be empty when a suite is given). */
  methods: A.MethodName[];
  /** A suite run at every eps on the images still unbroken: a name ('autoattack', 'standard', 'plus', 'rand') or its steps. */
  suite?: string | readonly A.SuiteStep[];
  /** Norm of the suite and of every method that takes one (default L-inf). */
  norm?: A.Norm;
  /** Run the audit's probes on the first batch (default true); the checks from the grid run regardless. */
  auditProbes?: boolean;
  /** eps values in pixel units (default the paper's 2, 4, 8, 16). */
  eps?: number[];
  batchSize?: number;
  /** Evaluate these dataset indices only (default all). */
  indices?: number[];
  /** Seed for random methods (default 0). */
  seed?: number;
  /** Label source override for gradient methods. */
  label?: A.LabelSource;
  /**
   * Precision of the classifier's forward passes and of the attacks (default
   * 'auto': bf16-autocast where the hardware has bfloat16 instructions).
   * docs/precision.md compares fp32 and bf16-autocast accuracies cell by cell.
   */
  precision?: Precision;
  /** Steps of the iterative methods (default: each method's own). */
  steps?: number;
  /** Query budget of the query-only attacks, e.g. the suite's Square (default: each attack's own, 5,000 for Square). */
  queries?: number;
  /** Progress: images done and total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Shard over a process group: rank r evaluates every worldSize-th image
   * from r, and the counts are summed exactly, so every rank returns the
   * result for all images.
   */
  group?: Sharding;
}

/** What sharded evaluation needs of a process group (src/distributed's ProcessGroup has it). */
export interface Sharding {
  readonly rank: number;
  readonly worldSize: number;
  allReduceNumbers(values: readonly number[], op: 'sum'): number[];
}

/** This rank's share of `indices`: every worldSize-th from rank. */
export function shardIndices(indices: number[], group?: Sharding): number[] {
  if (!group || group.worldSize <= 1) return indices;
  return indices.filter((_, i) => i % group.worldSize === group.rank);
}

/** Raw counts for one cell; shards add them. */
export interface CellCounts {
  n: number;
  top1: number;
  top5: number;
  /** Paired with the clean top-1 of the same images. */
  paired: PairedCounts;
}

export interface Cell {
  method: A.MethodName;
  eps: number;
  /** Which label the method used: reports must say it (label leaking depends on it). */
  labelSource: string;
  top1: Interval;
  top5: Interval;
  /** Adversarial top-1 / clean top-1. Above 1 the attack helps the model. */
  ratio: number;
  /** Adversarial minus clean top-1, paired over images. */
  difference: Interval;
  /** Adversarial accuracy above clean beyond the paired interval: the attack helps the model. */
  aboveClean: boolean;
  /**
   * aboveClean for a method that builds its perturbation from the TRUE label:
   * label leaking. Methods that use another label and still help the model
   * (aboveClean alone) point to a broken or mismatched attack instead.
   */
  labelLeaking: boolean;
  /** Statistically tied with the strongest method at this eps (lowest top-1). */
  tiedWithStrongest: boolean;
  counts: CellCounts;
}

export interface EvalResult {
  images: number;
  clean: { top1: Interval; top5: Interval; counts: { n: number; top1: number; top5: number } };
  cells: Cell[];
  /** The suite's rows, one per eps, when a suite ran. */
  suite?: SuiteSummary;
  /** Sizes of the minimal perturbations, per minimal-perturbation method of the grid. */
  minimal: MinimalSummary[];
  /** What the audit's probes measured (absent when they did not run). */
  probes?: ProbeResult;
  audit: AuditResult;
}

/** Per-image top-1 and top-5 hits of the classifier on x. */
function hits(model: Classifier, x: Tensor, y: Tensor, precision: ConcretePrecision): { top1: Tensor; top5: Tensor } {
  return noGrad(() =>
    scope(() => {
      const logits = withPrecision(precision, () => model.logits(x), x.device);
      const k = Math.min(5, model.classes);
      const top = logits.topk(k, { dim: 1 }).indices;
      const match = top.eq(y.reshape([-1, 1]));
      const hit = match.to('float32');
      return { top1: hit.select(1, 0), top5: hit.max(1) };
    }),
  );
}

/** Runs the grid; see {@link EvalResult}. */
export async function evaluate(model: Classifier, data: Dataset, opts: EvalOptions): Promise<EvalResult> {
  const eps = opts.eps ?? [2, 4, 8, 16];
  for (const m of opts.methods) A.attackSpec(m);
  const suiteSteps = opts.suite === undefined ? undefined : typeof opts.suite === 'string' ? A.suiteSteps(opts.suite) : opts.suite;
  if (!opts.methods.length && !suiteSteps) throw new Error('evaluate: methods must name at least one attack (or give a suite)');
  const norm = opts.norm ?? 'linf';
  for (const m of opts.methods) if (A.attackSpec(m).options.includes('norm')) A.normOf(m, norm);
  eps.forEach((e, i) => A.checkEps(e, `eps[${i}]`, norm));
  const batchSize = opts.batchSize ?? 128;
  // Resolved once: the clean pass, the attacks, the probes and the adversarial pass share one concrete precision.
  const precision = resolvePrecision(opts.precision ?? A.DEFAULT_ATTACK_PRECISION, model.device);
  const allIndices = opts.indices ?? Array.from({ length: data.length }, (_, i) => i);
  const indices = shardIndices(allIndices, opts.group);
  const positionOf = new Map(allIndices.map((index, position) => [index, position]));
  const clean = { n: 0, top1: 0, top5: 0 };
  const suiteCounts = suiteSteps ? eps.map((e) => emptySuiteCounts(e, suiteSteps.map((s) => s.attack))) : [];
  const minimal = new Map(opts.methods.filter((m) => A.attackSpec(m).minimal).map((m) => [m, new MinimalSizes(m, A.normOf(m, A.attackSpec(m).options.includes('norm') ? norm : undefined), allIndices.length)]));
  let probes: ProbeResult | undefined;
  const counts = new Map<string, CellCounts>();
  const key = (m: string, e: number): string => `${m}@${e}`;
  for (const m of opts.methods) for (const e of eps) counts.set(key(m, e), { n: 0, top1: 0, top5: 0, paired: { n: 0, up: 0, down: 0 } });

  // Inference mode for every pass (batch norm on running statistics, no dropout), whatever mode the
  // model came in: a model straight out of training would otherwise be judged on batch statistics.
  // A batch whose every file was unreadable is never handed to the model.
  await forEachBatch(data, indices, batchSize, (batch) => model.inMode(false, () => scope(() => {
    const x = model.fromData(batch.images, data.range, 'the evaluation data');
    const y = batch.labels;
    const c = hits(model, x, y, precision);
    const cleanTop1 = c.top1.dataSync() as Float32Array;
    clean.n += cleanTop1.length;
    clean.top1 += c.top1.sum().item();
    clean.top5 += c.top5.sum().item();
    if (probes === undefined && (opts.auditProbes ?? true)) probes = probe(model, x, y, { precision, largestEps: norm === 'linf' ? Math.max(...eps) : undefined, seed: opts.seed });
    const cleanCorrect = Array.from(cleanTop1, (v) => v === 1);
    const onMinimal = (m: string, sizes: Float64Array): void => {
      sizes.forEach((size, j) => {
        if (cleanCorrect[j]) (minimal.get(m) as MinimalSizes).set(positionOf.get(batch.indices[j] as number) as number, size);
      });
    };
    suiteCounts.forEach((counts, i) => scope(() => {
      const r = A.runSuite(model, x, y, suiteSteps as readonly A.SuiteStep[], eps[i] as number, { seed: opts.seed ?? 0, precision, norm, overrides: { steps: opts.steps, queries: opts.queries } });
      addSuiteResult(counts, r);
    }));
    const advs = A.attackGrid(model, x, y, opts.methods, eps, { seed: opts.seed ?? 0, label: opts.label, precision, steps: opts.steps, queries: opts.queries, norm, onMinimal });
    for (const [m, list] of advs) {
      list.forEach((adv, i) => {
        const h = hits(model, adv, y, precision);
        const t1 = h.top1.dataSync() as Float32Array;
        const cell = counts.get(key(m, eps[i] as number)) as CellCounts;
        cell.n += t1.length;
        cell.top1 += h.top1.sum().item();
        cell.top5 += h.top5.sum().item();
        cell.paired.n += t1.length;
        for (let j = 0; j < t1.length; j++) {
          const d = (t1[j] as number) - (cleanTop1[j] as number);
          if (d > 0) cell.paired.up++;
          else if (d < 0) cell.paired.down++;
        }
      });
    }
  })), { onProgress: opts.onProgress });
  if (opts.group && opts.group.worldSize > 1) {
    mergeCounts(opts.group, clean, [...counts.values()], suiteCounts);
    for (const m of minimal.values()) m.merge(opts.group);
  }
  if (clean.n === 0 && indices.length > 0) throw new Error(`evaluate: no readable image among the ${indices.length} requested (every one was skipped)`);
  const result = summarise(clean, counts, opts.methods, eps, opts.label);
  if (suiteSteps) {
    const name = typeof opts.suite === 'string' ? opts.suite : suiteSteps.map((s) => s.attack).join('+');
    result.suite = { name, norm, attacks: suiteSteps.map((s) => s.attack), rows: suiteCounts.map(suiteRow) };
  }
  result.minimal = [...minimal.values()].map((m) => m.summary());
  // Probes ran on this rank's first batch; the grid's checks use the merged counts.
  result.probes = probes;
  result.audit = audit(result.cells, result.suite, probes);
  return result;
}

/** Sums every rank's counts in place (exact: integers travel as float64). */
function mergeCounts(group: Sharding, clean: { n: number; top1: number; top5: number }, cells: CellCounts[], suites: SuiteCounts[]): void {
  const flat = [clean.n, clean.top1, clean.top5, ...cells.flatMap((c) => [c.n, c.top1, c.top5, c.paired.n, c.paired.up, c.paired.down])];
  const suiteFlat = suites.map(suiteNumbers);
  const total = group.allReduceNumbers([...flat, ...suiteFlat.flat()], 'sum');
  let at = flat.length;
  suites.forEach((s, i) => {
    const width = (suiteFlat[i] as number[]).length;
    setSuiteNumbers(s, total.slice(at, at + width));
    at += width;
  });
  [clean.n, clean.top1, clean.top5] = total.slice(0, 3) as [number, number, number];
  cells.forEach((c, i) => {
    const [n, top1, top5, pn, up, down] = total.slice(3 + 6 * i, 9 + 6 * i) as [number, number, number, number, number, number];
    Object.assign(c, { n, top1, top5, paired: { n: pn, up, down } });
  });
}

/** Turns (merged) counts into the result: intervals, ratios, ties, leaking flags. */
export function summarise(
  clean: { n: number; top1: number; top5: number },
  counts: Map<string, CellCounts>,
  methods: A.MethodName[],
  eps: number[],
  label?: A.LabelSource,
): EvalResult {
  const cleanTop1 = proportion(clean.top1, clean.n);
  const cells: Cell[] = [];
  for (const e of eps) {
    const row = methods.map((m) => {
      const c = counts.get(`${m}@${e}`) as CellCounts;
      const top1 = proportion(c.top1, c.n);
      const difference = pairedDifference(c.paired);
      return {
        method: m, eps: e, labelSource: A.labelSourceOf(m, label), top1, top5: proportion(c.top5, c.n),
        ratio: top1.value / cleanTop1.value, difference, aboveClean: difference.low > 0,
        labelLeaking: difference.low > 0 && A.labelSourceOf(m, label) === 'true', tiedWithStrongest: false, counts: c,
      };
    });
    // A suite alone has no grid cells.
    if (row.length === 0) continue;
    const strongest = row.reduce((a, b) => (b.top1.value < a.top1.value ? b : a));
    for (const cell of row) cell.tiedWithStrongest = overlaps(cell.top1, strongest.top1);
    cells.push(...row);
  }
  return {
    images: clean.n, clean: { top1: cleanTop1, top5: proportion(clean.top5, clean.n), counts: clean }, cells, minimal: [],
    audit: audit(cells, undefined, undefined),
  };
}
