/**
 * The output folder of `advml attack` as report input: DIR/summary.json (the
 * clean and adversarial prediction, label and perturbation norms of every
 * image, per method and eps) and the adversarial PNG files it names. The
 * clean images are not in that folder: they come from a per-image
 * `cleanFile` PNG when the summary names one, else from the dataset the
 * summary names (`data`, e.g. 'mnist:test', whose image INDEX is entry INDEX
 * of the split; `advml attack` takes the first `--limit` images).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReportInputError, readJsonFile } from './inputs.js';
import type { RasterImage } from './raster.js';

/** One attacked image as `advml attack` records it. */
export interface AttackImage {
  /** Position in the dataset split. */
  index: number;
  /** True label. */
  label: number;
  /** Prediction on the clean image. */
  clean: number;
  /** Prediction on the adversarial image. */
  adversarial: number;
  /** L-inf norm of the perturbation, pixel units. */
  linf: number;
  /** L2 norm of the perturbation, pixel units. */
  l2: number;
  /** The adversarial PNG, relative to the folder ('' when written with --no-images). */
  file: string;
  /** The clean PNG, relative to the folder, when the attack wrote one. */
  cleanFile?: string;
}

/** One method and eps of an attack run. */
export interface AttackResultInput {
  method: string;
  eps: number;
  labelSource: string;
  /** Adversarial accuracy over the attacked images. */
  accuracy: number;
  perImage: AttackImage[];
}

/** A checked `advml attack` output folder. */
export interface AttackInput {
  /** The folder. */
  dir: string;
  model?: string;
  /** Dataset and split, e.g. 'mnist:test'. */
  data?: string;
  images: number;
  cleanAccuracy: number;
  results: AttackResultInput[];
}

/** Reads and checks DIR/summary.json; errors name that file and the bad value. */
export function readAttackInput(dir: string): AttackInput {
  const file = join(dir, 'summary.json');
  const v = readJsonFile(file);
  const fail = (path: string, expected: string, got: unknown): never => {
    throw new ReportInputError(file, `${path}: expected ${expected}, got ${got === undefined ? 'nothing (missing)' : JSON.stringify(got).slice(0, 60)}`);
  };
  const obj = (x: unknown, path: string): Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : fail(path, 'an object', x);
  const num = (x: unknown, path: string): number => (typeof x === 'number' && Number.isFinite(x) ? x : fail(path, 'a number', x));
  const str = (x: unknown, path: string): string => (typeof x === 'string' ? x : fail(path, 'a string', x));
  const arr = (x: unknown, path: string): unknown[] => (Array.isArray(x) ? x : fail(path, 'an array', x));
  const int = (x: unknown, path: string): number => {
    const n = num(x, path);
    return Number.isInteger(n) && n >= 0 ? n : fail(path, 'a non-negative integer', x);
  };
  const o = obj(v, 'top level');
  const results = arr(o.results, 'results').map((r, i): AttackResultInput => {
    const p = `results[${i}]`;
    const ro = obj(r, p);
    return {
      method: str(ro.method, `${p}.method`),
      eps: num(ro.eps, `${p}.eps`),
      labelSource: str(ro.labelSource, `${p}.labelSource`),
      accuracy: num(ro.accuracy, `${p}.accuracy`),
      perImage: arr(ro.perImage, `${p}.perImage`).map((x, j): AttackImage => {
        const q = `${p}.perImage[${j}]`;
        const io = obj(x, q);
        return {
          index: int(io.index, `${q}.index`),
          label: int(io.label, `${q}.label`),
          clean: int(io.clean, `${q}.clean`),
          adversarial: int(io.adversarial, `${q}.adversarial`),
          linf: num(io.linf, `${q}.linf`),
          l2: num(io.l2, `${q}.l2`),
          file: str(io.file, `${q}.file`),
          cleanFile: io.cleanFile === undefined ? undefined : str(io.cleanFile, `${q}.cleanFile`),
        };
      }),
    };
  });
  if (results.length === 0) throw new ReportInputError(file, 'results: the attack summary has no results');
  return {
    dir,
    model: o.model === undefined ? undefined : str(o.model, 'model'),
    data: o.data === undefined ? undefined : str(o.data, 'data'),
    images: int(o.images, 'images'),
    cleanAccuracy: num(o.cleanAccuracy, 'cleanAccuracy'),
    results,
  };
}

/** Decodes PNG (or any format libvips reads) into 8-bit gray or RGB pixels, dropping alpha. */
export async function decodeImage(bytes: Uint8Array, source: string): Promise<RasterImage> {
  const sharp = (await import('sharp')).default;
  try {
    const meta = await sharp(bytes).metadata();
    const gray = meta.channels === 1 || meta.channels === 2 || meta.space === 'b-w';
    const { data, info } = await sharp(bytes).removeAlpha().toColourspace(gray ? 'b-w' : 'srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 1 && info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    return { width: info.width, height: info.height, channels: info.channels, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    throw new ReportInputError(source, `cannot decode the image (${(e as Error).message})`);
  }
}

/** Where the clean image of a dataset index comes from, when the attack folder has none. */
export type CleanImageSource = (index: number) => Promise<RasterImage>;

/**
 * Clean images of 'mnist' or 'fashion-mnist' ('NAME' or 'NAME:SPLIT', split
 * 'test' by default) read straight from the IDX files the data layer uses
 * (ADVML_MNIST_DIR / ADVML_FASHION_MNIST_DIR are honoured). Also returns the
 * class names, by label.
 */
export async function datasetImages(spec: string): Promise<{ image: CleanImageSource; classNames: string[]; length: number }> {
  const [name, split = 'test'] = spec.split(':');
  if (split !== 'train' && split !== 'test') throw new Error(`dataset '${spec}': the split must be train or test`);
  const data = await import('../data/mnist.js');
  const { readIdx } = await import('../data/idx.js');
  const prefix = split === 'train' ? 'train' : 't10k';
  let path: string;
  let classNames: string[];
  if (name === 'mnist') {
    path = join(data.mnistDir(), `${prefix}-images-idx3-ubyte`);
    classNames = data.MNIST_CLASSES;
  } else if (name === 'fashion-mnist') {
    path = join(data.fashionMnistDir(), `${prefix}-images-idx3-ubyte.gz`);
    classNames = data.FASHION_CLASSES;
  } else {
    throw new Error(`dataset '${spec}' is not one the report can read clean images from (known: mnist, fashion-mnist)`);
  }
  const idx = readIdx(path);
  if (idx.shape.length !== 3) throw new Error(`IDX file ${path}: expected images [N, H, W], got [${idx.shape}]`);
  const [n, h, w] = idx.shape as [number, number, number];
  return {
    classNames,
    length: n,
    image: async (index) => {
      if (!(Number.isInteger(index) && index >= 0 && index < n)) throw new Error(`dataset '${spec}' has ${n} images, no index ${index}`);
      return { width: w, height: h, channels: 1, pixels: idx.data.slice(index * h * w, (index + 1) * h * w) };
    },
  };
}

/** One example of a grid: the three images and what the model said. */
export interface Example {
  index: number;
  label: number;
  cleanPrediction: number;
  adversarialPrediction: number;
  linf: number;
  clean: RasterImage;
  /** Adversarial minus clean, magnified by the grid's factor around mid-gray (128). */
  perturbation: RasterImage;
  adversarial: RasterImage;
}

/** A grid of examples for one method and eps. */
export interface ExampleGrid {
  method: string;
  eps: number;
  labelSource: string;
  /** The factor the perturbation is multiplied by for display. */
  magnification: number;
  /** Class names by label, when known. */
  classNames?: string[];
  examples: Example[];
}

/** Options of {@link loadExampleGrids}. */
export interface ExampleGridOptions {
  /** Examples per grid, the first ones of the attack run (default 8). */
  count?: number;
  /** Dataset spec to read clean images from, overriding the summary's `data` (e.g. 'mnist:test'). */
  data?: string;
}

const toChannels = (img: RasterImage, channels: 1 | 3): RasterImage => {
  if (img.channels === channels) return img;
  if (channels === 3) {
    const out = new Uint8Array(img.width * img.height * 3);
    for (let i = 0; i < img.width * img.height; i++) out.fill(img.pixels[i] as number, 3 * i, 3 * i + 3);
    return { ...img, channels: 3, pixels: out };
  }
  throw new Error('cannot reduce an RGB image to gray');
};

/**
 * For every method and eps of an attack run, the first `count` images: the
 * clean image, the perturbation (adversarial - clean in pixel units, times a
 * magnification chosen so the largest |delta| in the grid reaches the full
 * range, shown around mid-gray) and the adversarial image. Throws naming the
 * file when an image is missing or its size differs from the clean image.
 */
export async function loadExampleGrids(attack: AttackInput, opts: ExampleGridOptions = {}): Promise<ExampleGrid[]> {
  const count = opts.count ?? 8;
  if (!(Number.isInteger(count) && count >= 1)) throw new Error(`loadExampleGrids: count must be a positive integer, got ${count}`);
  const summary = join(attack.dir, 'summary.json');
  const needDataset = attack.results.some((r) => r.perImage.slice(0, count).some((p) => p.cleanFile === undefined));
  const spec = opts.data ?? attack.data;
  let dataset: Awaited<ReturnType<typeof datasetImages>> | undefined;
  if (needDataset || spec) {
    if (!spec && needDataset) {
      throw new ReportInputError(summary, "the clean images are not in the folder (no cleanFile entries) and the summary names no dataset ('data'); give one with --data");
    }
    try {
      dataset = await datasetImages(spec as string);
    } catch (e) {
      if (needDataset) throw new ReportInputError(summary, `cannot read the clean images from dataset '${spec}': ${(e as Error).message}`);
    }
  }
  const cache = new Map<string, Promise<RasterImage>>();
  const readPng = (rel: string): Promise<RasterImage> => {
    const path = join(attack.dir, rel);
    let p = cache.get(path);
    if (!p) {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ReportInputError(path, code === 'ENOENT' ? `no such file (named by ${summary})` : `cannot read: ${(e as Error).message}`);
      }
      p = decodeImage(bytes, path);
      cache.set(path, p);
    }
    return p;
  };
  const grids: ExampleGrid[] = [];
  for (const r of attack.results) {
    const chosen = r.perImage.filter((p) => p.file !== '').slice(0, count);
    if (chosen.length === 0) continue;
    const raw: { p: AttackImage; clean: RasterImage; adv: RasterImage; delta: Int16Array }[] = [];
    let maxAbs = 0;
    for (const p of chosen) {
      const adv0 = await readPng(p.file);
      const clean0 = p.cleanFile !== undefined ? await readPng(p.cleanFile) : await (dataset as NonNullable<typeof dataset>).image(p.index);
      if (adv0.width !== clean0.width || adv0.height !== clean0.height) {
        throw new ReportInputError(join(attack.dir, p.file), `is ${adv0.width}x${adv0.height} but the clean image ${p.index} is ${clean0.width}x${clean0.height}`);
      }
      const channels: 1 | 3 = adv0.channels === 3 || clean0.channels === 3 ? 3 : 1;
      const adv = toChannels(adv0, channels);
      const clean = toChannels(clean0, channels);
      const delta = new Int16Array(adv.pixels.length);
      for (let i = 0; i < delta.length; i++) {
        const d = (adv.pixels[i] as number) - (clean.pixels[i] as number);
        delta[i] = d;
        maxAbs = Math.max(maxAbs, Math.abs(d));
      }
      raw.push({ p, clean, adv, delta });
    }
    const magnification = maxAbs === 0 ? 1 : Math.max(1, Math.floor(127 / maxAbs));
    grids.push({
      method: r.method,
      eps: r.eps,
      labelSource: r.labelSource,
      magnification,
      classNames: dataset?.classNames,
      examples: raw.map(({ p, clean, adv, delta }) => {
        const pert = new Uint8Array(delta.length);
        for (let i = 0; i < delta.length; i++) pert[i] = Math.max(0, Math.min(255, 128 + (delta[i] as number) * magnification));
        return {
          index: p.index, label: p.label, cleanPrediction: p.clean, adversarialPrediction: p.adversarial, linf: p.linf,
          clean, adversarial: adv, perturbation: { ...clean, pixels: pert },
        };
      }),
    });
  }
  return grids;
}
