/**
 * Synchronised batch norm for data-parallel training: every BatchNorm2d of a
 * module normalises training batches with the statistics of the global batch
 * (all ranks), and gradients flow through those statistics across ranks.
 * With it, N processes holding m/N examples each compute what one process
 * holding all m would.
 */
import type { Module } from '../nn/index.js';
import { BatchNorm2d } from '../nn/index.js';
import type { ProcessGroup } from './process-group.js';

/** Makes every BatchNorm2d in `module` use global-batch statistics over `group`; returns how many. */
export function syncBatchNorm(module: Module, group: ProcessGroup): number {
  let count = 0;
  for (const m of module.modules()) {
    if (m instanceof BatchNorm2d) {
      m.reduceStatistics = group.isDistributed ? (stats) => group.allReduceDifferentiable(stats) : undefined;
      count++;
    }
  }
  return count;
}
