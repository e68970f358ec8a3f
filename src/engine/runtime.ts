/** Process-wide engine settings: threads, seeds, memory counters, devices. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { native, type Handle } from './native.js';
import { Tensor } from './tensor.js';
import { tensor } from './ops.js';

/** Sets libtorch's intra-op thread count. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNumThreads: n must be a positive integer, got ${n}`);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads() as number;
}

/**
 * @internal Checks a seed before it reaches libtorch, whose own check speaks of
 * "argument 0" and prints 2^64 as a 20-digit float. Seeds stop at 2^53 - 1:
 * beyond it two different numbers can be one double, hence one stream.
 */
export function checkSeed(seed: unknown, who: string): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    const shown = typeof seed === 'string' ? `the string '${seed}'` : String(seed);
    throw new Error(`${who}: seed must be a non-negative integer at most ${Number.MAX_SAFE_INTEGER} (2^53 - 1), got ${shown}`);
  }
  return seed;
}

/** Seeds libtorch's global generator (dropout, and random ops given no generator). */
export function manualSeed(seed: number): void {
  native.manualSeed(checkSeed(seed, 'manualSeed'));
}

/**
 * The global generator's state (dropout and random ops given no generator),
 * for checkpoints that must resume a run exactly.
 */
export function globalGeneratorState(): Uint8Array {
  const t = new Tensor(native.generatorState(null) as Handle);
  try {
    return t.dataSync() as Uint8Array;
  } finally {
    t.dispose();
  }
}

export function setGlobalGeneratorState(state: Uint8Array): void {
  const t = tensor(state, { dtype: 'uint8' });
  try {
    native.setGeneratorState(null, t.handle);
  } finally {
    t.dispose();
  }
}

export interface MemoryInfo {
  /** Tensor handles alive in the addon (not yet disposed or collected). */
  liveTensors: number;
  /** Bytes of storage those handles reference (a storage shared by views counts once per handle). */
  tensorBytes: number;
  /** Bytes the native heap (malloc) holds in use: small tensors and everything else native. */
  heapBytes: number;
  /**
   * Bytes of large CPU tensor blocks (256 KiB and up) the caching allocator has
   * mapped, in use or cached (docs/engine.md, "Memory").
   */
  largeBlockBytes: number;
  /** Of those, free blocks kept for reuse. */
  cachedBytes: number;
  /** The most the cache keeps (ADVML_CPU_CACHE_MB; 0 when the caching allocator is off). */
  cacheLimitBytes: number;
}

export function memory(): MemoryInfo {
  return native.memory() as MemoryInfo;
}

/** Returns the CPU allocator's cached free blocks to the system (tensors in use are untouched). */
export function emptyCache(): void {
  native.emptyCache();
}

/**
 * @internal Each tensor's version counter (bumped by in-place writes) and data
 * address, two numbers per tensor: caches of values derived from parameters
 * compare stamps to know when to recompute.
 */
export function stateStamp(tensors: Tensor[]): number[] {
  return native.stateStamp(tensors.map((t) => t.handle)) as number[];
}

/** Number of CUDA devices libtorch sees (0 for a CPU-only build). */
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount() as number;
}

/**
 * True where the current CUDA device computes in bfloat16 natively (compute
 * capability 8.0 or later, cuDNN present); false on older GPUs and without CUDA.
 */
export function cudaHasBf16(): boolean {
  return native.cudaBf16Supported() as boolean;
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

/** An on/off switch from the environment: unset, empty or 1 is on, 0 is off, anything else is refused by name. */
export function switchFromEnv(name: string): boolean {
  const v = process.env[name];
  if (v === undefined || v === '' || v === '1') return true;
  if (v === '0') return false;
  throw new Error(`${name} must be 0 (off) or 1 (on, the default), got '${v}'`);
}

/**
 * The BLAS libraries this process has mapped (libtorch calls libblas.so.3,
 * which Debian's alternatives point at OpenBLAS or the slow reference BLAS),
 * as file paths; empty where /proc is not available.
 */
export function loadedBlas(): string[] {
  let maps = '';
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return [];
  }
  const paths = maps.split('\n').filter((l) => /lib(open)?blas[^/]*\.so/.test(l)).map((l) => l.trim().split(/\s+/).pop() as string);
  return [...new Set(paths)];
}
