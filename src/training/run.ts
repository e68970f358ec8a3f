/**
 * A whole training run around the trainer: epochs of batches from a loader,
 * learning-rate schedule, held-out evaluation every N steps, checkpoints every
 * N steps and at the end, a stop request (SIGINT/SIGTERM in the CLI) that
 * writes a checkpoint before returning, and exact resumption: the data order
 * comes from seed + epoch, and the checkpoint holds the weights, the optimizer
 * state, the generators and the position in the epoch, so a resumed run
 * reaches the same weights as one that never stopped.
 */
import { copyFileSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { type ConcretePrecision, type Precision, isPrecision, resolvePrecision, tensor } from '../engine/index.js';
import type { Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { type Json, disposeCheckpoint, loadCheckpointSync, saveCheckpointSync, writeFileAtomicSync } from '../io/index.js';
import { type Classifier } from '../models/classifier.js';
import { type ModelSpec, specJson } from '../models/registry.js';
import { Adam, type Optimizer, RMSProp, SGD, type Schedule, constant, cyclic, exponentialDecay } from '../optim/index.js';
import { type AdversarialConfig, AdversarialTrainer, type Collective, type SourceModel, type StepStats } from './trainer.js';
import { type GuardConfig, type GuardVerdict, OverfitGuard } from './guard.js';

export type OptimizerName = 'sgd' | 'rmsprop' | 'rmsprop-tf' | 'adam';

export type ScheduleName = 'exponential' | 'cyclic';
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['exponential', 'cyclic'];

export interface OptimizerConfig {
  name: OptimizerName;
  /** The rate; with the cyclic schedule, its peak. */
  lr: number;
  /**
   * 'exponential' (default): lr, times `decay` every `decayEpochs` (constant without decay);
   * 'cyclic': fast AT's triangle, 0 up to lr at 2/5 of the run and back to 0 at its end.
   */
  schedule?: ScheduleName;
  momentum?: number;
  weightDecay?: number;
  /** Multiply the rate by this every `decayEpochs` epochs (the paper: 0.94 every 2). */
  decay?: number;
  decayEpochs?: number;
}

export interface TrainConfig {
  /** Minibatch size m. */
  batchSize: number;
  epochs: number;
  /** Stop after this many steps in all (default: epochs x batches per epoch). */
  maxSteps?: number;
  adversarial: AdversarialConfig;
  optimizer: OptimizerConfig;
  seed: number;
  /** Held-out evaluation every N steps (0: only at the end). */
  evalEvery?: number;
  /** Checkpoint every N steps (0: only at the end and on a stop request). */
  checkpointEvery?: number;
  /**
   * Precision of forward passes, mixed precision for bf16-autocast (default DEFAULT_TRAINING_PRECISION).
   * 'auto' is resolved once, when the run starts; checkpoints record what it resolved to.
   */
  precision?: Precision;
  /** The catastrophic-overfitting guard on the held-out evaluations (guard.ts); none when absent. */
  guard?: GuardConfig;
}

export type TrainEvent =
  | ({
      type: 'step';
      epoch: number;
      imagesPerSec: number;
      totalSteps: number;
      /** Milliseconds the loop waited for this step's batch (blocked in the loader's next()). */
      dataWaitMs: number;
      /** That wait as a fraction (0-1) of the step: wait / (wait + the step's own work); near 1 means the data cannot keep up. */
      dataWait: number;
    } & StepStats)
  | ({ type: 'eval'; step: number } & HeldOut)
  | ({ type: 'guard'; action: GuardConfig['action'] } & GuardVerdict)
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'epoch'; epoch: number; skipped: number; seconds: number }
  | { type: 'resume'; step: number; epoch: number; batch: number };

/** Held-out accuracy, clean and under the caller's attack. */
export interface HeldOut {
  clean: number;
  adversarial: number;
  /** What `adversarial` measures, e.g. 'step-ll at eps 8 on 1000 test images'. */
  what: string;
}

export interface RunOptions {
  /** The model to train; its `spec` is what the checkpoints record. */
  model: Classifier;
  train: Dataset;
  /**
   * Measures held-out accuracy (the CLI passes the evaluation grid); called every evalEvery steps and at the end.
   * In data-parallel training it is called on every rank with the group, to shard the images over it
   * (`evaluate(model, data, { group })`), and must return the same result on every rank.
   */
  heldOut?: (model: Classifier, group?: Collective) => Promise<HeldOut>;
  config: TrainConfig;
  /** Checkpoint file (written atomically). */
  checkpoint: string;
  /** Continue from `checkpoint` if it exists. */
  resume?: boolean;
  onEvent?: (e: TrainEvent) => void;
  /** When aborted, the run writes a checkpoint after the current step and returns. */
  signal?: AbortSignal;
  /**
   * Data-parallel training over a process group: rank 0's weights are
   * broadcast at the start, each rank reads its own shard of every epoch,
   * gradients are summed before each step, every rank takes rank 0's buffers
   * after it, rank 0 writes the checkpoints (with every rank's generator
   * states), held-out evaluation is sharded, and a stop request on any rank stops all.
   */
  group?: Collective;
  /** Ensemble adversarial training: the static source models, named as in `config.adversarial.sources`. */
  sources?: readonly SourceModel[];
}

export interface RunResult {
  steps: number;
  /** Stopped by the signal or by the guard. */
  stopped: boolean;
  finalEval: HeldOut | null;
  /** The guard's verdict when it stopped the run (or rolled it back). */
  collapse: GuardVerdict | null;
  /**
   * Seconds spent training, over every run that wrote the checkpoint (a resumed run adds its own to what the
   * checkpoint recorded), held-out evaluations excluded.
   */
  trainSeconds: number;
  /** The guard's collapses over every run that wrote the checkpoint; null without a guard. */
  collapses: readonly GuardVerdict[] | null;
}

/**
 * Where the training time so far is kept, beside the checkpoint: outside it, so that two runs with the same seed
 * still write byte-identical checkpoints.
 */
export function trainTimePath(checkpoint: string): string {
  return checkpoint.replace(/(\.safetensors)?$/, '.time.json');
}

/** The training seconds a time file records, or 0 when there is none or it cannot be read (the time is then counted from here). */
function readTrainSeconds(checkpoint: string): number {
  try {
    const v = (JSON.parse(readFileSync(trainTimePath(checkpoint), 'utf8')) as { trainSeconds?: unknown }).trainSeconds;
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
  } catch {
    return 0;
  }
}

/** Where the guard keeps the last weights before a collapse, beside the checkpoint. */
export function goodCheckpointPath(checkpoint: string): string {
  return checkpoint.replace(/(\.safetensors)?$/, '.good.safetensors');
}

function makeOptimizer(c: OptimizerConfig, params: ReturnType<Classifier['module']['parameters']>): Optimizer {
  switch (c.name) {
    case 'sgd':
      return new SGD(params, c.lr, { momentum: c.momentum ?? 0.9, weightDecay: c.weightDecay });
    case 'rmsprop':
      return new RMSProp(params, c.lr, { momentum: c.momentum, weightDecay: c.weightDecay });
    case 'rmsprop-tf':
      return new RMSProp(params, c.lr, { variant: 'tensorflow', momentum: c.momentum, weightDecay: c.weightDecay });
    case 'adam':
      return new Adam(params, c.lr, { weightDecay: c.weightDecay });
    default:
      throw new Error(`unknown optimizer '${String(c.name)}': expected sgd, rmsprop, rmsprop-tf or adam`);
  }
}

function makeSchedule(c: OptimizerConfig, stepsPerEpoch: number, totalSteps: number): Schedule {
  const name = c.schedule ?? 'exponential';
  if (!SCHEDULE_NAMES.includes(name)) throw new Error(`unknown learning-rate schedule '${String(name)}': expected ${SCHEDULE_NAMES.join(' or ')}`);
  if (name === 'cyclic') return cyclic({ peak: c.lr, totalSteps });
  if (c.decay === undefined || c.decay === 1) return constant(c.lr);
  return exponentialDecay({ initial: c.lr, rate: c.decay, decaySteps: (c.decayEpochs ?? 1) * stepsPerEpoch });
}

/**
 * The parts of the config a resumed run must share with the original, with the precision the run resolved and
 * the size of its training set (the data order, epoch boundaries and schedule follow from it).
 */
function fingerprint(c: TrainConfig, precision: ConcretePrecision, totalSteps: number, trainExamples: number): string {
  // The cyclic schedule's rates depend on the run's length, so a resumed run must keep it.
  const cycle = c.optimizer.schedule === 'cyclic' ? { cycleSteps: totalSteps } : {};
  return JSON.stringify({ batchSize: c.batchSize, adversarial: c.adversarial, optimizer: c.optimizer, seed: c.seed, precision, trainExamples, ...cycle });
}

type JsonRecord = { [k: string]: Json };
const isRecord = (v: unknown): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A checkpoint's fingerprint in today's terms, or null when it holds none. Older checkpoints differ in
 * ways that do not change the run: k was called `adversarial.adversarial`; the precision was left out
 * (such a run trained at `unrecorded`, fp32, the default then, unless its config named one); and the
 * training set's size was left out, which no check can recover: `trainExamples` then stands in for it.
 */
export function readFingerprint(text: string | undefined, unrecorded: ConcretePrecision = 'fp32', trainExamples?: number): JsonRecord | null {
  let f: unknown;
  try {
    f = JSON.parse(text ?? '');
  } catch {
    return null;
  }
  if (!isRecord(f)) return null;
  const a = f.adversarial;
  if (isRecord(a) && 'adversarial' in a && !('k' in a)) {
    const { adversarial: k, ...rest } = a;
    f.adversarial = { ...rest, k: k as Json };
  }
  return { precision: unrecorded, ...(trainExamples === undefined ? {} : { trainExamples }), ...f };
}

/** Where two JSON values differ, one 'path: before then, now now' per leaf; the order of keys does not matter. */
function differences(before: unknown, now: unknown, path: string): string[] {
  if (isRecord(before) && isRecord(now)) {
    return [...new Set([...Object.keys(before), ...Object.keys(now)])].flatMap((k) => differences(before[k], now[k], path ? `${path}.${k}` : k));
  }
  const show = (v: unknown): string => (v === undefined ? 'unset' : JSON.stringify(v));
  return show(before) === show(now) ? [] : [`${path}: ${show(before)} then, ${show(now)} now`];
}

/** Trains; see the module comment. */
export async function runTraining(o: RunOptions): Promise<RunResult> {
  const c = o.config;
  const spec = o.model.spec;
  if (!spec) throw new Error('runTraining: the model carries no spec for its checkpoints to record (build it with buildClassifier or loadForeign, or set model.spec)');
  const emit = o.onEvent ?? (() => {});
  const group = o.group && o.group.worldSize > 1 ? o.group : undefined;
  const rank = group?.rank ?? 0;
  const loader = new DataLoader(o.train, c.batchSize, { seed: c.seed, shuffle: true, rank, worldSize: group?.worldSize ?? 1 });
  const optimizer = makeOptimizer(c.optimizer, o.model.module.parameters());
  const totalSteps = Math.min(c.maxSteps ?? Infinity, c.epochs * loader.batchesPerEpoch);
  const schedule = makeSchedule(c.optimizer, loader.batchesPerEpoch, totalSteps);
  // The trainer resolves the precision ('auto') once; the run's fingerprint and checkpoints record that.
  const trainer = new AdversarialTrainer(o.model, optimizer, c.adversarial, { seed: c.seed, schedule, group, precision: c.precision, sources: o.sources });
  const settings = fingerprint(c, trainer.precision, totalSteps, o.train.length);
  const guard = c.guard ? new OverfitGuard(c.guard) : null;
  if (guard && !o.heldOut) throw new Error('the overfitting guard reads the held-out evaluation: give the run one (evalEvery sets how often)');
  let epoch = 0;
  let skipBatches = 0;
  // Every random stream of the run, saved in checkpoints under these names. libtorch's global
  // generator is not among them: nothing in training draws from it.
  const streams = { eps: trainer.epsGenerator, attack: trainer.attackGenerator, dropout: trainer.dropoutGenerator };

  // Training time: what the checkpoint recorded, plus this run's wall time less its held-out evaluations.
  let secondsBefore = 0;
  let evalMs = 0;
  const runStart = performance.now();
  const trainSeconds = (): number => secondsBefore + (performance.now() - runStart - evalMs) / 1000;

  if (o.resume && existsSync(o.checkpoint)) {
    const saved = loadCheckpointSync(o.checkpoint);
    try {
      // A checkpoint from before precision was fingerprinted holds the config's own precision, if one was given.
      const named = saved.config?.precision;
      const unrecorded = isPrecision(named) ? resolvePrecision(named, o.model.device) : 'fp32';
      const before = readFingerprint(saved.config?.fingerprint as string | undefined, unrecorded, o.train.length);
      if (!before) throw new Error(`checkpoint ${o.checkpoint}: it records no training settings, so it cannot be resumed; start a new run (or use it as --init)`);
      const changed = differences(before, JSON.parse(settings), '');
      if (changed.length) {
        throw new Error(`checkpoint ${o.checkpoint}: it was written by a run with other settings (${changed.join('; ')}); resume with the same options or start a new run`);
      }
      o.model.module.loadStateDict(saved.weights);
      if (saved.optimizer) optimizer.loadStateDict(saved.optimizer);
      const rng = saved.rng ?? {};
      // Single-process checkpoints name the streams 'eps', data-parallel ones 'eps.<rank>'. A checkpoint
      // from before dropout had its own stream has none: dropout then starts from the seed's stream.
      for (const [name, g] of Object.entries(streams)) {
        const state = rng[`${name}.${rank}`] ?? rng[name];
        if (state) g.setState(state);
      }
      guard?.restore(saved.config?.guard);
      secondsBefore = readTrainSeconds(o.checkpoint);
      trainer.step = saved.step ?? 0;
      epoch = saved.epoch ?? 0;
      skipBatches = trainer.step - epoch * loader.batchesPerEpoch;
      emit({ type: 'resume', step: trainer.step, epoch, batch: skipBatches });
    } finally {
      disposeCheckpoint(saved);
    }
  }

  // Every rank starts from rank 0's weights and buffers.
  if (group) group.broadcast([...o.model.module.stateDict().values()], 0);

  /** Generator states of every rank (gathered to all; rank 0 writes them). */
  const generatorStates = (): Record<string, Uint8Array> => {
    const own = Object.fromEntries(Object.entries(streams).map(([name, g]) => [name, g.getState()]));
    if (!group) return own;
    const out: Record<string, Uint8Array> = {};
    for (const [name, state] of Object.entries(own)) {
      const t = tensor(state, { dtype: 'uint8' });
      const all = group.allGather(t);
      all.forEach((g, r) => {
        out[`${name}.${r}`] = g.dataSync() as Uint8Array;
        g.dispose();
      });
      t.dispose();
    }
    return out;
  };

  /** The training time the last checkpoint recorded: the run's result, so a resume starts from what it reports. */
  let savedSeconds = 0;
  const save = (path = o.checkpoint): void => {
    const states = generatorStates();
    savedSeconds = trainSeconds();
    if (rank !== 0) return;
    saveCheckpointSync(path, {
      model: specJson(spec),
      weights: o.model.module.stateDict(),
      optimizer: optimizer.stateDict(),
      rng: states,
      step: trainer.step,
      epoch: Math.floor(trainer.step / loader.batchesPerEpoch),
      config: {
        fingerprint: settings, ...(JSON.parse(JSON.stringify(c)) as JsonRecord), precision: trainer.precision,
        ...(guard ? { guard: guard.state() } : {}),
      },
    });
    if (path === o.checkpoint) writeFileAtomicSync(trainTimePath(path), JSON.stringify({ step: trainer.step, trainSeconds: savedSeconds }) + '\n');
    emit({ type: 'checkpoint', step: trainer.step, path });
  };

  let collapse: GuardVerdict | null = null;
  let lastEval: { step: number; result: HeldOut } | null = null;
  const heldOut = async (): Promise<HeldOut | null> => {
    if (!o.heldOut) return null;
    // The final evaluation of a run whose last step was just evaluated is that one.
    if (lastEval?.step === trainer.step) return lastEval.result;
    const t0 = performance.now();
    const r = await o.heldOut(o.model, group);
    evalMs += performance.now() - t0;
    lastEval = { step: trainer.step, result: r };
    emit({ type: 'eval', step: trainer.step, ...r });
    if (guard) {
      const v = guard.check(trainer.step, r.adversarial);
      emit({ type: 'guard', action: guard.action, ...v });
      if (!v.collapsed && guard.action === 'rollback') save(goodCheckpointPath(o.checkpoint));
      if (v.collapsed && guard.action !== 'report') collapse = v;
    }
    return r;
  };

  /** The run ends on the last good weights: they become the checkpoint and the model's. */
  const rollBack = (): void => {
    const good = goodCheckpointPath(o.checkpoint);
    if (!existsSync(good)) throw new Error(`the guard found a collapse at step ${trainer.step} before any good evaluation: nothing to roll back to`);
    if (rank === 0) {
      // A copy, then a rename: the checkpoint is never half written.
      copyFileSync(good, `${o.checkpoint}.rollback`);
      renameSync(`${o.checkpoint}.rollback`, o.checkpoint);
    }
    const saved = loadCheckpointSync(good);
    try {
      o.model.module.loadStateDict(saved.weights);
    } finally {
      disposeCheckpoint(saved);
    }
  };

  let stopped = false;
  try {
    outer: for (; epoch < c.epochs && trainer.step < totalSteps; epoch++) {
      const run = loader.epoch(epoch, { startBatch: skipBatches });
      let windowStart = performance.now();
      let windowImages = 0;
      // Set again at the end of each step: the gap up to the next body is the time spent in the loader's next().
      let waitFrom = performance.now();
      for await (const batch of run) {
        const bodyStart = performance.now();
        const dataWaitMs = bodyStart - waitFrom;
        if (batch.indices.length === 0) {
          // Every file of the batch was unreadable: alone, skip it; a data-parallel group must stay in step.
          batch.images.dispose();
          batch.labels.dispose();
          if (group) throw new Error(`rank ${rank}: a training batch holds no readable image (${batch.skipped.length} skipped); data-parallel training cannot skip a step on one rank`);
          continue;
        }
        try {
          const x = o.model.fromData(batch.images, o.train.range, 'the training data');
          let stats: StepStats;
          try {
            stats = trainer.trainStep(x, batch.labels);
          } finally {
            x.dispose();
          }
          windowImages += batch.labels.shape[0] as number;
          const now = performance.now();
          const dataWait = dataWaitMs / Math.max(dataWaitMs + (now - bodyStart), 1e-3);
          emit({ type: 'step', epoch, imagesPerSec: (windowImages * 1000) / Math.max(now - windowStart, 1e-3), totalSteps, dataWaitMs, dataWait, ...stats });
          if (now - windowStart > 5000) {
            windowStart = now;
            windowImages = 0;
          }
        } finally {
          batch.images.dispose();
          batch.labels.dispose();
        }
        // Let timers and signal handlers run: in-memory batches resolve as
        // microtasks, which alone would never yield to them.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (c.evalEvery && trainer.step % c.evalEvery === 0) await heldOut();
        if (collapse) break outer;
        if (c.checkpointEvery && trainer.step % c.checkpointEvery === 0) save();
        // A stop request on any rank stops every rank after the same step.
        const stop = group ? (group.allReduceNumbers([o.signal?.aborted ? 1 : 0], 'max')[0] as number) > 0 : o.signal?.aborted === true;
        if (stop) {
          stopped = true;
          break outer;
        }
        if (trainer.step >= totalSteps) break outer;
        waitFrom = performance.now();
      }
      skipBatches = 0;
      if (run.summary.skipped > 0 && run.summary.samples === 0) {
        throw new Error(`the training data holds no readable image (all ${run.summary.skipped} files of epoch ${epoch} were skipped)`);
      }
      emit({ type: 'epoch', epoch, skipped: run.summary.skipped, seconds: run.summary.seconds });
      // Without evalEvery the guard checks once per epoch.
      if (guard && !c.evalEvery && epoch + 1 < c.epochs && trainer.step < totalSteps) {
        await heldOut();
        if (collapse) break;
      }
    }
    save();
    const finalEval = stopped || collapse ? null : await heldOut();
    // Assigned inside heldOut(): TypeScript does not follow it there.
    const collapsed = collapse as GuardVerdict | null;
    if (collapsed && c.guard?.action === 'rollback') rollBack();
    return { steps: trainer.step, stopped: stopped || collapsed !== null, finalEval, collapse: collapsed, trainSeconds: savedSeconds, collapses: guard ? guard.collapses : null };
  } finally {
    optimizer.dispose();
  }
}
