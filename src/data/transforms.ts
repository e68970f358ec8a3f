/**
 * Image transforms for image-folder datasets: resize (shorter side or exact
 * size), random-resized crop (Inception's augmentation), centre crop, random
 * crop and random horizontal flip.
 *
 * Transforms are plain data (`{ kind: 'centerCrop', ... }`), built with the
 * helpers below and applied per image by {@link ImageFolder}. The resize and
 * the random-resized crop (a crop of the source, then a resize) resample, so
 * they run inside `sharp` with the decoding, on libuv's worker threads; crops
 * and flips after them are pure geometry, composed into one index mapping and
 * applied while the decoded bytes are copied into the batch buffer, so they
 * cost nothing beyond that copy and are exact (no resampling).
 *
 * Random transforms draw from a counter-based generator keyed on
 * (seed, epoch, dataset index, draw number): a sample gets the same crop and
 * flip in a given epoch whatever the batch size, prefetch depth, rank or world
 * size, and a different one in each epoch.
 */

/** Resampling filter of a resize, as `sharp` names its kernels. 'linear' is bilinear. */
export type Interpolation = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';

/** Resizes the decoded image; must be the first transform when present. */
export interface ResizeTransform {
  kind: 'resize';
  /**
   * A number: the shorter side becomes `size` and the longer one
   * `floor(size * long / short)` (aspect ratio kept, torchvision's `Resize(size)`).
   * `[height, width]`: exactly that size (aspect ratio not kept).
   */
  size: number | [number, number];
  /** Resampling filter (default 'linear', bilinear with antialiasing when shrinking). */
  interpolation: Interpolation;
}

/**
 * Crops a random region of the source image and resizes it to `height` x
 * `width` (torchvision's `RandomResizedCrop`): the region's area is a fraction
 * of the image's drawn uniformly from `scale`, its aspect ratio (width /
 * height) is drawn log-uniformly from `ratio`. Must be the first transform
 * when present (it runs in the decoder, on the source pixels).
 */
export interface RandomResizedCropTransform {
  kind: 'randomResizedCrop';
  height: number;
  width: number;
  /** Bounds of the region's area as a fraction of the image's, 0 < min <= max <= 1. */
  scale: [number, number];
  /** Bounds of the region's aspect ratio (width / height), 0 < min <= max. */
  ratio: [number, number];
  /** Resampling filter (default 'linear', bilinear with antialiasing when shrinking). */
  interpolation: Interpolation;
}

/** Cuts the central `height` x `width` window (zero padding where the image is smaller). */
export interface CenterCropTransform {
  kind: 'centerCrop';
  height: number;
  width: number;
}

/**
 * Cuts a `height` x `width` window at a random offset, uniform over the
 * positions that keep the window inside the image padded by `padding` zero
 * pixels on each side (CIFAR's pad-4-and-crop is `randomCrop(32, { padding: 4 })`).
 */
export interface RandomCropTransform {
  kind: 'randomCrop';
  height: number;
  width: number;
  padding: number;
}

/** Mirrors left to right with probability `p`. */
export interface HorizontalFlipTransform {
  kind: 'horizontalFlip';
  p: number;
}

/** One step of an image pipeline. */
export type ImageTransform =
  | ResizeTransform
  | RandomResizedCropTransform
  | CenterCropTransform
  | RandomCropTransform
  | HorizontalFlipTransform;

function checkSize(fn: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
  return v;
}

function hw(fn: string, size: number | [number, number]): [number, number] {
  if (typeof size === 'number') return [checkSize(fn, 'size', size), size];
  if (!Array.isArray(size) || size.length !== 2) throw new Error(`${fn}: size must be a number or [height, width], got ${String(size)}`);
  return [checkSize(fn, 'height', size[0]), checkSize(fn, 'width', size[1])];
}

const INTERPOLATIONS: readonly Interpolation[] = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'];

/**
 * Resize: a number sets the shorter side (aspect ratio kept), `[height, width]`
 * an exact size.
 * @param opts.interpolation resampling filter (default 'linear').
 */
export function resize(size: number | [number, number], opts: { interpolation?: Interpolation } = {}): ResizeTransform {
  if (typeof size === 'number') checkSize('resize', 'size', size);
  else hw('resize', size);
  const interpolation = checkInterpolation('resize', opts.interpolation);
  return { kind: 'resize', size: typeof size === 'number' ? size : [size[0], size[1]], interpolation };
}

function checkInterpolation(fn: string, interpolation: Interpolation | undefined): Interpolation {
  const v = interpolation ?? 'linear';
  if (!INTERPOLATIONS.includes(v)) throw new Error(`${fn}: interpolation must be one of ${INTERPOLATIONS.join(', ')}, got '${String(v)}'`);
  return v;
}

/** A [min, max] pair of finite numbers with min <= max and `ok(min)`, `ok(max)`; else an error naming `name`. */
function checkRange(fn: string, name: string, v: unknown, ok: (x: number) => boolean, want: string): [number, number] {
  const pair = Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (v as [number, number]) : null;
  if (pair === null || !ok(pair[0]) || !ok(pair[1]) || pair[0] > pair[1]) {
    throw new Error(`${fn}: ${name} must be [min, max] with ${want}, got ${JSON.stringify(v)}`);
  }
  return [pair[0], pair[1]];
}

/**
 * Random-resized crop to `size` (a number for a square), seeded per sample:
 * a region with a fraction of the image's area uniform in `scale` and an
 * aspect ratio log-uniform in `ratio`, resized to `size`. torchvision's
 * defaults: scale [0.08, 1], ratio [3/4, 4/3], bilinear.
 */
export function randomResizedCrop(
  size: number | [number, number],
  opts: { scale?: [number, number]; ratio?: [number, number]; interpolation?: Interpolation } = {},
): RandomResizedCropTransform {
  const fn = 'randomResizedCrop';
  const [height, width] = hw(fn, size);
  const scale = checkRange(fn, 'scale', opts.scale ?? [0.08, 1], (x) => x > 0 && x <= 1, '0 < min <= max <= 1');
  const ratio = checkRange(fn, 'ratio', opts.ratio ?? [3 / 4, 4 / 3], (x) => x > 0, '0 < min <= max');
  return { kind: 'randomResizedCrop', height, width, scale, ratio, interpolation: checkInterpolation(fn, opts.interpolation) };
}

/** Centre crop to `size` (a number for a square) with torchvision's offsets. */
export function centerCrop(size: number | [number, number]): CenterCropTransform {
  const [height, width] = hw('centerCrop', size);
  return { kind: 'centerCrop', height, width };
}

/**
 * Random crop to `size` (a number for a square), seeded per sample.
 * @param opts.padding zero pixels added on every side before cropping (default 0).
 */
export function randomCrop(size: number | [number, number], opts: { padding?: number } = {}): RandomCropTransform {
  const [height, width] = hw('randomCrop', size);
  const padding = opts.padding ?? 0;
  if (!Number.isInteger(padding) || padding < 0) throw new Error(`randomCrop: padding must be a non-negative integer, got ${padding}`);
  return { kind: 'randomCrop', height, width, padding };
}

/** Horizontal flip with probability `p` (default 0.5), seeded per sample; `p = 1` always flips. */
export function horizontalFlip(p = 0.5): HorizontalFlipTransform {
  if (!(p >= 0 && p <= 1)) throw new Error(`horizontalFlip: p must be in [0, 1], got ${p}`);
  return { kind: 'horizontalFlip', p };
}

/**
 * The usual ImageNet evaluation pipeline: shorter side to `round(size / 0.875)`
 * (256 for 224, 342 for Inception v3's 299), then a centre crop of `size`.
 */
export function imagenetEvalTransforms(size = 224): ImageTransform[] {
  return [resize(Math.round(size / 0.875)), centerCrop(size)];
}

/**
 * The Inception / torchvision ImageNet training pipeline: a random-resized crop
 * to `size` (area 8%-100% of the image, aspect ratio 3/4-4/3) and a random
 * flip. Evaluation stays {@link imagenetEvalTransforms} (resize, centre crop).
 */
export function imagenetTrainTransforms(size = 224): ImageTransform[] {
  return [randomResizedCrop(size), horizontalFlip(0.5)];
}

/** Checks a transform list: at most one resampling step (resize or random-resized crop), and only as the first step. */
export function validateTransforms(transforms: readonly ImageTransform[]): void {
  transforms.forEach((t, i) => {
    if (t === null || typeof t !== 'object') throw new Error(`transforms[${i}]: expected a transform object, got ${String(t)}`);
    switch (t.kind) {
      case 'resize':
      case 'randomResizedCrop':
        if (i !== 0) throw new Error(`transforms[${i}]: ${t.kind} must be the first transform (it runs in the decoder)`);
        break;
      case 'centerCrop':
      case 'randomCrop':
      case 'horizontalFlip':
        break;
      default:
        throw new Error(`transforms[${i}]: unknown transform kind '${String((t as { kind: unknown }).kind)}'`);
    }
  });
}

/**
 * The fixed [height, width] every image has after `transforms`, or null when it
 * depends on the image (no crop and no exact resize).
 */
export function outputSize(transforms: readonly ImageTransform[]): [number, number] | null {
  let size: [number, number] | null = null;
  for (const t of transforms) {
    if (t.kind === 'resize') size = typeof t.size === 'number' ? null : [t.size[0], t.size[1]];
    else if (t.kind === 'centerCrop' || t.kind === 'randomCrop' || t.kind === 'randomResizedCrop') size = [t.height, t.width];
  }
  return size;
}

/**
 * The size a resize produces from a `width` x `height` image: the shorter side
 * to `size`, the longer to floor(size * long / short) (torchvision's rule).
 */
export function resizedSize(width: number, height: number, size: number | [number, number]): { width: number; height: number } {
  if (typeof size !== 'number') return { height: size[0], width: size[1] };
  if (width <= height) return { width: size, height: Math.max(1, Math.floor((size * height) / width)) };
  return { height: size, width: Math.max(1, Math.floor((size * width) / height)) };
}

/**
 * Draws a random-resized crop takes, whatever happens: up to ten tries of two
 * (area, then aspect ratio) and two for the position (y, then x). A fixed
 * block keeps the draws of the transforms after it the same whether the first
 * try fitted or not.
 */
export const RESIZED_CROP_DRAWS = 22;

/** A region of an image, in pixels. */
export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** An integer uniform in 0..n-1 from a uniform draw `u` in [0, 1). */
const uniformIndex = (u: number, n: number): number => Math.min(n - 1, Math.floor(u * n));

/**
 * The source region a random-resized crop cuts from a `width` x `height`
 * image, with torchvision's `RandomResizedCrop.get_params` rule: up to ten
 * tries of an area uniform in `scale` x the image's and an aspect ratio
 * log-uniform in `ratio`, sides rounded (Python's round), kept when they fit,
 * at a uniform position; else the central crop with the ratio clamped into
 * `ratio` (the whole image when its ratio is inside). `uniform(k)` is the k-th
 * draw in [0, 1) of this sample; draws 0 .. RESIZED_CROP_DRAWS-1 are used.
 */
export function resizedCropBox(
  t: Pick<RandomResizedCropTransform, 'scale' | 'ratio'>,
  width: number,
  height: number,
  uniform: (k: number) => number,
): Box {
  const area = width * height;
  const [logLo, logHi] = [Math.log(t.ratio[0]), Math.log(t.ratio[1])];
  for (let k = 0; k < 10; k++) {
    const target = area * (t.scale[0] + uniform(2 * k) * (t.scale[1] - t.scale[0]));
    const aspect = Math.exp(logLo + uniform(2 * k + 1) * (logHi - logLo));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: uniformIndex(uniform(20), height - h + 1), left: uniformIndex(uniform(21), width - w + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let [w, h] = [width, height];
  if (inRatio < t.ratio[0]) h = roundHalfEven(w / t.ratio[0]);
  else if (inRatio > t.ratio[1]) w = roundHalfEven(h * t.ratio[1]);
  // torchvision's fallback offsets are floor divisions, not the centre crop's round.
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), width: w, height: h };
}

/**
 * Output pixel (u, v) reads source pixel (ax * u + bx, v + by) of the decoded
 * (and resized) image when that lies in the valid window [x0, x1] x [y0, y1]
 * (inclusive; the image itself, narrowed by every crop on the way), else zero.
 */
export interface PixelMapping {
  width: number;
  height: number;
  ax: 1 | -1;
  bx: number;
  by: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Python's round(): halves go to the even neighbour (torchvision's centre-crop offsets use it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Composes the crops and flips after the resize into one {@link PixelMapping}
 * for an image of `width` x `height`. `uniform(k)` is the k-th uniform draw
 * in [0, 1) for this sample.
 */
export function planGeometry(
  transforms: readonly ImageTransform[],
  width: number,
  height: number,
  uniform: (k: number) => number,
): PixelMapping {
  const m: PixelMapping = { width, height, ax: 1, bx: 0, by: 0, x0: 0, x1: width - 1, y0: 0, y1: height - 1 };
  let draw = 0;
  const crop = (ox: number, oy: number, w: number, h: number): void => {
    // What lies outside the current view is padding, whatever the source holds there.
    const ends = [m.bx, m.ax * (m.width - 1) + m.bx];
    m.x0 = Math.max(m.x0, Math.min(...ends));
    m.x1 = Math.min(m.x1, Math.max(...ends));
    m.y0 = Math.max(m.y0, m.by);
    m.y1 = Math.min(m.y1, m.by + m.height - 1);
    m.bx += m.ax * ox;
    m.by += oy;
    m.width = w;
    m.height = h;
  };
  // torchvision's CenterCrop: pad evenly (floor on the left/top) when too small, else round((W - w) / 2).
  const centred = (have: number, want: number): number =>
    have >= want ? roundHalfEven((have - want) / 2) : -Math.floor((want - have) / 2);
  for (const t of transforms) {
    switch (t.kind) {
      case 'resize':
        break;
      case 'randomResizedCrop':
        // Applied in the decoder (resizedCropBox with the same draws); the image arrives at its output size.
        draw += RESIZED_CROP_DRAWS;
        break;
      case 'centerCrop':
        crop(centred(m.width, t.width), centred(m.height, t.height), t.width, t.height);
        break;
      case 'randomCrop': {
        const pick = (have: number, want: number, pad: number, u: number): number => {
          const span = have + 2 * pad - want;
          if (span < 0) return centred(have, want);
          return -pad + uniformIndex(u, span + 1);
        };
        const oy = pick(m.height, t.height, t.padding, uniform(draw++));
        const ox = pick(m.width, t.width, t.padding, uniform(draw++));
        crop(ox, oy, t.width, t.height);
        break;
      }
      case 'horizontalFlip':
        if (uniform(draw++) < t.p) {
          m.bx += m.ax * (m.width - 1);
          m.ax = m.ax === 1 ? -1 : 1;
        }
        break;
    }
  }
  return m;
}

/**
 * Copies an HWC uint8 image (`channels` per pixel) through `m` into `out`
 * starting at `offset`; `out` must be zero-filled where padding falls.
 */
export function copyMapped(
  src: Uint8Array,
  srcWidth: number,
  srcHeight: number,
  channels: number,
  m: PixelMapping,
  out: Uint8Array,
  offset: number,
): void {
  const rowBytes = m.width * channels;
  const [xLo, xHi] = [Math.max(0, m.x0), Math.min(srcWidth - 1, m.x1)];
  const [yLo, yHi] = [Math.max(0, m.y0), Math.min(srcHeight - 1, m.y1)];
  for (let v = 0; v < m.height; v++) {
    const sy = v + m.by;
    if (sy < yLo || sy > yHi) continue;
    const dst = offset + v * rowBytes;
    const srcRow = sy * srcWidth * channels;
    const x0 = m.bx;
    const x1 = m.ax * (m.width - 1) + m.bx;
    if (m.ax === 1 && x0 >= xLo && x1 <= xHi) {
      out.set(src.subarray(srcRow + x0 * channels, srcRow + (x1 + 1) * channels), dst);
      continue;
    }
    // The output columns whose source column lies in [xLo, xHi], worked out once per row: the
    // per-pixel bounds test made a flipped row (half of all training images) 30x slower than a copy.
    const [uA, uB] = m.ax === 1 ? [xLo - m.bx, xHi - m.bx] : [m.bx - xHi, m.bx - xLo];
    const [uLo, uHi] = [Math.max(0, uA), Math.min(m.width - 1, uB)];
    if (m.ax === 1) {
      if (uLo <= uHi) out.set(src.subarray(srcRow + (uLo + m.bx) * channels, srcRow + (uHi + m.bx + 1) * channels), dst + uLo * channels);
      continue;
    }
    let s = srcRow + (m.bx - uLo) * channels;
    let d = dst + uLo * channels;
    if (channels === 3) {
      for (let u = uLo; u <= uHi; u++, s -= 3, d += 3) {
        out[d] = src[s] as number;
        out[d + 1] = src[s + 1] as number;
        out[d + 2] = src[s + 2] as number;
      }
      continue;
    }
    for (let u = uLo; u <= uHi; u++, s -= channels, d += channels) {
      for (let c = 0; c < channels; c++) out[d + c] = src[s + c] as number;
    }
  }
}

// ---- counter-based random numbers ----

/** A 32-bit integer finaliser with full avalanche (the "lowbias32" constants). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A uniform number in [0, 1) that depends only on (seed, epoch, index, draw):
 * the randomness of random transforms, stateless so that prefetching and
 * sharding cannot change which sample gets which crop.
 */
export function sampleUniform(seed: number, epoch: number, index: number, draw: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  let h = mix32(lo ^ 0x9e3779b9);
  h = mix32(h ^ mix32(hi + 0x85ebca6b));
  h = mix32((h + epoch) >>> 0);
  h = mix32((h ^ Math.imul(index, 0x27d4eb2f)) >>> 0);
  h = mix32((h + Math.imul(draw + 1, 0x165667b1)) >>> 0);
  return h / 2 ** 32;
}
