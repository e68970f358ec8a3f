/**
 * Autograd against central finite differences (float64) for every
 * differentiable op the engine exposes. Inputs are small and seeded; points of
 * non-differentiability (kinks, ties, clamp bounds) are avoided by choosing
 * the inputs away from them.
 */
import { describe, test } from 'node:test';
import * as E from '../../src/engine/index.js';
import { type NestedArray, type Tensor, tensor } from '../../src/engine/index.js';
import { awayFromZero, prod, rng, uniformArray } from '../helpers/assert.js';
import { type GradFn, type GradInput, type GradcheckOptions, gradcheck, input } from '../helpers/gradcheck.js';

const next = rng(20240601);
/** Uniform in [-1, 1). */
const any = (shape: number[], scale = 1): GradInput => input(shape, uniformArray(next, prod(shape), -scale, scale));
/** |x| in [0.1, 1): away from the kinks of abs, relu and friends at 0. */
const away = (shape: number[]): GradInput => input(shape, awayFromZero(next, prod(shape), 0.1, 1));
/** In [0.5, 2): for log, sqrt, division. */
const pos = (shape: number[]): GradInput => input(shape, uniformArray(next, prod(shape), 0.5, 2));
const given = (shape: number[], data: number[]): GradInput => input(shape, data);

const i64 = (data: NestedArray, shape?: number[]): Tensor => tensor(data, { dtype: 'int64', shape });
const f64 = (data: number[] | number[][], shape?: number[]): Tensor => tensor(data, { dtype: 'float64', shape });
const bool = (data: boolean[] | boolean[][]): Tensor => tensor(data);

interface Case {
  name: string;
  fn: GradFn;
  inputs: GradInput[];
  opts?: GradcheckOptions;
}

const cases: Case[] = [
  // ---- elementwise, binary ----
  { name: 'add (broadcast, alpha)', fn: (a, b) => a!.add(b!, 0.5), inputs: [any([2, 3]), any([3])] },
  { name: 'add number', fn: (a) => a!.add(2.5), inputs: [any([2, 3])] },
  { name: 'sub (broadcast, alpha)', fn: (a, b) => a!.sub(b!, 2), inputs: [any([2, 3]), any([2, 1])] },
  { name: 'sub number', fn: (a) => a!.sub(1.5), inputs: [any([4])] },
  { name: 'mul (broadcast)', fn: (a, b) => a!.mul(b!), inputs: [any([2, 1, 3]), any([4, 1])] },
  { name: 'mul number', fn: (a) => a!.mul(-3), inputs: [any([5])] },
  { name: 'div', fn: (a, b) => a!.div(b!), inputs: [any([2, 3]), pos([2, 3])] },
  { name: 'div number', fn: (a) => a!.div(0.25), inputs: [any([5])] },
  { name: 'pow tensor exponent', fn: (a, b) => a!.pow(b!), inputs: [pos([2, 3]), any([2, 3])] },
  { name: 'pow number', fn: (a) => a!.pow(2.5), inputs: [pos([5])] },
  { name: 'pow integer number', fn: (a) => a!.pow(3), inputs: [any([5])] },
  { name: 'maximum', fn: (a, b) => a!.maximum(b!), inputs: [any([2, 3]), any([3])] },
  { name: 'minimum', fn: (a, b) => a!.minimum(b!), inputs: [any([2, 3]), any([2, 3])] },
  { name: 'maximum number', fn: (a) => a!.maximum(0.05), inputs: [away([6])] },
  { name: 'minimum number', fn: (a) => a!.minimum(-0.05), inputs: [away([6])] },
  { name: 'remainder number', fn: (a) => a!.remainder(0.7), inputs: [given([4], [0.3, 1.1, -0.4, 2.3])] },
  // ---- elementwise, unary ----
  { name: 'neg', fn: (a) => a!.neg(), inputs: [any([2, 3])] },
  { name: 'abs', fn: (a) => a!.abs(), inputs: [away([2, 3])] },
  { name: 'exp', fn: (a) => a!.exp(), inputs: [any([2, 3])] },
  { name: 'log', fn: (a) => a!.log(), inputs: [pos([2, 3])] },
  { name: 'log1p', fn: (a) => a!.log1p(), inputs: [input([5], uniformArray(next, 5, -0.5, 2))] },
  { name: 'sqrt', fn: (a) => a!.sqrt(), inputs: [pos([2, 3])] },
  { name: 'rsqrt', fn: (a) => a!.rsqrt(), inputs: [pos([2, 3])] },
  { name: 'square', fn: (a) => a!.square(), inputs: [any([2, 3])] },
  { name: 'reciprocal', fn: (a) => a!.reciprocal(), inputs: [away([2, 3])] },
  { name: 'erf', fn: (a) => a!.erf(), inputs: [any([2, 3], 2)] },
  { name: 'erfinv', fn: (a) => a!.erfinv(), inputs: [any([2, 3], 0.9)] },
  { name: 'sin', fn: (a) => a!.sin(), inputs: [any([2, 3], 3)] },
  { name: 'cos', fn: (a) => a!.cos(), inputs: [any([2, 3], 3)] },
  { name: 'relu', fn: (a) => a!.relu(), inputs: [away([2, 3])] },
  { name: 'sigmoid', fn: (a) => a!.sigmoid(), inputs: [any([2, 3], 3)] },
  { name: 'tanh', fn: (a) => a!.tanh(), inputs: [any([2, 3], 2)] },
  { name: 'hardtanh', fn: (a) => a!.hardtanh(-0.5, 0.5), inputs: [given([6], [-0.9, -0.3, 0.1, 0.45, 0.7, -0.55])] },
  { name: 'leakyRelu', fn: (a) => a!.leakyRelu(0.2), inputs: [away([2, 3])] },
  { name: 'elu', fn: (a) => a!.elu(1.5), inputs: [away([2, 3])] },
  { name: 'softplus', fn: (a) => a!.softplus(2), inputs: [any([2, 3], 3)] },
  { name: 'softplus past threshold', fn: (a) => a!.softplus(1, 1), inputs: [given([4], [-2, 0.5, 1.5, 3])] },
  { name: 'clamp number bounds', fn: (a) => a!.clamp(-0.5, 0.5), inputs: [given([6], [-0.9, -0.3, 0.1, 0.45, 0.7, -0.55])] },
  { name: 'clamp min only', fn: (a) => a!.clamp(0.2), inputs: [given([4], [-0.9, 0.1, 0.45, 0.7])] },
  {
    name: 'clamp tensor bounds',
    fn: (x, lo, hi) => x!.clamp(lo!, hi!),
    inputs: [given([2, 3], [-0.9, -0.2, 0.1, 0.3, 0.8, 0.05]), given([3], [-0.5, -0.4, -0.3]), given([2, 1], [0.2, 0.6])],
  },
  { name: 'clamp tensor max only', fn: (x, hi) => x!.clamp(null, hi!), inputs: [given([3], [-0.9, 0.5, 0.3]), given([3], [0, 0, 0.6])] },
  { name: 'sign (zero gradient)', fn: (a) => a!.sign().add(a!), inputs: [away([4])] },
  { name: 'floor, ceil, round (zero gradient)', fn: (a) => a!.floor().add(a!.ceil()).add(a!.round()).add(a!.mul(0.5)), inputs: [given([4], [0.3, -1.7, 2.2, -0.4])] },
  // ---- reductions ----
  { name: 'sum all', fn: (a) => a!.sum(), inputs: [any([2, 3])] },
  { name: 'sum dims keepDim', fn: (a) => a!.sum([0, 2], { keepDim: true }), inputs: [any([2, 3, 2])] },
  { name: 'sum all keepDim', fn: (a) => a!.sum(null, { keepDim: true }), inputs: [any([2, 3])] },
  { name: 'mean all', fn: (a) => a!.mean(), inputs: [any([2, 3])] },
  { name: 'mean dim', fn: (a) => a!.mean(1), inputs: [any([2, 3, 2])] },
  { name: 'max all', fn: (a) => a!.max(), inputs: [any([2, 3])] },
  { name: 'max dim keepDim', fn: (a) => a!.max(1, { keepDim: true }), inputs: [any([2, 4])] },
  { name: 'min dim', fn: (a) => a!.min(0), inputs: [any([3, 2])] },
  { name: 'min all', fn: (a) => a!.min(), inputs: [any([5])] },
  { name: 'var all', fn: (a) => a!.var(), inputs: [any([2, 3])] },
  { name: 'var dim correction 0', fn: (a) => a!.var(1, { correction: 0 }), inputs: [any([2, 4])] },
  { name: 'std dim keepDim', fn: (a) => a!.std(0, { keepDim: true }), inputs: [any([3, 2])] },
  { name: 'std all', fn: (a) => a!.std(), inputs: [any([2, 3])] },
  { name: 'norm 2 all', fn: (a) => a!.norm(), inputs: [any([2, 3])] },
  { name: 'norm 1 dim', fn: (a) => a!.norm(1, 1), inputs: [away([2, 3])] },
  { name: 'norm 3 dim keepDim', fn: (a) => a!.norm(3, 0, { keepDim: true }), inputs: [away([3, 2])] },
  { name: 'norm Infinity dim', fn: (a) => a!.norm(Infinity, 1), inputs: [away([2, 4])] },
  { name: 'logsumexp dim', fn: (a) => a!.logsumexp(1), inputs: [any([2, 4], 2)] },
  { name: 'logsumexp dims keepDim', fn: (a) => a!.logsumexp([0, 1], { keepDim: true }), inputs: [any([2, 3], 2)] },
  { name: 'cumsum', fn: (a) => a!.cumsum(1), inputs: [any([2, 4])] },
  // ---- linear algebra, softmax ----
  { name: 'matmul 2d', fn: (a, b) => a!.matmul(b!), inputs: [any([3, 4]), any([4, 2])] },
  { name: 'matmul batched broadcast', fn: (a, b) => a!.matmul(b!), inputs: [any([2, 3, 4]), any([4, 2])] },
  { name: 'matmul vector-matrix', fn: (a, b) => a!.matmul(b!), inputs: [any([4]), any([4, 3])] },
  { name: 'matmul matrix-vector', fn: (a, b) => a!.matmul(b!), inputs: [any([2, 3, 4]), any([4])] },
  { name: 'linear with bias', fn: (x, w, b) => E.linear(x!, w!, b!), inputs: [any([5, 4]), any([3, 4]), any([3])] },
  { name: 'linear 3d no bias', fn: (x, w) => E.linear(x!, w!), inputs: [any([2, 2, 4]), any([3, 4])] },
  { name: 'softmax dim 1', fn: (a) => a!.softmax(1), inputs: [any([2, 4], 2)] },
  { name: 'softmax dim 0', fn: (a) => a!.softmax(0), inputs: [any([3, 2], 2)] },
  { name: 'logSoftmax', fn: (a) => a!.logSoftmax(-1), inputs: [any([2, 4], 2)] },
  // ---- shape, layout, indexing ----
  { name: 'reshape', fn: (a) => a!.reshape([3, 2]).mul(f64([1, 2])), inputs: [any([2, 3])] },
  { name: 'permute', fn: (a) => a!.permute([2, 0, 1]), inputs: [any([2, 3, 2])] },
  { name: 'transpose', fn: (a) => a!.transpose(0, 1).matmul(f64([1, 2], [2])), inputs: [any([2, 3])] },
  { name: 'flatten', fn: (a) => a!.flatten(1), inputs: [any([2, 2, 3])] },
  { name: 'squeeze all', fn: (a) => a!.squeeze(), inputs: [any([2, 1, 3])] },
  { name: 'squeeze dim', fn: (a) => a!.squeeze(1), inputs: [any([2, 1, 3])] },
  { name: 'unsqueeze', fn: (a) => a!.unsqueeze(0), inputs: [any([2, 3])] },
  { name: 'expand', fn: (a) => a!.expand([2, 3, 4]), inputs: [any([3, 1])] },
  { name: 'repeat', fn: (a) => a!.repeat([2, 1, 2]), inputs: [any([2, 3])] },
  { name: 'flip', fn: (a) => a!.flip([0, 1]), inputs: [any([2, 3])] },
  { name: 'narrow', fn: (a) => a!.narrow(1, 1, 2), inputs: [any([2, 4])] },
  { name: 'select', fn: (a) => a!.select(1, 2), inputs: [any([2, 4])] },
  { name: 'slice with step', fn: (a) => a!.slice(1, 1, 6, 2), inputs: [any([2, 6])] },
  { name: 'slice negative start', fn: (a) => a!.slice(0, -2), inputs: [any([4, 2])] },
  { name: 'indexSelect (repeated indices)', fn: (a) => a!.indexSelect(0, i64([2, 0, 2])), inputs: [any([3, 2])] },
  { name: 'gather', fn: (a) => a!.gather(1, i64([[0, 0, 2], [1, 2, 1]])), inputs: [any([2, 3])] },
  { name: 'scatter', fn: (a, s) => a!.scatter(1, i64([[2, 0], [1, 2]]), s!), inputs: [any([2, 3]), any([2, 2])] },
  { name: 'maskedFill', fn: (a) => a!.maskedFill(bool([[true, false, false], [false, true, false]]), 2), inputs: [any([2, 3])] },
  { name: 'maskedSelect', fn: (a) => a!.maskedSelect(bool([[true, false, true], [false, true, true]])), inputs: [any([2, 3])] },
  { name: 'chunk', fn: (a) => a!.chunk(2, 1), inputs: [any([2, 4])] },
  { name: 'split', fn: (a) => a!.split([1, 3], 1), inputs: [any([2, 4])] },
  { name: 'contiguous channelsLast', fn: (a) => a!.contiguous('channelsLast').mul(2), inputs: [any([1, 2, 2, 3])] },
  { name: 'clone', fn: (a) => a!.clone(), inputs: [any([3])] },
  // float32 rounding: a linear function, a wide step and a loose tolerance
  { name: 'to float32 and back', fn: (a) => a!.to('float32').to('float64').mul(3), inputs: [any([4])], opts: { eps: 1e-2, atol: 1e-4 } },
  { name: 'toDevice cpu', fn: (a) => a!.toDevice('cpu').mul(2), inputs: [any([3])] },
  {
    name: 'in-place ops on a non-leaf',
    fn: (a, b) => a!.clone().mul_(b!).add_(a!, 2).div_(b!.exp()).addcmul_(a!, b!, 0.5).addcdiv_(a!, b!.exp(), -1).lerp_(b!, 0.25),
    inputs: [any([2, 3]), any([2, 3])],
  },
  { name: 'cat', fn: (a, b, c) => E.cat([a!, b!, c!], 1), inputs: [any([2, 1]), any([2, 3]), any([2, 2])] },
  { name: 'stack', fn: (a, b) => E.stack([a!, b!], 1), inputs: [any([2, 3]), any([2, 3])] },
  { name: 'where', fn: (a, b) => E.where(bool([[true, false, true], [false, false, true]]), a!, b!), inputs: [any([2, 3]), any([3])] },
  { name: 'where with number', fn: (a) => E.where(bool([true, false, true]), a!, 0.5), inputs: [any([3])] },
  // ---- network layers ----
  {
    name: 'conv2d stride 2, padding 1, bias',
    fn: (x, w, b) => E.conv2d(x!, w!, b!, { stride: 2, padding: 1 }),
    inputs: [any([1, 2, 5, 5]), any([3, 2, 3, 3]), any([3])],
  },
  { name: 'conv2d dilation 2', fn: (x, w) => E.conv2d(x!, w!, null, { dilation: 2 }), inputs: [any([2, 1, 5, 5]), any([2, 1, 2, 2])] },
  {
    name: 'conv2d groups 2, stride (2, 1), padding (1, 0)',
    fn: (x, w, b) => E.conv2d(x!, w!, b!, { groups: 2, stride: [2, 1], padding: [1, 0] }),
    inputs: [any([1, 4, 4, 4]), any([4, 2, 2, 3]), any([4])],
  },
  { name: 'conv2d depthwise', fn: (x, w) => E.conv2d(x!, w!, null, { groups: 3, padding: 1 }), inputs: [any([1, 3, 3, 3]), any([3, 1, 3, 3])] },
  { name: 'maxPool2d 2', fn: (x) => E.maxPool2d(x!, 2), inputs: [any([1, 2, 4, 4])] },
  { name: 'maxPool2d 3, stride 2, padding 1', fn: (x) => E.maxPool2d(x!, 3, { stride: 2, padding: 1 }), inputs: [any([1, 1, 5, 5])] },
  { name: 'maxPool2d ceilMode', fn: (x) => E.maxPool2d(x!, 2, { ceilMode: true }), inputs: [any([1, 1, 5, 5])] },
  { name: 'avgPool2d 2', fn: (x) => E.avgPool2d(x!, 2), inputs: [any([1, 2, 4, 4])] },
  {
    name: 'avgPool2d 3, stride 2, padding 1, countIncludePad false',
    fn: (x) => E.avgPool2d(x!, 3, { stride: 2, padding: 1, countIncludePad: false }),
    inputs: [any([1, 1, 5, 5])],
  },
  { name: 'avgPool2d ceilMode', fn: (x) => E.avgPool2d(x!, 2, { ceilMode: true }), inputs: [any([1, 1, 5, 5])] },
  { name: 'adaptiveAvgPool2d 5 -> 3', fn: (x) => E.adaptiveAvgPool2d(x!, 3), inputs: [any([1, 2, 5, 5])] },
  { name: 'adaptiveAvgPool2d -> [2, 1]', fn: (x) => E.adaptiveAvgPool2d(x!, [2, 1]), inputs: [any([2, 1, 3, 4])] },
  {
    name: 'batchNorm training',
    fn: (x, w, b) => E.batchNorm(x!, { weight: w!, bias: b!, training: true }),
    inputs: [any([4, 3, 2, 2], 2), any([3]), any([3])],
  },
  {
    name: 'batchNorm training, running stats given',
    fn: (x) => E.batchNorm(x!, { runningMean: E.zeros([2], { dtype: 'float64' }), runningVar: E.ones([2], { dtype: 'float64' }), training: true }),
    inputs: [any([3, 2], 2)],
  },
  {
    name: 'batchNorm eval',
    fn: (x, w, b) => E.batchNorm(x!, { weight: w!, bias: b!, runningMean: f64([0.5, -1]), runningVar: f64([2, 0.5]) }),
    inputs: [any([3, 2, 2]), any([2]), any([2])],
  },
  { name: 'crossEntropy mean', fn: (x) => E.crossEntropy(x!, i64([2, 0, 1])), inputs: [any([3, 4], 2)] },
  { name: 'crossEntropy sum', fn: (x) => E.crossEntropy(x!, i64([2, 0, 1]), { reduction: 'sum' }), inputs: [any([3, 4], 2)] },
  { name: 'crossEntropy none', fn: (x) => E.crossEntropy(x!, i64([3, 1]), { reduction: 'none' }), inputs: [any([2, 4], 2)] },
  { name: 'crossEntropy labelSmoothing', fn: (x) => E.crossEntropy(x!, i64([2, 0, 1]), { labelSmoothing: 0.1 }), inputs: [any([3, 4], 2)] },
  {
    name: 'crossEntropy weight, ignoreIndex',
    fn: (x) => E.crossEntropy(x!, i64([2, 0, 1, 0]), { weight: f64([0.5, 1, 2]), ignoreIndex: 1 }),
    inputs: [any([4, 3], 2)],
  },
  {
    name: 'crossEntropy probability targets',
    fn: (x, p) => E.crossEntropy(x!, p!.softmax(1)),
    inputs: [any([3, 4], 2), any([3, 4], 2)],
  },
  { name: 'crossEntropy spatial [N, C, H, W]', fn: (x) => E.crossEntropy(x!, i64([[[0, 2], [1, 1]]])), inputs: [any([1, 3, 2, 2])] },
  { name: 'nllLoss', fn: (x) => E.nllLoss(x!, i64([2, 0, 1])), inputs: [any([3, 4])] },
  { name: 'nllLoss weight, sum', fn: (x) => E.nllLoss(x!, i64([2, 0]), { weight: f64([1, 2, 3]), reduction: 'sum' }), inputs: [any([2, 3])] },
  { name: 'mseLoss mean', fn: (x, y) => E.mseLoss(x!, y!), inputs: [any([2, 3]), any([2, 3])] },
  { name: 'mseLoss none', fn: (x, y) => E.mseLoss(x!, y!, { reduction: 'none' }), inputs: [any([4]), any([4])] },
  { name: 'klDiv sum', fn: (x, t) => E.klDiv(x!, t!, { reduction: 'sum' }), inputs: [any([2, 3]), pos([2, 3])] },
  { name: 'klDiv logTarget mean', fn: (x, t) => E.klDiv(x!, t!, { logTarget: true }), inputs: [any([2, 3]), any([2, 3])] },
  { name: 'dropout p = 0 training', fn: (x) => E.dropout(x!, 0, true), inputs: [any([2, 3])] },
  { name: 'dropout eval', fn: (x) => E.dropout(x!, 0.5, false), inputs: [any([2, 3])] },
];

describe('gradients match central finite differences (float64)', () => {
  for (const c of cases) {
    test(c.name, () => gradcheck(c.name, c.fn, c.inputs, c.opts));
  }
});

describe('gradcheck itself', () => {
  test('detects a wrong gradient', () => {
    // x * stop_gradient(x) has derivative x, not 2x: finite differences see 2x.
    let threw = false;
    try {
      gradcheck('wrong', (a) => a!.mul(a!.detach()), [input([3], [0.5, -0.7, 0.9])]);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error('gradcheck accepted a wrong gradient');
  });
});
