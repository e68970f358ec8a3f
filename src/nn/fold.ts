/**
 * Batch norm folded into the convolution before it, for a frozen model.
 *
 * In inference mode batch norm is a per-channel affine map,
 * y = s (x - mean) + beta with s = gamma / sqrt(var + eps), so after a
 * convolution it folds into the filters: W' = s W, b' = s (b - mean) + beta.
 * The folded pair saves one pass over the activations forward and one in the
 * input-gradient pass that attacks run (docs/engine.md, "Frozen models").
 *
 * The folded filters are made without gradients, so they are used only where
 * parameters are frozen (frozen.ts). They are cached per batch-norm layer and
 * made again when one of the tensors they come from changes, or when a
 * training-mode pass updates the running statistics (libtorch writes those
 * without a version bump).
 */
import { type Tensor, autocastDtype, conv2d, switchFromEnv } from '../engine/index.js';
import { derived, parametersFrozen } from './frozen.js';
import type { BatchNorm2d, Conv2d } from './layers.js';

let foldingOn = switchFromEnv('ADVML_FOLD_BN');

/** Turns folding on or off for the whole process (on unless ADVML_FOLD_BN=0); returns the previous setting. */
export function setBatchNormFolding(on: boolean): boolean {
  const previous = foldingOn;
  foldingOn = on;
  return previous;
}

/** The parameters of a convolution, as folding needs them. */
export interface ConvParameters {
  weight: Tensor;
  bias: Tensor | null;
}

/** The parameters and statistics of an inference-mode batch norm over the convolution's output channels. */
export interface BatchNormParameters {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
}

/** True where a batch norm may be folded now: folding is on, the layer is in inference mode, parameters are frozen. */
export function foldingApplies(batchNormTraining: boolean): boolean {
  return foldingOn && !batchNormTraining && parametersFrozen();
}

/**
 * The filters and bias of `conv` followed by `bn`, cached under `owner` (the
 * batch-norm layer) and cast to the autocast dtype inside a bf16 region, as
 * autocast would cast them at every call.
 */
export function foldedParameters(owner: object, conv: ConvParameters, bn: BatchNormParameters): [Tensor, Tensor] {
  const sources = [conv.weight, conv.bias, bn.weight, bn.bias, bn.runningMean, bn.runningVar].filter((t): t is Tensor => t !== null);
  const dtype = conv.weight.dtype === 'float32' ? autocastDtype(conv.weight.device) : null;
  return derived(owner, `folded:${dtype ?? conv.weight.dtype}`, sources, () => {
    const [w, b] = fold(conv, bn);
    return dtype ? [w.to(dtype), b.to(dtype)] : [w, b];
  }) as [Tensor, Tensor];
}

/** bn(conv(x)), with the two folded into one convolution when the model is frozen and in inference mode. */
export function convBn(conv: Conv2d, bn: BatchNorm2d, x: Tensor): Tensor {
  if (!foldingApplies(bn.training) || bn.numFeatures !== conv.outChannels) {
    const h = conv.forward(x);
    const out = bn.forward(h);
    h.dispose();
    return out;
  }
  const [weight, bias] = foldedParameters(bn, conv, {
    weight: bn.weight, bias: bn.bias, runningMean: bn.runningMean, runningVar: bn.runningVar, eps: bn.opts.eps ?? 1e-5,
  });
  return conv2d(x, weight, bias, conv.opts);
}

/** W' = s W and b' = s (b - mean) + beta with s = gamma / sqrt(var + eps), in the parameters' dtype. */
function fold(conv: ConvParameters, bn: BatchNormParameters): [Tensor, Tensor] {
  const out = conv.weight.shape[0] as number;
  let s = bn.runningVar.add(bn.eps).rsqrt();
  if (bn.weight) s = s.mul(bn.weight);
  // clone() keeps the filters' exact strides: channels-last filters stay channels-last.
  const w = conv.weight.detach().clone().mul_(s.reshape([out, 1, 1, 1]));
  let b = (conv.bias ? conv.bias.sub(bn.runningMean) : bn.runningMean.neg()).mul(s);
  if (bn.bias) b = b.add(bn.bias);
  return [w, b];
}
