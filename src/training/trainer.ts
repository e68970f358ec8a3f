/**
 * Adversarial training, the paper's Algorithm 1. For each minibatch of m
 * examples, the first k are replaced by adversarial examples made from the
 * CURRENT model (in inference mode), and one optimizer step is taken on
 *
 *   Loss = 1 / ((m - k) + lambda k) * ( sum_clean L(X_i | y_i) + lambda sum_adv L(X_adv_i | y_i) )
 *
 * with eps drawn independently per adversarial example. The first `delay`
 * steps are clean only ("delayed" adversarial training); k = 0 is plain training.
 * The other recipes (recipes.ts) run on the same loop: ensemble adversarial
 * training changes where the adversarial examples come from, PGD-AT and fast
 * AT the attack, TRADES the attack and the loss.
 */
import { type ConcretePrecision, Generator, type Precision, type Tensor, cat, crossEntropy, lossPrecision, noGrad, randint, resolvePrecision, scope, withPrecision } from '../engine/index.js';
import { type LabelSource, type MethodName, attackSpec, declaredOptions } from '../attacks/index.js';
import type { Classifier } from '../models/classifier.js';
import type { Optimizer, Schedule } from '../optim/index.js';
import { type EpsSpec, PAPER_EPS, checkEpsSpec, sampleEps } from './eps.js';
import { type RecipeName, TRADES_DEFAULTS, recipe, tradesAdversarial, tradesLoss } from './recipes.js';

export interface AdversarialConfig {
  /** The recipe (default 'algorithm-1'; see recipes.ts). */
  recipe?: RecipeName;
  /**
   * Adversarial examples per minibatch (the paper's k); the rest stay clean. 0 is plain training.
   * Configs written before this field was renamed call it `adversarial`; runTraining reads those as k.
   */
  k: number;
  /** Weight of the adversarial examples in the loss (default: the recipe's; Algorithm 1's is 0.3). */
  lambda?: number;
  /** Attack used to make them (default: the recipe's; Algorithm 1's is 'step-ll'). TRADES takes none. */
  method?: MethodName;
  /** TRADES: weight of the KL term (default 6). */
  beta?: number;
  /** Ensemble: names of the static source models (files), in the order the trainer is given them. */
  sources?: string[];
  /** Label source for the attack (default: the method's own). */
  label?: LabelSource;
  /** Distribution of eps per adversarial example (default: the paper's truncated normal on [0, 16]). */
  eps?: EpsSpec;
  /** Clean-only steps before adversarial examples are mixed in (default 0). */
  delay?: number;
  /** Label smoothing of the training loss (default 0; Inception v3 uses 0.1). */
  labelSmoothing?: number;
  /** Steps of an iterative attack (default: its own). */
  attackSteps?: number;
  /** Step size of an iterative attack, pixel units (default: its own). */
  attackStepSize?: number;
  /** Whether an iterative attack starts at random in the ball (default: its own; PGD and RS-FGSM do). */
  randomStart?: boolean;
}

/** A static model that makes adversarial examples for ensemble adversarial training. */
export interface SourceModel {
  name: string;
  model: Classifier;
}

export interface StepStats {
  step: number;
  loss: number;
  /** Accuracy on the clean part of the minibatch (null when all of it is adversarial). */
  cleanAccuracy: number | null;
  /** Accuracy on the adversarial part (null before the delay ends or with k = 0). */
  adversarialAccuracy: number | null;
  /** Mean cross-entropy on the adversarial part (TRADES: the mean KL term); null without one. */
  adversarialLoss: number | null;
  /** Ensemble: the model that made this step's adversarial examples ('current' or a source's name). */
  source: string | null;
  adversarialCount: number;
  lr: number;
}

/** Precision of training when none is given (docs/precision.md compares the two). */
export const DEFAULT_TRAINING_PRECISION: Precision = 'fp32';

/** The paper's normalised mixed loss from per-example losses; the first k are adversarial. */
export function mixedLoss(perExample: Tensor, k: number, lambda: number): Tensor {
  const m = perExample.shape[0] as number;
  if (k < 0 || k > m) throw new Error(`mixedLoss: k = ${k} is outside 0..${m}`);
  return scope(() => {
    const clean = k < m ? perExample.narrow(0, k, m - k).sum() : null;
    const adv = k > 0 ? perExample.narrow(0, 0, k).sum().mul(lambda) : null;
    const total = clean && adv ? clean.add(adv) : ((clean ?? adv) as Tensor);
    return total.div(m - k + lambda * k);
  });
}

/**
 * What data-parallel training needs from a process group (src/distributed's
 * ProcessGroup provides it; a single process needs none).
 */
export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  allReduce(tensors: readonly Tensor[], op: 'sum' | 'max'): void;
  allReduceNumbers(values: readonly number[], op: 'sum' | 'max'): number[];
  broadcast(tensors: readonly Tensor[], root: number): void;
  allGather(tensor: Tensor): Tensor[];
  /** Sums gradients while backward runs (ProcessGroup.gradientReducer); without it, gradients are reduced after backward. */
  gradientReducer?(params: readonly Tensor[]): { prepare(loss?: Tensor): void; finish(): unknown };
}

/** Offset of the dropout streams' seeds, above every eps and attack seed {@link streamSeeds} allows. */
const DROPOUT_SEED_BASE = 2 ** 48;

/**
 * The seeds of one rank's random streams. Every (seed, rank) pair gets its
 * own three, none shared with another pair or stream: eps 2r + 1 and attack
 * 2r + 2 for r = seed * worldSize + rank (as before dropout had a stream, so
 * runs keep their eps and attack draws), dropout 2^48 + r.
 */
export function streamSeeds(seed: number, rank: number, worldSize: number): { eps: number; attack: number; dropout: number } {
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
  const r = seed * worldSize + rank;
  if (r >= 2 ** 46) throw new Error(`seed ${seed} is too large for ${worldSize} rank(s): seed x ranks must be below 2^46`);
  return { eps: 2 * r + 1, attack: 2 * r + 2, dropout: DROPOUT_SEED_BASE + r };
}

export class AdversarialTrainer {
  /** Steps taken. */
  step = 0;
  readonly recipe: RecipeName;
  readonly lambda: number;
  /** The attack of the adversarial part (null for TRADES, whose attack is its own). */
  readonly method: MethodName | null;
  readonly beta: number;
  /** Ensemble: the static sources. */
  readonly sources: readonly SourceModel[];
  readonly eps: EpsSpec;
  readonly delay: number;
  /** Draws eps values. */
  readonly epsGenerator: Generator;
  /** Draws random targets and noise inside attacks. */
  readonly attackGenerator: Generator;
  /** Draws the model's dropout masks (given to its modules by the constructor). */
  readonly dropoutGenerator: Generator;

  constructor(
    readonly model: Classifier,
    readonly optimizer: Optimizer,
    readonly config: AdversarialConfig,
    opts: { seed?: number; schedule?: Schedule; group?: Collective; precision?: Precision; sources?: readonly SourceModel[]; overlap?: boolean } = {},
  ) {
    const k = config.k;
    if (!Number.isInteger(k) || k < 0) throw new Error(`k (adversarial examples per minibatch) must be a non-negative integer, got ${k}`);
    const r = recipe(config.recipe ?? 'algorithm-1');
    this.recipe = r.name;
    this.lambda = config.lambda ?? r.lambda;
    if (!(this.lambda >= 0) || !Number.isFinite(this.lambda)) throw new Error(`lambda must be a finite number >= 0, got ${this.lambda}`);
    if (r.method === null && config.method !== undefined) throw new Error(`recipe ${r.name} finds its adversarial examples with its own attack; it takes no method (got '${config.method}')`);
    this.method = r.method === null ? null : (config.method ?? r.method);
    if (this.method !== null) attackSpec(this.method);
    this.beta = config.beta ?? TRADES_DEFAULTS.beta;
    if (!(this.beta >= 0) || !Number.isFinite(this.beta)) throw new Error(`beta must be a finite number >= 0, got ${this.beta}`);
    if (config.beta !== undefined && r.name !== 'trades') throw new Error(`beta weighs TRADES' KL term; recipe ${r.name} has none`);
    this.sources = checkSources(r.name, model, opts.sources ?? [], config.sources);
    this.eps = checkEpsSpec(config.eps ?? PAPER_EPS);
    this.delay = config.delay ?? 0;
    if (!Number.isInteger(this.delay) || this.delay < 0) throw new Error(`delay must be a non-negative integer, got ${this.delay}`);
    const s = config.labelSmoothing ?? 0;
    if (!(s >= 0 && s < 1)) throw new Error(`labelSmoothing must be in [0, 1), got ${s}`);
    this.group = opts.group;
    // Data-parallel: gradients summed in buckets while backward runs (overlap), unless turned off.
    const overlap = opts.overlap ?? process.env.ADVML_OVERLAP !== '0';
    this.reducer = overlap && this.group && this.group.worldSize > 1 ? this.group.gradientReducer?.(model.module.parameters()) ?? null : null;
    const seeds = streamSeeds(opts.seed ?? 0, this.group?.rank ?? 0, this.group?.worldSize ?? 1);
    this.epsGenerator = new Generator(seeds.eps);
    this.attackGenerator = new Generator(seeds.attack);
    this.dropoutGenerator = new Generator(seeds.dropout);
    // The model's dropout layers draw from the run's stream, not libtorch's unseeded global one.
    model.module.setDropoutGenerator(this.dropoutGenerator);
    this.schedule = opts.schedule;
    // Resolved here, once: every pass of the run (training, attack) uses the same concrete precision.
    this.precision = resolvePrecision(opts.precision ?? DEFAULT_TRAINING_PRECISION, model.device);
  }

  /**
   * Precision of the forward passes (training and attack): with bf16-autocast
   * the weights, gradients and optimizer state stay float32 and the loss is
   * computed in float32 (mixed precision). 'auto' given is resolved for the model's device.
   */
  readonly precision: ConcretePrecision;

  private readonly schedule?: Schedule;
  /** The data-parallel group, when training on several processes. */
  readonly group?: Collective;
  /** Sums the gradients during backward when overlapping (data-parallel, `overlap` on); null otherwise. */
  private readonly reducer: { prepare(loss?: Tensor): void; finish(): unknown } | null;

  private backward(loss: Tensor): void {
    this.reducer?.prepare(loss);
    loss.backward();
  }

  /**
   * Rank 0's buffers (batch-norm running statistics) to every rank, as
   * PyTorch's DistributedDataParallel broadcasts them. Without it each rank's
   * running statistics follow its own batches: the ranks would make their
   * adversarial examples (in inference mode) with different models, held-out
   * evaluation would mix them, and a resumed run (all ranks from rank 0's
   * checkpoint) would not continue the one that stopped. One broadcast per
   * dtype; synchronised batch norm makes it a no-op in effect.
   */
  private syncBuffers(group: Collective): void {
    const buffers = this.model.module.namedBuffers().map(([, b]) => b);
    if (buffers.length) group.broadcast(buffers, 0);
  }

  /** How many of a minibatch of m become adversarial at the current step. */
  adversarialCount(m: number): number {
    return this.step < this.delay ? 0 : Math.min(this.config.k, m);
  }

  /**
   * Draws the model that makes this batch's adversarial examples: null for
   * the current one. Ensemble training draws uniformly from the sources and
   * the current model, from the attack stream; the other recipes draw nothing.
   */
  chooseSource(): SourceModel | null {
    if (this.sources.length === 0) return null;
    const i = scope(() => randint(0, this.sources.length + 1, [1], { generator: this.attackGenerator }).item());
    return this.sources[i] ?? null;
  }

  /** Makes the adversarial part of a batch from `source` (the current weights when null), in inference mode, detached. */
  makeAdversarial(x: Tensor, y: Tensor, source: SourceModel | null = null): Tensor {
    const eps = sampleEps(this.eps, x.shape[0] as number, this.epsGenerator);
    const c = this.config;
    if (this.method === null) {
      return tradesAdversarial(this.model, x, { eps, steps: c.attackSteps, stepSize: c.attackStepSize, generator: this.attackGenerator, precision: this.precision });
    }
    const spec = attackSpec(this.method);
    const opts = declaredOptions(spec, { eps, y, label: c.label, generator: this.attackGenerator, steps: c.attackSteps, stepSize: c.attackStepSize, randomStart: c.randomStart, precision: this.precision });
    if (!source) return spec.run(this.model, x, opts);
    // A source may take another range: the batch goes to it in its units and comes back in ours.
    return scope(() => {
      const theirs = source.model.fromData(x, this.model.inputRange, 'the training batch');
      const adv = spec.run(source.model, theirs, opts);
      return this.model.fromData(adv, source.model.inputRange, `source ${source.name}'s adversarial examples`);
    });
  }

  /**
   * One step of Algorithm 1 on the minibatch (x, y). With a group, (x, y) is
   * this rank's part of the global minibatch: the loss is normalised by the
   * global (M - K) + lambda K (every rank holds m examples, k adversarial),
   * gradients are summed across ranks before the optimizer step, the
   * reported figures are global, and after the step every rank takes rank 0's
   * buffers (see {@link syncBuffers}).
   */
  trainStep(x: Tensor, y: Tensor): StepStats {
    const m = x.shape[0] as number;
    const k = this.adversarialCount(m);
    const world = this.group?.worldSize ?? 1;
    if (this.schedule) this.optimizer.lr = this.schedule(this.step);
    const local = scope(() => {
      const source = k > 0 ? this.chooseSource() : null;
      const adv = k > 0 ? this.makeAdversarial(x.narrow(0, 0, k), y.narrow(0, 0, k), source) : null;
      this.model.module.train();
      const forward = (b: Tensor): Tensor => lossPrecision(withPrecision(this.precision, () => this.model.logits(b), b.device));
      const smoothing = this.config.labelSmoothing ?? 0;
      let loss: Tensor;
      let cleanCorrect: number;
      let advCorrect = 0;
      let advLoss = 0;
      if (this.recipe === 'trades') {
        // Every example clean, the first k also adversarial; each batch through the model on its own, as TRADES does.
        const clean = forward(x);
        const advLogits = adv ? forward(adv) : null;
        const t = tradesLoss(clean, advLogits, y, this.beta, smoothing);
        loss = t.loss.div(world);
        this.backward(loss);
        cleanCorrect = noGrad(() => clean.argmax(1).eq(y).sum().item());
        if (advLogits && t.kl) {
          advCorrect = noGrad(() => advLogits.argmax(1).eq(y.narrow(0, 0, k)).sum().item());
          advLoss = t.kl.item() * k;
        }
      } else {
        const batch = adv ? (k < m ? cat([adv, x.narrow(0, k, m - k)]) : adv) : x;
        const logits = forward(batch);
        const perExample = crossEntropy(logits, y, { reduction: 'none', labelSmoothing: smoothing });
        // mixedLoss normalises by this rank's (m - k) + lambda k; the global denominator is world times that.
        loss = mixedLoss(perExample, k, this.lambda).div(world);
        this.backward(loss);
        const correct = noGrad(() => logits.argmax(1).eq(y).to('float32'));
        cleanCorrect = k < m ? correct.narrow(0, k, m - k).sum().item() : 0;
        if (k > 0) {
          advCorrect = correct.narrow(0, 0, k).sum().item();
          advLoss = noGrad(() => perExample.narrow(0, 0, k).sum().item());
        }
      }
      return { loss: loss.item(), cleanCorrect, advCorrect, advLoss, source: source?.name ?? (k > 0 && this.sources.length ? 'current' : null) };
    });
    let { loss, cleanCorrect, advCorrect, advLoss } = local;
    if (this.group && world > 1) {
      if (this.reducer) this.reducer.finish();
      else {
        const grads = this.model.module.parameters().map((p) => p.grad).filter((g): g is Tensor => g !== null);
        this.group.allReduce(grads, 'sum');
        for (const g of grads) g.dispose();
      }
      [loss, cleanCorrect, advCorrect, advLoss] = this.group.allReduceNumbers([loss, cleanCorrect, advCorrect, advLoss], 'sum') as [number, number, number, number];
    }
    this.optimizer.step();
    this.optimizer.zeroGrad();
    if (this.group && world > 1) this.syncBuffers(this.group);
    const lr = this.optimizer.lr;
    this.step++;
    const cleanCount = this.recipe === 'trades' ? m : m - k;
    return {
      step: this.step,
      loss,
      cleanAccuracy: cleanCount > 0 ? cleanCorrect / (cleanCount * world) : null,
      adversarialAccuracy: k > 0 ? advCorrect / (k * world) : null,
      adversarialLoss: k > 0 ? advLoss / (k * world) : null,
      source: local.source,
      adversarialCount: k * world,
      lr,
    };
  }
}

/** Checks the sources against the recipe and the model: ensemble training needs at least one, the others none. */
function checkSources(name: RecipeName, model: Classifier, sources: readonly SourceModel[], names: readonly string[] | undefined): readonly SourceModel[] {
  if (name !== 'ensemble') {
    if (sources.length || names?.length) throw new Error(`source models are for ensemble adversarial training; recipe ${name} makes its adversarial examples from the current model`);
    return [];
  }
  if (sources.length === 0) throw new Error('ensemble adversarial training needs at least one static source model');
  if (names && names.join('\n') !== sources.map((s) => s.name).join('\n')) throw new Error(`the config names the sources ${names.join(', ')}, but the trainer was given ${sources.map((s) => s.name).join(', ')}`);
  for (const s of sources) {
    const a = model.inputShape.join('x');
    const b = s.model.inputShape.join('x');
    if (a !== b || s.model.classes !== model.classes) {
      throw new Error(`source ${s.name} takes ${b} images and has ${s.model.classes} classes; the model trained takes ${a} and has ${model.classes}`);
    }
    // Sources stay in inference mode and are never updated: their parameters are not the optimizer's.
    s.model.module.eval();
  }
  return sources;
}
