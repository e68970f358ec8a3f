/**
 * Inception v3 (Szegedy et al., "Rethinking the Inception Architecture for
 * Computer Vision", 2015) as the adversarial-training paper uses it (Kurakin,
 * Goodfellow and Bengio, "Adversarial Machine Learning at Scale", 2016):
 * 299x299 inputs, an auxiliary classifier on the last 17x17 grid, dropout
 * before the final classifier. Label smoothing is the trainer's business.
 *
 * Parameter and buffer names are those of torchvision's `inception_v3`
 * (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`,
 * `AuxLogits.fc.weight`, `fc.bias`, ...), batch norm uses eps 0.001 as there,
 * so torchvision state dicts load unchanged (for width 1, no extra blocks).
 *
 * Two of the paper's capacity knobs (section 4.4):
 * - the width multiplier rho (`width`) scales the number of filters of every
 *   convolution: c filters become max(1, round(rho * c)); concatenations and
 *   the classifiers follow. rho = 1 is the standard model.
 * - extra Inception blocks (`extraBlocks`) make the "deeper model": k more
 *   blocks of each grid size, each a copy of the last block of that grid in
 *   the standard model (35x35: InceptionA with 64 pool features like
 *   Mixed_5d; 17x17: InceptionC with 192 7x7 channels like Mixed_6e; 8x8:
 *   InceptionE like Mixed_7c), inserted after it. They are named on from the
 *   last standard letter: Mixed_5e, Mixed_5f, ...; Mixed_6f, ...; Mixed_7d, ...
 *   The auxiliary head reads the output of the last 17x17 block.
 */
import { type Generator, type Tensor, avgPool2d, cat, maxPool2d, noGrad, randn, scope, where } from '../engine/index.js';
import {
  type ActivationName, type ActivationOptions, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, Module,
  consume, convBnActivation,
} from '../nn/index.js';

type Pair = number | [number, number];

/** Extra Inception blocks per grid size (the paper's "deeper model"); each count defaults to 0. */
export interface InceptionExtraBlocks {
  /** More InceptionA blocks on the 35x35 grid, after Mixed_5d (named Mixed_5e, Mixed_5f, ...). */
  grid35?: number;
  /** More InceptionC blocks on the 17x17 grid, after Mixed_6e (named Mixed_6f, Mixed_6g, ...). */
  grid17?: number;
  /** More InceptionE blocks on the 8x8 grid, after Mixed_7c (named Mixed_7d, Mixed_7e, ...). */
  grid8?: number;
}

/** Options of {@link InceptionV3}. */
export interface InceptionV3Options {
  /** Number of classes (default 1000). */
  classes?: number;
  /** Image channels (default 3). */
  inChannels?: number;
  /** The paper's width multiplier rho: scales the filters of every convolution (default 1, the standard model). */
  width?: number;
  /** Extra Inception blocks of each grid size (default none: the standard 11 blocks). */
  extraBlocks?: InceptionExtraBlocks;
  /** Build the auxiliary classifier `AuxLogits` on the last 17x17 grid (default true, as torchvision). */
  auxLogits?: boolean;
  /** Dropout probability before the final classifier (default 0.5, torchvision's; TF-slim used 0.2). */
  dropout?: number;
  /** Activation after every batch norm (default 'relu'). */
  activation?: ActivationName;
  activationOptions?: ActivationOptions;
  /**
   * Weight initialisation: 'torchvision' (default) draws every convolution and
   * dense weight from a normal with std 0.1 truncated at two std (0.01 and
   * 0.001 in the aux head), as torchvision and TF-slim do; 'default' keeps
   * PyTorch's per-layer defaults (uniform), cheaper when a state dict is
   * loaded right after.
   */
  init?: 'torchvision' | 'default';
  /** Draws the initial weights from this generator (default: the global one). */
  generator?: Generator;
}

/** Most extra blocks of one grid size (letters run out after 'z'). */
export const MAX_EXTRA_BLOCKS = 20;

interface Act {
  name: ActivationName;
  opts: ActivationOptions;
}

interface Ctx {
  act: Act;
  g?: Generator;
  /** Scales a standard filter count by rho. */
  ch: (c: number) => number;
}

/**
 * Convolution (no bias) - batch norm (eps 0.001) - activation: torchvision's
 * `BasicConv2d`, children `conv` and `bn`.
 */
export class BasicConv2d extends Module {
  /** The convolution (no bias). */
  readonly conv: Conv2d;
  /** Batch norm with eps 0.001. */
  readonly bn: BatchNorm2d;

  /** A conv-bn-activation unit from `inC` to `outC` channels. */
  constructor(
    inC: number,
    readonly outChannels: number,
    kernel: Pair,
    private readonly act: Act,
    opts: { stride?: Pair; padding?: Pair; generator?: Generator } = {},
  ) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(inC, outChannels, kernel, { stride: opts.stride, padding: opts.padding, bias: false, generator: opts.generator }));
    this.bn = this.registerModule('bn', new BatchNorm2d(outChannels, { eps: 0.001 }));
  }

  /** act(bn(conv(x))); `x` is not freed. */
  forward(x: Tensor): Tensor {
    return convBnActivation(this.conv, this.bn, x, this.act);
  }
}

/** Runs a chain of units on `x` (not freed), freeing each intermediate at its last use. */
function chain(x: Tensor, units: BasicConv2d[]): Tensor {
  let h = x;
  for (const u of units) h = h === x ? u.forward(h) : consume(h, (t) => u.forward(t));
  return h;
}

/** Concatenates along channels and frees the parts. */
function join(parts: Tensor[]): Tensor {
  const out = cat(parts, 1);
  for (const p of parts) p.dispose();
  return out;
}

/** 3x3 average pooling, stride 1, padding 1 (counting the padding, as torchvision) and then a unit. */
function poolBranch(x: Tensor, unit: BasicConv2d): Tensor {
  return consume(avgPool2d(x, 3, { stride: 1, padding: 1 }), (t) => unit.forward(t));
}

/** Common shape of the Inception blocks: the channels they output. */
abstract class InceptionBlock extends Module {
  /** Channels of the block's output. */
  abstract readonly outChannels: number;
}

/** The 35x35 block (torchvision's InceptionA): 1x1, 5x5, double 3x3 and pooled 1x1 branches. */
export class InceptionA extends InceptionBlock {
  readonly outChannels: number;
  readonly branch1x1: BasicConv2d;
  readonly branch5x5_1: BasicConv2d;
  readonly branch5x5_2: BasicConv2d;
  readonly branch3x3dbl_1: BasicConv2d;
  readonly branch3x3dbl_2: BasicConv2d;
  readonly branch3x3dbl_3: BasicConv2d;
  readonly branch_pool: BasicConv2d;

  /** @param poolFeatures standard filter count of the pooled branch (32 or 64), scaled by rho. */
  constructor(inC: number, poolFeatures: number, c: Ctx) {
    super();
    const u = (name: string, i: number, o: number, k: Pair, padding: Pair = 0): BasicConv2d =>
      this.registerModule(name, new BasicConv2d(i, c.ch(o), k, c.act, { padding, generator: c.g }));
    this.branch1x1 = u('branch1x1', inC, 64, 1);
    this.branch5x5_1 = u('branch5x5_1', inC, 48, 1);
    this.branch5x5_2 = u('branch5x5_2', c.ch(48), 64, 5, 2);
    this.branch3x3dbl_1 = u('branch3x3dbl_1', inC, 64, 1);
    this.branch3x3dbl_2 = u('branch3x3dbl_2', c.ch(64), 96, 3, 1);
    this.branch3x3dbl_3 = u('branch3x3dbl_3', c.ch(96), 96, 3, 1);
    this.branch_pool = u('branch_pool', inC, poolFeatures, 1);
    this.outChannels = c.ch(64) + c.ch(64) + c.ch(96) + c.ch(poolFeatures);
  }

  /** The four branches concatenated; `x` is not freed. */
  forward(x: Tensor): Tensor {
    return join([
      this.branch1x1.forward(x),
      chain(x, [this.branch5x5_1, this.branch5x5_2]),
      chain(x, [this.branch3x3dbl_1, this.branch3x3dbl_2, this.branch3x3dbl_3]),
      poolBranch(x, this.branch_pool),
    ]);
  }
}

/** The 35x35 to 17x17 reduction (torchvision's InceptionB, Mixed_6a). */
export class InceptionB extends InceptionBlock {
  readonly outChannels: number;
  readonly branch3x3: BasicConv2d;
  readonly branch3x3dbl_1: BasicConv2d;
  readonly branch3x3dbl_2: BasicConv2d;
  readonly branch3x3dbl_3: BasicConv2d;

  /** A reduction block taking `inC` channels. */
  constructor(inC: number, c: Ctx) {
    super();
    const u = (name: string, i: number, o: number, k: Pair, stride: Pair = 1, padding: Pair = 0): BasicConv2d =>
      this.registerModule(name, new BasicConv2d(i, c.ch(o), k, c.act, { stride, padding, generator: c.g }));
    this.branch3x3 = u('branch3x3', inC, 384, 3, 2);
    this.branch3x3dbl_1 = u('branch3x3dbl_1', inC, 64, 1);
    this.branch3x3dbl_2 = u('branch3x3dbl_2', c.ch(64), 96, 3, 1, 1);
    this.branch3x3dbl_3 = u('branch3x3dbl_3', c.ch(96), 96, 3, 2);
    this.outChannels = c.ch(384) + c.ch(96) + inC;
  }

  /** Strided 3x3, strided double 3x3 and 3x3 max pooling, concatenated; `x` is not freed. */
  forward(x: Tensor): Tensor {
    return join([
      this.branch3x3.forward(x),
      chain(x, [this.branch3x3dbl_1, this.branch3x3dbl_2, this.branch3x3dbl_3]),
      maxPool2d(x, 3, { stride: 2 }),
    ]);
  }
}

/** The 17x17 block with factorised 7x7 convolutions (torchvision's InceptionC). */
export class InceptionC extends InceptionBlock {
  readonly outChannels: number;
  readonly branch1x1: BasicConv2d;
  readonly branch7x7_1: BasicConv2d;
  readonly branch7x7_2: BasicConv2d;
  readonly branch7x7_3: BasicConv2d;
  readonly branch7x7dbl_1: BasicConv2d;
  readonly branch7x7dbl_2: BasicConv2d;
  readonly branch7x7dbl_3: BasicConv2d;
  readonly branch7x7dbl_4: BasicConv2d;
  readonly branch7x7dbl_5: BasicConv2d;
  readonly branch_pool: BasicConv2d;

  /** @param channels7x7 standard width of the 7x7 branches (128, 160 or 192), scaled by rho. */
  constructor(inC: number, channels7x7: number, c: Ctx) {
    super();
    const u = (name: string, i: number, o: number, k: Pair, padding: Pair = 0): BasicConv2d =>
      this.registerModule(name, new BasicConv2d(i, c.ch(o), k, c.act, { padding, generator: c.g }));
    const c7 = channels7x7;
    const s7 = c.ch(c7);
    this.branch1x1 = u('branch1x1', inC, 192, 1);
    this.branch7x7_1 = u('branch7x7_1', inC, c7, 1);
    this.branch7x7_2 = u('branch7x7_2', s7, c7, [1, 7], [0, 3]);
    this.branch7x7_3 = u('branch7x7_3', s7, 192, [7, 1], [3, 0]);
    this.branch7x7dbl_1 = u('branch7x7dbl_1', inC, c7, 1);
    this.branch7x7dbl_2 = u('branch7x7dbl_2', s7, c7, [7, 1], [3, 0]);
    this.branch7x7dbl_3 = u('branch7x7dbl_3', s7, c7, [1, 7], [0, 3]);
    this.branch7x7dbl_4 = u('branch7x7dbl_4', s7, c7, [7, 1], [3, 0]);
    this.branch7x7dbl_5 = u('branch7x7dbl_5', s7, 192, [1, 7], [0, 3]);
    this.branch_pool = u('branch_pool', inC, 192, 1);
    this.outChannels = 4 * c.ch(192);
  }

  /** The four branches concatenated; `x` is not freed. */
  forward(x: Tensor): Tensor {
    return join([
      this.branch1x1.forward(x),
      chain(x, [this.branch7x7_1, this.branch7x7_2, this.branch7x7_3]),
      chain(x, [this.branch7x7dbl_1, this.branch7x7dbl_2, this.branch7x7dbl_3, this.branch7x7dbl_4, this.branch7x7dbl_5]),
      poolBranch(x, this.branch_pool),
    ]);
  }
}

/** The 17x17 to 8x8 reduction (torchvision's InceptionD, Mixed_7a). */
export class InceptionD extends InceptionBlock {
  readonly outChannels: number;
  readonly branch3x3_1: BasicConv2d;
  readonly branch3x3_2: BasicConv2d;
  readonly branch7x7x3_1: BasicConv2d;
  readonly branch7x7x3_2: BasicConv2d;
  readonly branch7x7x3_3: BasicConv2d;
  readonly branch7x7x3_4: BasicConv2d;

  /** A reduction block taking `inC` channels. */
  constructor(inC: number, c: Ctx) {
    super();
    const u = (name: string, i: number, o: number, k: Pair, stride: Pair = 1, padding: Pair = 0): BasicConv2d =>
      this.registerModule(name, new BasicConv2d(i, c.ch(o), k, c.act, { stride, padding, generator: c.g }));
    this.branch3x3_1 = u('branch3x3_1', inC, 192, 1);
    this.branch3x3_2 = u('branch3x3_2', c.ch(192), 320, 3, 2);
    this.branch7x7x3_1 = u('branch7x7x3_1', inC, 192, 1);
    this.branch7x7x3_2 = u('branch7x7x3_2', c.ch(192), 192, [1, 7], 1, [0, 3]);
    this.branch7x7x3_3 = u('branch7x7x3_3', c.ch(192), 192, [7, 1], 1, [3, 0]);
    this.branch7x7x3_4 = u('branch7x7x3_4', c.ch(192), 192, 3, 2);
    this.outChannels = c.ch(320) + c.ch(192) + inC;
  }

  /** Two strided convolution branches and 3x3 max pooling, concatenated; `x` is not freed. */
  forward(x: Tensor): Tensor {
    return join([
      chain(x, [this.branch3x3_1, this.branch3x3_2]),
      chain(x, [this.branch7x7x3_1, this.branch7x7x3_2, this.branch7x7x3_3, this.branch7x7x3_4]),
      maxPool2d(x, 3, { stride: 2 }),
    ]);
  }
}

/** The 8x8 block with expanded filter banks (torchvision's InceptionE). */
export class InceptionE extends InceptionBlock {
  readonly outChannels: number;
  readonly branch1x1: BasicConv2d;
  readonly branch3x3_1: BasicConv2d;
  readonly branch3x3_2a: BasicConv2d;
  readonly branch3x3_2b: BasicConv2d;
  readonly branch3x3dbl_1: BasicConv2d;
  readonly branch3x3dbl_2: BasicConv2d;
  readonly branch3x3dbl_3a: BasicConv2d;
  readonly branch3x3dbl_3b: BasicConv2d;
  readonly branch_pool: BasicConv2d;

  /** An 8x8 block taking `inC` channels. */
  constructor(inC: number, c: Ctx) {
    super();
    const u = (name: string, i: number, o: number, k: Pair, padding: Pair = 0): BasicConv2d =>
      this.registerModule(name, new BasicConv2d(i, c.ch(o), k, c.act, { padding, generator: c.g }));
    this.branch1x1 = u('branch1x1', inC, 320, 1);
    this.branch3x3_1 = u('branch3x3_1', inC, 384, 1);
    this.branch3x3_2a = u('branch3x3_2a', c.ch(384), 384, [1, 3], [0, 1]);
    this.branch3x3_2b = u('branch3x3_2b', c.ch(384), 384, [3, 1], [1, 0]);
    this.branch3x3dbl_1 = u('branch3x3dbl_1', inC, 448, 1);
    this.branch3x3dbl_2 = u('branch3x3dbl_2', c.ch(448), 384, 3, 1);
    this.branch3x3dbl_3a = u('branch3x3dbl_3a', c.ch(384), 384, [1, 3], [0, 1]);
    this.branch3x3dbl_3b = u('branch3x3dbl_3b', c.ch(384), 384, [3, 1], [1, 0]);
    this.branch_pool = u('branch_pool', inC, 192, 1);
    this.outChannels = c.ch(320) + 4 * c.ch(384) + c.ch(192);
  }

  /** The branches (the 3x3 ones split into 1x3 and 3x1 halves) concatenated; `x` is not freed. */
  forward(x: Tensor): Tensor {
    const b3 = this.branch3x3_1.forward(x);
    const b3a = this.branch3x3_2a.forward(b3);
    const b3b = consume(b3, (t) => this.branch3x3_2b.forward(t));
    const d = chain(x, [this.branch3x3dbl_1, this.branch3x3dbl_2]);
    const da = this.branch3x3dbl_3a.forward(d);
    const db = consume(d, (t) => this.branch3x3dbl_3b.forward(t));
    return join([this.branch1x1.forward(x), b3a, b3b, da, db, poolBranch(x, this.branch_pool)]);
  }
}

/**
 * The auxiliary classifier on the last 17x17 grid (torchvision's
 * InceptionAux): 5x5 average pooling with stride 3, a 1x1 unit (128), a 5x5
 * unit (768), global average pooling and a dense layer. Needs a 17x17 grid of
 * at least 17 (inputs of about 299 pixels).
 */
export class InceptionAux extends Module {
  readonly conv0: BasicConv2d;
  readonly conv1: BasicConv2d;
  readonly fc: Linear;

  /** An auxiliary head from `inC` channels to `classes` logits. */
  constructor(inC: number, classes: number, c: Ctx) {
    super();
    this.conv0 = this.registerModule('conv0', new BasicConv2d(inC, c.ch(128), 1, c.act, { generator: c.g }));
    this.conv1 = this.registerModule('conv1', new BasicConv2d(c.ch(128), c.ch(768), 5, c.act, { generator: c.g }));
    this.fc = this.registerModule('fc', new Linear(c.ch(768), classes, { generator: c.g }));
  }

  /** Auxiliary logits [N, classes]; `x` is not freed. */
  forward(x: Tensor): Tensor {
    let h = avgPool2d(x, 5, { stride: 3 });
    h = consume(h, (t) => this.conv0.forward(t));
    h = consume(h, (t) => this.conv1.forward(t));
    h = consume(h, (t) => t.mean([2, 3]));
    return consume(h, (t) => this.fc.forward(t));
  }
}

/**
 * Fills `w` with N(0, std^2) draws truncated to two standard deviations, by
 * rejection as TensorFlow's truncated_normal does: draws outside the bounds
 * are redrawn until none is left (each round keeps 95.4% of them). Several
 * times faster here than the inverse-CDF sampler for tens of millions of weights.
 */
function truncatedNormalFill(w: Tensor, std: number, g?: Generator): void {
  noGrad(() => {
    w.normal_(0, std, g);
    for (let round = 0; round < 1000; round++) {
      const done = scope(() => {
        const outside = w.abs().gt(2 * std);
        if (!outside.any().item()) return true;
        w.copy_(where(outside, randn(w.shape, { generator: g, dtype: w.dtype }).mul(std), w));
        return false;
      });
      if (done) return;
    }
    throw new Error('truncatedNormalFill: draws kept falling outside two standard deviations');
  });
}

/** Logits and, in training mode with the auxiliary head, the auxiliary logits. */
export interface InceptionOutputs {
  /** Logits of the main classifier [N, classes]. */
  logits: Tensor;
  /** Logits of the auxiliary classifier [N, classes], or null in inference mode or without `AuxLogits`. */
  aux: Tensor | null;
}

/** Extra block names: Mixed_5e, Mixed_5f, ... after the last standard letter. */
function extraName(grid: 5 | 6 | 7, last: string, i: number): string {
  return `Mixed_${grid}${String.fromCharCode(last.charCodeAt(0) + 1 + i)}`;
}

function extraCount(v: number | undefined, what: string): number {
  const k = v ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > MAX_EXTRA_BLOCKS) {
    throw new Error(`InceptionV3: extraBlocks.${what} must be an integer in [0, ${MAX_EXTRA_BLOCKS}], got ${v}`);
  }
  return k;
}

/**
 * Inception v3. `forward(x)` returns the main logits in both modes (the
 * auxiliary head is not run); training code that wants the auxiliary loss
 * (TF-slim adds it with weight 0.4; the weight is the trainer's choice) calls
 * {@link InceptionV3.forwardWithAux}, which also returns the auxiliary logits
 * in training mode. Inputs are [N, 3, 299, 299] scaled to [-1, 1] (the
 * Classifier's inputRange); any size of at least 75 works without the
 * auxiliary head.
 */
export class InceptionV3 extends Module {
  readonly Conv2d_1a_3x3: BasicConv2d;
  readonly Conv2d_2a_3x3: BasicConv2d;
  readonly Conv2d_2b_3x3: BasicConv2d;
  readonly Conv2d_3b_1x1: BasicConv2d;
  readonly Conv2d_4a_3x3: BasicConv2d;
  /** The auxiliary classifier, or null when built with `auxLogits: false`. */
  readonly AuxLogits: InceptionAux | null;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly dropout: Dropout;
  readonly fc: Linear;
  /** The Inception blocks in order, 35x35 ones (Mixed_5*) first; names as registered. */
  readonly blocks: [string, Module][];
  /** Index in `blocks` of the last 17x17 block, whose output feeds the auxiliary head. */
  private readonly auxAfter: number;
  /** The width multiplier rho this model was built with. */
  readonly width: number;
  /** Channels of the final feature vector (2048 at rho 1). */
  readonly features: number;

  /** Builds a freshly initialised model (see {@link InceptionV3Options.init}). */
  constructor(opts: InceptionV3Options = {}) {
    super();
    const rho = opts.width ?? 1;
    if (!(rho > 0 && Number.isFinite(rho))) throw new Error(`InceptionV3: width (rho) must be a positive number, got ${rho}`);
    const classes = opts.classes ?? 1000;
    if (!Number.isInteger(classes) || classes < 1) throw new Error(`InceptionV3: classes must be a positive integer, got ${classes}`);
    const p = opts.dropout ?? 0.5;
    if (!(p >= 0 && p < 1)) throw new Error(`InceptionV3: dropout must be in [0, 1), got ${p}`);
    const extra = opts.extraBlocks ?? {};
    const n35 = extraCount(extra.grid35, 'grid35');
    const n17 = extraCount(extra.grid17, 'grid17');
    const n8 = extraCount(extra.grid8, 'grid8');
    this.width = rho;
    const c: Ctx = {
      act: { name: opts.activation ?? 'relu', opts: opts.activationOptions ?? {} },
      g: opts.generator,
      ch: (n) => Math.max(1, Math.round(n * rho)),
    };
    const unit = (name: string, i: number, o: number, k: number, o2: { stride?: number; padding?: number } = {}): BasicConv2d =>
      this.registerModule(name, new BasicConv2d(i, c.ch(o), k, c.act, { ...o2, generator: c.g }));
    this.Conv2d_1a_3x3 = unit('Conv2d_1a_3x3', opts.inChannels ?? 3, 32, 3, { stride: 2 });
    this.Conv2d_2a_3x3 = unit('Conv2d_2a_3x3', c.ch(32), 32, 3);
    this.Conv2d_2b_3x3 = unit('Conv2d_2b_3x3', c.ch(32), 64, 3, { padding: 1 });
    this.Conv2d_3b_1x1 = unit('Conv2d_3b_1x1', c.ch(64), 80, 1);
    this.Conv2d_4a_3x3 = unit('Conv2d_4a_3x3', c.ch(80), 192, 3);

    this.blocks = [];
    let inC = c.ch(192);
    const add = (name: string, b: InceptionBlock): void => {
      this.blocks.push([name, this.registerModule(name, b)]);
      inC = b.outChannels;
    };
    add('Mixed_5b', new InceptionA(inC, 32, c));
    add('Mixed_5c', new InceptionA(inC, 64, c));
    add('Mixed_5d', new InceptionA(inC, 64, c));
    for (let i = 0; i < n35; i++) add(extraName(5, 'd', i), new InceptionA(inC, 64, c));
    add('Mixed_6a', new InceptionB(inC, c));
    add('Mixed_6b', new InceptionC(inC, 128, c));
    add('Mixed_6c', new InceptionC(inC, 160, c));
    add('Mixed_6d', new InceptionC(inC, 160, c));
    add('Mixed_6e', new InceptionC(inC, 192, c));
    for (let i = 0; i < n17; i++) add(extraName(6, 'e', i), new InceptionC(inC, 192, c));
    this.auxAfter = this.blocks.length - 1;
    this.AuxLogits = opts.auxLogits ?? true ? this.registerModule('AuxLogits', new InceptionAux(inC, classes, c)) : null;
    add('Mixed_7a', new InceptionD(inC, c));
    add('Mixed_7b', new InceptionE(inC, c));
    add('Mixed_7c', new InceptionE(inC, c));
    for (let i = 0; i < n8; i++) add(extraName(7, 'c', i), new InceptionE(inC, c));
    this.features = inC;
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.dropout = this.registerModule('dropout', new Dropout(p));
    this.fc = this.registerModule('fc', new Linear(inC, classes, { generator: c.g }));
    const init = opts.init ?? 'torchvision';
    if (init === 'torchvision') this.initWeights(opts.generator);
    else if (init !== 'default') throw new Error(`InceptionV3: init must be 'torchvision' or 'default', got '${String(init)}'`);
  }

  /** torchvision's init: truncated normal std 0.1 for every conv and dense weight, 0.01 / 0.001 in the aux head. */
  private initWeights(g?: Generator): void {
    const fill = (w: Tensor, std: number): void => truncatedNormalFill(w, std, g);
    for (const m of this.modules()) if (m instanceof Conv2d || m instanceof Linear) fill(m.weight, 0.1);
    if (this.AuxLogits) {
      fill(this.AuxLogits.conv1.conv.weight, 0.01);
      fill(this.AuxLogits.fc.weight, 0.001);
    }
  }

  /** Main logits [N, classes]; the auxiliary head is not run. `x` is not freed. */
  forward(x: Tensor): Tensor {
    return this.run(x, false).logits;
  }

  /**
   * Main logits and, in training mode when the model has `AuxLogits`, the
   * auxiliary logits computed from the last 17x17 grid (null otherwise, as
   * torchvision returns them only in training mode). `x` is not freed.
   */
  forwardWithAux(x: Tensor): InceptionOutputs {
    return this.run(x, this.training && this.AuxLogits !== null);
  }

  private run(x: Tensor, withAux: boolean): InceptionOutputs {
    let h = this.Conv2d_1a_3x3.forward(x);
    h = consume(h, (t) => this.Conv2d_2a_3x3.forward(t));
    h = consume(h, (t) => this.Conv2d_2b_3x3.forward(t));
    h = consume(h, (t) => maxPool2d(t, 3, { stride: 2 }));
    h = consume(h, (t) => this.Conv2d_3b_1x1.forward(t));
    h = consume(h, (t) => this.Conv2d_4a_3x3.forward(t));
    h = consume(h, (t) => maxPool2d(t, 3, { stride: 2 }));
    let aux: Tensor | null = null;
    for (let i = 0; i < this.blocks.length; i++) {
      const block = (this.blocks[i] as [string, Module])[1];
      h = consume(h, (t) => block.forward(t));
      if (withAux && i === this.auxAfter && this.AuxLogits) aux = this.AuxLogits.forward(h);
    }
    h = consume(h, (t) => this.avgpool.forward(t));
    h = consume(h, (t) => this.dropout.forward(t));
    h = consume(h, (t) => t.flatten(1));
    return { logits: consume(h, (t) => this.fc.forward(t)), aux };
  }
}
