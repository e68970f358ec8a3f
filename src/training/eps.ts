/**
 * eps samplers for adversarial training: one eps per adversarial example,
 * drawn independently, in pixel units. The paper draws from a normal with mean
 * 0 and std 8 truncated to [0, 16]: a model trained at one fixed eps becomes
 * robust to that eps alone.
 */
import { type Generator, rand, scope, truncatedNormal } from '../engine/index.js';
import { checkEps } from '../attacks/index.js';
import { readNumber } from '../io/numbers.js';

export type EpsSpec =
  | { kind: 'fixed'; value: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'truncatedNormal'; mean: number; std: number; low: number; high: number };

/** The paper's distribution: normal(0, 8) truncated to [0, 16]. */
export const PAPER_EPS: EpsSpec = { kind: 'truncatedNormal', mean: 0, std: 8, low: 0, high: 16 };

function inRange(what: string, v: number): void {
  checkEps(v, `eps ${what}`);
}

/** Checks a spec; returns it. */
export function checkEpsSpec(s: EpsSpec): EpsSpec {
  switch (s.kind) {
    case 'fixed':
      inRange('value', s.value);
      break;
    case 'uniform':
      inRange('low', s.low);
      inRange('high', s.high);
      if (!(s.low <= s.high)) throw new Error(`eps uniform range: low (${s.low}) must not exceed high (${s.high})`);
      break;
    case 'truncatedNormal':
      inRange('low', s.low);
      inRange('high', s.high);
      if (!(s.low < s.high)) throw new Error(`eps truncated normal: low (${s.low}) must be below high (${s.high})`);
      if (!(s.std > 0) || !Number.isFinite(s.std)) throw new Error(`eps truncated normal: std must be positive, got ${s.std}`);
      if (!Number.isFinite(s.mean)) throw new Error(`eps truncated normal: mean must be finite, got ${s.mean}`);
      break;
    default:
      throw new Error(`unknown eps distribution '${(s as { kind: string }).kind}': expected fixed, uniform or truncatedNormal`);
  }
  return s;
}

/** Draws `n` independent eps values (pixel units). */
export function sampleEps(spec: EpsSpec, n: number, generator?: Generator): number[] {
  return scope(() => {
    switch (spec.kind) {
      case 'fixed':
        return new Array<number>(n).fill(spec.value);
      case 'uniform':
        return Array.from(rand([n], { generator, dtype: 'float64' }).mul(spec.high - spec.low).add(spec.low).dataSync() as Float64Array);
      case 'truncatedNormal':
        return Array.from(truncatedNormal([n], { ...spec, generator, dtype: 'float64' }).dataSync() as Float64Array);
    }
  });
}

/**
 * Parses a command-line description: '8' (fixed), 'uniform:0:16',
 * 'truncnorm:MEAN:STD:LOW:HIGH' or 'paper' (truncnorm:0:8:0:16).
 */
export function parseEpsSpec(text: string): EpsSpec {
  const parts = text.split(':');
  // Strictly decimal: Number() would take '0x10' as 16 and '' as 0.
  const nums = parts[0] === 'uniform' || parts[0] === 'truncnorm' ? parts.slice(1).map((p, i) => readNumber(p, `eps '${text}' part ${i + 2}`)) : [];
  let spec: EpsSpec;
  if (text === 'paper') spec = PAPER_EPS;
  else if (parts.length === 1) spec = { kind: 'fixed', value: readNumber(text, 'eps') };
  else if (parts[0] === 'uniform' && nums.length === 2) spec = { kind: 'uniform', low: nums[0] as number, high: nums[1] as number };
  else if (parts[0] === 'truncnorm' && nums.length === 4) {
    spec = { kind: 'truncatedNormal', mean: nums[0] as number, std: nums[1] as number, low: nums[2] as number, high: nums[3] as number };
  } else throw new Error(`eps '${text}': expected a number, uniform:LOW:HIGH, truncnorm:MEAN:STD:LOW:HIGH or paper`);
  return checkEpsSpec(spec);
}

/** Mean and variance of the distribution (for tests and reports). */
export function epsMoments(spec: EpsSpec): { mean: number; variance: number } {
  switch (spec.kind) {
    case 'fixed':
      return { mean: spec.value, variance: 0 };
    case 'uniform':
      return { mean: (spec.low + spec.high) / 2, variance: (spec.high - spec.low) ** 2 / 12 };
    case 'truncatedNormal': {
      const a = (spec.low - spec.mean) / spec.std;
      const b = (spec.high - spec.mean) / spec.std;
      const phi = (z: number): number => Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
      const Z = normalCdf(b) - normalCdf(a);
      const mean = spec.mean + (spec.std * (phi(a) - phi(b))) / Z;
      const variance = spec.std ** 2 * (1 + (a * phi(a) - b * phi(b)) / Z - ((phi(a) - phi(b)) / Z) ** 2);
      return { mean, variance };
    }
  }
}

/** Standard normal CDF (Abramowitz and Stegun 7.1.26 on erf; error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return 0.5 * (1 + (z >= 0 ? erf : -erf));
}
