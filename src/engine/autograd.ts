/** Gradients with respect to chosen inputs, and scopes without graph building. */
import { native, type Handle } from './native.js';
import { Tensor } from './tensor.js';

export interface GradOptions {
  /** Weights for each output (vector-Jacobian product); default ones for scalar outputs. */
  gradOutputs?: Tensor[];
  /** Keep the graph so it can be differentiated again (default false). */
  retainGraph?: boolean;
  /** Build a graph of the gradient itself, for higher derivatives (default false). */
  createGraph?: boolean;
  /** Return null for inputs the outputs do not depend on instead of throwing (default false). */
  allowUnused?: boolean;
}

/**
 * d(sum of outputs)/d(inputs), without touching any `.grad` field. Attacks use
 * this: it differentiates with respect to the image only, never the weights.
 */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts?: GradOptions & { allowUnused?: false }): Tensor[];
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions): (Tensor | null)[];
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const handles = native.grad(
    outs.map((t) => t.handle),
    ins.map((t) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((t) => t.handle) : null,
    opts.retainGraph ?? opts.createGraph ?? false,
    opts.createGraph ?? false,
    opts.allowUnused ?? false,
  ) as (Handle | undefined)[];
  return handles.map((h) => (h === undefined ? null : new Tensor(h)));
}

/** Runs `fn` with gradient recording off (PyTorch's torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs `fn` with gradient recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled() as boolean;
}

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = native.setGradEnabled(enabled) as boolean;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('noGrad/enableGrad: fn must be synchronous');
    return result;
  } finally {
    native.setGradEnabled(previous);
  }
}
