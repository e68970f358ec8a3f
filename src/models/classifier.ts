/**
 * The classifier contract attacks, training and evaluation work against: a
 * module that maps a batch of images to logits, with the input range the
 * images live in and the preprocessing the module expects.
 *
 * Images are passed in the classifier's declared input range (e.g. [0, 1] for
 * MNIST tensors, [0, 255] for raw pixels); `preprocess` (per-channel mean and
 * std, RGB to BGR) runs inside `logits()`. An eps in the paper's pixel units
 * (0-255) becomes eps * (high - low) / 255 in the input range.
 *
 * This is the one place where images from data meet a model: datasets declare
 * the range their images come in, and `fromData` maps them linearly onto the
 * model's range, refusing images of another size or outside the declared range.
 * Evaluation, training, the CLI and the server all call it.
 */
import { type Tensor, isFloating, scope, tensor } from '../engine/index.js';
import { type Module, withFrozenParameters } from '../nn/index.js';
import type { ModelSpec } from './registry.js';

export interface ClassifierOptions {
  /** [low, high] of the images the classifier takes (default [0, 1]). */
  inputRange?: [number, number];
  /** Per-channel values subtracted after the range (e.g. ImageNet means), in input units. */
  mean?: number[];
  /** Per-channel divisors applied after the mean. */
  std?: number[];
  /** Reverse the channel order (RGB to BGR) before the module, as Caffe-style models expect. */
  bgr?: boolean;
  /** Number of classes (checked against the logits on first use). */
  classes: number;
  classNames?: string[];
  /** Shape of one image, [C, H, W]. */
  inputShape: [number, number, number];
  /** Memory format the module runs fastest in (default 'channelsLast'). */
  memoryFormat?: 'contiguous' | 'channelsLast';
}

/**
 * Checks the options of a classifier; returns its input range. Builders call
 * it before making any layer, so that a bad option (classes 0) is reported as
 * such rather than by the first layer it reaches.
 */
export function checkClassifierOptions(opts: Omit<ClassifierOptions, 'memoryFormat'>): [number, number] {
  const range = checkRange(opts.inputRange ?? [0, 1], 'Classifier: inputRange');
  if (!Number.isSafeInteger(opts.classes) || opts.classes < 2) throw new Error(`Classifier: classes must be an integer >= 2, got ${opts.classes}`);
  if (opts.classNames && opts.classNames.length !== opts.classes) {
    throw new Error(`Classifier: ${opts.classNames.length} class names given for ${opts.classes} classes`);
  }
  const shape = opts.inputShape as unknown;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new Error(`Classifier: inputShape must be [channels, height, width] of positive integers, got ${JSON.stringify(shape)}`);
  }
  const channels = opts.inputShape[0];
  for (const [name, v] of [['mean', opts.mean], ['std', opts.std]] as const) {
    if (v && v.length !== channels) throw new Error(`Classifier: ${name} has ${v.length} values for ${channels} channels`);
  }
  if (opts.std?.some((s) => !(s > 0))) throw new Error(`Classifier: std values must be positive, got [${opts.std}]`);
  return range;
}

export class Classifier {
  readonly inputRange: [number, number];
  readonly classes: number;
  readonly classNames?: string[];
  readonly inputShape: [number, number, number];
  private readonly mean: Tensor | null;
  private readonly std: Tensor | null;
  private readonly bgr: boolean;
  private readonly memoryFormat: 'contiguous' | 'channelsLast';
  /**
   * What rebuilds this classifier without its weights, recorded in its
   * checkpoints: set by `buildClassifier` and `loadForeign`; a classifier made
   * around a module of one's own sets it to be trained with `runTraining`.
   */
  spec?: ModelSpec;

  constructor(
    readonly module: Module,
    private readonly opts: ClassifierOptions,
  ) {
    const [low, high] = checkClassifierOptions(opts);
    const channels = opts.inputShape[0];
    this.inputRange = [low, high];
    this.classes = opts.classes;
    this.classNames = opts.classNames;
    this.inputShape = opts.inputShape;
    this.mean = opts.mean ? tensor(opts.mean).reshape([1, channels, 1, 1]).keep() : null;
    this.std = opts.std ? tensor(opts.std).reshape([1, channels, 1, 1]).keep() : null;
    this.bgr = opts.bgr ?? false;
    this.memoryFormat = opts.memoryFormat ?? 'channelsLast';
  }

  /** The contract the classifier was made with (what a checkpoint records), without the memory format. */
  contract(): Omit<ClassifierOptions, 'memoryFormat'> {
    const o = this.opts;
    return {
      inputRange: [...this.inputRange], classes: this.classes, inputShape: [...this.inputShape],
      ...(o.mean ? { mean: [...o.mean] } : {}), ...(o.std ? { std: [...o.std] } : {}), ...(o.bgr ? { bgr: true } : {}),
      ...(o.classNames ? { classNames: [...o.classNames] } : {}),
    };
  }

  /** How many input units one pixel value (1/255 of the range) is. */
  get pixelScale(): number {
    return (this.inputRange[1] - this.inputRange[0]) / 255;
  }

  /** Where the weights live ('cpu', 'cuda:0', ...; 'cpu' without parameters): the device precision 'auto' is resolved for. */
  get device(): string {
    return this.module.parameters()[0]?.device ?? 'cpu';
  }

  /** Logits [N, classes] for images [N, C, H, W] in the input range. */
  logits(x: Tensor): Tensor {
    this.checkImages(x, 'x');
    return scope(() => {
      let h = x;
      if (this.memoryFormat === 'channelsLast' && !h.isContiguous('channelsLast')) h = h.contiguous('channelsLast');
      if (this.mean) h = h.sub(this.mean);
      if (this.std) h = h.div(this.std);
      if (this.bgr) h = h.flip([1]);
      const out = this.module.forward(h);
      const shape = out.shape;
      if (shape.length !== 2 || shape[1] !== this.classes) {
        throw new Error(`Classifier: the module returned shape [${shape}], expected [N, ${this.classes}]`);
      }
      return out;
    });
  }

  /**
   * Images from a data source whose values lie in `dataRange` (a dataset's
   * `range`, [0, 1] when it declares none), as this classifier takes them:
   * low + (x - dataLow) (high - low) / (dataHigh - dataLow). A new tensor the
   * caller owns. `source` names the data in errors.
   */
  fromData(images: Tensor, dataRange: readonly [number, number] = [0, 1], source = 'the data'): Tensor {
    const [c, h, w] = this.inputShape;
    const s = images.shape;
    if (s.length !== 4 || s[1] !== c || s[2] !== h || s[3] !== w) {
      throw new Error(`${source} gives images of shape [${s.slice(1).join(', ')}], the model takes [${c}, ${h}, ${w}]`);
    }
    checkRange(dataRange, `${source}'s range`);
    checkImageValues(images, dataRange, source);
    const [dlo, dhi] = dataRange;
    const [lo, hi] = this.inputRange;
    // Floating data keeps its dtype (a float64 model gets float64); integer pixels become float32.
    const floating = isFloating(images.dtype);
    if (dlo === lo && dhi === hi) return floating ? images.detach() : images.to('float32');
    const scale = (hi - lo) / (dhi - dlo);
    return scope(() => (floating ? images : images.to('float32')).sub(dlo).mul(scale).add(lo));
  }

  /** Throws unless `x` is a float batch [N, C, H, W] matching the input shape. */
  checkImages(x: Tensor, name: string): void {
    const s = x.shape;
    const [c, h, w] = this.inputShape;
    if (s.length !== 4 || s[1] !== c || s[2] !== h || s[3] !== w) {
      throw new Error(`${name} must have shape [N, ${c}, ${h}, ${w}], got [${s}]`);
    }
    if (!['float32', 'float64', 'bfloat16', 'float16'].includes(x.dtype)) throw new Error(`${name} must be floating point, got ${x.dtype}`);
  }

  /**
   * Runs `fn` with the module in inference mode (batch norm uses running
   * statistics, dropout is off) unless `training`; restores each submodule's
   * previous mode afterwards.
   */
  inMode<T>(training: boolean, fn: () => T): T {
    const modules = this.module.modules();
    const previous = modules.map((m) => m.training);
    this.module.train(training);
    try {
      // Attacks differentiate with respect to the images only, so a frozen model may use folded batch norm.
      return training ? fn() : withFrozenParameters(fn);
    } finally {
      modules.forEach((m, i) => (m.training = previous[i] as boolean));
    }
  }

  /** Frees the preprocessing constants and the module's weights. */
  dispose(): void {
    this.mean?.dispose();
    this.std?.dispose();
    this.module.dispose();
  }
}

/** Throws unless `r` is [low, high] with finite low < high; returns it. */
export function checkRange(r: readonly number[], what: string): [number, number] {
  const [low, high] = Array.isArray(r) ? r : [];
  if (r.length !== 2 || !(Number.isFinite(low) && Number.isFinite(high) && (low as number) < (high as number))) {
    throw new Error(`${what} must be [low, high] with finite low < high, got [${String(r)}]`);
  }
  return [low as number, high as number];
}

/**
 * Throws unless every value of `x` is finite and inside `range` (with a
 * rounding margin of 1e-6 of its span), naming how many are not and where the
 * values lie. One pass over the batch: attacks, evaluation and training call it at entry.
 */
export function checkImageValues(x: Tensor, range: readonly [number, number], what: string): void {
  const [lo, hi] = range;
  if (x.size === 0) throw new Error(`${what}: the batch holds no image`);
  const [min, max, nonFinite] = scope(() => {
    const finite = x.isfinite();
    const bad = finite.logicalNot().sum().item();
    if (bad > 0) return [NaN, NaN, bad];
    return [x.min().item(), x.max().item(), 0];
  }) as [number, number, number];
  if (nonFinite > 0) throw new Error(`${what}: ${nonFinite} of ${x.size} values are not finite (NaN or infinite)`);
  const margin = 1e-6 * (hi - lo);
  if (min < lo - margin || max > hi + margin) {
    throw new Error(`${what}: values span [${min}, ${max}], outside the range [${lo}, ${hi}] they are declared in`);
  }
}
