/**
 * Any model in: a zoo checkpoint, a TorchScript `.pt`, an ONNX `.onnx`, a
 * TensorFlow.js `model.json`, or 'resnet50', as a Classifier. A checkpoint
 * and 'resnet50' carry their input contract; a foreign model gets it from the
 * caller (the CLI's --input-range, --mean, ... options), from a model card
 * (`NAME.card.json` beside the file, the same fields as JSON), and from what
 * the file itself declares (ONNX input and output shapes, the first
 * convolution's channels), in that order. Classes not declared anywhere are
 * counted from one forward pass.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { noGrad, scope, zeros } from '../engine/index.js';
import { readRegularFileSync, writeFileAtomicSync } from '../io/index.js';
import type { Module } from '../nn/index.js';
import { Classifier, type ClassifierOptions } from './classifier.js';
import { type ForeignFormat, type ForeignModule, foreignFormatOf, loadForeignModule } from './foreign.js';
import { loadClassifier, type ModelSpec } from './registry.js';

/** The input contract of a model: what its images look like and what it predicts. */
export type InputContract = Omit<ClassifierOptions, 'memoryFormat'>;

/** A contract in parts, as a caller or a model card gives it; `inputSize` is [H, W] when the channels come from the model. */
export type PartialContract = Partial<InputContract> & { inputSize?: [number, number] };

/** The model card beside a model file: `model.pt` -> `model.card.json`. */
export function modelCardPath(path: string): string {
  return join(dirname(path), `${basename(path, extname(path))}.card.json`);
}

const CARD_FIELDS = ['inputRange', 'mean', 'std', 'bgr', 'classes', 'classNames', 'classNamesFile', 'inputShape', 'inputSize'] as const;

/** Reads a model card, if there is one; class names may come from a file beside it (one name a line). */
export function readModelCard(path: string): PartialContract {
  const file = modelCardPath(path);
  if (!existsSync(file)) return {};
  const card = parseJsonFile(file) as Record<string, unknown>;
  if (card === null || typeof card !== 'object' || Array.isArray(card)) throw new Error(`${file}: a model card must be a JSON object`);
  const unknown = Object.keys(card).filter((k) => !(CARD_FIELDS as readonly string[]).includes(k));
  if (unknown.length) throw new Error(`${file}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${CARD_FIELDS.join(', ')})`);
  const { classNamesFile, ...rest } = card as PartialContract & { classNamesFile?: string };
  const out = rest as PartialContract;
  if (classNamesFile !== undefined) out.classNames = readClassNames(resolve(dirname(file), String(classNamesFile)));
  return out;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/** A small text file beside a model (a card, class names), read without blocking on a FIFO or reading a device. */
function readSmallText(file: string, what: string): string {
  return readRegularFileSync(file, { maxBytes: 16 << 20, what }).toString('utf8');
}

function parseJsonFile(file: string): unknown {
  return parseJson(readSmallText(file, 'model card'), file);
}

/** Writes the model card of `model` beside `path` (atomically), so the file loads with its contract. */
export function writeModelCard(path: string, model: Classifier): string {
  const file = modelCardPath(path);
  writeFileAtomicSync(file, JSON.stringify(model.contract(), null, 2) + '\n');
  return file;
}

/** Class names from a text file, one a line (blank lines at the end ignored), or a JSON array of strings. */
export function readClassNames(file: string): string[] {
  const text = readSmallText(file, 'class names file');
  if (text.trimStart().startsWith('[')) {
    const names = parseJson(text, file);
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new Error(`${file}: expected a JSON array of class names`);
    return names as string[];
  }
  const names = text.replace(/\s+$/, '').split(/\r?\n/);
  if (names.some((n) => n.trim() === '')) throw new Error(`${file}: class names must be one a line, with no blank line between them`);
  return names;
}

/**
 * A Classifier around a foreign module: the contract from `given` (the
 * caller's, then the card's), the channels from the module's first 4-D
 * weight, the classes from one forward pass when nobody declared them.
 */
export function classifierFor(module: Module, given: PartialContract, source: string, declared: Omit<ForeignModule, 'module'> = {}): Classifier {
  let inputShape = given.inputShape ?? declared.declaredShape;
  if (!inputShape && given.inputSize) {
    const first = module.parameters().find((p) => p.rank === 4);
    const channels = first?.shape[1] ?? 3;
    inputShape = [channels, ...given.inputSize];
  }
  if (!inputShape) throw new Error(`${source}: the input size is not known: give it (--input-size H,W) or write it into ${modelCardPath(source)}`);
  let classes = given.classes ?? given.classNames?.length ?? declared.declaredClasses;
  if (classes === undefined) classes = countClasses(module, inputShape, source);
  const { inputSize: _size, ...contract } = given;
  // Channels-last like the zoo: oneDNN's convolutions run fastest on it (docs/engine.md).
  return new Classifier(module.toMemoryFormat('channelsLast'), { ...contract, inputShape, classes });
}

/** The width of the module's output for one blank image in inference mode. */
function countClasses(module: Module, inputShape: [number, number, number], source: string): number {
  const training = module.training;
  module.eval();
  try {
    const shape = noGrad(() => scope(() => module.forward(zeros([1, ...inputShape])).shape));
    if (shape.length !== 2) throw new Error(`${source}: the model returns shape [${shape}] for one image, expected [1, classes]`);
    return shape[1] as number;
  } catch (e) {
    throw new Error(`${source}: one forward pass on a ${inputShape.join('x')} image failed: ${(e as Error).message}`);
  } finally {
    module.train(training);
  }
}

/**
 * Loads `path` (see the module comment) as an inference-mode classifier.
 * `contract` overrides what the card and the file declare; a checkpoint or
 * 'resnet50' takes no contract (it carries its own).
 */
export async function loadModel(path: string, contract: PartialContract = {}): Promise<Classifier> {
  // A foreign model is known by its file name; anything else is read as a checkpoint (whose reader says
  // clearly when a file is none).
  const format = foreignFormatOf(path);
  if (format) return loadForeign(path, format, contract);
  if (Object.keys(contract).length > 0) {
    throw new Error(`${path}: a ${path === 'resnet50' ? 'built-in model' : 'checkpoint'} carries its own input contract; --input-range, --mean, --std, --input-size and --class-names are for foreign models`);
  }
  if (path !== 'resnet50') return loadClassifier(path);
  const { loadResNet50ImageNet } = await import('./resnet50-imagenet.js');
  return loadResNet50ImageNet();
}

/** A foreign model file with the card beside it and `contract` over it, as an inference-mode classifier. */
export function loadForeign(path: string, format: ForeignFormat, contract: PartialContract = {}): Classifier {
  const card = readModelCard(path);
  const given: PartialContract = { ...card, ...contract };
  // A size given by the caller overrides the card's, keeping the card's channels.
  if (contract.inputSize && !contract.inputShape && card.inputShape) given.inputShape = [card.inputShape[0], ...contract.inputSize];
  const { module, ...declared } = loadForeignModule(format, path);
  try {
    const model = classifierFor(module, given, path, declared);
    model.module.eval();
    model.spec = foreignSpec(model, path);
    return model;
  } catch (e) {
    module.dispose();
    const message = (e as Error).message;
    throw message.startsWith(path) ? e : new Error(`${path}: ${message}`, { cause: e });
  }
}

/** The spec a checkpoint records for a foreign model: its file (where the graph comes from) and its contract. */
export function foreignSpec(model: Classifier, file: string): ModelSpec {
  const format = foreignFormatOf(file);
  if (!format) throw new Error(`${file}: not a foreign model file`);
  return { architecture: format, options: { file: resolve(file) }, classifier: model.contract() };
}
