/**
 * The advml side of the peer benchmark: the same models, batch and modes as
 * bench/peer.py, run through advml's own API (Classifier, attacks,
 * AdversarialTrainer) the way a user runs them: channels-last, intermediates
 * freed at their last use, the input gradient only for attacks, at the
 * precision given (the library's defaults unless the caller overrides them).
 */
import { type MemoryFormat, type Precision, type Tensor, Generator, noGrad, rand, randint, scope, withPrecision } from '../src/index.js';
import * as A from '../src/attacks/index.js';
import { Module } from '../src/nn/index.js';
import { Classifier, MnistCnn, ResNet } from '../src/models/index.js';
import { AdversarialTrainer } from '../src/training/index.js';
import { SGD } from '../src/optim/index.js';

export type BenchModel = 'mnist-cnn' | 'resnet20';
export type BenchMode = 'forward' | 'fgsm' | 'eval-fgsm' | 'train' | 'adv-train';
export const BENCH_MODES: readonly BenchMode[] = ['forward', 'fgsm', 'eval-fgsm', 'train', 'adv-train'];
/** The eps values of the 'eval-fgsm' mode, pixel units. */
const EVAL_EPS = [2, 4, 8, 16];

export const MODELS: Record<BenchModel, { make: (g: Generator) => Module; shape: number[] }> = {
  'mnist-cnn': { make: (g) => new MnistCnn({ generator: g }), shape: [1, 28, 28] },
  resnet20: { make: (g) => new ResNet({ depth: 20, generator: g }), shape: [3, 32, 32] },
};

/** Training modes take the training precision, the others the attack/evaluation precision. */
export const isTraining = (mode: BenchMode): boolean => mode === 'train' || mode === 'adv-train';

export interface Workload {
  step: () => void;
  dispose: () => void;
}

/** Builds a model, a batch and the step function for one mode at one precision (channels-last unless told). */
export function workload(modelName: BenchModel, mode: BenchMode, batch: number, precision: Precision, memoryFormat: MemoryFormat = 'channelsLast'): Workload {
  const g = new Generator(0);
  const spec = MODELS[modelName];
  const module = spec.make(g).toMemoryFormat(memoryFormat);
  const model = new Classifier(module, { classes: 10, inputShape: spec.shape as [number, number, number], inputRange: [0, 1], memoryFormat });
  const x = rand([batch, ...spec.shape], { generator: g }).contiguous(memoryFormat).keep();
  const y = randint(0, 10, [batch], { generator: g }).keep();
  let step: () => void;
  let optimizer: SGD | null = null;
  if (mode === 'forward') {
    module.eval();
    step = () => noGrad(() => scope(() => void withPrecision(precision, () => model.logits(x))));
  } else if (mode === 'fgsm') {
    module.eval();
    step = () => scope(() => void A.fgsm(model, x, { eps: 8, y, precision }));
  } else if (mode === 'eval-fgsm') {
    // What evaluate() does per batch: clean accuracy, FGSM at every eps from one gradient (the grid), their accuracies.
    module.eval();
    const accuracy = (t: Tensor): number => noGrad(() => withPrecision(precision, () => model.logits(t)).argmax(1).eq(y).to('float32').mean().item());
    step = () => scope(() => {
      accuracy(x);
      for (const adv of A.oneStepGrid(model, x, [A.FGSM], { eps: EVAL_EPS, y, precision }).get('fgsm') as Tensor[]) accuracy(adv);
    });
  } else {
    // Plain training is Algorithm 1 with k = 0; adv-train takes k = m/2 step l.l. examples at eps 8, lambda 0.3.
    optimizer = new SGD(module.parameters(), 0.01, { momentum: 0.9 });
    const k = mode === 'adv-train' ? Math.floor(batch / 2) : 0;
    const trainer = new AdversarialTrainer(model, optimizer, { k, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 8 } }, { precision });
    step = () => void trainer.trainStep(x, y);
  }
  return {
    step,
    dispose: () => {
      optimizer?.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

/** Runs `step` for at least `seconds` (and 3 iterations) after `warmup` untimed ones. */
export function measure(w: Workload, batch: number, seconds: number, warmup: number): { imagesPerSec: number; iterations: number } {
  for (let i = 0; i < warmup; i++) w.step();
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    w.step();
    n++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds || n < 3);
  return { imagesPerSec: (n * batch) / elapsed, iterations: n };
}
