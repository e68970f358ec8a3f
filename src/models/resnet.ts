/**
 * ResNet for small images (He et al.'s CIFAR family): depth 6n + 2 — a 3x3
 * stem, three stages of n basic blocks with 16, 32 and 64 filters (stride 2
 * entering stages 2 and 3), global average pooling and a dense classifier.
 * Shortcuts that change shape use a 1x1 convolution with batch norm
 * (torchvision's "downsample"), and parameter names follow torchvision.
 */
import { type Generator, type Tensor } from '../engine/index.js';
import {
  type ActivationName, type ActivationOptions, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, Sequential,
  consume, convBnActivation, init,
} from '../nn/index.js';

export interface ResNetOptions {
  /** 6n + 2: 20, 32, 44, 56, 110 (default 20). */
  depth?: number;
  inChannels?: number;
  classes?: number;
  /** Scales every convolution's filters (the paper's rho; default 1). */
  width?: number;
  activation?: ActivationName;
  activationOptions?: ActivationOptions;
  generator?: Generator;
}

interface Act {
  name: ActivationName;
  opts: ActivationOptions;
}

export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inC: number, outC: number, stride: number, private readonly act: Act, g?: Generator) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(outC));
    this.conv2 = this.registerModule('conv2', new Conv2d(outC, outC, 3, { padding: 1, bias: false, generator: g }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outC));
    this.downsample =
      stride !== 1 || inC !== outC
        ? this.registerModule('downsample', new Sequential(new Conv2d(inC, outC, 1, { stride, bias: false, generator: g }), new BatchNorm2d(outC)))
        : null;
  }

  forward(x: Tensor): Tensor {
    const h = convBnActivation(this.conv1, this.bn1, x, this.act);
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    const out = consume(h, (t) => convBnActivation(this.conv2, this.bn2, t, this.act, shortcut));
    if (shortcut !== x) shortcut.dispose();
    return out;
  }
}

export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly fc: Linear;
  private readonly act: Act;

  constructor(opts: ResNetOptions = {}) {
    super();
    const depth = opts.depth ?? 20;
    if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
      throw new Error(`ResNet: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got ${depth}`);
    }
    const w = opts.width ?? 1;
    if (!(w > 0)) throw new Error(`ResNet: width must be positive, got ${w}`);
    const n = (depth - 2) / 6;
    const widths = [16, 32, 64].map((c) => Math.max(1, Math.round(c * w))) as [number, number, number];
    const g = opts.generator;
    this.act = { name: opts.activation ?? 'relu', opts: opts.activationOptions ?? {} };
    this.conv1 = this.registerModule('conv1', new Conv2d(opts.inChannels ?? 3, widths[0], 3, { padding: 1, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(widths[0]));
    const stage = (inC: number, outC: number, stride: number): Sequential =>
      new Sequential(...Array.from({ length: n }, (_, i) => new BasicBlock(i === 0 ? inC : outC, outC, i === 0 ? stride : 1, this.act, g)));
    this.layer1 = this.registerModule('layer1', stage(widths[0], widths[0], 1));
    this.layer2 = this.registerModule('layer2', stage(widths[0], widths[1], 2));
    this.layer3 = this.registerModule('layer3', stage(widths[1], widths[2], 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.fc = this.registerModule('fc', new Linear(widths[2], opts.classes ?? 10, { generator: g }));
    for (const m of this.modules()) if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { generator: g });
  }

  forward(x: Tensor): Tensor {
    let h = convBnActivation(this.conv1, this.bn1, x, this.act);
    h = consume(h, (t) => this.layer1.forward(t));
    h = consume(h, (t) => this.layer2.forward(t));
    h = consume(h, (t) => this.layer3.forward(t));
    h = consume(h, (t) => this.avgpool.forward(t));
    h = consume(h, (t) => t.flatten(1));
    return consume(h, (t) => this.fc.forward(t));
  }
}

/** Options of {@link ResNetImageNet}. */
export interface ResNetImageNetOptions extends Omit<ResNetOptions, 'depth'> {
  /** 50, 101 or 152: torchvision's bottleneck ResNets (default 50). */
  depth?: number;
}

/** Bottleneck blocks per stage of torchvision's resnet50, resnet101 and resnet152. */
const BOTTLENECK_STAGES: Record<number, [number, number, number, number]> = { 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3] };

/**
 * torchvision's Bottleneck (ResNet v1.5: the stride on the 3x3 convolution):
 * 1x1 to `planes`, 3x3 with the stride, 1x1 to 4 `planes`, plus the shortcut.
 */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number, private readonly act: Act, g?: Generator) {
    super();
    const outC = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', new Conv2d(inC, planes, 1, { bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false, generator: g }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', new Conv2d(planes, outC, 1, { bias: false, generator: g }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(outC));
    this.downsample =
      stride !== 1 || inC !== outC
        ? this.registerModule('downsample', new Sequential(new Conv2d(inC, outC, 1, { stride, bias: false, generator: g }), new BatchNorm2d(outC)))
        : null;
  }

  forward(x: Tensor): Tensor {
    let h = convBnActivation(this.conv1, this.bn1, x, this.act);
    h = consume(h, (t) => convBnActivation(this.conv2, this.bn2, t, this.act));
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    const out = consume(h, (t) => convBnActivation(this.conv3, this.bn3, t, this.act, shortcut));
    if (shortcut !== x) shortcut.dispose();
    return out;
  }
}

/**
 * The ImageNet ResNets as torchvision builds them (resnet50 by default):
 * a 7x7 stride-2 stem with batch norm, ReLU and a 3x3 stride-2 max pool,
 * four stages of bottleneck blocks (64, 128, 256, 512 planes; stride 2
 * entering stages 2-4), global average pooling and `fc`. Parameter names and
 * shapes are torchvision's, so its state dicts load as they are. `width`
 * scales every stage's planes and the stem (the paper's rho).
 */
export class ResNetImageNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool: MaxPool2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly fc: Linear;
  private readonly act: Act;

  constructor(opts: ResNetImageNetOptions = {}) {
    super();
    const depth = opts.depth ?? 50;
    const stages = BOTTLENECK_STAGES[depth];
    if (!stages) throw new Error(`ResNetImageNet: depth must be one of ${Object.keys(BOTTLENECK_STAGES).join(', ')}, got ${depth}`);
    const w = opts.width ?? 1;
    if (!(w > 0)) throw new Error(`ResNetImageNet: width must be positive, got ${w}`);
    const scaled = (c: number): number => Math.max(1, Math.round(c * w));
    const g = opts.generator;
    this.act = { name: opts.activation ?? 'relu', opts: opts.activationOptions ?? {} };
    const stem = scaled(64);
    this.conv1 = this.registerModule('conv1', new Conv2d(opts.inChannels ?? 3, stem, 7, { stride: 2, padding: 3, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(stem));
    this.maxpool = this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    let inC = stem;
    const stage = (planes: number, blocks: number, stride: number): Sequential => {
      const list = Array.from({ length: blocks }, (_, i) => new Bottleneck(i === 0 ? inC : planes * Bottleneck.expansion, planes, i === 0 ? stride : 1, this.act, g));
      inC = planes * Bottleneck.expansion;
      return new Sequential(...list);
    };
    this.layer1 = this.registerModule('layer1', stage(scaled(64), stages[0], 1));
    this.layer2 = this.registerModule('layer2', stage(scaled(128), stages[1], 2));
    this.layer3 = this.registerModule('layer3', stage(scaled(256), stages[2], 2));
    this.layer4 = this.registerModule('layer4', stage(scaled(512), stages[3], 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.fc = this.registerModule('fc', new Linear(inC, opts.classes ?? 1000, { generator: g }));
    // torchvision's initialisation: He normal (fan out) for convolutions; batch norm weight 1, bias 0 (the layers' defaults).
    for (const m of this.modules()) if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { generator: g, mode: 'fanOut' });
  }

  forward(x: Tensor): Tensor {
    let h = convBnActivation(this.conv1, this.bn1, x, this.act);
    h = consume(h, (t) => this.maxpool.forward(t));
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) h = consume(h, (t) => layer.forward(t));
    h = consume(h, (t) => this.avgpool.forward(t));
    h = consume(h, (t) => t.flatten(1));
    return consume(h, (t) => this.fc.forward(t));
  }
}
