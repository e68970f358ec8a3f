/** Small checkpoints for tests that need a model file. */
import { Generator, crossEntropy, randperm, scope } from '../../src/index.js';
import { loadFashionMnist, loadMnist } from '../../src/data/index.js';
import { saveCheckpointSync } from '../../src/io/index.js';
import { type Classifier, type ModelSpec, buildClassifier, specJson } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';

export const MNIST_SPEC: ModelSpec = {
  architecture: 'mnist-cnn',
  options: { seed: 1 },
  classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] },
};

/** The Fashion-MNIST ResNet-8 (batch norm) of the tests that need one: depth 6n + 2 with n = 1. */
export const FASHION_RESNET8_SPEC: ModelSpec = {
  architecture: 'resnet',
  options: { depth: 8, seed: 1 },
  classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] },
};

/**
 * Builds `spec` and trains it for `steps` SGD steps (lr 0.05, momentum 0.9)
 * of 100 images of MNIST or Fashion-MNIST, in a fixed seeded order; returns
 * it in inference mode.
 */
export function trainClassifier(spec: ModelSpec, steps: number, opts: { data?: 'mnist' | 'fashion'; seed?: number } = {}): Classifier {
  const seed = opts.seed ?? 1;
  const model = buildClassifier({ ...spec, options: { ...spec.options, seed } });
  const train = (opts.data === 'fashion' ? loadFashionMnist : loadMnist)('train', { limit: steps * 100 });
  const opt = new SGD(model.module.parameters(), 0.05, { momentum: 0.9 });
  const order = randperm(steps * 100, { generator: new Generator(seed + 1) });
  model.module.train();
  for (let i = 0; i < steps; i++) {
    scope(() => {
      const idx = order.narrow(0, i * 100, 100);
      crossEntropy(model.logits(train.images.indexSelect(0, idx)), train.labels.indexSelect(0, idx)).backward();
    });
    opt.step();
    opt.zeroGrad();
  }
  model.module.eval();
  opt.dispose();
  order.dispose();
  train.images.dispose();
  train.labels.dispose();
  return model;
}

/** Trains the MNIST CNN for `steps` SGD steps of 100 images and saves it as a checkpoint. */
export function writeMnistCheckpoint(path: string, steps = 40, seed = 1): void {
  const spec: ModelSpec = { ...MNIST_SPEC, options: { seed } };
  const model = trainClassifier(spec, steps, { seed });
  saveCheckpointSync(path, { model: specJson(spec), weights: model.module.stateDict(), step: steps });
  model.dispose();
}
