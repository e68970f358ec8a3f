/**
 * Transform geometry without images: torchvision's resize and centre-crop
 * arithmetic worked by hand, crop/flip composition against a direct
 * per-pixel reading, the counter-based random numbers, and argument checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../helpers/assert.js';
import {
  centerCrop,
  copyMapped,
  horizontalFlip,
  imagenetEvalTransforms,
  outputSize,
  imagenetTrainTransforms,
  planGeometry,
  randomCrop,
  randomResizedCrop,
  RESIZED_CROP_DRAWS,
  resize,
  resizedCropBox,
  resizedSize,
  roundHalfEven,
  sampleUniform,
  validateTransforms,
} from '../../src/data/index.js';

const never = (): number => {
  throw new Error('no random draw expected');
};

test('resize keeps the aspect ratio with floor on the longer side (torchvision Resize(int))', () => {
  assert.deepEqual(resizedSize(500, 375, 256), { width: 341, height: 256 }); // 256 * 500 / 375 = 341.33
  assert.deepEqual(resizedSize(375, 500, 256), { width: 256, height: 341 });
  assert.deepEqual(resizedSize(300, 300, 256), { width: 256, height: 256 });
  assert.deepEqual(resizedSize(12, 8, 4), { width: 6, height: 4 });
  assert.deepEqual(resizedSize(12, 8, [5, 7]), { width: 7, height: 5 });
  assert.deepEqual(imagenetEvalTransforms(299), [resize(342), centerCrop(299)]);
});

test("centre-crop offsets use Python's round (half to even), padding when the image is smaller", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 3.4, 3.6].map(roundHalfEven), [0, 2, 2, -0, 3, 4]);
  // (12 - 5) / 2 = 3.5 -> 4; (8 - 5) / 2 = 1.5 -> 2
  assert.deepEqual(planGeometry([centerCrop(5)], 12, 8, never), { width: 5, height: 5, ax: 1, bx: 4, by: 2, x0: 0, x1: 11, y0: 0, y1: 7 });
  // Crop larger than the image: pad floor((10 - 7) / 2) = 1 on the left/top.
  assert.deepEqual(planGeometry([centerCrop([10, 10])], 7, 10, never), { width: 10, height: 10, ax: 1, bx: -1, by: 0, x0: 0, x1: 6, y0: 0, y1: 9 });
});

/** Reads the mapped image pixel by pixel from the definition of each step, for comparison with planGeometry. */
function reference(steps: ('flip' | [number, number, number, number])[], src: number[][]): number[][] {
  let img = src;
  for (const s of steps) {
    if (s === 'flip') img = img.map((row) => [...row].reverse());
    else {
      const [ox, oy, w, h] = s;
      img = Array.from({ length: h }, (_, v) =>
        Array.from({ length: w }, (_, u) => img[v + oy]?.[u + ox] ?? 0),
      );
    }
  }
  return img;
}

test('crops and flips compose into one exact mapping', () => {
  const W = 9;
  const H = 7;
  const src = Array.from({ length: H }, (_, y) => Array.from({ length: W }, (_, x) => 1 + x + 10 * y));
  const bytes = Uint8Array.from(src.flat());
  // Fixed draws so every random step is known: each flip draws once (p = 1 too), randomCrop draws y then x.
  const draws = [0.5, 0.99, 0.0, 0.3];
  const transforms = [horizontalFlip(1), centerCrop([5, 6]), randomCrop([3, 4], { padding: 1 }), horizontalFlip(0.5)];
  const m = planGeometry(transforms, W, H, (k) => draws[k] as number);
  // By hand: flip; centre crop 6x5 of 9x7 at (round(1.5)=2, 1); random crop 4x3 of 6x5 padded by 1:
  // y span 5+2-3 = 4 -> floor(0.99*5) = 4 -> oy = 3; x span 6+2-4 = 4 -> ox = -1; flip (0.3 < 0.5).
  const expected = reference(['flip', [2, 1, 6, 5], [-1, 3, 4, 3], 'flip'], src);
  const out = new Uint8Array(m.width * m.height);
  copyMapped(bytes, W, H, 1, m, out, 0);
  const got = Array.from({ length: m.height }, (_, v) => Array.from(out.subarray(v * m.width, (v + 1) * m.width)));
  assert.deepEqual(got, expected);
  assert.ok(expected.flat().includes(0), 'the padded crop reaches outside the image');
});

test('random pipelines match a step-by-step simulation on the pixels', () => {
  const next = rng(42);
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  for (let trial = 0; trial < 300; trial++) {
    const W = int(1, 9);
    const H = int(1, 9);
    const src = Array.from({ length: H }, (_, y) => Array.from({ length: W }, (_, x) => 1 + x + 10 * y));
    const draws = Array.from({ length: 12 }, () => next());
    const transforms = [];
    const steps: ('flip' | [number, number, number, number])[] = [];
    let [vw, vh] = [W, H];
    let k = 0;
    // Each step's offsets from its definition: centre = torchvision's rule, random = uniform over the padded span.
    const centre = (have: number, want: number): number => (have >= want ? roundHalfEven((have - want) / 2) : -Math.floor((want - have) / 2));
    for (let s = int(1, 4); s > 0; s--) {
      const kind = int(0, 2);
      if (kind === 0) {
        const [h, w] = [int(1, 10), int(1, 10)];
        transforms.push(centerCrop([h, w]));
        steps.push([centre(vw, w), centre(vh, h), w, h]);
        [vw, vh] = [w, h];
      } else if (kind === 1) {
        const [h, w, pad] = [int(1, 10), int(1, 10), int(0, 2)];
        transforms.push(randomCrop([h, w], { padding: pad }));
        const pick = (have: number, want: number, u: number): number =>
          have + 2 * pad < want ? centre(have, want) : -pad + Math.floor(u * (have + 2 * pad - want + 1));
        const oy = pick(vh, h, draws[k++] as number);
        const ox = pick(vw, w, draws[k++] as number);
        steps.push([ox, oy, w, h]);
        [vw, vh] = [w, h];
      } else {
        transforms.push(horizontalFlip(0.5));
        if ((draws[k++] as number) < 0.5) steps.push('flip');
      }
    }
    const m = planGeometry(transforms, W, H, (i) => draws[i] as number);
    const out = new Uint8Array(m.width * m.height);
    copyMapped(Uint8Array.from(src.flat()), W, H, 1, m, out, 0);
    const got = Array.from({ length: m.height }, (_, v) => Array.from(out.subarray(v * m.width, (v + 1) * m.width)));
    assert.deepEqual(got, reference(steps, src), `trial ${trial}: ${JSON.stringify(transforms)} on ${W}x${H}`);
  }
});

test('copyMapped handles several channels and an offset', () => {
  const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // 2x2 RGB
  const out = new Uint8Array(3 + 12);
  copyMapped(src, 2, 2, 3, planGeometry([horizontalFlip(1)], 2, 2, () => 0), out, 3);
  assert.deepEqual(Array.from(out), [0, 0, 0, 4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9]);
});

test('random draws depend only on (seed, epoch, index, draw) and look uniform', () => {
  assert.equal(sampleUniform(3, 1, 17, 0), sampleUniform(3, 1, 17, 0));
  const keys: [number, number, number, number][] = [[3, 1, 17, 0], [4, 1, 17, 0], [3, 2, 17, 0], [3, 1, 18, 0], [3, 1, 17, 1], [2 ** 40 + 3, 1, 17, 0]];
  assert.equal(new Set(keys.map((k) => sampleUniform(...k))).size, keys.length);
  const n = 20000;
  let sum = 0;
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < n; i++) {
    const u = sampleUniform(0, 0, i, 0);
    assert.ok(u >= 0 && u < 1);
    sum += u;
    bins[Math.floor(u * 10)]! += 1;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
  for (const b of bins) assert.ok(Math.abs(b - n / 10) < 0.06 * (n / 10), `bins ${bins}`);
});

test('random crops cover every offset and stay inside the padded image', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 400; i++) {
    const m = planGeometry([randomCrop([4, 4], { padding: 2 })], 6, 4, (k) => sampleUniform(0, 0, i, k));
    assert.ok(m.bx >= -2 && m.bx <= 6 + 2 - 4, `x offset ${m.bx}`);
    assert.ok(m.by >= -2 && m.by <= 4 + 2 - 4, `y offset ${m.by}`);
    seen.add(m.bx * 100 + m.by);
  }
  assert.equal(seen.size, 7 * 5);
});

test('output size and checks on transform lists', () => {
  assert.deepEqual(outputSize([resize(10), centerCrop([3, 4]), horizontalFlip()]), [3, 4]);
  assert.deepEqual(outputSize([resize([5, 6])]), [5, 6]);
  assert.equal(outputSize([resize(10)]), null);
  assert.equal(outputSize([]), null);
  assert.throws(() => validateTransforms([centerCrop(3), resize(4)]), /transforms\[1\]: resize must be the first transform/);
  assert.throws(() => validateTransforms([{ kind: 'rotate' } as never]), /transforms\[0\]: unknown transform kind 'rotate'/);
  assert.throws(() => resize(0), /resize: size must be a positive integer, got 0/);
  assert.throws(() => resize(4, { interpolation: 'bogus' as never }), /interpolation must be one of/);
  assert.throws(() => centerCrop([3, 2.5]), /centerCrop: width must be a positive integer, got 2.5/);
  assert.throws(() => randomCrop(3, { padding: -1 }), /padding must be a non-negative integer, got -1/);
  assert.throws(() => horizontalFlip(1.5), /horizontalFlip: p must be in \[0, 1\], got 1.5/);
});

test("random-resized crop: torchvision's get_params rule worked by hand, fallback included", () => {
  const t = randomResizedCrop(224);
  assert.deepEqual(t, { kind: 'randomResizedCrop', height: 224, width: 224, scale: [0.08, 1], ratio: [3 / 4, 4 / 3], interpolation: 'linear' });
  // All draws 0.5 on 500x375: area 187500 * (0.08 + 0.5 * 0.92) = 101250, ratio exp(mean of logs) = 1,
  // sides round(sqrt(101250)) = 318; top floor(0.5 * 58) = 29, left floor(0.5 * 183) = 91.
  assert.deepEqual(resizedCropBox(t, 500, 375, () => 0.5), { left: 91, top: 29, width: 318, height: 318 });
  // Ten tries of the whole area at ratio 2 never fit a square: the fallback clamps the image's ratio into [2, 2].
  const wide = randomResizedCrop(8, { scale: [1, 1], ratio: [2, 2] });
  assert.deepEqual(resizedCropBox(wide, 100, 100, () => 0.3), { left: 0, top: 25, width: 100, height: 50 });
  const tall = randomResizedCrop(8, { scale: [1, 1], ratio: [0.5, 0.5] });
  assert.deepEqual(resizedCropBox(tall, 100, 100, () => 0.3), { left: 25, top: 0, width: 50, height: 100 });
  // Ratio inside the range but the area cannot fit: the whole image (floor offsets, 0 here).
  assert.deepEqual(resizedCropBox(randomResizedCrop(8, { scale: [1, 1], ratio: [0.9, 1.1] }), 7, 7, () => 0.99), { left: 0, top: 0, width: 7, height: 7 });
  // A try that fits on the third attempt: draws 0..3 ask for the whole area at ratio 4/3 on a square (misses), draw 4 a small area.
  const draws = [1 - 1e-9, 1 - 1e-9, 1 - 1e-9, 1 - 1e-9, 0, 0.5];
  const box = resizedCropBox(t, 100, 100, (k) => draws[k] ?? 0);
  assert.deepEqual(box, { left: 0, top: 0, width: 28, height: 28 }); // round(sqrt(800)) = 28
});

test('random-resized crop: scale [1, 1] and the image ratio take the whole image (a plain resize)', () => {
  for (const [w, h] of [[500, 375], [375, 500], [640, 480], [13, 7]] as const) {
    const t = randomResizedCrop([5, 6], { scale: [1, 1], ratio: [w / h, w / h] });
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(resizedCropBox(t, w, h, (k) => sampleUniform(1, 0, i, k)), { left: 0, top: 0, width: w, height: h });
    }
  }
});

test('random-resized crop: seeded per (seed, epoch, index), different across epochs, inside the image and the ranges', () => {
  const t = randomResizedCrop(224);
  const box = (seed: number, epoch: number, index: number): string =>
    JSON.stringify(resizedCropBox(t, 500, 375, (k) => sampleUniform(seed, epoch, index, k)));
  assert.equal(box(3, 1, 7), box(3, 1, 7));
  const epochs = new Set(Array.from({ length: 10 }, (_, e) => box(3, e, 7)));
  assert.equal(epochs.size, 10, 'each epoch gives another crop');
  assert.notEqual(box(3, 1, 7), box(3, 1, 8));
  assert.notEqual(box(3, 1, 7), box(4, 1, 7));
  let fallbacks = 0;
  for (let i = 0; i < 2000; i++) {
    const b = resizedCropBox(t, 500, 375, (k) => sampleUniform(0, 0, i, k));
    assert.ok(b.left >= 0 && b.top >= 0 && b.left + b.width <= 500 && b.top + b.height <= 375, JSON.stringify(b));
    const area = (b.width * b.height) / (500 * 375);
    // Rounding each side moves the area and ratio a little past the drawn values.
    assert.ok(area > 0.07 && area <= 1, `area ${area}`);
    const r = b.width / b.height;
    if (b.width === 500 && b.height === 375) fallbacks++;
    else assert.ok(r > 0.74 && r < 1.35, `ratio ${r}`);
  }
  assert.ok(fallbacks < 20, `${fallbacks} fallbacks`);
});

test('random-resized crop: output size, its place in a pipeline, and the draws it reserves', () => {
  assert.deepEqual(outputSize([randomResizedCrop([10, 12])]), [10, 12]);
  assert.deepEqual(outputSize(imagenetTrainTransforms(299)), [299, 299]);
  assert.deepEqual(imagenetTrainTransforms(224), [randomResizedCrop(224), horizontalFlip(0.5)]);
  // The decoder hands planGeometry the image at its output size; the flip after it takes the first draw past the block.
  const asked: number[] = [];
  const m = planGeometry([randomResizedCrop([4, 6]), horizontalFlip(0.5)], 6, 4, (k) => (asked.push(k), 0));
  assert.deepEqual(asked, [RESIZED_CROP_DRAWS]);
  assert.deepEqual(m, { width: 6, height: 4, ax: -1, bx: 5, by: 0, x0: 0, x1: 5, y0: 0, y1: 3 });
  assert.throws(() => validateTransforms([horizontalFlip(), randomResizedCrop(4)]), /transforms\[1\]: randomResizedCrop must be the first transform/);
  assert.throws(() => validateTransforms([resize(8), randomResizedCrop(4)]), /transforms\[1\]: randomResizedCrop must be the first transform/);
  validateTransforms(imagenetTrainTransforms());
});

test('random-resized crop: bad options are errors naming the option', () => {
  assert.throws(() => randomResizedCrop(0), /randomResizedCrop: size must be a positive integer, got 0/);
  assert.throws(() => randomResizedCrop(8, { scale: [0, 1] }), /randomResizedCrop: scale must be \[min, max\] with 0 < min <= max <= 1, got \[0,1\]/);
  assert.throws(() => randomResizedCrop(8, { scale: [0.5, 1.5] }), /randomResizedCrop: scale must be .*got \[0.5,1.5\]/);
  assert.throws(() => randomResizedCrop(8, { scale: [0.9, 0.1] }), /randomResizedCrop: scale must be .*got \[0.9,0.1\]/);
  assert.throws(() => randomResizedCrop(8, { scale: [0.5] as never }), /randomResizedCrop: scale must be/);
  assert.throws(() => randomResizedCrop(8, { ratio: [0, 1] }), /randomResizedCrop: ratio must be \[min, max\] with 0 < min <= max, got \[0,1\]/);
  assert.throws(() => randomResizedCrop(8, { ratio: [-1, 1] }), /randomResizedCrop: ratio must be/);
  assert.throws(() => randomResizedCrop(8, { ratio: [2, 1] }), /randomResizedCrop: ratio must be .*got \[2,1\]/);
  assert.throws(() => randomResizedCrop(8, { ratio: [1, Infinity] }), /randomResizedCrop: ratio must be .*got \[1,null\]/);
  assert.throws(() => randomResizedCrop(8, { interpolation: 'bogus' as never }), /randomResizedCrop: interpolation must be one of/);
});
