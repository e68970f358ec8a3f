/**
 * The small MNIST CNN: conv 3x3 (32) - act - max pool 2 - conv 3x3 (64) - act
 * - max pool 2 - dense 128 - act - [dropout] - dense classes. For 28x28 inputs.
 * `hidden` widens the dense layer alone (Madry et al.'s MNIST CNN has 1024).
 */
import { type Generator, type Tensor } from '../engine/index.js';
import {
  Activation, type ActivationName, type ActivationOptions, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, Sequential, activate,
  activateThenMaxPool, consume as then,
} from '../nn/index.js';

export interface MnistCnnOptions {
  inChannels?: number;
  classes?: number;
  /** Input height and width (default 28). */
  imageSize?: number;
  /** Scales the filters of every convolution and the hidden dense layer (the paper's rho; default 1). */
  width?: number;
  /** Units of the hidden dense layer (default 128 times the width). */
  hidden?: number;
  activation?: ActivationName;
  activationOptions?: ActivationOptions;
  /** Dropout probability before the last dense layer (default 0: no dropout layer, as the original network). */
  dropout?: number;
  generator?: Generator;
}

/** Most units the hidden dense layer may have. */
export const MAX_HIDDEN = 65536;

export class MnistCnn extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly fc1: Linear;
  readonly fc2: Linear;
  /** Before fc2; null without dropout. */
  readonly dropout: Dropout | null;
  private readonly act: ActivationName;
  private readonly actOpts: ActivationOptions;

  constructor(opts: MnistCnnOptions = {}) {
    super();
    const w = opts.width ?? 1;
    if (!(w > 0)) throw new Error(`MnistCnn: width must be positive, got ${w}`);
    const c1 = Math.max(1, Math.round(32 * w));
    const c2 = Math.max(1, Math.round(64 * w));
    const hidden = opts.hidden ?? Math.max(1, Math.round(128 * w));
    // The bound keeps a typo from asking for a layer no memory holds, as MAX_WIDTH does.
    if (!(Number.isInteger(hidden) && hidden > 0 && hidden <= MAX_HIDDEN)) throw new Error(`MnistCnn: hidden must be an integer in [1, ${MAX_HIDDEN}], got ${hidden}`);
    const size = opts.imageSize ?? 28;
    const spatial = Math.floor((Math.floor((size - 2) / 2) - 2) / 2);
    if (spatial < 1) throw new Error(`MnistCnn: imageSize ${size} is too small (need at least 10)`);
    const g = opts.generator;
    this.conv1 = this.registerModule('conv1', new Conv2d(opts.inChannels ?? 1, c1, 3, { generator: g }));
    this.conv2 = this.registerModule('conv2', new Conv2d(c1, c2, 3, { generator: g }));
    this.fc1 = this.registerModule('fc1', new Linear(c2 * spatial * spatial, hidden, { generator: g }));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, opts.classes ?? 10, { generator: g }));
    const p = opts.dropout ?? 0;
    if (!(p >= 0 && p < 1)) throw new Error(`MnistCnn: dropout must be in [0, 1), got ${p}`);
    this.dropout = p > 0 ? this.registerModule('dropout', new Dropout(p)) : null;
    this.act = opts.activation ?? 'relu';
    this.actOpts = opts.activationOptions ?? {};
  }

  /**
   * The same network as a Sequential of layers (conv1, act, pool, conv2, act,
   * pool, flatten, fc1, act, fc2) sharing this model's parameters, for
   * exporters (TensorFlow.js). Dispose the model, not the Sequential.
   */
  toSequential(): Sequential {
    const act = (): Activation => new Activation(this.act, this.actOpts);
    const head = this.dropout ? [this.dropout, this.fc2] : [this.fc2];
    return new Sequential(this.conv1, act(), new MaxPool2d(2), this.conv2, act(), new MaxPool2d(2), new Flatten(), this.fc1, act(), ...head);
  }

  forward(x: Tensor): Tensor {
    let h = this.conv1.forward(x);
    h = then(h, (t) => activateThenMaxPool(t, this.act, this.actOpts, 2));
    h = then(h, (t) => this.conv2.forward(t));
    h = then(h, (t) => activateThenMaxPool(t, this.act, this.actOpts, 2));
    // Flatten in NCHW order whatever the memory format, as PyTorch's .flatten(1).
    h = then(h, (t) => t.flatten(1));
    h = then(h, (t) => this.fc1.forward(t));
    h = then(h, (t) => activate(t, this.act, this.actOpts));
    const dropout = this.dropout;
    if (dropout) h = then(h, (t) => dropout.forward(t));
    return then(h, (t) => this.fc2.forward(t));
  }
}
