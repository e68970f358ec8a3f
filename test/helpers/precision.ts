/** Watching which precision a model's forward passes run at. */
import { type Tensor, autocastDtype } from '../../src/index.js';
import type { Classifier } from '../../src/models/index.js';

/**
 * `m` wrapped so that it records, for each forward pass, the dtype autocast
 * computes in at that moment ('bfloat16', or null outside any bf16 region).
 */
export function autocastSeen(m: Classifier): { model: Classifier; seen: (string | null)[] } {
  const seen: (string | null)[] = [];
  const inner = m.module;
  const module = Object.create(inner) as typeof inner;
  module.forward = (t: Tensor): Tensor => {
    seen.push(autocastDtype(t.device));
    return inner.forward(t);
  };
  const wrapped = Object.create(m) as Classifier;
  Object.defineProperty(wrapped, 'module', { value: module });
  return { model: wrapped, seen };
}
