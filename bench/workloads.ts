/**
 * The advml side of the peer benchmark: the same models, batch and modes as
 * bench/peer.py, run the way advml runs them by default (channels-last,
 * intermediates freed at last use, input gradient only for attacks).
 */
import { type Tensor, Generator, crossEntropy, grad, noGrad, rand, randint, scope } from '../src/index.js';
import { Module } from '../src/nn/index.js';
import { Classifier, MnistCnn, ResNet } from '../src/models/index.js';
import { AdversarialTrainer } from '../src/training/index.js';
import { SGD } from '../src/optim/index.js';

export type BenchModel = 'mnist-cnn' | 'resnet20';
export type BenchMode = 'forward' | 'fgsm' | 'train' | 'adv-train';

export const MODELS: Record<BenchModel, { make: (g: Generator) => Module; shape: number[] }> = {
  'mnist-cnn': { make: (g) => new MnistCnn({ generator: g }), shape: [1, 28, 28] },
  resnet20: { make: (g) => new ResNet({ depth: 20, generator: g }), shape: [3, 32, 32] },
};

export interface Workload {
  step: () => void;
  dispose: () => void;
}

/** Builds a model, a batch and the step function for one mode. */
export function workload(modelName: BenchModel, mode: BenchMode, batch: number): Workload {
  const g = new Generator(0);
  const spec = MODELS[modelName];
  const model = spec.make(g).toMemoryFormat('channelsLast');
  const x = rand([batch, ...spec.shape], { generator: g }).contiguous('channelsLast').keep();
  const y = randint(0, 10, [batch], { generator: g }).keep();
  let step: () => void;
  let extra: { dispose(): void } | null = null;
  if (mode === 'forward') {
    model.eval();
    step = () => noGrad(() => scope(() => void model.forward(x)));
  } else if (mode === 'fgsm') {
    model.eval();
    step = () =>
      scope(() => {
        const xr = x.detach().requiresGrad_();
        const loss = crossEntropy(model.forward(xr), y);
        const [gx] = grad(loss, xr);
        noGrad(() => xr.detach().add((gx as Tensor).sign(), 8 / 255).clamp(0, 1));
      });
  } else if (mode === 'adv-train') {
    // The paper's Algorithm 1 as the trainer runs it: k = m/2 step l.l. examples at eps 8, lambda 0.3.
    const classifier = new Classifier(model, { classes: 10, inputShape: spec.shape as [number, number, number], inputRange: [0, 1] });
    const opt = new SGD(model.parameters(), 0.01, { momentum: 0.9 });
    extra = opt;
    const trainer = new AdversarialTrainer(classifier, opt, { adversarial: batch / 2, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 8 } });
    step = () => void trainer.trainStep(x, y);
  } else {
    model.train();
    const opt = new SGD(model.parameters(), 0.01, { momentum: 0.9 });
    extra = opt;
    step = () => {
      scope(() => crossEntropy(model.forward(x), y).backward());
      opt.step();
      opt.zeroGrad();
    };
  }
  return {
    step,
    dispose: () => {
      extra?.dispose();
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
