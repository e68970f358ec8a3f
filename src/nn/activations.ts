/**
 * Activation functions, including those of the paper's activation study:
 * ReLU, ReLU6, tanh and ReLUDecay_beta.
 */
import { type Tensor, maxPool2d } from '../engine/index.js';
import { Module, consume } from './module.js';

/** Names accepted wherever a model takes an activation choice. */
export type ActivationName = 'relu' | 'relu6' | 'tanh' | 'reluDecay';

export interface ActivationOptions {
  /** beta of ReLUDecay (default 0.1). */
  beta?: number;
}

/**
 * The paper's ReLUDecay_beta(x) = max(-beta x, x): x for x >= 0 and beta |x|
 * for x < 0. Unlike leaky ReLU the negative side rises (a shallow "V"), which
 * is the definition the paper's activation study uses.
 */
export function reluDecay(x: Tensor, beta: number): Tensor {
  const negScaled = x.mul(-beta);
  const out = negScaled.maximum(x);
  negScaled.dispose();
  return out;
}

/** Applies an activation by name. */
export function activate(x: Tensor, name: ActivationName, opts: ActivationOptions = {}): Tensor {
  switch (name) {
    case 'relu':
      return x.relu();
    case 'relu6':
      return x.hardtanh(0, 6);
    case 'tanh':
      return x.tanh();
    case 'reluDecay':
      return reluDecay(x, opts.beta ?? 0.1);
    default:
      throw new Error(`unknown activation '${String(name)}': expected relu, relu6, tanh or reluDecay`);
  }
}

/**
 * maxPool2d(activate(x), kernel): for an activation that never decreases
 * (relu, relu6, tanh) computed as activate(maxPool2d(x, kernel)), which is
 * the same values and the same gradients (the window's maximum stays its
 * maximum) with the activation on a quarter of the elements for 2x2 pooling.
 * ReLUDecay falls and rises, so it runs first.
 */
export function activateThenMaxPool(x: Tensor, name: ActivationName, opts: ActivationOptions, kernel: number): Tensor {
  if (name === 'reluDecay') return consume(activate(x, name, opts), (t) => maxPool2d(t, kernel));
  return consume(maxPool2d(x, kernel), (t) => activate(t, name, opts));
}

/** An activation as a module (no parameters). */
export class Activation extends Module {
  constructor(
    readonly name: ActivationName = 'relu',
    readonly opts: ActivationOptions = {},
  ) {
    super();
    activationCheck(name, opts);
  }

  forward(x: Tensor): Tensor {
    return activate(x, this.name, this.opts);
  }
}

function activationCheck(name: ActivationName, opts: ActivationOptions): void {
  if (!['relu', 'relu6', 'tanh', 'reluDecay'].includes(name)) {
    throw new Error(`unknown activation '${String(name)}': expected relu, relu6, tanh or reluDecay`);
  }
  if (opts.beta !== undefined && !(opts.beta >= 0 && Number.isFinite(opts.beta))) {
    throw new Error(`activation beta must be a finite non-negative number, got ${opts.beta}`);
  }
}
