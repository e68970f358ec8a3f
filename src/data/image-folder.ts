/**
 * Image-folder datasets in the ImageNet layout: one sub-folder per class under
 * a root, holding JPEG or PNG files (at any depth inside the class folder).
 *
 * Only the file list lives in memory; images are read and decoded when a batch
 * asks for them, so a set far larger than memory streams from disk. Reading
 * and decoding (and the resize) run on libuv's worker threads, off the main
 * thread: JPEGs under a first bilinear resize or random-resized crop in
 * advml's native path (libjpeg-turbo + PIL's bilinear resampling,
 * native/jpeg.cc), everything else in `sharp` (libvips). The main thread only
 * copies the decoded bytes into the batch, and libtorch converts the batch to
 * float in one op.
 *
 * A file that cannot be read or decoded is left out of its batch, reported
 * through `onWarning` with its path, and listed in the batch's `skipped`; it
 * never stops a run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Sharp, SharpOptions } from 'sharp';
import { type MemoryFormat, scope, tensor, zeros } from '../engine/index.js';
import { jpegDecodeCrop, readJpegHeader } from '../engine/jpeg.js';
import { type Batch, type Dataset, type GetOptions, type SkippedSample, checkIndices } from './dataset.js';
import {
  type ImageTransform,
  copyMapped,
  imagenetEvalTransforms,
  imagenetTrainTransforms,
  outputSize,
  planGeometry,
  resizedCropBox,
  resizedSize,
  sampleUniform,
  validateTransforms,
} from './transforms.js';

/** File name endings read as images (case-insensitive). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png'];

/** When the decoder gives up on damaged pixel data (sharp's `failOn`, most lenient first). */
export type FailOn = 'none' | 'truncated' | 'error' | 'warning';

/** Options of {@link openImageFolder}. */
export interface ImageFolderOptions {
  /** Applied to every image in order (default none: images must then all have one size). */
  transforms?: readonly ImageTransform[];
  /**
   * A class-index JSON file. Default: `<root>/class_index.json` when present,
   * else classes are the sorted sub-folder names. Accepted forms:
   * `{"n01440764": 0, ...}` (folder to index), `{"0": ["n01440764", "tench"], ...}`
   * (Keras' imagenet_class_index.json: index to [folder, name]), or
   * `["n01440764", ...]` (index is the position).
   */
  classIndexFile?: string;
  /** Images decoded at once by this dataset (default 16; libuv's pool, 4 threads unless UV_THREADPOOL_SIZE says otherwise, runs them). */
  concurrency?: number;
  /**
   * How damaged a file may be and still decode (default 'error': truncated
   * files and decoder errors skip the file, decoder warnings such as stray
   * bytes in a JPEG do not).
   */
  failOn?: FailOn;
  /** Memory format of the images tensor (default 'contiguous'). */
  memoryFormat?: MemoryFormat;
}

interface SharpModule {
  (input: Buffer, options?: SharpOptions): Sharp;
  cache(options: boolean): unknown;
}

let sharpModule: Promise<SharpModule> | undefined;

/** Loads sharp on first use, so code that never opens an image folder does not load libvips. */
async function loadSharp(): Promise<SharpModule> {
  sharpModule ??= import('sharp').then(
    (m) => {
      const sharp = m.default as unknown as SharpModule;
      // libvips' operation cache only pays when the same input is processed again; a loader never
      // decodes the same bytes twice in a row, and hashing and keeping every decode cost about 12%
      // CPU per image (1.8 -> 1.6 ms for a 500x375 JPEG). Process-wide, like every sharp setting.
      sharp.cache(false);
      return sharp;
    },
    (e: unknown) => {
      sharpModule = undefined;
      throw new Error(`image folders need the npm package sharp (npm install sharp): ${(e as Error).message}`);
    },
  );
  return sharpModule;
}

/** A counting semaphore: at most `n` tasks run at once. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

interface ClassIndex {
  /** Folder name to class index. */
  index: Map<string, number>;
  /** Display names by class index. */
  names: string[];
  /** Folder names by class index. */
  folders: string[];
}

function parseClassIndex(file: string): ClassIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`class index ${file}: cannot read it as JSON (${(e as Error).message})`);
  }
  const fail = (why: string): never => {
    throw new Error(`class index ${file}: ${why}`);
  };
  const entries: [string, number, string][] = [];
  if (Array.isArray(raw)) {
    raw.forEach((f, i) => {
      if (typeof f !== 'string') fail(`entry ${i} must be a folder name, got ${JSON.stringify(f)}`);
      entries.push([f as string, i, f as string]);
    });
  } else if (raw !== null && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v === 'number') {
        entries.push([k, v, k]);
      } else if (Array.isArray(v) && typeof v[0] === 'string') {
        const i = Number(k);
        entries.push([v[0], i, typeof v[1] === 'string' ? v[1] : v[0]]);
      } else {
        fail(`entry '${k}' must be a class index or [folder, name], got ${JSON.stringify(v)}`);
      }
    }
  } else {
    fail('expected an object or an array');
  }
  const n = entries.length;
  if (n === 0) fail('no classes');
  const names: (string | undefined)[] = new Array(n);
  const folders: (string | undefined)[] = new Array(n);
  const index = new Map<string, number>();
  for (const [folder, i, name] of entries) {
    if (!Number.isInteger(i) || i < 0 || i >= n) fail(`class index ${i} of '${folder}' is not an integer in 0..${n - 1}`);
    if (folders[i] !== undefined) fail(`class index ${i} is given twice ('${folders[i]}' and '${folder}')`);
    if (index.has(folder)) fail(`folder '${folder}' is given twice`);
    folders[i] = folder;
    names[i] = name;
    index.set(folder, i);
  }
  return { index, names: names as string[], folders: folders as string[] };
}

const isImage = (name: string): boolean => {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
};

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Image files under `dir` (following symbolic links), sorted, as paths relative to `base`. */
async function listImages(dir: string, base: string, out: string[], depth = 0): Promise<void> {
  if (depth > 32) throw new Error(`image folder: ${dir} is nested more than 32 levels deep (a symbolic-link loop?)`);
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => byCodePoint(a.name, b.name));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        const s = await stat(full);
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch {
        // A dangling link: listed if it looks like an image, skipped with a warning when read.
        isFile = true;
      }
    }
    if (isDir) await listImages(full, base, out, depth + 1);
    else if (isFile && isImage(e.name)) out.push(relative(base, full));
  }
}

/**
 * Why a file could not be read, in one line. libvips reports some damage (a
 * bad PNG CRC, a JPEG cut short) as a bare "Unknown error"; say what that means.
 */
function decodeFailure(e: unknown): string {
  const message = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
  if (message === '' || /^unknown error$/i.test(message)) return 'the image data is damaged or cut short (the decoder gave no reason)';
  return message;
}

/**
 * A dataset of image files in one sub-folder per class, streamed from disk.
 * Make one with {@link openImageFolder}. Each batch is float32 [N, 3, H, W] in
 * [0, 1] (RGB; grey images are replicated to three channels, alpha dropped),
 * labels int64 [N].
 */
export class ImageFolder implements Dataset {
  /** The range of the images' values. */
  readonly range: readonly [number, number] = [0, 1];
  /** Class names by index (the folder names, or the names in the class-index file). */
  readonly classNames: readonly string[];
  /** Class folder names by index. */
  readonly classFolders: readonly string[];
  /** The transforms applied to each image. */
  readonly transforms: readonly ImageTransform[];
  private readonly limiter: Limiter;
  private readonly fixedSize: [number, number] | null;

  /** @internal Use {@link openImageFolder}. */
  constructor(
    /** The absolute root folder. */
    readonly root: string,
    private readonly files: readonly string[],
    private readonly labelOf: Int32Array,
    classNames: readonly string[],
    classFolders: readonly string[],
    private readonly sharp: SharpModule,
    private readonly opts: Required<Omit<ImageFolderOptions, 'classIndexFile' | 'transforms'>> & { transforms: readonly ImageTransform[] },
  ) {
    this.classNames = classNames;
    this.classFolders = classFolders;
    this.transforms = opts.transforms;
    this.limiter = new Limiter(opts.concurrency);
    this.fixedSize = outputSize(opts.transforms);
  }

  /** Number of image files. */
  get length(): number {
    return this.files.length;
  }

  /** The absolute path of sample `index`. */
  path(index: number): string {
    checkIndices('ImageFolder.path', [index], this.length);
    return join(this.root, this.files[index] as string);
  }

  /** The class index of sample `index`. */
  label(index: number): number {
    checkIndices('ImageFolder.label', [index], this.length);
    return this.labelOf[index] as number;
  }

  /** Number of images of each class, by class index. */
  classCounts(): number[] {
    const counts = new Array<number>(this.classNames.length).fill(0);
    for (const l of this.labelOf) counts[l] = (counts[l] as number) + 1;
    return counts;
  }

  /** A copy with other transforms (and the same files and classes), e.g. train and eval views of one folder. */
  withTransforms(transforms: readonly ImageTransform[]): ImageFolder {
    validateTransforms(transforms);
    return new ImageFolder(this.root, this.files, this.labelOf, this.classNames, this.classFolders, this.sharp, {
      ...this.opts,
      transforms: [...transforms],
    });
  }

  /** Decodes one image and returns its bytes after the resampling step, plus the crop/flip mapping. */
  private async decode(index: number, epoch: number, seed: number): Promise<{ data: Uint8Array; width: number; height: number; plan: ReturnType<typeof planGeometry> }> {
    const buf = await readFile(join(this.root, this.files[index] as string));
    const options: SharpOptions = { failOn: this.opts.failOn };
    const uniform = (k: number): number => sampleUniform(seed, epoch, index, k);
    const first = this.transforms[0];
    if ((first?.kind === 'resize' || first?.kind === 'randomResizedCrop') && first.interpolation === 'linear') {
      // JPEGs without a rotation go through the native path: libjpeg-turbo, then PIL's bilinear
      // resampling of the box (torchvision's own), on libuv's pool. Everything else stays in sharp.
      const header = readJpegHeader(buf);
      if (header && header.orientation === 1) {
        const box =
          first.kind === 'resize'
            ? { left: 0, top: 0, width: header.width, height: header.height }
            : resizedCropBox(first, header.width, header.height, uniform);
        const out = first.kind === 'resize' ? resizedSize(header.width, header.height, first.size) : { width: first.width, height: first.height };
        const plan = planGeometry(this.transforms, out.width, out.height, uniform);
        // A mirror of the whole output is done in the decoder, leaving the main thread a plain copy.
        const flip = plan.ax === -1 && plan.bx === out.width - 1 && plan.by === 0 && plan.width === out.width && plan.height === out.height &&
          plan.x0 === 0 && plan.x1 === out.width - 1 && plan.y0 === 0 && plan.y1 === out.height - 1;
        const data = await jpegDecodeCrop(buf, { ...box, outWidth: out.width, outHeight: out.height, flip, failOn: this.opts.failOn });
        return { data, width: out.width, height: out.height, plan: flip ? { ...plan, ax: 1, bx: 0 } : plan };
      }
    }
    let img = this.sharp(buf, options);
    if (first?.kind === 'resize' || first?.kind === 'randomResizedCrop') {
      const meta = await img.metadata();
      if (!meta.width || !meta.height) throw new Error('the image has no size');
      let source = this.sharp(buf, options);
      if (meta.hasAlpha) {
        // sharp resizes with premultiplied alpha, which shifts the colours of translucent
        // pixels; drop alpha first, as PIL's convert('RGB') does, and resize the RGB bytes.
        const rgb = await source.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
        source = this.sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } });
      }
      if (first.kind === 'resize') {
        const size = resizedSize(meta.width, meta.height, first.size);
        img = source.resize(size.width, size.height, { fit: 'fill', kernel: first.interpolation });
      } else {
        // extract before resize: sharp crops the source, then resamples only that region.
        img = source
          .extract(resizedCropBox(first, meta.width, meta.height, uniform))
          .resize(first.width, first.height, { fit: 'fill', kernel: first.interpolation });
      }
    }
    const { data, info } = await img.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    const plan = planGeometry(this.transforms, info.width, info.height, uniform);
    return { data, width: info.width, height: info.height, plan };
  }

  /**
   * Reads, decodes and transforms the images at `indices` into one batch.
   * Unreadable files are left out, named in `skipped` and passed to
   * `opts.onWarning`. Random transforms use `opts.seed` and `opts.epoch`.
   * Throws when the images have different sizes after the transforms (add a
   * crop or an exact resize).
   */
  async get(indices: readonly number[], opts: GetOptions = {}): Promise<Batch> {
    checkIndices('ImageFolder.get', indices, this.length);
    const epoch = opts.epoch ?? 0;
    const seed = opts.seed ?? 0;
    const results = await Promise.all(
      indices.map((index) =>
        this.limiter.run(() => this.decode(index, epoch, seed)).then(
          (r) => ({ ok: true as const, index, ...r }),
          (e: unknown) => ({ ok: false as const, index, reason: decodeFailure(e) }),
        ),
      ),
    );
    const skipped: SkippedSample[] = [];
    const good: (typeof results[number] & { ok: true })[] = [];
    for (const r of results) {
      if (r.ok) {
        good.push(r);
        continue;
      }
      const file = join(this.root, this.files[r.index] as string);
      const s: SkippedSample = { index: r.index, file, reason: r.reason };
      skipped.push(s);
      opts.onWarning?.({ kind: 'skipped-sample', ...s, message: `skipped ${file}: ${r.reason}` });
    }
    let [h, w] = this.fixedSize ?? [0, 0];
    const head = good[0];
    if (head && !this.fixedSize) [h, w] = [head.plan.height, head.plan.width];
    for (const g of good) {
      if (g.plan.height !== h || g.plan.width !== w) {
        const a = join(this.root, this.files[head?.index ?? 0] as string);
        const b = join(this.root, this.files[g.index] as string);
        throw new Error(
          `ImageFolder.get: images differ in size after the transforms (${a} is ${w}x${h}, ${b} is ${g.plan.width}x${g.plan.height}): ` +
            'add a crop or an exact resize([height, width]) to the transforms',
        );
      }
    }
    const n = good.length;
    const pixels = new Uint8Array(n * h * w * 3);
    good.forEach((g, i) => copyMapped(g.data, g.width, g.height, 3, g.plan, pixels, i * h * w * 3));
    const labels = BigInt64Array.from(good, (g) => BigInt(this.labelOf[g.index] as number));
    const format = this.opts.memoryFormat;
    const out = scope(() => {
      let images;
      if (n === 0) images = zeros([0, 3, h, w]);
      else {
        // Bytes are NHWC. Channels-last is that layout already: convert in place and view it as NCHW.
        // Contiguous NCHW: transpose the bytes first (4x less to move than floats), then convert.
        const bytes = tensor(pixels, { shape: [n, h, w, 3] });
        images =
          format === 'channelsLast'
            ? bytes.to('float32').div_(255).permute([0, 3, 1, 2])
            : bytes.permute([0, 3, 1, 2]).contiguous().to('float32').div_(255);
      }
      return { images, labels: tensor(labels) };
    });
    return { ...out, indices: good.map((g) => g.index), skipped };
  }
}

/**
 * Scans `root` (one sub-folder per class; JPEG and PNG files at any depth
 * inside each; names starting with '.' ignored) and returns the dataset.
 * Classes are indexed by the class-index file when there is one (see
 * {@link ImageFolderOptions.classIndexFile}), else by sorted folder name
 * (code-point order, as Python's `sorted`). Files are ordered by class, then
 * by path. Throws, naming the path, when `root` is missing, has no class
 * folders or no images, or has a folder the class index does not list.
 */
export async function openImageFolder(root: string, opts: ImageFolderOptions = {}): Promise<ImageFolder> {
  const abs = resolve(root);
  const transforms = [...(opts.transforms ?? [])];
  validateTransforms(transforms);
  const concurrency = opts.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`openImageFolder: concurrency must be a positive integer, got ${concurrency}`);
  const failOn = opts.failOn ?? 'error';
  if (!['none', 'truncated', 'error', 'warning'].includes(failOn)) {
    throw new Error(`openImageFolder: failOn must be 'none', 'truncated', 'error' or 'warning', got '${String(failOn)}'`);
  }
  const memoryFormat = opts.memoryFormat ?? 'contiguous';
  if (memoryFormat !== 'contiguous' && memoryFormat !== 'channelsLast') {
    throw new Error(`openImageFolder: memoryFormat must be 'contiguous' or 'channelsLast', got '${String(memoryFormat)}'`);
  }
  let rootStat;
  try {
    rootStat = await stat(abs);
  } catch {
    throw new Error(`image folder not found: ${abs} does not exist (expected one sub-folder of JPEG/PNG images per class)`);
  }
  if (!rootStat.isDirectory()) throw new Error(`image folder: ${abs} is not a directory`);

  const folders: string[] = [];
  for (const e of await readdir(abs, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(join(abs, e.name)).then((s) => s.isDirectory(), () => false)))) {
      folders.push(e.name);
    }
  }
  folders.sort(byCodePoint);

  const indexFile = opts.classIndexFile ?? (existsSync(join(abs, 'class_index.json')) ? join(abs, 'class_index.json') : undefined);
  let classes: ClassIndex;
  if (indexFile !== undefined) {
    classes = parseClassIndex(resolve(indexFile));
    for (const f of folders) {
      if (!classes.index.has(f)) throw new Error(`image folder ${abs}: folder '${f}' is not in the class index ${resolve(indexFile)}`);
    }
  } else {
    if (folders.length === 0) throw new Error(`image folder ${abs} has no class sub-folders (expected one sub-folder of images per class)`);
    classes = { index: new Map(folders.map((f, i) => [f, i])), names: [...folders], folders: [...folders] };
  }

  const files: string[] = [];
  const labels: number[] = [];
  // Class order, so files are grouped by label and the order does not depend on the file system.
  const present = new Set(folders);
  for (const folder of classes.folders) {
    if (!present.has(folder)) continue;
    const before = files.length;
    await listImages(join(abs, folder), abs, files);
    for (let i = before; i < files.length; i++) labels.push(classes.index.get(folder) as number);
  }
  if (files.length === 0) throw new Error(`image folder ${abs} has no images (${IMAGE_EXTENSIONS.join(', ')}) in its class folders`);
  const sharp = await loadSharp();
  return new ImageFolder(abs, files, Int32Array.from(labels), classes.names, classes.folders, sharp, {
    transforms,
    concurrency,
    failOn,
    memoryFormat,
  });
}

/** The ImageNet splits with one folder per class. */
export type ImageNetSplit = 'train' | 'val';

/** Where ImageNet is looked for: ADVML_IMAGENET_DIR, else /usr/share/datasets/imagenet. */
export function imagenetDir(): string {
  return process.env.ADVML_IMAGENET_DIR ?? '/usr/share/datasets/imagenet';
}

/**
 * ILSVRC-2012 (or any folder of that layout, `dir`) from `<dir>/<split>/<wnid>/*.JPEG`
 * (`dir` default {@link imagenetDir}), with the class order
 * of `<imagenetDir()>/imagenet_class_index.json` when present (Keras' file,
 * which gives the standard 0..999 order and readable names), else sorted wnids
 * (the same order). Transforms default to {@link imagenetTrainTransforms} for
 * 'train' and {@link imagenetEvalTransforms} for 'val' at `size` (default 224;
 * 299 for Inception v3). Throws a message saying how to get the data when the
 * folder is missing.
 */
export async function openImageNet(split: ImageNetSplit, opts: ImageFolderOptions & { size?: number; dir?: string } = {}): Promise<ImageFolder> {
  if (split !== 'train' && split !== 'val') throw new Error(`openImageNet: split must be 'train' or 'val', got '${String(split)}'`);
  const dir = opts.dir ?? imagenetDir();
  const root = join(dir, split);
  if (!existsSync(root)) {
    throw new Error(
      `ImageNet not found: ${root} does not exist. ImageNet cannot be installed from a package registry: download ` +
        'ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from image-net.org (an account is needed), extract them into ' +
        `train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (one folder per class; see docs/data.md for the validation set), and ` +
        'set ADVML_IMAGENET_DIR to the folder holding train/ and val/.',
    );
  }
  const keras = join(dir, 'imagenet_class_index.json');
  const { size = 224, dir: _dir, ...rest } = opts;
  return openImageFolder(root, {
    ...rest,
    classIndexFile: rest.classIndexFile ?? (existsSync(keras) ? keras : undefined),
    transforms: rest.transforms ?? (split === 'train' ? imagenetTrainTransforms(size) : imagenetEvalTransforms(size)),
  });
}
