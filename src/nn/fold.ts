/**
 * Batch norm folded into the convolution before it, for a frozen model.
 *
 * In inference mode batch norm is a per-channel affine map,
 * y = s (x - mean) + beta with s = gamma / sqrt(var + eps), so after a
 * convolution it folds into the filters: W' = s W, b' = s (b - mean) + beta.
 * The folded pair saves one pass over the activations forward and one in the
 * input-gradient pass that attacks run (docs/engine.md, "Batch-norm folding").
 *
 * The folded filters are made without gradients, so they are used only where
 * no parameter gradient can be asked for: with gradients off, or inside
 * `withFrozenParameters()` (attacks differentiate with respect to the images
 * only). They are cached per batch-norm layer and made again when one of the
 * tensors they come from changes (its version counter or its storage), or
 * when a training-mode pass updates the running statistics.
 */
import { type Tensor, conv2d, isGradEnabled, noGrad, scope, stateStamp } from '../engine/index.js';
import type { BatchNorm2d, Conv2d } from './layers.js';

let frozenDepth = 0;
let foldingOn = foldingFromEnv(process.env.ADVML_FOLD_BN);

function foldingFromEnv(v: string | undefined): boolean {
  if (v === undefined || v === '' || v === '1') return true;
  if (v === '0') return false;
  throw new Error(`ADVML_FOLD_BN must be 0 (off) or 1 (on, the default), got '${v}'`);
}

/** Turns folding on or off for the whole process (on unless ADVML_FOLD_BN=0); returns the previous setting. */
export function setBatchNormFolding(on: boolean): boolean {
  const previous = foldingOn;
  foldingOn = on;
  return previous;
}

/**
 * Runs `fn` promising that no gradient with respect to a parameter is taken
 * inside it (gradients with respect to inputs still are), so inference-mode
 * layers may use folded, gradient-free copies of their parameters.
 */
export function withFrozenParameters<T>(fn: () => T): T {
  frozenDepth++;
  try {
    return fn();
  } finally {
    frozenDepth--;
  }
}

interface Folded {
  conv: Conv2d;
  stamp: number[];
  weight: Tensor;
  bias: Tensor;
}

const cache = new WeakMap<BatchNorm2d, Folded>();

/** bn(conv(x)), with the two folded into one convolution when the model is frozen and in inference mode. */
export function convBn(conv: Conv2d, bn: BatchNorm2d, x: Tensor): Tensor {
  const foldable = foldingOn && !bn.training && (frozenDepth > 0 || !isGradEnabled()) && bn.numFeatures === conv.outChannels;
  if (!foldable) {
    const h = conv.forward(x);
    const out = bn.forward(h);
    h.dispose();
    return out;
  }
  const f = folded(conv, bn);
  return conv2d(x, f.weight, f.bias, conv.opts);
}

/** Drops `bn`'s folded filters (its running statistics changed, or it is being freed). */
export function forgetFolded(bn: BatchNorm2d): void {
  const hit = cache.get(bn);
  if (!hit) return;
  hit.weight.dispose();
  hit.bias.dispose();
  cache.delete(bn);
}

function folded(conv: Conv2d, bn: BatchNorm2d): Folded {
  const sources = [conv.weight, conv.bias, bn.weight, bn.bias, bn.runningMean, bn.runningVar].filter((t): t is Tensor => t !== null);
  const stamp = stateStamp(sources);
  const hit = cache.get(bn);
  if (hit && hit.conv === conv && hit.stamp.every((v, i) => v === stamp[i])) return hit;
  forgetFolded(bn);
  const { weight, bias } = noGrad(() => scope(() => {
    const shape = [conv.outChannels, 1, 1, 1];
    let s = bn.runningVar.add(bn.opts.eps ?? 1e-5).rsqrt();
    if (bn.weight) s = s.mul(bn.weight);
    // clone() keeps the filters' exact strides: channels-last filters stay channels-last.
    const w = conv.weight.detach().clone().mul_(s.reshape(shape));
    let b = (conv.bias ? conv.bias.sub(bn.runningMean) : bn.runningMean.neg()).mul(s);
    if (bn.bias) b = b.add(bn.bias);
    return { weight: w.keep(), bias: b.keep() };
  }));
  const entry = { conv, stamp, weight, bias };
  cache.set(bn, entry);
  return entry;
}
