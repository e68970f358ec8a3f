/**
 * activation(bn(conv(x)) + residual), the repeating unit of residual and
 * Inception networks, run the fastest way that applies:
 *
 * - a frozen model in inference mode: batch norm folded into the convolution
 *   (fold.ts), then the add and the activation;
 * - training mode with ReLU on channels-last CPU batches (float32, or
 *   bfloat16 from autocast's convolutions): the convolution, then batch norm,
 *   the add and the ReLU as one native autograd node (native/fused.cc), which
 *   passes over the activations twice forward and twice backward where the
 *   separate ops take four or five forward and three backward;
 * - otherwise the separate layers.
 *
 * ADVML_FUSE_BN_RELU=0 (or setBatchNormReluFusion(false)) turns the fused
 * node off, for comparison.
 */
import { type Tensor, switchFromEnv } from '../engine/index.js';
import { type ActivationName, type ActivationOptions, activate } from './activations.js';
import { convBn } from './fold.js';
import type { BatchNorm2d, Conv2d } from './layers.js';
import { consume } from './module.js';

let fusionOn = switchFromEnv('ADVML_FUSE_BN_RELU');

/** Turns the fused batch norm + ReLU node on or off for the whole process; returns the previous setting. */
export function setBatchNormReluFusion(on: boolean): boolean {
  const previous = fusionOn;
  fusionOn = on;
  return previous;
}

/** An activation by name and options, as models carry it. */
export interface ActivationSpec {
  name: ActivationName;
  opts?: ActivationOptions;
}

/** Whether the layer and activation allow the fused node, whatever the tensors. */
function fusionCandidate(bn: BatchNorm2d, act: ActivationSpec): boolean {
  return fusionOn && act.name === 'relu' && bn.training && !bn.reduceStatistics && bn.weight !== null && bn.bias !== null &&
    bn.weight.dtype === 'float32' && bn.bias.dtype === 'float32';
}

/** Float32, or bfloat16 as autocast's convolutions give it. */
function channelsLastActivation(t: Tensor): boolean {
  return (t.dtype === 'float32' || t.dtype === 'bfloat16') && t.device === 'cpu' && t.rank === 4 && t.isContiguous('channelsLast');
}

/** True where batchNormActivation() runs the fused node for these tensors. */
export function batchNormReluFuses(bn: BatchNorm2d, x: Tensor, act: ActivationSpec, residual: Tensor | null = null): boolean {
  return fusionCandidate(bn, act) && channelsLastActivation(x) && x.shape[1] === bn.numFeatures &&
    (residual === null || (residual.dtype === x.dtype && channelsLastActivation(residual) && residual.shape.every((d, i) => d === x.shape[i])));
}

/** activation(bn(x) + residual); `x` and `residual` are not freed. */
export function batchNormActivation(bn: BatchNorm2d, x: Tensor, act: ActivationSpec, residual: Tensor | null = null): Tensor {
  if (batchNormReluFuses(bn, x, act, residual)) return bn.forwardRelu(x, residual);
  return addThenActivate(bn.forward(x), residual, act);
}

/** activation(bn(conv(x)) + residual); `x` and `residual` are not freed. */
export function convBnActivation(conv: Conv2d, bn: BatchNorm2d, x: Tensor, act: ActivationSpec, residual: Tensor | null = null): Tensor {
  if (!fusionCandidate(bn, act)) return addThenActivate(convBn(conv, bn, x), residual, act);
  return consume(conv.forward(x), (h) => batchNormActivation(bn, h, act, residual));
}

/** activation(h + residual), freeing `h`. */
function addThenActivate(h: Tensor, residual: Tensor | null, act: ActivationSpec): Tensor {
  if (residual) h = consume(h, (t) => t.add(residual));
  return consume(h, (t) => activate(t, act.name, act.opts));
}
