/**
 * Frozen parameters: where no gradient with respect to a parameter can be
 * asked for (gradients off, or inside `withFrozenParameters()`), layers may
 * run on gradient-free tensors derived from their parameters: batch norm
 * folded into a convolution (fold.ts), and weights already cast to the
 * autocast dtype, which autocast otherwise casts again at every call (a
 * third of a batch-1 MNIST attack step in bfloat16).
 *
 * Derived tensors are cached per layer and made again when one of the tensors
 * they come from changes: its version counter (bumped by every in-place
 * write, e.g. an optimizer step or loadStateDict) or its storage (a dtype or
 * layout change).
 */
import { type Tensor, autocastDtype, isGradEnabled, noGrad, scope, stateStamp } from '../engine/index.js';

let frozenDepth = 0;

/**
 * Runs `fn` promising that no gradient with respect to a parameter is taken
 * inside it (gradients with respect to inputs still are), so inference-mode
 * layers may use derived, gradient-free copies of their parameters. The
 * attacks run their passes this way.
 */
export function withFrozenParameters<T>(fn: () => T): T {
  frozenDepth++;
  try {
    return fn();
  } finally {
    frozenDepth--;
  }
}

/** True where parameters cannot receive gradients: inside withFrozenParameters(), or with gradients off. */
export function parametersFrozen(): boolean {
  return frozenDepth > 0 || !isGradEnabled();
}

interface Derived {
  stamp: number[];
  values: Tensor[];
}

const caches = new WeakMap<object, Map<string, Derived>>();

/**
 * Tensors made from `sources` by `make`, kept under (`owner`, `key`) and
 * made again when a source has changed since. `make` runs without gradients;
 * what it returns belongs to the cache (read it, do not dispose it).
 */
export function derived(owner: object, key: string, sources: Tensor[], make: () => Tensor[]): Tensor[] {
  const stamp = stateStamp(sources);
  let byKey = caches.get(owner);
  const hit = byKey?.get(key);
  if (hit && hit.stamp.length === stamp.length && hit.stamp.every((v, i) => v === stamp[i])) return hit.values;
  if (hit) for (const t of hit.values) t.dispose();
  const values = noGrad(() => scope(() => make().map((t) => t.keep())));
  if (!byKey) caches.set(owner, (byKey = new Map()));
  byKey.set(key, { stamp, values });
  return values;
}

/** Frees what `owner` derived (its inputs changed without a version bump, or it is being freed). */
export function forgetDerived(owner: object): void {
  const byKey = caches.get(owner);
  if (!byKey) return;
  for (const { values } of byKey.values()) for (const t of values) t.dispose();
  caches.delete(owner);
}

/**
 * A layer's float32 parameters as the autocast region computes with them:
 * cached bfloat16 copies when the parameters are frozen and a bf16 region is
 * open for their device, else the parameters themselves (null stays null).
 */
export function autocastParameters<T extends (Tensor | null)[]>(owner: object, ...params: T): T {
  const first = params.find((p): p is Tensor => p !== null);
  if (!first || first.dtype !== 'float32' || !parametersFrozen()) return params;
  const dtype = autocastDtype(first.device);
  if (!dtype) return params;
  const present = params.filter((p): p is Tensor => p !== null);
  const copies = derived(owner, `cast:${dtype}`, present, () => present.map((p) => p.detach().to(dtype)));
  let i = 0;
  return params.map((p) => (p === null ? null : copies[i++])) as T;
}
