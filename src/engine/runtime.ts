/** Process-wide engine settings: threads, seeds, memory counters, devices. */
import { availableParallelism } from 'node:os';
import { native } from './native.js';

/** Sets libtorch's intra-op thread count. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNumThreads: n must be a positive integer, got ${n}`);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads() as number;
}

/** Seeds libtorch's global generator (dropout, and random ops given no generator). */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`manualSeed: seed must be a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}

export interface MemoryInfo {
  /** Tensor handles alive in the addon (not yet disposed or collected). */
  liveTensors: number;
  /** Bytes of storage those handles reference (a storage shared by views counts once per handle). */
  tensorBytes: number;
  /** Bytes the native heap (malloc) holds in use: libtorch's buffers and everything else native. */
  heapBytes: number;
}

export function memory(): MemoryInfo {
  return native.memory() as MemoryInfo;
}

/** Number of CUDA devices libtorch sees (0 for a CPU-only build). */
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount() as number;
}

export function cudaAvailable(): boolean {
  return cudaDeviceCount() > 0;
}

export interface BuildInfo {
  torchVersion: string;
  parallel: string;
  config: string;
}

export function buildInfo(): BuildInfo {
  return native.buildConfig() as BuildInfo;
}

/**
 * Thread count used unless ADVML_NUM_THREADS says otherwise: the machine's
 * cores. libtorch alone starts with 1 on some VMs, which halves throughput.
 */
export function defaultThreads(): number {
  const env = process.env.ADVML_NUM_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`ADVML_NUM_THREADS must be a positive integer, got '${env}'`);
    return n;
  }
  return availableParallelism();
}

setNumThreads(defaultThreads());
