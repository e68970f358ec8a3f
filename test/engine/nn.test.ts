/**
 * Network-layer ops against naive JavaScript loops and closed forms: matmul,
 * linear, conv2d (stride, padding, dilation, groups), max/avg/adaptive
 * pooling, batch norm (running statistics as PyTorch), dropout, softmax,
 * cross-entropy (label smoothing, reductions, probability targets), NLL,
 * MSE and KL divergence.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { type Tensor, tensor } from '../../src/engine/index.js';
import { assertClose, build, offset, prod, rng, uniformArray } from '../helpers/assert.js';

const next = rng(42);
const randT = (shape: number[], lo = -1, hi = 1): { t: Tensor; v: number[] } => {
  const v = uniformArray(next, prod(shape), lo, hi);
  return { t: tensor(v, { dtype: 'float64', shape }), v };
};
const i64 = (data: number[]): Tensor => tensor(data, { dtype: 'int64' });
const sum = (v: number[]): number => v.reduce((a, b) => a + b, 0);

describe('matmul and linear', () => {
  /** Naive batched matmul with numpy broadcasting of the batch dims (both operands at least 2-d). */
  function matmulRef(a: number[], sa: number[], b: number[], sb: number[]): { shape: number[]; data: number[] } {
    const [n, k] = sa.slice(-2) as [number, number];
    const m = sb[sb.length - 1] as number;
    const ba = sa.slice(0, -2);
    const bb = sb.slice(0, -2);
    const rank = Math.max(ba.length, bb.length);
    const pa = [...Array(rank - ba.length).fill(1), ...ba] as number[];
    const pb = [...Array(rank - bb.length).fill(1), ...bb] as number[];
    const batch = pa.map((d, i) => Math.max(d, pb[i] as number));
    const shape = [...batch, n, m];
    const data = build(shape, (idx) => {
      const bi = idx.slice(0, rank);
      const [i, j] = idx.slice(rank) as [number, number];
      const oa = offset(pa, bi.map((v, d) => ((pa[d] as number) === 1 ? 0 : v)));
      const ob = offset(pb, bi.map((v, d) => ((pb[d] as number) === 1 ? 0 : v)));
      let s = 0;
      for (let r = 0; r < k; r++) s += (a[oa * n * k + i * k + r] as number) * (b[ob * k * m + r * m + j] as number);
      return s;
    });
    return { shape, data };
  }

  test('2-d, batched and broadcast batches', () => {
    const cases: [number[], number[]][] = [
      [[3, 4], [4, 2]],
      [[2, 3, 4], [2, 4, 5]],
      [[2, 3, 4], [4, 5]],
      [[2, 1, 3, 4], [3, 4, 2]],
    ];
    for (const [sa, sb] of cases) {
      const a = randT(sa);
      const b = randT(sb);
      const expected = matmulRef(a.v, sa, b.v, sb);
      const out = a.t.matmul(b.t);
      assert.deepEqual(out.shape, expected.shape);
      assertClose(out, expected.data, { atol: 1e-12 });
    }
  });

  test('vector cases drop the vector dimension', () => {
    const a = tensor([1, 2, 3]);
    const m = tensor([[1, 0], [0, 1], [1, 1]]);
    assertClose(a.matmul(m), [4, 5]);
    assertClose(m.transpose(0, 1).matmul(a), [4, 5]);
    assertClose(a.matmul(a), 14);
  });

  test('linear is x W^T + b', () => {
    const x = randT([5, 4]);
    const w = randT([3, 4]);
    const b = randT([3]);
    const expected = build([5, 3], ([i, o]) => (b.v[o!] as number) + sum(w.v.slice(o! * 4, o! * 4 + 4).map((wv, r) => wv * (x.v[i! * 4 + r] as number))));
    assertClose(E.linear(x.t, w.t, b.t), expected, { atol: 1e-12 });
    assertClose(E.linear(x.t, w.t), expected.map((v, i) => v - (b.v[i % 3] as number)), { atol: 1e-12 });
    // leading batch dims are kept
    assert.deepEqual(E.linear(randT([2, 3, 4]).t, w.t, b.t).shape, [2, 3, 3]);
  });
});

interface ConvCfg {
  x: number[];
  w: number[];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
  bias: boolean;
}

/** Naive grouped, strided, padded, dilated 2-d convolution (cross-correlation, as PyTorch). */
function conv2dRef(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, c: ConvCfg): { shape: number[]; data: number[] } {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [O, Cg, KH, KW] = ws as [number, number, number, number];
  const [sh, sw] = c.stride;
  const [ph, pw] = c.padding;
  const [dh, dw] = c.dilation;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const perGroup = O / c.groups;
  assert.equal(Cg, C / c.groups);
  const shape = [N, O, OH, OW];
  const data = build(shape, ([n, o, oy, ox]) => {
    const g = Math.floor(o! / perGroup);
    let s = b ? (b[o!] as number) : 0;
    for (let ci = 0; ci < Cg; ci++) {
      for (let ky = 0; ky < KH; ky++) {
        for (let kx = 0; kx < KW; kx++) {
          const iy = oy! * sh - ph + ky * dh;
          const ix = ox! * sw - pw + kx * dw;
          if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
          s += (x[offset(xs, [n!, g * Cg + ci, iy, ix])] as number) * (w[offset(ws, [o!, ci, ky, kx])] as number);
        }
      }
    }
    return s;
  });
  return { shape, data };
}

describe('conv2d', () => {
  test('a 3x3 image and a 2x2 kernel, by hand', () => {
    const x = tensor([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]);
    const w = tensor([[[[1, 0], [0, -1]]]]);
    // out[i][j] = x[i][j] - x[i+1][j+1] = -4
    assertClose(E.conv2d(x, w), [[[[-4, -4], [-4, -4]]]]);
    assertClose(E.conv2d(x, w, tensor([1])), [[[[-3, -3], [-3, -3]]]]);
    // padding 1: the border sees zeros
    assertClose(E.conv2d(x, w, null, { padding: 1 }), [[[[-1, -2, -3, 0], [-4, -4, -4, 3], [-7, -4, -4, 6], [0, 7, 8, 9]]]]);
    // stride 2 with padding 1 keeps rows/cols 0 and 2 of the padded result
    assertClose(E.conv2d(x, w, null, { padding: 1, stride: 2 }), [[[[-1, -3], [-7, -4]]]]);
    // dilation 2: out = x[0][0] - x[2][2]
    assertClose(E.conv2d(x, w, null, { dilation: 2 }), [[[[-8]]]]);
  });

  const configs: [string, number[], number[], Omit<ConvCfg, 'x' | 'w'>][] = [
    ['plain', [2, 3, 5, 5], [4, 3, 3, 3], { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, bias: true }],
    ['stride 2, padding 1', [1, 2, 6, 5], [3, 2, 3, 3], { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1, bias: true }],
    ['asymmetric stride and padding', [1, 2, 7, 6], [2, 2, 3, 2], { stride: [2, 1], padding: [0, 2], dilation: [1, 1], groups: 1, bias: false }],
    ['dilation 2', [1, 2, 7, 7], [3, 2, 3, 3], { stride: [1, 1], padding: [2, 2], dilation: [2, 2], groups: 1, bias: true }],
    ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2, bias: true }],
    ['depthwise with stride and dilation', [1, 3, 8, 8], [3, 1, 3, 3], { stride: [2, 2], padding: [1, 1], dilation: [2, 1], groups: 3, bias: false }],
  ];
  for (const [name, xs, ws, cfg] of configs) {
    test(`${name} matches a naive loop`, () => {
      const x = randT(xs);
      const w = randT(ws);
      const b = cfg.bias ? randT([ws[0]!]) : null;
      const expected = conv2dRef(x.v, xs, w.v, ws, b ? b.v : null, { ...cfg, x: x.v, w: w.v });
      const out = E.conv2d(x.t, w.t, b ? b.t : null, cfg);
      assert.deepEqual(out.shape, expected.shape);
      assertClose(out, expected.data, { atol: 1e-12 });
      // float32 and channels-last agree too
      const out32 = E.conv2d(x.t.to('float32').contiguous('channelsLast'), w.t.to('float32'), b ? b.t.to('float32') : null, cfg);
      assertClose(out32, expected.data, { atol: 1e-5 });
    });
  }
});

describe('pooling', () => {
  /** Naive max pool with -Infinity padding, dilation and ceil mode (a window must start inside the input or left padding). */
  function poolOut(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
    const num = size + 2 * p - d * (k - 1) - 1;
    let out = (ceil ? Math.ceil(num / s) : Math.floor(num / s)) + 1;
    if (ceil && (out - 1) * s >= size + p) out--;
    return out;
  }
  function maxPoolRef(x: number[], xs: number[], k: number, s: number, p: number, d: number, ceil: boolean): { shape: number[]; data: number[] } {
    const [N, C, H, W] = xs as [number, number, number, number];
    const shape = [N, C, poolOut(H, k, s, p, d, ceil), poolOut(W, k, s, p, d, ceil)];
    const data = build(shape, ([n, c, oy, ox]) => {
      let m = -Infinity;
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) {
          const iy = oy! * s - p + ky * d;
          const ix = ox! * s - p + kx * d;
          if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
          m = Math.max(m, x[offset(xs, [n!, c!, iy, ix])] as number);
        }
      }
      return m;
    });
    return { shape, data };
  }
  /** Naive average pool: PyTorch's divisor is the window clipped to the padded input, or to the input without countIncludePad. */
  function avgPoolRef(x: number[], xs: number[], k: number, s: number, p: number, ceil: boolean, includePad: boolean): { shape: number[]; data: number[] } {
    const [N, C, H, W] = xs as [number, number, number, number];
    const shape = [N, C, poolOut(H, k, s, p, 1, ceil), poolOut(W, k, s, p, 1, ceil)];
    const data = build(shape, ([n, c, oy, ox]) => {
      let y0 = oy! * s - p;
      let x0 = ox! * s - p;
      let y1 = Math.min(y0 + k, H + p);
      let x1 = Math.min(x0 + k, W + p);
      const padded = (y1 - y0) * (x1 - x0);
      y0 = Math.max(y0, 0);
      x0 = Math.max(x0, 0);
      y1 = Math.min(y1, H);
      x1 = Math.min(x1, W);
      let t = 0;
      for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) t += x[offset(xs, [n!, c!, iy, ix])] as number;
      return t / (includePad ? padded : (y1 - y0) * (x1 - x0));
    });
    return { shape, data };
  }

  test('maxPool2d, by hand', () => {
    const x = tensor([[[[1, 5, 2, 0], [3, 4, 8, 1], [0, 9, 2, 2], [7, 1, 3, 6]]]]);
    assertClose(E.maxPool2d(x, 2), [[[[5, 8], [9, 6]]]]);
    assertClose(E.maxPool2d(x, 3, { stride: 1 }), [[[[9, 9], [9, 9]]]]);
    assertClose(E.maxPool2d(x, 2, { stride: 1, padding: 1 }).select(2, 0), [[[1, 5, 5, 2, 0]]]);
  });

  const maxCases: [number[], number, number, number, number, boolean][] = [
    [[2, 2, 6, 6], 2, 2, 0, 1, false],
    [[1, 2, 7, 5], 3, 2, 1, 1, false],
    [[1, 1, 7, 7], 3, 2, 1, 1, true],
    [[1, 1, 8, 8], 2, 2, 0, 1, true],
    [[1, 2, 7, 7], 2, 1, 1, 2, false],
  ];
  for (const [xs, k, s, p, d, ceil] of maxCases) {
    test(`maxPool2d k ${k} s ${s} p ${p} d ${d} ceil ${ceil} matches a naive loop`, () => {
      const x = randT(xs);
      const expected = maxPoolRef(x.v, xs, k, s, p, d, ceil);
      const out = E.maxPool2d(x.t, k, { stride: s, padding: p, dilation: d, ceilMode: ceil });
      assert.deepEqual(out.shape, expected.shape);
      assertClose(out, expected.data, { atol: 0 });
    });
  }

  test('avgPool2d, by hand', () => {
    const x = tensor([[[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]]]);
    assertClose(E.avgPool2d(x, 2), [[[[3.5, 5.5], [11.5, 13.5]]]]);
    // padding 1, stride 2, kernel 2: corners average one real value over 4 (padding counted)
    assertClose(E.avgPool2d(x, 2, { padding: 1 }).select(2, 0), [[[0.25, 2.5 / 2, 4 / 4]]]);
    assertClose(E.avgPool2d(x, 2, { padding: 1, countIncludePad: false }).select(2, 0), [[[1, 2.5, 4]]]);
  });

  const avgCases: [number[], number, number, number, boolean, boolean][] = [
    [[2, 2, 6, 6], 2, 2, 0, false, true],
    [[1, 2, 7, 5], 3, 2, 1, false, true],
    [[1, 2, 7, 5], 3, 2, 1, false, false],
    [[1, 1, 7, 7], 3, 2, 1, true, true],
    [[1, 1, 7, 7], 3, 2, 1, true, false],
    [[1, 1, 5, 5], 2, 2, 0, true, true],
  ];
  for (const [xs, k, s, p, ceil, inc] of avgCases) {
    test(`avgPool2d k ${k} s ${s} p ${p} ceil ${ceil} countIncludePad ${inc} matches a naive loop`, () => {
      const x = randT(xs);
      const expected = avgPoolRef(x.v, xs, k, s, p, ceil, inc);
      const out = E.avgPool2d(x.t, k, { stride: s, padding: p, ceilMode: ceil, countIncludePad: inc });
      assert.deepEqual(out.shape, expected.shape);
      assertClose(out, expected.data, { atol: 1e-12 });
    });
  }

  test('adaptiveAvgPool2d: bins floor(i H / o) .. ceil((i + 1) H / o)', () => {
    for (const [xs, os] of [[[1, 2, 5, 7], [3, 2]], [[2, 1, 6, 6], [3, 3]], [[1, 1, 4, 4], [1, 1]], [[1, 1, 3, 5], [5, 4]]] as [number[], [number, number]][]) {
      const x = randT(xs);
      const [, , H, W] = xs as [number, number, number, number];
      const [oh, ow] = os;
      const expected = build([xs[0]!, xs[1]!, oh, ow], ([n, c, i, j]) => {
        const y0 = Math.floor((i! * H) / oh);
        const y1 = Math.ceil(((i! + 1) * H) / oh);
        const x0 = Math.floor((j! * W) / ow);
        const x1 = Math.ceil(((j! + 1) * W) / ow);
        let t = 0;
        for (let y = y0; y < y1; y++) for (let z = x0; z < x1; z++) t += x.v[offset(xs, [n!, c!, y, z])] as number;
        return t / ((y1 - y0) * (x1 - x0));
      });
      const out = E.adaptiveAvgPool2d(x.t, os);
      assert.deepEqual(out.shape, [xs[0]!, xs[1]!, oh, ow]);
      assertClose(out, expected, { atol: 1e-12 });
    }
    // global average pooling
    const x = randT([2, 3, 4, 4]);
    assertClose(E.adaptiveAvgPool2d(x.t, 1), x.t.mean([2, 3], { keepDim: true }), { atol: 1e-12 });
  });
});

describe('batchNorm', () => {
  const N = 4;
  const C = 2;
  const HW = 3;
  /** Per-channel batch mean and biased/unbiased variance of x [N, C, HW]. */
  function stats(v: number[]): { mean: number[]; varB: number[]; varU: number[] } {
    const mean: number[] = [];
    const varB: number[] = [];
    const varU: number[] = [];
    for (let c = 0; c < C; c++) {
      const vals: number[] = [];
      for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) vals.push(v[(n * C + c) * HW + k] as number);
      const m = sum(vals) / vals.length;
      const ss = sum(vals.map((q) => (q - m) ** 2));
      mean.push(m);
      varB.push(ss / vals.length);
      varU.push(ss / (vals.length - 1));
    }
    return { mean, varB, varU };
  }
  const normalise = (v: number[], mean: number[], variance: number[], w: number[], b: number[], eps: number): number[] =>
    v.map((q, i) => {
      const c = Math.floor(i / HW) % C;
      return ((q - (mean[c] as number)) / Math.sqrt((variance[c] as number) + eps)) * (w[c] as number) + (b[c] as number);
    });

  test('training normalises with batch statistics and updates running stats with momentum 0.1', () => {
    const x1 = randT([N, C, HW], -2, 3);
    const x2 = randT([N, C, HW], 0, 5);
    const w = [1.5, -0.5];
    const b = [0.25, 2];
    const runningMean = tensor([0, 0], { dtype: 'float64' });
    const runningVar = tensor([1, 1], { dtype: 'float64' });
    const opts = { weight: tensor(w, { dtype: 'float64' }), bias: tensor(b, { dtype: 'float64' }), runningMean, runningVar, training: true };
    const s1 = stats(x1.v);
    const y1 = E.batchNorm(x1.t, opts);
    assertClose(y1, normalise(x1.v, s1.mean, s1.varB, w, b, 1e-5), { atol: 1e-10 });
    // running = (1 - momentum) running + momentum batch; the variance is the unbiased one
    let rm = s1.mean.map((m) => 0.9 * 0 + 0.1 * m);
    let rv = s1.varU.map((v) => 0.9 * 1 + 0.1 * v);
    assertClose(runningMean, rm, { atol: 1e-12 });
    assertClose(runningVar, rv, { atol: 1e-12 });
    const s2 = stats(x2.v);
    E.batchNorm(x2.t, opts);
    rm = rm.map((m, c) => 0.9 * m + 0.1 * (s2.mean[c] as number));
    rv = rv.map((v, c) => 0.9 * v + 0.1 * (s2.varU[c] as number));
    assertClose(runningMean, rm, { atol: 1e-12 });
    assertClose(runningVar, rv, { atol: 1e-12 });
    // eval uses the running statistics and leaves them alone
    const y3 = E.batchNorm(x1.t, { ...opts, training: false });
    assertClose(y3, normalise(x1.v, rm, rv, w, b, 1e-5), { atol: 1e-10 });
    assertClose(runningMean, rm, { atol: 1e-12 });
    assertClose(runningVar, rv, { atol: 1e-12 });
  });

  test('a custom momentum and eps; 2-d input; no affine parameters', () => {
    const x = randT([5, 3]);
    const runningMean = tensor([1, 1, 1], { dtype: 'float64' });
    const runningVar = tensor([2, 2, 2], { dtype: 'float64' });
    const y = E.batchNorm(x.t, { runningMean, runningVar, training: true, momentum: 0.5, eps: 0.1 });
    const cols = [0, 1, 2].map((c) => [0, 1, 2, 3, 4].map((n) => x.v[n * 3 + c] as number));
    const means = cols.map((v) => sum(v) / 5);
    const ss = cols.map((v, c) => sum(v.map((q) => (q - (means[c] as number)) ** 2)));
    assertClose(y, x.v.map((q, i) => (q - (means[i % 3] as number)) / Math.sqrt((ss[i % 3] as number) / 5 + 0.1)), { atol: 1e-10 });
    assertClose(runningMean, means.map((m) => 0.5 + 0.5 * m), { atol: 1e-12 });
    assertClose(runningVar, ss.map((q) => 1 + 0.5 * (q / 4)), { atol: 1e-12 });
  });

  test('eval without affine parameters', () => {
    const x = randT([2, 2, 3]);
    const y = E.batchNorm(x.t, { runningMean: tensor([0.5, -1], { dtype: 'float64' }), runningVar: tensor([4, 0.25], { dtype: 'float64' }), eps: 0 });
    assertClose(y, x.v.map((q, i) => (Math.floor(i / 3) % 2 === 0 ? (q - 0.5) / 2 : (q + 1) / 0.5)), { atol: 1e-12 });
  });
});

describe('dropout', () => {
  test('p = 0 in training and any p in eval are the identity', () => {
    const x = randT([3, 4]);
    assertClose(E.dropout(x.t, 0, true), x.v, { atol: 0 });
    assertClose(E.dropout(x.t, 0.5, false), x.v, { atol: 0 });
    assertClose(E.dropout(x.t, 0.9, false), x.v, { atol: 0 });
  });

  test('training zeroes a fraction ~p and scales survivors by 1 / (1 - p)', () => {
    E.manualSeed(123);
    const n = 200_000;
    for (const p of [0.1, 0.3, 0.7]) {
      const y = E.dropout(E.ones([n]), p, true).dataSync() as Float32Array;
      let zeros = 0;
      const scale = Math.fround(1 / (1 - p));
      for (const v of y) {
        if (v === 0) zeros++;
        else assert.ok(Math.abs(v - scale) <= 1e-6 * scale, `survivor ${v}, expected ${scale}`);
      }
      const frac = zeros / n;
      const se = Math.sqrt((p * (1 - p)) / n);
      assert.ok(Math.abs(frac - p) < 5 * se, `p ${p}: zeroed fraction ${frac}, 5 standard errors ${5 * se}`);
    }
  });

  test('p outside [0, 1) is rejected', () => {
    assert.throws(() => E.dropout(E.ones([2]), 1, true), /dropout: p must be in \[0, 1\)/);
    assert.throws(() => E.dropout(E.ones([2]), -0.1, true), /dropout/);
  });
});

describe('softmax and logSoftmax', () => {
  const softmaxRef = (v: number[]): number[] => {
    const m = Math.max(...v);
    const e = v.map((q) => Math.exp(q - m));
    const s = sum(e);
    return e.map((q) => q / s);
  };
  test('rows and columns', () => {
    const x = randT([3, 4], -3, 3);
    const rows = [0, 1, 2].map((i) => x.v.slice(i * 4, i * 4 + 4));
    assertClose(x.t.softmax(1), rows.flatMap(softmaxRef), { atol: 1e-12 });
    assertClose(x.t.softmax(-1), rows.flatMap(softmaxRef), { atol: 1e-12 });
    assertClose(x.t.logSoftmax(1), rows.flatMap(softmaxRef).map(Math.log), { atol: 1e-12 });
    const cols = [0, 1, 2, 3].map((j) => softmaxRef([0, 1, 2].map((i) => x.v[i * 4 + j] as number)));
    assertClose(x.t.softmax(0), build([3, 4], ([i, j]) => cols[j!]![i!]!), { atol: 1e-12 });
  });
  test('large logits do not overflow', () => {
    assertClose(tensor([1000, 1000, 0]).softmax(0), [0.5, 0.5, 0]);
    assertClose(tensor([1000, 0]).logSoftmax(0), [0, -1000]);
  });
});

describe('losses', () => {
  const logits = randT([4, 3], -2, 2);
  const rows = [0, 1, 2, 3].map((i) => logits.v.slice(i * 3, i * 3 + 3));
  const logSoftmax = (v: number[]): number[] => {
    const m = Math.max(...v);
    const l = m + Math.log(sum(v.map((q) => Math.exp(q - m))));
    return v.map((q) => q - l);
  };
  const logp = rows.map(logSoftmax);
  const y = [2, 0, 1, 0];
  const target = i64(y);
  const nll = y.map((c, i) => -(logp[i]![c] as number));

  test('crossEntropy with class indices, each reduction', () => {
    assertClose(E.crossEntropy(logits.t, target), sum(nll) / 4, { atol: 1e-12 });
    assertClose(E.crossEntropy(logits.t, target, { reduction: 'sum' }), sum(nll), { atol: 1e-12 });
    const none = E.crossEntropy(logits.t, target, { reduction: 'none' });
    assert.deepEqual(none.shape, [4]);
    assertClose(none, nll, { atol: 1e-12 });
  });

  test('crossEntropy label smoothing: (1 - s) * nll + s * mean over classes of -log p', () => {
    for (const s of [0.1, 0.25, 1]) {
      const per = y.map((c, i) => (1 - s) * -(logp[i]![c] as number) + (s * -sum(logp[i]!)) / 3);
      assertClose(E.crossEntropy(logits.t, target, { labelSmoothing: s, reduction: 'none' }), per, { atol: 1e-12 });
      assertClose(E.crossEntropy(logits.t, target, { labelSmoothing: s }), sum(per) / 4, { atol: 1e-12 });
      assertClose(E.crossEntropy(logits.t, target, { labelSmoothing: s, reduction: 'sum' }), sum(per), { atol: 1e-12 });
    }
    assert.throws(() => E.crossEntropy(logits.t, target, { labelSmoothing: 1.5 }), /labelSmoothing must be in \[0, 1\]/);
  });

  test('crossEntropy class weights and ignoreIndex', () => {
    const w = [0.5, 2, 1];
    const weighted = y.map((c, i) => (w[c] as number) * (nll[i] as number));
    assertClose(E.crossEntropy(logits.t, target, { weight: tensor(w, { dtype: 'float64' }) }), sum(weighted) / sum(y.map((c) => w[c] as number)), { atol: 1e-12 });
    // class 0 ignored: rows 1 and 3 drop out of the sum and of the count
    assertClose(E.crossEntropy(logits.t, target, { ignoreIndex: 0 }), ((nll[0] as number) + (nll[2] as number)) / 2, { atol: 1e-12 });
    assertClose(E.crossEntropy(logits.t, target, { ignoreIndex: 0, reduction: 'none' }), [nll[0] as number, 0, nll[2] as number, 0], { atol: 1e-12 });
  });

  test('crossEntropy with probability targets', () => {
    const p = randT([4, 3], 0, 1);
    const probs = [0, 1, 2, 3].map((i) => {
      const r = p.v.slice(i * 3, i * 3 + 3);
      return r.map((q) => q / sum(r));
    });
    const pt = tensor(probs, { dtype: 'float64' });
    const per = probs.map((r, i) => -sum(r.map((q, c) => q * (logp[i]![c] as number))));
    assertClose(E.crossEntropy(logits.t, pt), sum(per) / 4, { atol: 1e-12 });
    assertClose(E.crossEntropy(logits.t, pt, { reduction: 'none' }), per, { atol: 1e-12 });
    // a one-hot probability target equals the class-index form
    assertClose(E.crossEntropy(logits.t, E.oneHot(target, 3).to('float64')), sum(nll) / 4, { atol: 1e-12 });
    // smoothing mixes the target with the uniform distribution
    const s = 0.2;
    const smoothed = probs.map((r, i) => -sum(r.map((q, c) => ((1 - s) * q + s / 3) * (logp[i]![c] as number))));
    assertClose(E.crossEntropy(logits.t, pt, { labelSmoothing: s }), sum(smoothed) / 4, { atol: 1e-12 });
  });

  test('crossEntropy on [N, C, H, W] logits with [N, H, W] targets', () => {
    const x = randT([2, 3, 2, 2]);
    const t = [[[0, 2], [1, 1]], [[2, 2], [0, 1]]];
    const per = build([2, 2, 2], ([n, h, w]) => {
      const v = [0, 1, 2].map((c) => x.v[offset([2, 3, 2, 2], [n!, c, h!, w!])] as number);
      return -(logSoftmax(v)[t[n!]![h!]![w!]!] as number);
    });
    assertClose(E.crossEntropy(x.t, tensor(t, { dtype: 'int64' })), sum(per) / 8, { atol: 1e-12 });
  });

  test('nllLoss', () => {
    assertClose(E.nllLoss(logits.t, target), -sum(y.map((c, i) => logits.v[i * 3 + c] as number)) / 4, { atol: 1e-12 });
    assertClose(E.nllLoss(logits.t.logSoftmax(1), target, { reduction: 'none' }), nll, { atol: 1e-12 });
    assertClose(E.nllLoss(logits.t.logSoftmax(1), target, { reduction: 'sum' }), sum(nll), { atol: 1e-12 });
  });

  test('mseLoss', () => {
    const a = randT([3, 2]);
    const b = randT([3, 2]);
    const sq = a.v.map((q, i) => (q - (b.v[i] as number)) ** 2);
    assertClose(E.mseLoss(a.t, b.t), sum(sq) / 6, { atol: 1e-12 });
    assertClose(E.mseLoss(a.t, b.t, { reduction: 'sum' }), sum(sq), { atol: 1e-12 });
    assertClose(E.mseLoss(a.t, b.t, { reduction: 'none' }), sq, { atol: 1e-12 });
    assert.throws(() => E.mseLoss(a.t, b.t, { reduction: 'avg' as E.Reduction }), /reduction must be 'none', 'mean' or 'sum'/);
  });

  test('klDiv: target * (log target - input), input as log probabilities', () => {
    const input = randT([2, 3], -3, 0);
    const t = randT([2, 3], 0.1, 1);
    const terms = t.v.map((q, i) => q * (Math.log(q) - (input.v[i] as number)));
    assertClose(E.klDiv(input.t, t.t, { reduction: 'sum' }), sum(terms), { atol: 1e-12 });
    assertClose(E.klDiv(input.t, t.t), sum(terms) / 6, { atol: 1e-12 });
    assertClose(E.klDiv(input.t, t.t, { reduction: 'none' }), terms, { atol: 1e-12 });
    const logT = t.t.log();
    assertClose(E.klDiv(input.t, logT, { reduction: 'sum', logTarget: true }), sum(terms), { atol: 1e-12 });
  });
});

describe('channels-last inputs give the same results as contiguous ones', () => {
  test('pooling, batch norm and gradients through conv2d', () => {
    const x = randT([2, 3, 6, 6]);
    const xc = x.t.to('float32');
    const xl = xc.contiguous('channelsLast');
    assertClose(E.maxPool2d(xl, 3, { stride: 2, padding: 1 }), E.maxPool2d(xc, 3, { stride: 2, padding: 1 }), { atol: 0 });
    assertClose(E.avgPool2d(xl, 2), E.avgPool2d(xc, 2), { atol: 1e-6 });
    assertClose(E.adaptiveAvgPool2d(xl, 1), E.adaptiveAvgPool2d(xc, 1), { atol: 1e-6 });
    const bn = (input: Tensor, training: boolean): Tensor =>
      E.batchNorm(input, { weight: tensor([1, 2, 3]), bias: tensor([0, 1, 0]), runningMean: E.zeros([3]), runningVar: E.ones([3]), training });
    assertClose(bn(xl, true), bn(xc, true), { atol: 1e-5 });
    assertClose(bn(xl, false), bn(xc, false), { atol: 1e-6 });
    const w = randT([4, 3, 3, 3]).t.to('float32');
    const gradOf = (input: Tensor, weight: Tensor): Tensor[] => {
      const xi = input.detach().requiresGrad_();
      const wi = weight.detach().requiresGrad_();
      const out = E.conv2d(xi, wi, null, { padding: 1 }).relu().sum();
      return E.grad(out, [xi, wi]);
    };
    const [gxl, gwl] = gradOf(xl, w.contiguous('channelsLast'));
    const [gxc, gwc] = gradOf(xc, w);
    assertClose(gxl!, gxc!, { atol: 1e-5 });
    assertClose(gwl!, gwc!, { atol: 1e-4 });
  });
});
