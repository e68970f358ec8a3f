/**
 * Models by name, so a checkpoint can say what to rebuild: an architecture,
 * its options, and the classifier spec (input shape and range, classes,
 * preprocessing).
 */
import { Generator } from '../engine/index.js';
import { type Checkpoint, type Json, disposeCheckpoint, loadCheckpointSync } from '../io/index.js';
import type { ActivationName, Module } from '../nn/index.js';
import { Classifier, type ClassifierOptions, checkClassifierOptions } from './classifier.js';
import { MnistCnn } from './mnist-cnn.js';
import { ResNet, ResNetImageNet } from './resnet.js';
import { InceptionV3, type InceptionExtraBlocks } from './inception.js';
import { FOREIGN_FORMATS, type ForeignFormat, loadForeignModule } from './foreign.js';

/** Architectures a checkpoint can name: the zoo's, or a foreign model file (options.file) whose graph it trained. */
export type Architecture = 'mnist-cnn' | 'resnet' | 'resnet-imagenet' | 'inception-v3' | ForeignFormat;

/** Options shared by the zoo's architectures. */
export interface ArchitectureOptions {
  width?: number;
  /** MNIST CNN: units of the hidden dense layer (default 128 times the width). */
  hidden?: number;
  activation?: ActivationName;
  /** beta of ReLUDecay. */
  beta?: number;
  /** ResNet depth: 6n + 2 for 'resnet' (CIFAR), 50, 101 or 152 for 'resnet-imagenet'. */
  depth?: number;
  /** Inception v3: extra blocks per grid size (the paper's deeper model). */
  extraBlocks?: InceptionExtraBlocks;
  /** Inception v3: build the auxiliary classifier (default true). */
  auxLogits?: boolean;
  /** Dropout probability before the classifier: Inception v3 (default 0.5), MNIST CNN (default 0, none). */
  dropout?: number;
  seed?: number;
  /** A foreign model: the absolute path of the file the graph is read from. */
  file?: string;
}

/** Everything needed to rebuild a classifier (without its weights). */
export interface ModelSpec {
  architecture: Architecture;
  options: ArchitectureOptions;
  classifier: Omit<ClassifierOptions, 'memoryFormat'>;
}

/**
 * Largest width multiplier rho (the paper's go up to 2): parameters grow as
 * rho^2, so at 8 an MNIST CNN has about 14 million and an Inception v3 about
 * 1.7 billion (7 GB in float32). The bound keeps a typo (1e300) from asking
 * for layers no memory holds.
 */
export const MAX_WIDTH = 8;

/** Every architecture {@link buildClassifier} knows. */
export const ARCHITECTURES: readonly Architecture[] = ['mnist-cnn', 'resnet', 'resnet-imagenet', 'inception-v3', ...FOREIGN_FORMATS];

/**
 * The spec of an Inception v3 classifier as the paper trains it: 299x299 RGB
 * images in [-1, 1], 1000 classes unless given. `options` carries rho
 * (`width`), `extraBlocks`, `activation`, `auxLogits`, `dropout`, `seed`.
 */
export function inceptionV3Spec(options: ArchitectureOptions = {}, classifier: Partial<ModelSpec['classifier']> = {}): ModelSpec {
  return {
    architecture: 'inception-v3',
    options,
    classifier: { classes: 1000, inputRange: [-1, 1], inputShape: [3, 299, 299], ...classifier },
  };
}

/** Builds a freshly initialised classifier from a spec. */
export function buildClassifier(spec: ModelSpec): Classifier {
  const { architecture, options: o, classifier: c } = spec;
  checkClassifierOptions(c);
  if (o.width !== undefined && !(typeof o.width === 'number' && o.width > 0 && o.width <= MAX_WIDTH)) {
    throw new Error(`width (rho) must be a number in (0, ${MAX_WIDTH}], got ${o.width}`);
  }
  if (o.hidden !== undefined && architecture !== 'mnist-cnn') throw new Error(`options.hidden is the MNIST CNN's dense layer; ${architecture} has none`);
  if ((FOREIGN_FORMATS as readonly string[]).includes(architecture)) {
    if (typeof o.file !== 'string') throw new Error(`a ${architecture} model spec needs options.file, the model file its graph comes from`);
    const { module } = loadForeignModule(architecture as ForeignFormat, o.file);
    return withSpec(new Classifier(module.toMemoryFormat('channelsLast'), c), spec);
  }
  const generator = o.seed === undefined ? undefined : new Generator(o.seed);
  const common = {
    inChannels: c.inputShape[0],
    classes: c.classes,
    width: o.width,
    activation: o.activation,
    activationOptions: o.beta === undefined ? undefined : { beta: o.beta },
    generator,
  };
  let module: Module;
  switch (architecture) {
    case 'mnist-cnn':
      if (c.inputShape[1] !== c.inputShape[2]) throw new Error(`mnist-cnn needs square images, got [${c.inputShape}]`);
      module = new MnistCnn({ ...common, imageSize: c.inputShape[1], dropout: o.dropout, hidden: o.hidden });
      break;
    case 'resnet':
      module = new ResNet({ ...common, depth: o.depth });
      break;
    case 'resnet-imagenet':
      module = new ResNetImageNet({ ...common, depth: o.depth });
      break;
    case 'inception-v3':
      if (Math.min(c.inputShape[1], c.inputShape[2]) < 75) throw new Error(`inception-v3 needs images of at least 75x75, got [${c.inputShape}]`);
      module = new InceptionV3({ ...common, extraBlocks: o.extraBlocks, auxLogits: o.auxLogits, dropout: o.dropout });
      break;
    default:
      throw new Error(`unknown architecture '${String(architecture)}': expected ${ARCHITECTURES.join(' or ')}`);
  }
  return withSpec(new Classifier(module.toMemoryFormat('channelsLast'), c), spec);
}

/** `model` carrying a copy of `spec` (so that later edits of the caller's object do not reach its checkpoints). */
function withSpec(model: Classifier, spec: ModelSpec): Classifier {
  model.spec = JSON.parse(JSON.stringify(spec)) as ModelSpec;
  return model;
}

/**
 * The model spec a checkpoint's JSON holds, checked for its shape (an
 * architecture name, an options object, a classifier object); the values are
 * checked by {@link buildClassifier}.
 */
export function parseModelSpec(json: unknown): ModelSpec {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(json)) throw new Error(`the model spec must be an object, got ${JSON.stringify(json) ?? String(json)}`);
  const { architecture, options = {}, classifier } = json;
  if (typeof architecture !== 'string') throw new Error(`the model spec has no architecture name (got ${JSON.stringify(architecture) ?? 'none'})`);
  if (!isObject(options)) throw new Error(`the model spec's options must be an object, got ${JSON.stringify(options)}`);
  if (!isObject(classifier)) throw new Error(`the model spec has no classifier object (input shape, range, classes), got ${JSON.stringify(classifier) ?? 'none'}`);
  return { architecture: architecture as Architecture, options: options as ArchitectureOptions, classifier: classifier as unknown as ModelSpec['classifier'] };
}

/** Rebuilds the classifier a checkpoint describes and loads its weights (strictly). */
export function classifierFromCheckpoint(c: Checkpoint): Classifier {
  const model = buildClassifier(parseModelSpec(c.model));
  model.module.loadStateDict(c.weights);
  model.module.eval();
  return model;
}

/** Loads a checkpoint file as an inference-mode classifier. */
export function loadClassifier(path: string): Classifier {
  const c = loadCheckpointSync(path);
  try {
    return classifierFromCheckpoint(c);
  } catch (e) {
    throw new Error(`checkpoint ${path}: ${(e as Error).message}`);
  } finally {
    disposeCheckpoint(c);
  }
}

/** The spec as the JSON a checkpoint stores. */
export function specJson(spec: ModelSpec): { [key: string]: Json } {
  return JSON.parse(JSON.stringify(spec)) as { [key: string]: Json };
}
