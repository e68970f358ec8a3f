/**
 * Random numbers: seeded generators reproduce their streams, getState and
 * setState replay them, and the distributions have the moments and supports
 * they should (truncated normal against its analytic mean and variance).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { Generator, type Tensor } from '../../src/engine/index.js';
import { Phi, phi } from '../helpers/math.js';

const vals = (t: Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number | bigint>, Number);

/** Sample mean, variance (n - 1) and fourth central moment. */
function moments(v: ArrayLike<number>): { mean: number; variance: number; m4: number } {
  const n = v.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i] as number;
  const mean = s / n;
  let s2 = 0;
  let s4 = 0;
  for (let i = 0; i < n; i++) {
    const d = (v[i] as number) - mean;
    s2 += d * d;
    s4 += d * d * d * d;
  }
  return { mean, variance: s2 / (n - 1), m4: s4 / n };
}

/** Asserts |sample - expected| < k standard errors. */
function within(label: string, sample: number, expected: number, se: number, k = 4): void {
  assert.ok(Math.abs(sample - expected) < k * se, `${label}: sample ${sample}, expected ${expected}, ${k} standard errors = ${k * se}`);
}

describe('seeded generators', () => {
  const draws = (g: Generator): number[][] => [
    vals(E.rand([5], { generator: g })),
    vals(E.randn([5], { generator: g, dtype: 'float64' })),
    vals(E.randint(0, 1000, [5], { generator: g })),
    vals(E.randperm(10, { generator: g })),
    vals(E.bernoulli(E.full([8], 0.5), { generator: g })),
    vals(E.multinomial(E.tensor([[0.2, 0.3, 0.5]]), 2, { generator: g })),
    vals(E.truncatedNormal([5], { generator: g })),
    vals(E.empty([5]).uniform_(-1, 1, g)),
    vals(E.empty([5]).normal_(3, 2, g)),
  ];

  test('the same seed gives the same numbers; another seed others', () => {
    const a = draws(new Generator(7));
    const b = draws(new Generator(7));
    const c = draws(new Generator(8));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a[0], c[0]);
    assert.notDeepEqual(a[1], c[1]);
    assert.notDeepEqual(a[6], c[6]);
  });

  test('getState/setState replays the stream', () => {
    const g = new Generator(99);
    E.rand([3], { generator: g });
    const state = g.getState();
    assert.ok(state instanceof Uint8Array && state.length > 0);
    const first = draws(g);
    const second = draws(g);
    assert.notDeepEqual(first[0], second[0]);
    g.setState(state);
    assert.deepEqual(draws(g), first);
    // another generator given the state continues identically
    const h = new Generator(1);
    h.setState(state);
    assert.deepEqual(draws(h), first);
    assert.deepEqual(draws(h), second);
  });

  test('generators do not touch the global stream; manualSeed reseeds it', () => {
    E.manualSeed(31);
    const a = vals(E.rand([4]));
    const dropA = vals(E.dropout(E.ones([16]), 0.5, true));
    E.manualSeed(31);
    draws(new Generator(3));
    assert.deepEqual(vals(E.rand([4])), a);
    assert.deepEqual(vals(E.dropout(E.ones([16]), 0.5, true)), dropA);
  });

  test('bad seeds are refused', () => {
    assert.throws(() => new Generator(-1), /seed must be a non-negative integer/);
    assert.throws(() => new Generator(1.5), /seed must be a non-negative integer/);
    assert.throws(() => E.manualSeed(-3), /seed must be a non-negative integer/);
    // Beyond 2^53 the message names the seed and the bound, not the addon's argument 0.
    const cases: [unknown, string][] = [[2 ** 64, '18446744073709552000'], [1e20, '100000000000000000000'], [2 ** 53, '9007199254740992'], ['3', "the string '3'"]];
    for (const [seed, shown] of cases) {
      const expected = (who: string): string => `${who}: seed must be a non-negative integer at most 9007199254740991 (2^53 - 1), got ${shown}`;
      assert.throws(() => new Generator(seed as number), { message: expected('Generator') });
      assert.throws(() => E.manualSeed(seed as number), { message: expected('manualSeed') });
    }
    assert.equal(new Generator(Number.MAX_SAFE_INTEGER).seed, Number.MAX_SAFE_INTEGER);
  });
});

describe('distributions', () => {
  const n = 200_000;
  const g = new Generator(12345);

  test('rand: U[0, 1)', () => {
    const v = E.rand([n], { generator: g, dtype: 'float64' }).dataSync() as Float64Array;
    assert.ok(v.every((x) => x >= 0 && x < 1));
    const m = moments(v);
    within('mean', m.mean, 0.5, Math.sqrt(1 / 12 / n));
    within('variance', m.variance, 1 / 12, Math.sqrt((1 / 80 - 1 / 144) / n));
  });

  test('randn: N(0, 1)', () => {
    const v = E.randn([n], { generator: g, dtype: 'float64' }).dataSync() as Float64Array;
    const m = moments(v);
    within('mean', m.mean, 0, Math.sqrt(1 / n));
    within('variance', m.variance, 1, Math.sqrt(2 / n));
  });

  test('normal_ and uniform_ fill in place with the given parameters', () => {
    const a = E.empty([n], { dtype: 'float64' }).normal_(3, 2, g).dataSync() as Float64Array;
    const ma = moments(a);
    within('normal_ mean', ma.mean, 3, Math.sqrt(4 / n));
    within('normal_ variance', ma.variance, 4, Math.sqrt(32 / n));
    const u = E.empty([n], { dtype: 'float64' }).uniform_(-2, 6, g).dataSync() as Float64Array;
    assert.ok(u.every((x) => x >= -2 && x < 6));
    within('uniform_ mean', moments(u).mean, 2, Math.sqrt(64 / 12 / n));
  });

  test('randint: integers in [low, high), each about equally often', () => {
    const t = E.randint(-3, 4, [70_000], { generator: g });
    assert.equal(t.dtype, 'int64');
    const v = vals(t);
    assert.ok(v.every((x) => Number.isInteger(x) && x >= -3 && x < 4));
    for (let k = -3; k < 4; k++) {
      const count = v.filter((x) => x === k).length;
      within(`count of ${k}`, count, 10_000, Math.sqrt(70_000 * (1 / 7) * (6 / 7)));
    }
    assert.equal(E.randint(0, 5, [3], { generator: g, dtype: 'int32' }).dtype, 'int32');
    assert.throws(() => E.randint(5, 5, [2]), /randint: high \(5\) must exceed low \(5\)/);
  });

  test('randperm is a permutation', () => {
    const v = vals(E.randperm(50, { generator: g }));
    assert.deepEqual(v.slice().sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  });

  test('bernoulli and multinomial', () => {
    const b = vals(E.bernoulli(E.full([n], 0.3, { dtype: 'float64' }), { generator: g }));
    assert.ok(b.every((x) => x === 0 || x === 1));
    within('bernoulli mean', b.reduce<number>((s, x) => s + x, 0) / n, 0.3, Math.sqrt(0.21 / n));
    const m = E.multinomial(E.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]), 4, { generator: g });
    assert.deepEqual(m.shape, [2, 4]);
    for (const row of m.toArray() as number[][]) assert.deepEqual(row.slice().sort(), [0, 1, 2, 3]);
    const w = vals(E.multinomial(E.tensor([[0.1, 0.9]]), 20_000, { replacement: true, generator: g }));
    within('multinomial frequency', w.filter((x) => x === 1).length / 20_000, 0.9, Math.sqrt(0.09 / 20_000));
  });
});

describe('truncatedNormal', () => {
  /** Mean and variance of N(mu, sigma^2) truncated to [low, high]. */
  function truncatedMoments(mu: number, sigma: number, low: number, high: number): { mean: number; variance: number } {
    const a = (low - mu) / sigma;
    const b = (high - mu) / sigma;
    const z = Phi(b) - Phi(a);
    const d = (phi(a) - phi(b)) / z;
    const mean = mu + sigma * d;
    const variance = sigma * sigma * (1 + (a * phi(a) - b * phi(b)) / z - d * d);
    return { mean, variance };
  }

  const cases: [string, { mean: number; std: number; low: number; high: number }][] = [
    ['mean 0, std 8, on [0, 16]', { mean: 0, std: 8, low: 0, high: 16 }],
    ['mean 1, std 2, on [-1, 3] (symmetric)', { mean: 1, std: 2, low: -1, high: 3 }],
    ['mean 0, std 1, on [1, 3] (a tail)', { mean: 0, std: 1, low: 1, high: 3 }],
  ];
  for (const [name, o] of cases) {
    test(`${name}: in bounds, with the analytic mean and variance`, () => {
      const n = 200_000;
      const t = E.truncatedNormal([n], { ...o, generator: new Generator(77), dtype: 'float64' });
      assert.equal(t.dtype, 'float64');
      const v = t.dataSync() as Float64Array;
      let lo = Infinity;
      let hi = -Infinity;
      for (const x of v) {
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
      assert.ok(lo >= o.low && hi <= o.high, `samples in [${lo}, ${hi}], bounds [${o.low}, ${o.high}]`);
      // the whole interval is used
      const width = o.high - o.low;
      assert.ok(lo < o.low + 0.01 * width && hi > o.high - 0.05 * width, `samples span [${lo}, ${hi}]`);
      const expected = truncatedMoments(o.mean, o.std, o.low, o.high);
      const m = moments(v);
      within('mean', m.mean, expected.mean, Math.sqrt(expected.variance / n));
      within('variance', m.variance, expected.variance, Math.sqrt((m.m4 - m.variance ** 2) / n));
    });
  }

  test('the analytic moments themselves: [0, 16] with std 8 is a half-normal cut at 2 std', () => {
    // mean = 8 (phi(0) - phi(2)) / (Phi(2) - 1/2) = 8 * 0.3449513 / 0.4772499 = 5.78232 (tables)
    const { mean, variance } = truncatedMoments(0, 8, 0, 16);
    assert.ok(Math.abs(mean - 5.78232) < 1e-4, `mean ${mean}`);
    assert.ok(variance > 0 && variance < 64 / 3, `variance ${variance}`);
  });

  test('defaults: mean 0, std 1, bounds mean +- 2 std, float32', () => {
    const t = E.truncatedNormal([10_000], { generator: new Generator(5) });
    assert.equal(t.dtype, 'float32');
    const v = t.dataSync() as Float32Array;
    assert.ok(v.every((x) => x >= -2 && x <= 2));
    within('mean', moments(v).mean, 0, Math.sqrt(0.774 / 10_000));
  });

  test('bad arguments', () => {
    assert.throws(() => E.truncatedNormal([2], { std: 0 }), /std must be positive/);
    assert.throws(() => E.truncatedNormal([2], { low: 1, high: 1 }), /low \(1\) must be below high \(1\)/);
    assert.throws(() => E.truncatedNormal([2], { mean: NaN }), /mean must be finite/);
  });
});
