/**
 * Keras layers as advml modules, for executing imported TensorFlow.js
 * LayersModels.
 *
 * Layout: Keras tensors are channels-last (NHWC). Inside an imported model
 * every rank-4 tensor is kept channels-first (NCHW, advml's and libtorch's
 * convention), so convolutions, pooling and batch norm run on libtorch's
 * kernels unchanged and the model takes the same [N, C, H, W] batches as
 * every other advml model. The transposition happens once, on the weights,
 * at import: Conv2D kernels [kh, kw, in, out] become [out, in, kh, kw] and
 * Dense kernels [in, out] become [out, in]. Layers whose meaning depends on the
 * axis order translate their axis instead: a Keras axis of a rank-4 tensor
 * (N, H, W, C) = (0, 1, 2, 3) is libtorch axis (0, 2, 3, 1); Flatten reorders
 * a rank-4 input to NHWC before flattening, so its features come out in
 * Keras' order and the following Dense kernel applies unchanged. Tensors of
 * other ranks are kept as Keras has them.
 *
 * Parameter names follow PyTorch (`weight`, `bias`, `running_mean`,
 * `running_var`) under the Keras layer name, so an imported model's state
 * dict reads `conv1.weight`, `bn_conv1.running_var`, `fc1000.bias`, ...
 */
import {
  type Tensor, avgPool2d, batchNorm, cat, conv2d, dropout, linear, maxPool2d, noGrad, ones, pad, zeros,
} from '../../engine/index.js';
import { type BatchNormParameters, Module, autocastParameters, foldedParameters, forgetDerived } from '../../nn/index.js';
import { type JsonObject, type JsonReader, type JsonValue, describeJson } from './format.js';

/** A Keras tensor shape without the batch dimension; null for a size only known at run time. */
export type KerasShape = (number | null)[];

/** Where a layer comes from in model.json, for error messages. */
export interface LayerSource {
  /** Reader of the model.json the layer is defined in. */
  r: JsonReader;
  /** JSON path of the layer entry, e.g. `modelTopology.model_config.config.layers[12]`. */
  path: string;
  /** The Keras layer name. */
  name: string;
  /** The Keras class name (Conv2D, Dense, ...). */
  className: string;
  /** The layer's `config` object. */
  config: JsonObject;
}

/** A weight a layer expects in the manifest, and where it goes. */
export interface KerasWeight {
  /** Keras weight name within the layer: kernel, bias, gamma, beta, moving_mean, ... */
  kerasName: string;
  /** Its shape in Keras layout. */
  kerasShape: number[];
  /** The module's parameter or buffer it is copied into. */
  target: Tensor;
  /** Converts the Keras-layout value to the target's layout. */
  toTorch: (t: Tensor) => Tensor;
}

/** Keras activations advml executes. */
export const KERAS_ACTIVATIONS = [
  'linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hard_sigmoid', 'tanh', 'softmax', 'softplus', 'softsign', 'swish', 'silu',
] as const;

/** A Keras activation name advml executes. */
export type KerasActivation = (typeof KERAS_ACTIVATIONS)[number];

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

/** Keras axis (batch included, non-negative) to the libtorch axis of the same tensor. */
export function torchAxis(axis: number, rank: number): number {
  return rank === 4 ? ([0, 2, 3, 1][axis] as number) : axis;
}

/** Applies a Keras activation to `x` (advml layout, Keras rank `rank` with batch); returns x itself for 'linear'. */
export function applyActivation(x: Tensor, name: KerasActivation, rank: number): Tensor {
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return x.relu();
    case 'relu6':
      return x.hardtanh(0, 6);
    case 'elu':
      return x.elu(1);
    case 'selu':
      return thenFree(x.elu(SELU_ALPHA), (e) => e.mul(SELU_SCALE));
    case 'sigmoid':
      return x.sigmoid();
    case 'hard_sigmoid':
      return thenFree(x.mul(0.2), (t) => t.add(0.5).clamp(0, 1));
    case 'tanh':
      return x.tanh();
    case 'softmax':
      return x.softmax(torchAxis(rank - 1, rank));
    case 'softplus':
      return x.softplus();
    case 'softsign':
      return thenFree(x.abs(), (a) => thenFree(a.add(1), (d) => x.div(d)));
    case 'swish':
    case 'silu':
      return thenFree(x.sigmoid(), (s) => x.mul(s));
  }
}

/** f(t), then frees t (an intermediate; autograd keeps what backward needs). */
function thenFree(t: Tensor, f: (t: Tensor) => Tensor): Tensor {
  const out = f(t);
  t.dispose();
  return out;
}

/** TensorFlow's 'same' padding of one spatial dimension: [before, after]. */
export function samePadding(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** Output size of a window op along one dimension (null stays null). */
function windowOut(size: number | null, kernel: number, stride: number, dilation: number, padding: 'valid' | 'same'): number | null {
  if (size === null) return null;
  if (padding === 'same') return Math.ceil(size / stride);
  return Math.floor((size - (kernel - 1) * dilation - 1) / stride) + 1;
}

/**
 * Base of the Keras layers: parses its config on construction, checks input
 * shapes and creates its weights in {@link KerasLayer.build}, runs in
 * {@link KerasLayer.call} on advml-layout tensors (never freeing its inputs).
 */
export abstract class KerasLayer extends Module {
  /** The Keras layer name. */
  readonly kerasName: string;
  /** The Keras class name. */
  readonly className: string;
  /** Weights expected in the manifest, filled by {@link KerasLayer.build}. */
  readonly kerasWeights: KerasWeight[] = [];
  /** Input shapes of the first call (weights are created for these). */
  protected builtFor: KerasShape[] | null = null;
  protected readonly src: LayerSource;

  /** Frees the weights' cast copies kept for frozen bf16 passes. */
  protected override releaseCaches(): void {
    forgetDerived(this);
  }

  constructor(src: LayerSource) {
    super();
    this.src = src;
    this.kerasName = src.name;
    this.className = src.className;
  }

  /** Throws a TfjsModelError naming this layer. */
  fail(problem: string): never {
    return this.src.r.fail(`${this.src.path} (layer '${this.kerasName}', ${this.className}): ${problem}`);
  }

  /** Reads a config field with this layer's path in errors. */
  protected cfg<T>(key: string, dflt: T, read: (v: unknown, path: string) => T): T {
    return this.src.r.opt(this.src.config, key, dflt, read, `${this.src.path}.config`);
  }

  /** Reads a required config field. */
  protected need<T>(key: string, read: (v: unknown, path: string) => T): T {
    const v = this.src.config[key];
    if (v === undefined || v === null) this.fail(`config.${key} is required`);
    return read(v, `${this.src.path}.config.${key}`);
  }

  /** Rejects channels_first layouts: advml imports channels-last Keras models. */
  protected channelsLast(): void {
    const f = this.cfg('data_format', 'channels_last', (v, p) => this.src.r.string(v, p));
    if (f !== 'channels_last') this.fail(`data_format '${f}' is not supported (only channels_last)`);
  }

  /** Reads an activation name. */
  protected activation(key = 'activation'): KerasActivation {
    const v = this.src.config[key];
    if (v === undefined || v === null) return 'linear';
    if (typeof v !== 'string') this.fail(`config.${key} must be an activation name, got ${describeJson(v)}`);
    if (!(KERAS_ACTIVATIONS as readonly string[]).includes(v)) {
      this.fail(`activation '${v}' is not supported (supported: ${KERAS_ACTIVATIONS.join(', ')})`);
    }
    return v as KerasActivation;
  }

  /**
   * Checks the input shapes, creates the weights on the first call (later
   * calls of a shared layer must match it), and returns the output shape.
   */
  build(inputs: KerasShape[]): KerasShape {
    const out = this.shapeAndWeights(inputs, this.builtFor === null);
    this.builtFor ??= inputs;
    return out;
  }

  /** Checks `inputs`, creates weights when `create`, returns the output shape. */
  protected abstract shapeAndWeights(inputs: KerasShape[], create: boolean): KerasShape;

  /** Runs the layer on advml-layout tensors; inputs are not freed (the output may be an input). */
  abstract call(inputs: Tensor[]): Tensor;

  /** The layer on one input. */
  forward(x: Tensor): Tensor {
    return this.call([x]);
  }

  /** Exactly one input of known rank; returns it. */
  protected single(inputs: KerasShape[], rank?: number): KerasShape {
    if (inputs.length !== 1) this.fail(`takes one input, got ${inputs.length}`);
    const s = inputs[0] as KerasShape;
    if (rank !== undefined && s.length !== rank) {
      this.fail(`expects inputs of rank ${rank + 1} (batch included), got shape [null, ${s.join(', ')}]`);
    }
    return s;
  }

  /** Registers a parameter (or buffer) `torchName` filled from Keras weight `kerasName`. */
  protected weight(torchName: string, kerasName: string, kerasShape: number[], torchShape: number[], toTorch: (t: Tensor) => Tensor, opts: { buffer?: boolean; init?: number } = {}): Tensor {
    const init = opts.init ?? 0;
    const t = init === 1 ? ones(torchShape) : zeros(torchShape);
    const target = opts.buffer ? this.registerBuffer(torchName, t) : this.registerParameter(torchName, t);
    this.kerasWeights.push({ kerasName, kerasShape, target, toTorch });
    return target;
  }
}

const same = (t: Tensor): Tensor => t;

/** The channels of the last dimension, which must be known. */
function channelsOf(layer: KerasLayer, s: KerasShape): number {
  const c = s[s.length - 1];
  if (c === null || c === undefined) return layer.fail(`needs the channel count of its input, got shape [null, ${s.join(', ')}]`);
  return c;
}

/** Keras Conv2D (and, with depthwise, DepthwiseConv2D): 'valid' or TensorFlow 'same' padding, strides, dilation, groups, bias, activation. */
export class KerasConv2D extends KerasLayer {
  readonly filters: number | null;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly dilation: [number, number];
  readonly padding: 'valid' | 'same';
  readonly useBias: boolean;
  readonly groups: number;
  readonly depthMultiplier: number;
  /** The activation applied after the convolution (may be set to 'linear' to expose logits). */
  act: KerasActivation;
  /** The weight [out, in/groups, kh, kw] (registered as `weight`), once built. */
  weightT: Tensor | null = null;
  /** The bias [out] (registered as `bias`), or null without one. */
  biasT: Tensor | null = null;
  private convGroups = 1;

  constructor(src: LayerSource, readonly depthwise = false) {
    super(src);
    const r = src.r;
    this.channelsLast();
    this.filters = depthwise ? null : this.need('filters', (v, p) => r.int(v, p, 1));
    this.kernelSize = this.need('kernel_size', (v, p) => r.intPair(v, p));
    this.strides = this.cfg('strides', [1, 1], (v, p) => r.intPair(v, p));
    this.dilation = this.cfg('dilation_rate', [1, 1], (v, p) => r.intPair(v, p));
    const padding = this.cfg('padding', 'valid', (v, p) => r.string(v, p));
    if (padding !== 'valid' && padding !== 'same') this.fail(`padding '${padding}' is not supported (valid or same)`);
    this.padding = padding;
    this.useBias = this.cfg('use_bias', true, (v, p) => r.boolean(v, p));
    this.groups = depthwise ? 1 : this.cfg('groups', 1, (v, p) => r.int(v, p, 1));
    this.depthMultiplier = depthwise ? this.cfg('depth_multiplier', 1, (v, p) => r.int(v, p, 1)) : 1;
    this.act = this.activation();
  }

  protected shapeAndWeights(inputs: KerasShape[], create: boolean): KerasShape {
    const [h, w, c] = this.single(inputs, 3) as [number | null, number | null, number | null];
    const cin = channelsOf(this, [c]);
    const [kh, kw] = this.kernelSize;
    let cout: number;
    if (this.depthwise) {
      cout = cin * this.depthMultiplier;
      if (create) {
        this.convGroups = cin;
        const m = this.depthMultiplier;
        this.weightT = this.weight('weight', 'depthwise_kernel', [kh, kw, cin, m], [cout, 1, kh, kw], (k) =>
          thenFree(k.permute([2, 3, 0, 1]), (t) => t.reshape([cout, 1, kh, kw])));
      }
    } else {
      cout = this.filters as number;
      if (cin % this.groups || cout % this.groups) this.fail(`channels (${cin} in, ${cout} out) must be divisible by groups (${this.groups})`);
      if (create) {
        this.convGroups = this.groups;
        const per = cin / this.groups;
        this.weightT = this.weight('weight', 'kernel', [kh, kw, per, cout], [cout, per, kh, kw], (k) => k.permute([3, 2, 0, 1]));
      }
    }
    if (create && this.useBias) this.biasT = this.weight('bias', 'bias', [cout], [cout], same);
    const first = this.builtFor?.[0]?.[2];
    if (!create && first !== cin) this.fail(`a shared layer called with ${cin} input channels after ${first}`);
    const oh = windowOut(h, kh, this.strides[0], this.dilation[0], this.padding);
    const ow = windowOut(w, kw, this.strides[1], this.dilation[1], this.padding);
    if ((oh !== null && oh < 1) || (ow !== null && ow < 1)) this.fail(`input of ${h}x${w} is smaller than the ${kh}x${kw} kernel (dilation ${this.dilation.join('x')})`);
    return [oh, ow, cout];
  }

  call(inputs: Tensor[]): Tensor {
    const [weight, bias] = autocastParameters(this, this.weightT as Tensor, this.biasT);
    return this.convolve(inputs[0] as Tensor, weight, bias);
  }

  /**
   * This convolution and the batch norm after it as one convolution (the model
   * is frozen and `bn` infers; see src/nn/fold.ts). Needs a linear activation.
   */
  callFolded(inputs: Tensor[], bn: KerasBatchNormalization): Tensor {
    if (this.act !== 'linear') this.fail('only a convolution without activation folds with the batch norm after it');
    const [weight, bias] = foldedParameters(bn, { weight: this.weightT as Tensor, bias: this.biasT }, bn.foldingParameters());
    return this.convolve(inputs[0] as Tensor, weight, bias);
  }

  private convolve(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    let h = x;
    let padding: [number, number] = [0, 0];
    if (this.padding === 'same') {
      const [, , H, W] = x.shape as [number, number, number, number];
      const [t, b] = samePadding(H, this.kernelSize[0], this.strides[0], this.dilation[0]);
      const [l, r] = samePadding(W, this.kernelSize[1], this.strides[1], this.dilation[1]);
      if (t === b && l === r) padding = [t, l];
      else h = pad(x, [l, r, t, b]);
    }
    const out = conv2d(h, weight, bias, { stride: this.strides, padding, dilation: this.dilation, groups: this.convGroups });
    if (h !== x) h.dispose();
    const act = applyActivation(out, this.act, 4);
    if (act !== out) out.dispose();
    return act;
  }
}

/** Keras Dense on the last axis: kernel [in, units] becomes a Linear weight [units, in]. */
export class KerasDense extends KerasLayer {
  readonly units: number;
  readonly useBias: boolean;
  /** The activation after the affine map (may be set to 'linear' to expose logits). */
  act: KerasActivation;
  /** The Linear weight [units, in] (registered as `weight`), once built. */
  weightT: Tensor | null = null;
  /** The bias [units] (registered as `bias`), or null without one. */
  biasT: Tensor | null = null;
  private rank = 2;

  constructor(src: LayerSource) {
    super(src);
    this.units = this.need('units', (v, p) => src.r.int(v, p, 1));
    this.useBias = this.cfg('use_bias', true, (v, p) => src.r.boolean(v, p));
    this.act = this.activation();
  }

  protected shapeAndWeights(inputs: KerasShape[], create: boolean): KerasShape {
    const s = this.single(inputs);
    if (s.length < 1) this.fail('needs an input of rank 2 or more');
    const cin = channelsOf(this, s);
    if (create) {
      this.rank = s.length + 1;
      this.weightT = this.weight('weight', 'kernel', [cin, this.units], [this.units, cin], (k) => k.transpose(0, 1));
      if (this.useBias) this.biasT = this.weight('bias', 'bias', [this.units], [this.units], same);
    } else if (s.length + 1 !== this.rank) {
      this.fail('a shared Dense layer called on inputs of different ranks');
    }
    return [...s.slice(0, -1), this.units];
  }

  call(inputs: Tensor[]): Tensor {
    const x = inputs[0] as Tensor;
    const [weight, bias] = autocastParameters(this, this.weightT as Tensor, this.biasT);
    let out: Tensor;
    if (this.rank === 4) {
      const nhwc = x.permute([0, 2, 3, 1]);
      const y = linear(nhwc, weight, bias);
      nhwc.dispose();
      out = thenFree(y, (t) => t.permute([0, 3, 1, 2]));
    } else {
      out = linear(x, weight, bias);
    }
    const act = applyActivation(out, this.act, this.rank);
    if (act !== out) out.dispose();
    return act;
  }
}

/** Keras BatchNormalization over the channel (last) axis; Keras momentum m is PyTorch momentum 1 - m. */
export class KerasBatchNormalization extends KerasLayer {
  readonly eps: number;
  readonly momentum: number;
  readonly center: boolean;
  readonly scale: boolean;
  private gamma: Tensor | null = null;
  private beta: Tensor | null = null;
  private mean: Tensor | null = null;
  private variance: Tensor | null = null;
  private readonly axis: number;

  constructor(src: LayerSource) {
    super(src);
    const r = src.r;
    this.eps = this.cfg('epsilon', 0.001, (v, p) => r.number(v, p));
    this.momentum = this.cfg('momentum', 0.99, (v, p) => r.number(v, p));
    this.center = this.cfg('center', true, (v, p) => r.boolean(v, p));
    this.scale = this.cfg('scale', true, (v, p) => r.boolean(v, p));
    const axis = this.src.config.axis ?? -1;
    const list = Array.isArray(axis) ? axis : [axis];
    if (list.length !== 1 || typeof list[0] !== 'number' || !Number.isInteger(list[0])) this.fail(`config.axis must be one integer, got ${describeJson(axis)}`);
    this.axis = list[0];
  }

  protected shapeAndWeights(inputs: KerasShape[], create: boolean): KerasShape {
    const s = this.single(inputs);
    const rank = s.length + 1;
    const axis = this.axis < 0 ? this.axis + rank : this.axis;
    if (axis !== rank - 1) this.fail(`normalising over axis ${this.axis} of a rank-${rank} input is not supported (only the channel axis, -1)`);
    const c = channelsOf(this, s);
    if (create) {
      if (this.scale) this.gamma = this.weight('weight', 'gamma', [c], [c], same, { init: 1 });
      if (this.center) this.beta = this.weight('bias', 'beta', [c], [c], same);
      this.mean = this.weight('running_mean', 'moving_mean', [c], [c], same, { buffer: true });
      this.variance = this.weight('running_var', 'moving_variance', [c], [c], same, { buffer: true, init: 1 });
    }
    return s;
  }

  /** What folding into the convolution before needs (src/nn/fold.ts). */
  foldingParameters(): BatchNormParameters {
    return { weight: this.gamma, bias: this.beta, runningMean: this.mean as Tensor, runningVar: this.variance as Tensor, eps: this.eps };
  }

  call(inputs: Tensor[]): Tensor {
    // A training-mode pass updates the statistics without a version bump: drop the folded filters.
    if (this.training) forgetDerived(this);
    return batchNorm(inputs[0] as Tensor, {
      weight: this.gamma,
      bias: this.beta,
      runningMean: this.mean,
      runningVar: this.variance,
      training: this.training,
      momentum: 1 - this.momentum,
      eps: this.eps,
    });
  }
}

/**
 * Keras Activation, ReLU, LeakyReLU, Softmax and Rescaling: element-wise maps
 * (softmax along an axis) without weights. `act` is the activation of an
 * Activation or Softmax layer; setting it to 'linear' makes the layer the identity.
 */
export class KerasElementwise extends KerasLayer {
  /** The activation of an Activation layer (may be set to 'linear' to expose logits). */
  act: KerasActivation = 'linear';
  private readonly fn: (x: Tensor, rank: number) => Tensor;
  private rank = 2;

  constructor(src: LayerSource) {
    super(src);
    const r = src.r;
    switch (src.className) {
      case 'Activation':
        this.act = this.activation();
        this.fn = (x, rank) => applyActivation(x, this.act, rank);
        break;
      case 'ReLU': {
        const max = this.cfg<number | null>('max_value', null, (v, p) => r.number(v, p));
        const slope = this.cfg('negative_slope', 0, (v, p) => r.number(v, p));
        const threshold = this.cfg('threshold', 0, (v, p) => r.number(v, p));
        if (threshold !== 0) this.fail(`threshold ${threshold} is not supported (only 0)`);
        this.fn = (x) => {
          const y = slope === 0 ? x.relu() : x.leakyRelu(slope);
          return max === null ? y : thenFree(y, (t) => t.clamp(null, max));
        };
        break;
      }
      case 'LeakyReLU': {
        const alpha = this.cfg('alpha', this.cfg('negative_slope', 0.3, (v, p) => r.number(v, p)), (v, p) => r.number(v, p));
        this.fn = (x) => x.leakyRelu(alpha);
        break;
      }
      case 'Softmax': {
        const axis = this.cfg('axis', -1, (v, p) => r.int(v, p, -8));
        this.act = 'softmax';
        this.fn = (x, rank) => (this.act === 'linear' ? x : x.softmax(torchAxis(axis < 0 ? axis + rank : axis, rank)));
        break;
      }
      case 'Rescaling': {
        const scale = this.need('scale', (v, p) => r.number(v, p));
        const offset = this.cfg('offset', 0, (v, p) => r.number(v, p));
        this.fn = (x) => thenFree(x.mul(scale), (t) => t.add(offset));
        break;
      }
      default:
        this.fail('not an element-wise layer');
    }
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    const s = this.single(inputs);
    this.rank = s.length + 1;
    return s;
  }

  call(inputs: Tensor[]): Tensor {
    return this.fn(inputs[0] as Tensor, this.rank);
  }
}

/** Keras MaxPooling2D and AveragePooling2D, 'valid' or TensorFlow 'same' (averages exclude the padding). */
export class KerasPooling2D extends KerasLayer {
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'valid' | 'same';
  readonly max: boolean;

  constructor(src: LayerSource) {
    super(src);
    const r = src.r;
    this.channelsLast();
    this.max = src.className === 'MaxPooling2D';
    this.poolSize = this.cfg('pool_size', [2, 2], (v, p) => r.intPair(v, p));
    this.strides = this.cfg('strides', this.poolSize, (v, p) => r.intPair(v, p));
    const padding = this.cfg('padding', 'valid', (v, p) => r.string(v, p));
    if (padding !== 'valid' && padding !== 'same') this.fail(`padding '${padding}' is not supported (valid or same)`);
    this.padding = padding;
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    const [h, w, c] = this.single(inputs, 3) as [number | null, number | null, number | null];
    const oh = windowOut(h, this.poolSize[0], this.strides[0], 1, this.padding);
    const ow = windowOut(w, this.poolSize[1], this.strides[1], 1, this.padding);
    if ((oh !== null && oh < 1) || (ow !== null && ow < 1)) this.fail(`input of ${h}x${w} is smaller than the ${this.poolSize.join('x')} window`);
    return [oh, ow, c];
  }

  call(inputs: Tensor[]): Tensor {
    const x = inputs[0] as Tensor;
    const [kh, kw] = this.poolSize;
    const opts = { stride: this.strides };
    if (this.padding === 'valid') return this.max ? maxPool2d(x, this.poolSize, opts) : avgPool2d(x, this.poolSize, opts);
    const [, , H, W] = x.shape as [number, number, number, number];
    const [t, b] = samePadding(H, kh, this.strides[0]);
    const [l, r] = samePadding(W, kw, this.strides[1]);
    if (t + b + l + r === 0) return this.max ? maxPool2d(x, this.poolSize, opts) : avgPool2d(x, this.poolSize, opts);
    if (this.max) return thenFree(pad(x, [l, r, t, b], -Infinity), (p) => maxPool2d(p, this.poolSize, opts));
    if (t === b && l === r && 2 * t <= kh && 2 * l <= kw) {
      return avgPool2d(x, this.poolSize, { ...opts, padding: [t, l], countIncludePad: false });
    }
    // Asymmetric: window sums over zero padding, divided by how many real pixels each window saw.
    const sums = thenFree(pad(x, [l, r, t, b]), (p) => avgPool2d(p, this.poolSize, opts));
    const counts = noGrad(() => {
      const one = ones([1, 1, H, W], { dtype: x.dtype, device: x.device });
      const padded = pad(one, [l, r, t, b]);
      one.dispose();
      return thenFree(padded, (p) => avgPool2d(p, this.poolSize, opts));
    });
    const out = sums.div(counts);
    sums.dispose();
    counts.dispose();
    return out;
  }
}

/** Keras GlobalAveragePooling2D and GlobalMaxPooling2D (keepdims supported). */
export class KerasGlobalPooling2D extends KerasLayer {
  readonly keepDims: boolean;
  readonly max: boolean;

  constructor(src: LayerSource) {
    super(src);
    this.channelsLast();
    this.max = src.className === 'GlobalMaxPooling2D';
    this.keepDims = this.cfg('keepdims', false, (v, p) => src.r.boolean(v, p));
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    const [, , c] = this.single(inputs, 3) as [number | null, number | null, number | null];
    return this.keepDims ? [1, 1, c] : [c];
  }

  call(inputs: Tensor[]): Tensor {
    const x = inputs[0] as Tensor;
    return this.max ? x.max([2, 3], { keepDim: this.keepDims }) : x.mean([2, 3], { keepDim: this.keepDims });
  }
}

/** Keras Add, Subtract, Multiply, Average, Maximum, Minimum: inputs of equal shape. */
export class KerasMerge extends KerasLayer {
  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    if (inputs.length < 2) this.fail(`takes at least two inputs, got ${inputs.length}`);
    if (this.className === 'Subtract' && inputs.length !== 2) this.fail(`takes exactly two inputs, got ${inputs.length}`);
    const first = inputs[0] as KerasShape;
    const out = [...first];
    for (const s of inputs.slice(1)) {
      const clash = s.length !== first.length || s.some((d, i) => d !== null && out[i] !== null && d !== out[i]);
      if (clash) this.fail(`input shapes differ: ${inputs.map((x) => `[null, ${x.join(', ')}]`).join(' and ')}`);
      s.forEach((d, i) => {
        if (out[i] === null) out[i] = d;
      });
    }
    return out;
  }

  call(inputs: Tensor[]): Tensor {
    const [a, ...rest] = inputs as [Tensor, ...Tensor[]];
    let acc = a;
    for (const b of rest) {
      let next: Tensor;
      switch (this.className) {
        case 'Add':
        case 'Average':
          next = acc.add(b);
          break;
        case 'Subtract':
          next = acc.sub(b);
          break;
        case 'Multiply':
          next = acc.mul(b);
          break;
        case 'Maximum':
          next = acc.maximum(b);
          break;
        default:
          next = acc.minimum(b);
      }
      if (acc !== a) acc.dispose();
      acc = next;
    }
    if (this.className === 'Average') return thenFree(acc, (t) => t.div(inputs.length));
    return acc;
  }
}

/** Keras Concatenate along its axis (the channel axis by default). */
export class KerasConcatenate extends KerasLayer {
  private readonly axis: number;
  private dim = 1;

  constructor(src: LayerSource) {
    super(src);
    this.axis = this.cfg('axis', -1, (v, p) => src.r.int(v, p, -8));
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    if (inputs.length < 2) this.fail(`takes at least two inputs, got ${inputs.length}`);
    const first = inputs[0] as KerasShape;
    const rank = first.length + 1;
    const axis = this.axis < 0 ? this.axis + rank : this.axis;
    if (axis < 1 || axis >= rank) this.fail(`axis ${this.axis} is out of range for rank ${rank}`);
    const out = [...first];
    for (const s of inputs.slice(1)) {
      const clash = s.length !== first.length || s.some((d, i) => i !== axis - 1 && d !== null && out[i] !== null && d !== out[i]);
      if (clash) this.fail(`input shapes differ outside axis ${this.axis}: ${inputs.map((x) => `[null, ${x.join(', ')}]`).join(' and ')}`);
      const a = out[axis - 1];
      const d = s[axis - 1];
      out[axis - 1] = a === null || a === undefined || d === null || d === undefined ? null : a + d;
    }
    this.dim = torchAxis(axis, rank);
    return out;
  }

  call(inputs: Tensor[]): Tensor {
    return cat(inputs, this.dim);
  }
}

/** Keras ZeroPadding2D: ((top, bottom), (left, right)) zeros around the image. */
export class KerasZeroPadding2D extends KerasLayer {
  /** [top, bottom, left, right]. */
  readonly pads: [number, number, number, number];

  constructor(src: LayerSource) {
    super(src);
    this.channelsLast();
    const r = src.r;
    const v = src.config.padding ?? 1;
    const path = `${src.path}.config.padding`;
    if (typeof v === 'number') {
      const p = r.int(v, path);
      this.pads = [p, p, p, p];
    } else {
      const a = r.array(v, path);
      if (a.length !== 2) r.expect(path, 'an integer, a list of two, or two lists of two', v);
      if (typeof a[0] === 'number') {
        const [ph, pw] = [r.int(a[0], `${path}[0]`), r.int(a[1], `${path}[1]`)];
        this.pads = [ph, ph, pw, pw];
      } else {
        const hh = r.array(a[0], `${path}[0]`);
        const ww = r.array(a[1], `${path}[1]`);
        if (hh.length !== 2 || ww.length !== 2) r.expect(path, 'two lists of two', v);
        this.pads = [r.int(hh[0], `${path}[0][0]`), r.int(hh[1], `${path}[0][1]`), r.int(ww[0], `${path}[1][0]`), r.int(ww[1], `${path}[1][1]`)];
      }
    }
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    const [h, w, c] = this.single(inputs, 3) as [number | null, number | null, number | null];
    const [t, b, l, r] = this.pads;
    return [h === null ? null : h + t + b, w === null ? null : w + l + r, c];
  }

  call(inputs: Tensor[]): Tensor {
    const [t, b, l, r] = this.pads;
    return pad(inputs[0] as Tensor, [l, r, t, b]);
  }
}

/** Keras Flatten: features in Keras' (H, W, C) order, so the next Dense kernel applies unchanged. */
export class KerasFlatten extends KerasLayer {
  private rank = 2;

  constructor(src: LayerSource) {
    super(src);
    this.channelsLast();
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    const s = this.single(inputs);
    if (s.some((d) => d === null)) this.fail(`needs a fully known input shape, got [null, ${s.join(', ')}]`);
    this.rank = s.length + 1;
    return [(s as number[]).reduce((a, b) => a * b, 1)];
  }

  call(inputs: Tensor[]): Tensor {
    const x = inputs[0] as Tensor;
    if (this.rank === 2) return x;
    if (this.rank === 4) return thenFree(x.permute([0, 2, 3, 1]), (t) => t.flatten(1));
    return x.flatten(1);
  }
}

/** Keras Dropout: active in training mode only (noise_shape is refused). */
export class KerasDropout extends KerasLayer {
  readonly rate: number;

  constructor(src: LayerSource) {
    super(src);
    this.rate = this.need('rate', (v, p) => src.r.number(v, p));
    if (!(this.rate >= 0 && this.rate < 1)) this.fail(`rate must be in [0, 1), got ${this.rate}`);
    const ns = src.config.noise_shape;
    if (ns !== undefined && ns !== null) this.fail('noise_shape is not supported');
  }

  protected shapeAndWeights(inputs: KerasShape[]): KerasShape {
    return this.single(inputs);
  }

  call(inputs: Tensor[]): Tensor {
    const x = inputs[0] as Tensor;
    return this.training && this.rate > 0 ? dropout(x, this.rate, true, this.dropoutGenerator) : x;
  }
}

/** Keras InputLayer: the model's input and its shape. */
export class KerasInputLayer extends KerasLayer {
  /** The input shape without the batch dimension. */
  readonly shape: KerasShape;

  constructor(src: LayerSource) {
    super(src);
    this.shape = inputShapeOf(src, true) as KerasShape;
  }

  protected shapeAndWeights(): KerasShape {
    return this.shape;
  }

  call(inputs: Tensor[]): Tensor {
    return inputs[0] as Tensor;
  }
}

/**
 * @internal The input shape a layer config declares (batch_input_shape,
 * batch_shape or input_shape), without the batch dimension; null when it
 * declares none and `required` is false.
 */
export function inputShapeOf(src: LayerSource, required: boolean): KerasShape | null {
  const c = src.config;
  const r = src.r;
  const read = (v: JsonValue, key: string, withBatch: boolean): KerasShape => {
    const a = r.array(v, `${src.path}.config.${key}`);
    const dims = a.map((d, i) => (d === null ? null : r.int(d, `${src.path}.config.${key}[${i}]`, 1)));
    return withBatch ? dims.slice(1) : dims;
  };
  if (c.batch_input_shape !== undefined && c.batch_input_shape !== null) return read(c.batch_input_shape, 'batch_input_shape', true);
  if (c.batch_shape !== undefined && c.batch_shape !== null) return read(c.batch_shape, 'batch_shape', true);
  if (c.input_shape !== undefined && c.input_shape !== null) return read(c.input_shape, 'input_shape', false);
  if (required) r.fail(`${src.path} (layer '${src.name}', ${src.className}): no batch_input_shape, batch_shape or input_shape`);
  return null;
}

/** Keras class names advml imports, and their implementations. */
export const LAYER_TYPES: Record<string, (src: LayerSource) => KerasLayer> = {
  InputLayer: (s) => new KerasInputLayer(s),
  Conv2D: (s) => new KerasConv2D(s),
  DepthwiseConv2D: (s) => new KerasConv2D(s, true),
  Dense: (s) => new KerasDense(s),
  BatchNormalization: (s) => new KerasBatchNormalization(s),
  Activation: (s) => new KerasElementwise(s),
  ReLU: (s) => new KerasElementwise(s),
  LeakyReLU: (s) => new KerasElementwise(s),
  Softmax: (s) => new KerasElementwise(s),
  Rescaling: (s) => new KerasElementwise(s),
  MaxPooling2D: (s) => new KerasPooling2D(s),
  AveragePooling2D: (s) => new KerasPooling2D(s),
  GlobalAveragePooling2D: (s) => new KerasGlobalPooling2D(s),
  GlobalMaxPooling2D: (s) => new KerasGlobalPooling2D(s),
  Add: (s) => new KerasMerge(s),
  Subtract: (s) => new KerasMerge(s),
  Multiply: (s) => new KerasMerge(s),
  Average: (s) => new KerasMerge(s),
  Maximum: (s) => new KerasMerge(s),
  Minimum: (s) => new KerasMerge(s),
  Concatenate: (s) => new KerasConcatenate(s),
  ZeroPadding2D: (s) => new KerasZeroPadding2D(s),
  Flatten: (s) => new KerasFlatten(s),
  Dropout: (s) => new KerasDropout(s),
};

/** Aliases Keras versions use for the same classes. */
export const LAYER_ALIASES: Record<string, string> = {
  Convolution2D: 'Conv2D',
  MaxPool2D: 'MaxPooling2D',
  AvgPool2D: 'AveragePooling2D',
  AveragePooling2D: 'AveragePooling2D',
  GlobalAvgPool2D: 'GlobalAveragePooling2D',
  GlobalMaxPool2D: 'GlobalMaxPooling2D',
};
