/** Seeded random generators and random tensors. */
import { native, type GeneratorHandle, type Handle } from './native.js';
import { Tensor } from './tensor.js';
import { type CreateOptions, tensor } from './ops.js';
import { dtypeCode } from './dtype.js';
import { scope } from './scope.js';
import { checkSeed } from './runtime.js';

/**
 * A seeded random stream (libtorch's CPU generator). Ops given the same
 * generator state produce the same numbers, which makes runs reproducible.
 */
export class Generator {
  /** @internal */
  readonly handle: GeneratorHandle;

  constructor(readonly seed: number) {
    this.handle = native.newGenerator(checkSeed(seed, 'Generator')) as GeneratorHandle;
  }

  /** The full state, for checkpoints. */
  getState(): Uint8Array {
    const t = new Tensor(native.generatorState(this.handle) as Handle);
    try {
      return t.dataSync() as Uint8Array;
    } finally {
      t.dispose();
    }
  }

  setState(state: Uint8Array): void {
    const t = tensor(state, { dtype: 'uint8' });
    try {
      native.setGeneratorState(this.handle, t.handle);
    } finally {
      t.dispose();
    }
  }
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

const args = (o: RandomOptions): [number, string] => [dtypeCode(o.dtype ?? 'float32'), o.device ?? 'cpu'];
const gen = (o: RandomOptions): GeneratorHandle | null => o.generator?.handle ?? null;

/** Uniform on [0, 1). */
export function rand(shape: number[], opts: RandomOptions = {}): Tensor {
  return new Tensor(native.rand(shape, ...args(opts), gen(opts)) as Handle);
}

/** Standard normal. */
export function randn(shape: number[], opts: RandomOptions = {}): Tensor {
  return new Tensor(native.randn(shape, ...args(opts), gen(opts)) as Handle);
}

/** Integers uniform on [low, high) (int64 unless dtype says otherwise). */
export function randint(low: number, high: number, shape: number[], opts: RandomOptions = {}): Tensor {
  if (!(high > low)) throw new Error(`randint: high (${high}) must exceed low (${low})`);
  return new Tensor(native.randint(low, high, shape, dtypeCode(opts.dtype ?? 'int64'), opts.device ?? 'cpu', gen(opts)) as Handle);
}

/** A random permutation of 0 .. n-1 (int64). */
export function randperm(n: number, opts: RandomOptions = {}): Tensor {
  return new Tensor(native.randperm(n, dtypeCode(opts.dtype ?? 'int64'), opts.device ?? 'cpu', gen(opts)) as Handle);
}

/** 1 with probability p (element-wise), else 0. */
export function bernoulli(p: Tensor, opts: { generator?: Generator } = {}): Tensor {
  return new Tensor(native.bernoulli(p.handle, opts.generator?.handle ?? null) as Handle);
}

/** Draws `n` class indices per row of `probs` [N, C] (int64 [N, n]). */
export function multinomial(probs: Tensor, n: number, opts: { replacement?: boolean; generator?: Generator } = {}): Tensor {
  return new Tensor(native.multinomial(probs.handle, n, opts.replacement ?? false, opts.generator?.handle ?? null) as Handle);
}

export interface TruncatedNormalOptions extends RandomOptions {
  /** Mean of the underlying normal (default 0). */
  mean?: number;
  /** Standard deviation of the underlying normal (default 1). */
  std?: number;
  /** Lower bound, in the same units as mean (default mean - 2 std). */
  low?: number;
  /** Upper bound (default mean + 2 std). */
  high?: number;
}

/**
 * A normal(mean, std) distribution restricted to [low, high], drawn by inverse
 * transform sampling: u ~ U(Phi(a), Phi(b)), x = mean + std * Phi^-1(u), with
 * a, b the bounds in standard units. Exact (no rejection loop, no clipping
 * bias); computed in float64 and cast to the requested dtype.
 */
export function truncatedNormal(shape: number[], opts: TruncatedNormalOptions = {}): Tensor {
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  const low = opts.low ?? mean - 2 * std;
  const high = opts.high ?? mean + 2 * std;
  if (!(std > 0) || !Number.isFinite(std)) throw new Error(`truncatedNormal: std must be positive and finite, got ${std}`);
  if (!Number.isFinite(mean)) throw new Error(`truncatedNormal: mean must be finite, got ${mean}`);
  if (!(low < high)) throw new Error(`truncatedNormal: low (${low}) must be below high (${high})`);
  return scope(() => {
    const bounds = tensor([(low - mean) / std, (high - mean) / std], { dtype: 'float64' });
    const cdf = bounds.div(Math.SQRT2).erf().add(1).mul(0.5).dataSync() as Float64Array;
    const [ca, cb] = [cdf[0] as number, cdf[1] as number];
    const u = rand(shape, { generator: opts.generator, dtype: 'float64', device: opts.device }).mul(cb - ca).add(ca);
    const z = u.mul(2).sub(1).erfinv().mul(Math.SQRT2);
    return z.mul(std).add(mean).clamp(low, high).to(opts.dtype ?? 'float32');
  });
}
