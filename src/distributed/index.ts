/**
 * Distributed execution on PyTorch's c10d: process groups and collectives
 * (all-reduce, broadcast, all-gather, barrier) over Gloo or NCCL, and the
 * launcher that starts and supervises the worker processes of a job.
 * docs/distributed.md describes how to run on one machine and on several.
 */
export {
  initProcessGroup, currentGroup, isDistributed, rank, worldSize, ProcessGroup, DistributedError, DEFAULT_TIMEOUT_MS,
  GradientReducer, DEFAULT_BUCKET_BYTES, DEFAULT_FIRST_BUCKET_BYTES, type GradientReducerOptions,
  type ProcessGroupOptions, type ProcessGroupInfo, type CollectiveOptions, type AllReduceOptions, type ReduceOp,
  type Backend, type Coalescing, type FailureReason,
} from './process-group.js';
export {
  launch, startWorkers, freePort, describeExit, WorkerGroup,
  type LaunchOptions, type LaunchRunOptions, type LaunchResult, type LaunchEvent, type OutputLine, type WorkerExit,
} from './launcher.js';
export { syncBatchNorm } from './sync-batch-norm.js';
