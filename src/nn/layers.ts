/**
 * Layers with PyTorch's parameter names, shapes and defaults, so their state
 * dicts load into torch.nn models and back.
 */
import {
  type Generator, type Tensor, adaptiveAvgPool2d, avgPool2d, batchNorm, batchNormRelu, cat, conv2d, dropout, empty, full, linear, maxPool2d,
  noGrad, ones, scalar, scope, zeros,
} from '../engine/index.js';
import { Module } from './module.js';
import { torchDefaultWeight_, uniform_ } from './init.js';
import { convBn } from './fold.js';
import { autocastParameters, forgetDerived } from './frozen.js';

type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Learnable bias (default true; off before batch norm). */
  bias?: boolean;
  generator?: Generator;
}

function positiveInt(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
}

/** 2-D convolution; weight [out, in/groups, kH, kW], bias [out]. PyTorch's default init. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: Pair,
    readonly opts: Conv2dOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    positiveInt('Conv2d inChannels', inChannels);
    positiveInt('Conv2d outChannels', outChannels);
    positiveInt('Conv2d groups', groups);
    if (inChannels % groups || outChannels % groups) {
      throw new Error(`Conv2d: channels (${inChannels} in, ${outChannels} out) must be divisible by groups (${groups})`);
    }
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    this.weight = this.registerParameter('weight', torchDefaultWeight_(empty([outChannels, inChannels / groups, kh, kw]), opts.generator));
    if (opts.bias ?? true) {
      const bound = 1 / Math.sqrt((inChannels / groups) * kh * kw);
      this.bias = this.registerParameter('bias', uniform_(empty([outChannels]), -bound, bound, opts.generator));
    } else {
      this.bias = null;
    }
  }

  forward(x: Tensor): Tensor {
    const [weight, bias] = autocastParameters(this, this.weight, this.bias);
    return conv2d(x, weight, bias, this.opts);
  }

  protected override releaseCaches(): void {
    forgetDerived(this);
  }
}

/** y = x W^T + b; weight [out, in]. PyTorch's default init. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; generator?: Generator } = {},
  ) {
    super();
    positiveInt('Linear inFeatures', inFeatures);
    positiveInt('Linear outFeatures', outFeatures);
    this.weight = this.registerParameter('weight', torchDefaultWeight_(empty([outFeatures, inFeatures]), opts.generator));
    const bound = 1 / Math.sqrt(inFeatures);
    this.bias = opts.bias ?? true ? this.registerParameter('bias', uniform_(empty([outFeatures]), -bound, bound, opts.generator)) : null;
  }

  forward(x: Tensor): Tensor {
    const [weight, bias] = autocastParameters(this, this.weight, this.bias);
    return linear(x, weight, bias);
  }

  protected override releaseCaches(): void {
    forgetDerived(this);
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** Weight of each new batch in the running statistics (PyTorch convention, default 0.1; TensorFlow's decay d is 1 - d here). */
  momentum?: number;
  /** Learnable scale and shift (default true). */
  affine?: boolean;
}

/**
 * Batch normalisation over channels: batch statistics in training mode (and
 * the running ones updated), running statistics in inference mode. Buffers
 * running_mean, running_var and num_batches_tracked as in PyTorch.
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;

  private globalBatchForward(x: Tensor, reduce: (stats: Tensor) => Tensor): Tensor {
    return globalBatchNorm(this, x, reduce);
  }

  constructor(
    readonly numFeatures: number,
    readonly opts: BatchNormOptions = {},
  ) {
    super();
    positiveInt('BatchNorm2d numFeatures', numFeatures);
    const affine = opts.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter('bias', zeros([numFeatures])) : null;
    this.runningMean = this.registerBuffer('running_mean', zeros([numFeatures]));
    this.runningVar = this.registerBuffer('running_var', ones([numFeatures]));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', scalar(0, { dtype: 'int64' }));
  }

  protected override releaseCaches(): void {
    forgetDerived(this);
  }

  /**
   * Sums per-channel statistics over data-parallel replicas, differentiably
   * (set by distributed's syncBatchNorm). When set, training-mode batches are
   * normalised with statistics of the global batch; unset, each replica uses
   * its own batch (the default, as PyTorch's BatchNorm2d).
   */
  reduceStatistics?: (stats: Tensor) => Tensor;

  forward(x: Tensor): Tensor {
    if (this.training) this.countTrainingBatch();
    if (this.training && this.reduceStatistics) return this.globalBatchForward(x, this.reduceStatistics);
    return batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training,
      momentum: this.opts.momentum ?? 0.1,
      eps: this.opts.eps ?? 1e-5,
    });
  }

  /**
   * relu(this(x) + residual) in training mode as one native node, for the
   * inputs batchNormRelu accepts (src/nn/fused.ts checks; use
   * batchNormActivation() rather than this).
   */
  forwardRelu(x: Tensor, residual: Tensor | null): Tensor {
    if (!this.training || !this.weight || !this.bias) throw new Error('BatchNorm2d.forwardRelu: needs an affine layer in training mode');
    this.countTrainingBatch();
    return batchNormRelu(x, { weight: this.weight, bias: this.bias, runningMean: this.runningMean, runningVar: this.runningVar }, {
      residual,
      momentum: this.opts.momentum ?? 0.1,
      eps: this.opts.eps ?? 1e-5,
    });
  }

  private countTrainingBatch(): void {
    this.numBatchesTracked.add_(1);
    // The running statistics change without a version bump (libtorch writes them inside the kernel):
    // drop the filters folded from the old ones.
    forgetDerived(this);
  }
}

/**
 * Batch norm with statistics of the global batch: per-channel sums of x and
 * x^2 and the element count are summed over replicas by `reduce`, giving
 * mean = S / n and the biased variance Q / n - mean^2; the running variance
 * gets the unbiased n / (n - 1) correction, as at::batch_norm does.
 */
function globalBatchNorm(bn: BatchNorm2d, x: Tensor, reduce: (stats: Tensor) => Tensor): Tensor {
  return scope(() => {
    const c = bn.numFeatures;
    const dims = [0, 2, 3];
    const count = (x.shape[0] as number) * (x.shape[2] as number) * (x.shape[3] as number);
    const total = reduce(cat([x.sum(dims), x.square().sum(dims), full([1], count, { dtype: x.dtype })]));
    const n = total.narrow(0, 2 * c, 1);
    const mean = total.narrow(0, 0, c).div(n);
    const variance = total.narrow(0, c, c).div(n).sub(mean.square());
    const shape = [1, c, 1, 1];
    let y = x.sub(mean.reshape(shape)).mul(variance.add(bn.opts.eps ?? 1e-5).rsqrt().reshape(shape));
    if (bn.weight && bn.bias) y = y.mul(bn.weight.reshape(shape)).add(bn.bias.reshape(shape));
    const momentum = bn.opts.momentum ?? 0.1;
    noGrad(() => {
      const nTotal = n.item();
      bn.runningMean.mul_(1 - momentum).add_(mean.detach(), momentum);
      bn.runningVar.mul_(1 - momentum).add_(variance.detach().mul(nTotal / Math.max(nTotal - 1, 1)), momentum);
    });
    return y;
  });
}

/**
 * Zeroes elements with probability p in training mode (the rest scaled by
 * 1/(1-p)); identity in inference mode. The mask comes from
 * `dropoutGenerator` (the option here, or Module.setDropoutGenerator), else
 * from the global generator.
 */
export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    opts: { generator?: Generator } = {},
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
    this.dropoutGenerator = opts.generator;
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.dropoutGenerator);
  }
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: { stride?: Pair; padding?: Pair; ceilMode?: boolean } = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.opts);
  }
}

export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: { stride?: Pair; padding?: Pair; ceilMode?: boolean; countIncludePad?: boolean } = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.opts);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}

/** Flattens dimensions startDim..endDim (default: all but the batch dimension). */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Runs modules in order, naming them 0, 1, 2, ... as torch.nn.Sequential. Each
 * intermediate result is freed as soon as the next module has consumed it:
 * freeing at last use keeps the working set hot (autograd holds what backward
 * needs on its own).
 */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  forward(x: Tensor): Tensor {
    let out = x;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i] as Module;
      const after = this.layers[i + 1];
      // A convolution followed by batch norm runs as one (folded when the model is frozen).
      const fused = layer instanceof Conv2d && after instanceof BatchNorm2d;
      const next = fused ? convBn(layer, after, out) : layer.forward(out);
      if (fused) i++;
      if (out !== x && next !== out) out.dispose();
      out = next;
    }
    return out;
  }
}
