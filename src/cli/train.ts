/**
 * `advml train`: adversarial training (the paper's Algorithm 1) from a preset
 * with any option overridden; progress on the terminal, JSON lines in the
 * output folder, checkpoints every N steps, SIGINT/SIGTERM write a checkpoint
 * and exit, `--resume` continues exactly.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import * as A from '../attacks/index.js';
import type { Dataset } from '../data/dataset.js';
import { openImageNet } from '../data/index.js';
import { evaluate } from '../evaluation/index.js';
import { type Classifier, MAX_HIDDEN, MAX_WIDTH, type PartialContract, buildClassifier, foreignFormatOf, loadClassifier, loadForeign, saveForeign, writeModelCard } from '../models/index.js';
import { makeDirectorySync, writeFileAtomicSync } from '../io/index.js';
import {
  type Collective, DEFAULT_GUARD_DROP, GUARD_ACTIONS, type GuardAction, type HeldOut, type OptimizerName, PRESETS, type Preset, RECIPES, RECIPE_NAMES, type RecipeName,
  SCHEDULE_NAMES, type ScheduleName, type SourceModel, type TrainEvent, parseEpsSpec, runTraining,
} from '../training/index.js';
import { type Command, UsageError, nonNegativeInt, numberOption, parseOptions, positiveInt } from './command.js';
import type { NumberSpec } from '../io/index.js';
import { CONTRACT_OPTIONS, loadDataset, loadModel, parseContract, parseLabelSource, parsePrecision } from './common.js';
import { printTable } from './eval.js';
import { progressBar } from './progress.js';
import { initProcessGroup, syncBatchNorm } from '../distributed/index.js';

export const train: Command = {
  name: 'train',
  help: `Usage: advml train --out DIR [--preset NAME] [options]

Trains with the paper's Algorithm 1: in each minibatch of m examples, k are
replaced by adversarial examples made from the current model, and the loss is
(sum clean + lambda sum adversarial) / ((m - k) + lambda k).

Presets (--preset, default mnist):
${Object.values(PRESETS).map((p) => `  ${p.name.padEnd(15)} ${p.description}`).join('\n')}

Options (override the preset):
  --out DIR             where checkpoint.safetensors and train.jsonl go (required)
  --resume              continue from DIR/checkpoint.safetensors (same options)
  --init FILE           start from this model: a checkpoint ("delayed" training),
                        or your own .pt, .onnx or model.json (a TorchScript or
                        ONNX model is written back as DIR/model.pt or
                        DIR/model.onnx when done)
  --input-range, --mean, --std, --input-size, --class-names, --bgr
                        the input contract of a foreign --init model (see
                        'advml eval --help')
  --epochs N            passes over the training set
  --steps N             stop after N steps in all
  --batch M             minibatch size m (k keeps the preset's fraction k/m
                        unless --k or --adv-fraction is given)
  --recipe NAME         ${RECIPE_NAMES.join(', ')}
                        (default: the preset's; see docs/training.md):
${RECIPE_NAMES.map((r) => `                          ${r.padEnd(12)} ${RECIPES[r].summary}`).join('\n')}
  --sources FILE,...    ensemble: the static source models (checkpoints or any
                        model file advml loads), never updated
  --beta B              TRADES: weight of the KL term (default 6)
  --attack-steps N      steps of the training attack (default: its own)
  --attack-step S       its step size, pixel units (default: its own)
  --no-random-start     the training attack starts at the clean image
  --guard ACTION        the catastrophic-overfitting guard on the held-out
                        robust accuracy (every --eval-every steps, else every
                        epoch): report, stop, or rollback (end on the last
                        good weights); the held-out attack becomes pgd; a run
                        the guard ends exits with status 3
  --guard-drop F        a fall below the best held-out accuracy that counts as
                        a collapse (default ${DEFAULT_GUARD_DROP})
  --k N                 adversarial examples per minibatch (0: plain training)
  --adv-fraction F      k as a fraction of m (0.5: half)
  --lambda L            weight of adversarial examples in the loss
  --method NAME         attack used in training (default step-ll)
  --label SOURCE        its label source (true, predicted, leastLikely, random)
  --eps SPEC            eps per example, pixel units: a number, uniform:LO:HI,
                        truncnorm:MEAN:STD:LO:HI, or paper (truncnorm:0:8:0:16)
  --delay D             clean-only steps before adversarial examples
  --optimizer NAME      sgd, rmsprop, rmsprop-tf, adam
  --lr R                learning rate; --lr-decay F every --decay-epochs E
  --lr-schedule NAME    exponential (default: --lr, times --lr-decay every
                        --decay-epochs) or cyclic (fast AT's: 0 up to --lr at
                        2/5 of the run, back to 0 at its end)
  --momentum M, --weight-decay W, --label-smoothing S
  --width RHO           width multiplier of the model, in (0, ${MAX_WIDTH}]
  --hidden N            MNIST CNN: units of its hidden dense layer, at most
                        ${MAX_HIDDEN} (default 128 x width; Madry et al.'s
                        MNIST CNN has 1024)
  --dropout P           dropout probability before the classifier (MNIST CNN:
                        default 0, none; Inception v3: default 0.5)
  --activation NAME     relu, relu6, tanh, reluDecay
  --seed N              seed of data order, init, eps, attacks and dropout
  --limit N             use the first N training images (mnist, fashion-mnist)
  --data-dir DIR        imagenet-paper, imagenet-resnet50: the folder holding
                        train/ and val/, one
                        sub-folder per class (default $ADVML_IMAGENET_DIR, else
                        /usr/share/datasets/imagenet); train/ is read with
                        random-resized crops and flips, val/ resized and
                        centre-cropped
  --image-size N        image-folder presets: train at NxN instead of the preset's
                        299 (Inception v3: at least 75) or 224
  --no-final-eval       skip the closing evaluation of the image-folder presets
                        (top-1 and top-5 with intervals under FGSM, step l.l.,
                        basic iter. and iter. l.l. at eps 2, 4, 8, 16 on
                        --eval-images val images, written to DIR/final-eval.json)
  --checkpoint-every N  steps between checkpoints (0: end and stop only)
  --eval-every N        steps between held-out evaluations (0: end only)
  --eval-images N       held-out test images (default 1000)
  --eval-method NAME    held-out attack (default: the preset's)
  --eval-eps E          held-out eps (default: a fixed training eps, else the
                        preset's middle value)
  --precision P         fp32 (default) or bf16-autocast (mixed precision: bfloat16
                        convolutions, float32 weights, optimizer state and loss),
                        or auto (bf16 where the CPU has bfloat16 instructions)
  --sync-bn             batch norm with global-batch statistics when data-parallel
                        (default: each process's own batch, as PyTorch)
  --json                JSON lines on stdout instead of a progress bar
  -h, --help            show this help

Data-parallel: run under 'advml launch --nproc-per-node N -- train ...'. Each
process takes its shard of every epoch with m examples per step (the global
minibatch is N x m, k adversarial on each), gradients are summed before every
step, rank 0 prints and writes the checkpoint, and --resume works for the group.`,
  async run(argv) {
    const { values: o } = parseOptions('train', argv, {
      out: { type: 'string' }, preset: { type: 'string', default: 'mnist' }, resume: { type: 'boolean' }, init: { type: 'string' },
      epochs: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, k: { type: 'string' }, 'adv-fraction': { type: 'string' },
      lambda: { type: 'string' }, method: { type: 'string' }, label: { type: 'string' }, eps: { type: 'string' }, delay: { type: 'string' },
      optimizer: { type: 'string' }, lr: { type: 'string' }, 'lr-schedule': { type: 'string' }, 'lr-decay': { type: 'string' }, 'decay-epochs': { type: 'string' },
      momentum: { type: 'string' }, 'weight-decay': { type: 'string' }, 'label-smoothing': { type: 'string' }, width: { type: 'string' }, hidden: { type: 'string' }, dropout: { type: 'string' },
      activation: { type: 'string' }, seed: { type: 'string' }, limit: { type: 'string' }, 'checkpoint-every': { type: 'string' },
      'eval-every': { type: 'string' }, 'eval-images': { type: 'string' }, 'eval-method': { type: 'string' }, 'eval-eps': { type: 'string' },
      json: { type: 'boolean' }, precision: { type: 'string' },
      'sync-bn': { type: 'boolean' }, recipe: { type: 'string' }, sources: { type: 'string' }, beta: { type: 'string' },
      'attack-steps': { type: 'string' }, 'attack-step': { type: 'string' }, 'no-random-start': { type: 'boolean' },
      guard: { type: 'string' }, 'guard-drop': { type: 'string' },
      'data-dir': { type: 'string' }, 'image-size': { type: 'string' }, 'no-final-eval': { type: 'boolean' },
      ...CONTRACT_OPTIONS,
    });
    if (!o.out) throw new UsageError("advml train: --out is required (a folder for the checkpoint and the log)");
    const preset = PRESETS[o.preset];
    if (!preset) throw new UsageError(`advml train: unknown preset '${o.preset}' (known: ${Object.keys(PRESETS).join(', ')})`);
    const p: Preset = JSON.parse(JSON.stringify(preset)) as Preset;
    const c = p.config;
    const num = (name: string, v: string | undefined, spec: NumberSpec): number | undefined => (v === undefined ? undefined : numberOption('train', name, v, spec));
    const pos: NumberSpec = { greaterThan: 0 };
    const nonneg: NumberSpec = { min: 0 };
    c.epochs = positiveInt('train', 'epochs', o.epochs, c.epochs);
    if (o.steps !== undefined) c.maxSteps = positiveInt('train', 'steps', o.steps, 1);
    // k keeps the preset's fraction of m when only --batch changes (the paper's k = m / 2 stays half).
    const presetFraction = c.adversarial.k / c.batchSize;
    c.batchSize = positiveInt('train', 'batch', o.batch, c.batchSize);
    if (o.k !== undefined && o['adv-fraction'] !== undefined) throw new UsageError('advml train: give --k or --adv-fraction, not both');
    const fraction = num('adv-fraction', o['adv-fraction'], { min: 0, max: 1 }) ?? presetFraction;
    c.adversarial.k = o.k !== undefined ? nonNegativeInt('train', 'k', o.k, 0) : Math.round(fraction * c.batchSize);
    if (c.adversarial.k > c.batchSize) throw new UsageError(`advml train: --k (${c.adversarial.k}) cannot exceed the batch size (${c.batchSize})`);
    c.adversarial.lambda = num('lambda', o.lambda, nonneg) ?? c.adversarial.lambda;
    if (o.method !== undefined) {
      if (!(A.METHOD_NAMES as readonly string[]).includes(o.method)) throw new UsageError(`advml train: unknown method '${o.method}' (known: ${A.METHOD_NAMES.join(', ')})`);
      c.adversarial.method = o.method as A.MethodName;
    }
    c.adversarial.label = parseLabelSource(o.label, 'train') ?? c.adversarial.label;
    if (o.eps !== undefined) {
      try {
        c.adversarial.eps = parseEpsSpec(o.eps);
      } catch (e) {
        throw new UsageError(`advml train: --eps: ${(e as Error).message}`);
      }
    }
    if (o.recipe !== undefined) {
      if (!(RECIPE_NAMES as readonly string[]).includes(o.recipe)) throw new UsageError(`advml train: unknown recipe '${o.recipe}' (known: ${RECIPE_NAMES.join(', ')})`);
      if (o.recipe !== (c.adversarial.recipe ?? 'algorithm-1')) {
        // Another recipe than the preset's: its own attack and lambda unless given.
        c.adversarial.recipe = o.recipe as RecipeName;
        if (o.method === undefined) delete c.adversarial.method;
        if (o.lambda === undefined) delete c.adversarial.lambda;
        delete c.adversarial.beta;
      }
      if (o.recipe === 'trades') delete c.adversarial.method;
    }
    if (c.adversarial.recipe === 'trades' && o.method !== undefined) throw new UsageError('advml train: TRADES finds its adversarial examples by maximising the KL; it takes no --method');
    if (o.beta !== undefined) {
      if (c.adversarial.recipe !== 'trades') throw new UsageError('advml train: --beta weighs TRADES\' KL term; give --recipe trades');
      c.adversarial.beta = num('beta', o.beta, nonneg);
    }
    const sources = o.sources === undefined ? [] : o.sources.split(',').filter((f) => f !== '');
    if (sources.length && c.adversarial.recipe !== 'ensemble') throw new UsageError('advml train: --sources are for ensemble adversarial training; give --recipe ensemble');
    if (c.adversarial.recipe === 'ensemble' && !sources.length) throw new UsageError('advml train: ensemble adversarial training needs --sources FILE,... (static pre-trained models)');
    if (sources.length) c.adversarial.sources = sources;
    if (o['attack-steps'] !== undefined) c.adversarial.attackSteps = positiveInt('train', 'attack-steps', o['attack-steps'], 1);
    c.adversarial.attackStepSize = num('attack-step', o['attack-step'], { greaterThan: 0, max: A.MAX_EPS, unit: 'pixel values' }) ?? c.adversarial.attackStepSize;
    if (o['no-random-start']) c.adversarial.randomStart = false;
    if (o.guard !== undefined) {
      if (!GUARD_ACTIONS.includes(o.guard as GuardAction)) throw new UsageError(`advml train: --guard must be one of ${GUARD_ACTIONS.join(', ')}, got '${o.guard}'`);
      c.guard = { ...c.guard, action: o.guard as GuardAction };
    }
    if (o['guard-drop'] !== undefined) {
      if (!c.guard) throw new UsageError('advml train: --guard-drop needs the guard (--guard ACTION)');
      c.guard.drop = num('guard-drop', o['guard-drop'], { greaterThan: 0, max: 1 });
    }
    c.adversarial.delay = nonNegativeInt('train', 'delay', o.delay, c.adversarial.delay ?? 0);
    c.adversarial.labelSmoothing = num('label-smoothing', o['label-smoothing'], { min: 0, lessThan: 1 }) ?? c.adversarial.labelSmoothing;
    if (o.optimizer !== undefined) {
      if (!['sgd', 'rmsprop', 'rmsprop-tf', 'adam'].includes(o.optimizer)) throw new UsageError(`advml train: --optimizer must be sgd, rmsprop, rmsprop-tf or adam`);
      c.optimizer.name = o.optimizer as OptimizerName;
    }
    c.optimizer.lr = num('lr', o.lr, pos) ?? c.optimizer.lr;
    if (o['lr-schedule'] !== undefined) {
      if (!SCHEDULE_NAMES.includes(o['lr-schedule'] as ScheduleName)) throw new UsageError(`advml train: --lr-schedule must be one of ${SCHEDULE_NAMES.join(', ')}, got '${o['lr-schedule']}'`);
      c.optimizer.schedule = o['lr-schedule'] as ScheduleName;
    }
    c.optimizer.decay = num('lr-decay', o['lr-decay'], { greaterThan: 0, max: 1 }) ?? c.optimizer.decay;
    c.optimizer.decayEpochs = num('decay-epochs', o['decay-epochs'], pos) ?? c.optimizer.decayEpochs;
    c.optimizer.momentum = num('momentum', o.momentum, { min: 0, max: 1 }) ?? c.optimizer.momentum;
    c.optimizer.weightDecay = num('weight-decay', o['weight-decay'], nonneg) ?? c.optimizer.weightDecay;
    p.spec.options.width = num('width', o.width, { greaterThan: 0, max: MAX_WIDTH }) ?? p.spec.options.width;
    if (o.hidden !== undefined) {
      if (p.spec.architecture !== 'mnist-cnn') throw new UsageError(`advml train: --hidden is for the MNIST CNN; preset ${o.preset} trains ${p.spec.architecture}`);
      p.spec.options.hidden = num('hidden', o.hidden, { integer: true, min: 1, max: MAX_HIDDEN });
    }
    p.spec.options.dropout = num('dropout', o.dropout, { min: 0, lessThan: 1 }) ?? p.spec.options.dropout;
    if (o.activation !== undefined) {
      if (!['relu', 'relu6', 'tanh', 'reluDecay'].includes(o.activation)) throw new UsageError('advml train: --activation must be relu, relu6, tanh or reluDecay');
      p.spec.options.activation = o.activation as 'relu';
    }
    c.seed = nonNegativeInt('train', 'seed', o.seed, c.seed);
    if (o.precision !== undefined) c.precision = parsePrecision(o.precision, 'train');
    p.spec.options.seed = c.seed;
    c.checkpointEvery = nonNegativeInt('train', 'checkpoint-every', o['checkpoint-every'], c.checkpointEvery ?? 0);
    c.evalEvery = nonNegativeInt('train', 'eval-every', o['eval-every'], c.evalEvery ?? 0);
    const evalImages = positiveInt('train', 'eval-images', o['eval-images'], 1000);
    // The guard reads robust accuracy under a multi-step attack.
    const evalMethod = (o['eval-method'] ?? (c.guard ? 'pgd' : p.evalMethod)) as A.MethodName;
    if (!A.METHOD_NAMES.includes(evalMethod)) throw new UsageError(`advml train: unknown --eval-method '${evalMethod}'`);
    // A fixed training eps is the held-out eps unless one is given.
    const trainingEps = c.adversarial.eps?.kind === 'fixed' ? c.adversarial.eps.value : undefined;
    const evalEps = num('eval-eps', o['eval-eps'], { min: 0, max: A.MAX_EPS, unit: 'pixel values' }) ?? trainingEps ?? (p.evalEps[2] as number);
    const limit = o.limit === undefined ? undefined : positiveInt('train', 'limit', o.limit, 1);
    if (p.data === 'imagenet') {
      if (limit !== undefined) throw new UsageError('advml train: --limit takes the first N images of mnist or fashion-mnist; an image folder is used whole (make a smaller folder)');
      if (o['image-size'] !== undefined) {
        const size = positiveInt('train', 'image-size', o['image-size'], 1);
        p.spec.classifier.inputShape = [p.spec.classifier.inputShape[0], size, size];
      }
    } else if (o['data-dir'] !== undefined || o['image-size'] !== undefined) {
      throw new UsageError(`advml train: --data-dir and --image-size are for the image-folder presets (${Object.values(PRESETS).filter((x) => x.data === 'imagenet').map((x) => x.name).join(', ')}), not ${p.name}`);
    }
    const finalMethods = o['no-final-eval'] ? [] : (p.finalMethods ?? []);

    makeDirectorySync(o.out);
    const checkpoint = join(o.out, 'checkpoint.safetensors');
    // Under advml launch (WORLD_SIZE > 1) this process joins the group; alone it is a group of one.
    const group = initProcessGroup();
    const lead = group.rank === 0;
    const { train: trainData, test } = await openData(p, limit, o['data-dir']);
    const model = initialModel(p, o.init, parseContract(o, 'train'));
    const sourceModels: SourceModel[] = [];
    for (const f of sources) sourceModels.push({ name: f, model: await loadModel(f, 'train') });
    if (o['sync-bn']) syncBatchNorm(model.module, group);
    const logFile = join(o.out, 'train.jsonl');
    const bar = o.json || !lead ? null : progressBar('train');
    /** The latest held-out figures and the guard's state, shown on the bar. */
    const held: Record<string, number | string> = {};
    const onEvent = (e: TrainEvent): void => {
      if (!lead) return;
      appendFileSync(logFile, JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');
      if (o.json) console.log(JSON.stringify(e));
      else if (e.type === 'step') {
        // Only the figures this step has: no clean part with k = m, no adversarial one before the delay ends.
        const figures = { 'adv loss': e.adversarialLoss, clean: e.cleanAccuracy, adv: e.adversarialAccuracy, source: e.source };
        bar!.update(e.step, e.totalSteps, {
          epoch: e.epoch, loss: e.loss, 'img/s': Math.round(e.imagesPerSec),
          ...Object.fromEntries(Object.entries(figures).filter((f): f is [string, number | string] => f[1] !== null)), ...held,
        });
      } else if (e.type === 'eval') {
        held['held-out adv'] = e.adversarial;
        console.error(`\nheld-out at step ${e.step}: clean ${(e.clean * 100).toFixed(1)}%, ${e.what}: ${(e.adversarial * 100).toFixed(1)}%`);
      } else if (e.type === 'guard') {
        held.guard = e.collapsed ? 'COLLAPSE' : 'ok';
        if (e.collapsed) console.error(`\noverfitting guard: held-out robust accuracy ${(e.robust * 100).toFixed(1)}% at step ${e.step}, more than ${((c.guard?.drop ?? DEFAULT_GUARD_DROP) * 100).toFixed(0)} points below the best, ${(e.best * 100).toFixed(1)}% at step ${e.bestStep}${e.action === 'report' ? '' : e.action === 'stop' ? '; stopping' : '; rolling back to the last good evaluation'}`);
      }
      else if (e.type === 'resume') console.error(`resuming at step ${e.step} (epoch ${e.epoch}, batch ${e.batch})`);
    };
    const heldOut = test
      ? async (m: Classifier, shards?: Collective): Promise<HeldOut> => {
          const n = Math.min(evalImages, test.length);
          const r = await evaluate(m, test, { methods: [evalMethod], eps: [evalEps], indices: Array.from({ length: n }, (_, i) => i), seed: c.seed, group: shards });
          return { clean: r.clean.top1.value, adversarial: r.cells[0]!.top1.value, what: `${evalMethod} at eps ${evalEps} on ${n} test images` };
        }
      : undefined;
    const abort = new AbortController();
    let signalName: NodeJS.Signals | null = null;
    const onSignal = (s: NodeJS.Signals): void => {
      if (signalName) process.exit(s === 'SIGINT' ? 130 : 143); // a second signal: stop now
      signalName = s;
      abort.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const r = await runTraining({ model, train: trainData, heldOut, config: c, checkpoint, resume: o.resume, onEvent, signal: abort.signal, group, sources: sourceModels });
      bar?.done();
      // A TorchScript or ONNX model goes back in its own format, with the trained weights.
      const handBack = lead ? saveForeign(model.module, o.out) : null;
      if (handBack) writeModelCard(handBack, model);
      if (r.collapse) {
        const rolled = c.guard?.action === 'rollback';
        console.error(`the overfitting guard ended the run at step ${r.steps}: ${rolled ? 'the checkpoint holds the weights of the last held-out evaluation before the collapse' : `checkpoint written to ${checkpoint}`}`);
        return 3;
      }
      if (r.stopped) {
        console.error(`stopped by ${signalName} at step ${r.steps}: checkpoint written to ${checkpoint}; continue with --resume`);
        return signalName === 'SIGINT' ? 130 : 143;
      }
      const fe = r.finalEval;
      if (lead) console.log(`trained ${r.steps} steps in ${r.trainSeconds.toFixed(0)} s; checkpoint ${checkpoint}${handBack ? `, trained model ${handBack}` : ''}` + (fe ? `; clean ${(fe.clean * 100).toFixed(1)}%, ${fe.what}: ${(fe.adversarial * 100).toFixed(1)}%` : ''));
      if (test && finalMethods.length) {
        // The recipe's own evaluation: top-1 and top-5 with intervals under the paper's attacks (every rank takes its shard).
        const n = Math.min(evalImages, test.length);
        const result = await evaluate(model, test, { methods: finalMethods, eps: p.evalEps, indices: Array.from({ length: n }, (_, i) => i), seed: c.seed, group });
        if (lead) {
          console.log(`\nevaluation on ${n} held-out images (${join(o.out, 'final-eval.json')}):`);
          printTable(result);
          writeFileAtomicSync(join(o.out, 'final-eval.json'), JSON.stringify(result, null, 2) + '\n');
        }
      }
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      group.destroy();
      model.dispose();
      for (const s of sourceModels) s.model.dispose();
      (trainData as Partial<{ dispose(): void }>).dispose?.();
      (test as Partial<{ dispose(): void }> | undefined)?.dispose?.();
    }
  },
};

async function openData(p: Preset, limit?: number, dir?: string): Promise<{ train: Dataset; test?: Dataset }> {
  if (p.data === 'imagenet') {
    // train/: random-resized crops with flips; val/: resize and centre crop (src/data/transforms.ts).
    const [size] = p.spec.classifier.inputShape.slice(1);
    const train = await openImageNet('train', { size, dir });
    const test = await openImageNet('val', { size, dir });
    if (train.classFolders.join('\n') !== test.classFolders.join('\n')) {
      throw new UsageError(`advml train: ${test.root} and ${train.root} must hold the same class folders (${test.classFolders.length} and ${train.classFolders.length} found)`);
    }
    // The model gets the folder's classes: 1000 for ImageNet, fewer for a folder of one's own.
    p.spec.classifier.classes = train.classNames.length;
    return { train, test };
  }
  return { train: loadDataset(p.data, 'train', limit), test: loadDataset(p.data, 'test') };
}

/** The model to train, carrying the spec its checkpoints record: the preset's, a checkpoint's, or a foreign model file's. */
function initialModel(p: Preset, init: string | undefined, contract: PartialContract): Classifier {
  if (!init) return buildClassifier(p.spec);
  const format = foreignFormatOf(init);
  if (!format && Object.keys(contract).length) throw new UsageError('advml train: --input-range, --mean, --std, --input-size and --class-names describe a foreign --init model (.pt, .onnx, model.json), not a checkpoint');
  const model = format ? loadForeign(init, format, contract) : loadClassifier(init);
  model.module.train();
  return model;
}
