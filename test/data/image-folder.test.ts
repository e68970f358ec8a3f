/**
 * Image folders on a fixture tree generated into a temporary directory with
 * real PNG and JPEG files (encoded by sharp), one corrupt file and one
 * truncated JPEG: class indexing (sorted folders and class-index files),
 * shapes and ranges, exact pixels after crops and flips of a synthetic image,
 * resizing, seeded random crops, skipped files with warnings and counts,
 * sharded loading, missing-data errors and tensor leak counts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { type Tensor, memory } from '../../src/engine/index.js';
import {
  type DataWarning,
  type ImageFolder,
  DataLoader,
  centerCrop,
  horizontalFlip,
  openImageFolder,
  openImageNet,
  randomCrop,
  randomResizedCrop,
  resize,
  resizedCropBox,
  sampleUniform,
} from '../../src/data/index.js';

const W = 12;
const H = 8;
let root: string;

/** Encodes raw HWC bytes as PNG or JPEG. */
async function encode(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, format: 'png' | 'jpeg'): Promise<Buffer> {
  const img = sharp(Buffer.from(pixels), { raw: { width, height, channels } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

/** The synthetic grid: R = 20 x, G = 30 y, B = 7. */
function grid(): Uint8Array {
  const px = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) px.set([20 * x, 30 * y, 7], (y * W + x) * 3);
  }
  return px;
}

function noise(n: number, seed: number): Uint8Array {
  let a = seed;
  return Uint8Array.from({ length: n }, () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0), a >>> 24));
}

/** Pixel bytes (0..255) of a [N, 3, h, w] tensor in [0, 1], as image[c][y][x] for image `n`. */
function bytesOf(images: Tensor, n: number): number[][][] {
  const [, c, h, w] = images.shape as [number, number, number, number];
  const data = images.dataSync() as Float32Array;
  return Array.from({ length: c }, (_, ci) =>
    Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => Math.round(255 * (data[((n * c + ci) * h + y) * w + x] as number)))),
  );
}

function free(b: { images: Tensor; labels: Tensor }): void {
  b.images.dispose();
  b.labels.dispose();
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'advml-imgfolder-'));
  for (const d of ['ant/sub', 'bee', 'cat', '.hidden']) mkdirSync(join(root, d), { recursive: true });
  const solid = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) solid.set([200, 100, 50], 3 * i);
  const rgba = new Uint8Array(W * H * 4);
  for (let i = 0; i < W * H; i++) rgba.set([10, 20, 30, 128], 4 * i);
  const truncated = await encode(noise(64 * 64 * 3, 1), 64, 64, 3, 'jpeg');
  const files: [string, Buffer | string][] = [
    ['ant/grid.png', await encode(grid(), W, H, 3, 'png')],
    ['ant/notes.txt', 'not an image'],
    ['ant/sub/solid.jpg', await encode(solid, W, H, 3, 'jpeg')],
    ['bee/alpha.png', await encode(rgba, W, H, 4, 'png')],
    ['bee/broken.jpg', 'this is not a JPEG file at all'],
    ['bee/grey.png', await encode(new Uint8Array(W * H).fill(77), W, H, 1, 'png')],
    ['cat/noise.JPEG', await encode(noise(W * H * 3, 2), W, H, 3, 'jpeg')],
    ['cat/truncated.jpg', truncated.subarray(0, Math.floor(truncated.length * 0.6))],
    ['cat/wide.png', await encode(noise(16 * H * 3, 3), 16, H, 3, 'png')],
    ['.hidden/x.png', await encode(grid(), W, H, 3, 'png')],
    ['README', 'a file in the root is not a class'],
  ];
  for (const [name, data] of files) writeFileSync(join(root, name), data);
});

after(() => rmSync(root, { recursive: true, force: true }));

// Dataset indices of the fixture files, in the documented order (class, then path).
const GRID = 0;
const SOLID = 1;
const ALPHA = 2;
const BROKEN = 3;
const GREY = 4;
const NOISE = 5;
const TRUNCATED = 6;
const WIDE = 7;

describe('scanning', () => {
  test('classes from sorted folder names; images at any depth; other files and hidden folders ignored', async () => {
    const ds = await openImageFolder(root);
    assert.equal(ds.length, 8);
    assert.deepEqual(ds.classNames, ['ant', 'bee', 'cat']);
    assert.deepEqual(ds.classCounts(), [2, 3, 3]);
    const names = Array.from({ length: ds.length }, (_, i) => ds.path(i).slice(root.length + 1));
    assert.deepEqual(names, ['ant/grid.png', 'ant/sub/solid.jpg', 'bee/alpha.png', 'bee/broken.jpg', 'bee/grey.png', 'cat/noise.JPEG', 'cat/truncated.jpg', 'cat/wide.png']);
    assert.deepEqual(Array.from({ length: ds.length }, (_, i) => ds.label(i)), [0, 0, 1, 1, 1, 2, 2, 2]);
  });

  test('a class-index file sets the order and names; unknown folders and bad files are errors', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'advml-classidx-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const png = await encode(grid(), W, H, 3, 'png');
    for (const c of ['x', 'y']) {
      mkdirSync(join(dir, c));
      writeFileSync(join(dir, c, 'a.png'), png);
    }
    writeFileSync(join(dir, 'class_index.json'), JSON.stringify({ y: 0, x: 1 }));
    const byMap = await openImageFolder(dir);
    assert.deepEqual(byMap.classNames, ['y', 'x']);
    assert.deepEqual([byMap.label(0), byMap.label(1)], [0, 1]);
    assert.ok(byMap.path(0).endsWith('y/a.png'));
    const live = memory().liveTensors;
    const b = await byMap.get([0, 1]);
    assert.deepEqual(b.labels.toArray(), [0, 1]);
    free(b);
    assert.equal(memory().liveTensors, live);

    const keras = join(dir, 'keras.json');
    writeFileSync(keras, JSON.stringify({ 0: ['y', 'Yankee'], 1: ['z', 'Zulu'], 2: ['x', 'X-ray'] }));
    const byKeras = await openImageFolder(dir, { classIndexFile: keras });
    assert.deepEqual(byKeras.classNames, ['Yankee', 'Zulu', 'X-ray']);
    assert.deepEqual(byKeras.classFolders, ['y', 'z', 'x']);
    assert.deepEqual(byKeras.classCounts(), [1, 0, 1]);
    assert.deepEqual([byKeras.label(0), byKeras.label(1)], [0, 2]);

    const list = join(dir, 'list.json');
    writeFileSync(list, JSON.stringify(['x']));
    await assert.rejects(openImageFolder(dir, { classIndexFile: list }), new RegExp(`folder 'y' is not in the class index ${list}`));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"x": 0,');
    await assert.rejects(openImageFolder(dir, { classIndexFile: bad }), new RegExp(`class index ${bad}: cannot read it as JSON`));
    writeFileSync(bad, JSON.stringify({ x: 0, y: 0 }));
    await assert.rejects(openImageFolder(dir, { classIndexFile: bad }), /class index 0 is given twice/);
  });

  test('missing or empty data gives errors naming the path and what was expected', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'advml-empty-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const missing = join(dir, 'nope');
    await assert.rejects(openImageFolder(missing), new RegExp(`image folder not found: ${missing} does not exist`));
    await assert.rejects(openImageFolder(dir), new RegExp(`image folder ${dir} has no class sub-folders`));
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'x.txt'), 'x');
    await assert.rejects(openImageFolder(dir), new RegExp(`image folder ${dir} has no images`));
    const old = process.env.ADVML_IMAGENET_DIR;
    process.env.ADVML_IMAGENET_DIR = missing;
    t.after(() => {
      if (old === undefined) delete process.env.ADVML_IMAGENET_DIR;
      else process.env.ADVML_IMAGENET_DIR = old;
    });
    await assert.rejects(openImageNet('val'), (e: Error) => {
      assert.ok(e.message.includes(join(missing, 'val')), e.message);
      assert.match(e.message, /image-net\.org/);
      assert.match(e.message, /ADVML_IMAGENET_DIR/);
      return true;
    });
    await assert.rejects(openImageFolder(root, { concurrency: 0 }), /concurrency must be a positive integer, got 0/);
    await assert.rejects(openImageFolder(root, { transforms: [centerCrop(2), resize(3)] }), /resize must be the first transform/);
  });
});

describe('decoding and transforms', () => {
  let ds: ImageFolder;
  before(async () => {
    ds = await openImageFolder(root);
  });

  test('a batch: float32 [N, 3, H, W] in [0, 1], int64 labels, RGB from grey and RGBA', async () => {
    const live = memory().liveTensors;
    const b = await ds.get([GREY, GRID, ALPHA, SOLID, NOISE]);
    assert.deepEqual(b.images.shape, [5, 3, H, W]);
    assert.equal(b.images.dtype, 'float32');
    assert.equal(b.labels.dtype, 'int64');
    assert.deepEqual(b.labels.toArray(), [1, 0, 1, 0, 2]);
    assert.deepEqual(b.indices, [GREY, GRID, ALPHA, SOLID, NOISE]);
    assert.deepEqual(b.skipped, []);
    const all = Array.from(b.images.dataSync() as Float32Array);
    assert.ok(all.every((v) => v >= 0 && v <= 1));
    const grey = bytesOf(b.images, 0);
    for (const c of grey) assert.ok(c.flat().every((v) => v === 77));
    const g = bytesOf(b.images, 1);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) assert.deepEqual([g[0]![y]![x], g[1]![y]![x], g[2]![y]![x]], [20 * x, 30 * y, 7]);
    }
    const alpha = bytesOf(b.images, 2);
    assert.deepEqual(alpha.map((c) => [...new Set(c.flat())]), [[10], [20], [30]]);
    const solid = bytesOf(b.images, 3);
    [200, 100, 50].forEach((want, c) => assert.ok(solid[c]!.flat().every((v) => Math.abs(v - want) <= 3), `JPEG channel ${c} near ${want}`));
    free(b);
    assert.equal(memory().liveTensors, live);
  });

  test('centre crop of the grid gives the expected pixels (odd margins rounded half to even)', async () => {
    const live = memory().liveTensors;
    for (const [h, w, oy, ox] of [[4, 6, 2, 3], [5, 5, 2, 4], [7, 9, 0, 2]] as const) {
      const b = await ds.withTransforms([centerCrop([h, w])]).get([GRID]);
      assert.deepEqual(b.images.shape, [1, 3, h, w]);
      const [r, g, bl] = bytesOf(b.images, 0);
      assert.deepEqual(r, Array.from({ length: h }, () => Array.from({ length: w }, (_, u) => 20 * (u + ox))));
      assert.deepEqual(g, Array.from({ length: h }, (_, v) => new Array(w).fill(30 * (v + oy))));
      assert.ok(bl!.flat().every((v) => v === 7));
      free(b);
    }
    // Larger than the image: zero padding around it, torchvision's CenterCrop.
    const b = await ds.withTransforms([centerCrop([10, 14])]).get([GRID]);
    const r = bytesOf(b.images, 0)[0]!;
    assert.deepEqual(r[0], new Array(14).fill(0));
    assert.deepEqual(r[1], [0, ...Array.from({ length: W }, (_, x) => 20 * x), 0]);
    free(b);
    assert.equal(memory().liveTensors, live);
  });

  test('flip reverses the columns; p = 0 leaves the image as it is', async () => {
    const live = memory().liveTensors;
    const plain = await ds.withTransforms([centerCrop([6, 9])]).get([GRID, NOISE]);
    const flipped = await ds.withTransforms([centerCrop([6, 9]), horizontalFlip(1)]).get([GRID, NOISE]);
    const never = await ds.withTransforms([centerCrop([6, 9]), horizontalFlip(0)]).get([GRID, NOISE]);
    for (const n of [0, 1]) {
      const a = bytesOf(plain.images, n);
      assert.deepEqual(bytesOf(flipped.images, n), a.map((c) => c.map((row) => [...row].reverse())));
      assert.deepEqual(bytesOf(never.images, n), a);
    }
    for (const b of [plain, flipped, never]) free(b);
    assert.equal(memory().liveTensors, live);
  });

  test('resize: shorter side or exact size; a flat image stays flat; a gradient stays ordered', async () => {
    const live = memory().liveTensors;
    const short = await ds.withTransforms([resize(4)]).get([GRID]);
    assert.deepEqual(short.images.shape, [1, 3, 4, 6]);
    const r = bytesOf(short.images, 0)[0]!;
    for (const row of r) for (let x = 1; x < row.length; x++) assert.ok(row[x]! > row[x - 1]!, `R increases along x: ${row}`);
    free(short);
    const exact = await ds.withTransforms([resize([5, 7], { interpolation: 'nearest' })]).get([GREY, ALPHA]);
    assert.deepEqual(exact.images.shape, [2, 3, 5, 7]);
    assert.ok(bytesOf(exact.images, 0).flat(2).every((v) => v === 77));
    assert.deepEqual(bytesOf(exact.images, 1).map((c) => [...new Set(c.flat())]), [[10], [20], [30]]);
    free(exact);
    assert.equal(memory().liveTensors, live);
  });

  test('random crops are windows of the image, the same for the same seed and epoch, different across epochs', async () => {
    const live = memory().liveTensors;
    const view = ds.withTransforms([randomCrop([3, 4]), horizontalFlip()]);
    const offsets = new Set<string>();
    let first: number[][][] | undefined;
    for (let epoch = 0; epoch < 12; epoch++) {
      const a = await view.get([GRID], { seed: 5, epoch });
      const again = await view.get([GRID], { seed: 5, epoch });
      const img = bytesOf(a.images, 0);
      assert.deepEqual(bytesOf(again.images, 0), img);
      first ??= img;
      // Undo a possible flip, then read the window's offset from the grid values.
      const row = img[0]![0]!;
      const cols = row[0]! > row[1]! ? [...row].reverse() : row;
      const ox = cols[0]! / 20;
      const oy = img[1]![0]![0]! / 30;
      assert.deepEqual(cols, [0, 1, 2, 3].map((u) => 20 * (u + ox)));
      assert.deepEqual(img[1]!.map((rr) => rr[0]), [0, 1, 2].map((v) => 30 * (v + oy)));
      assert.ok(ox >= 0 && ox <= W - 4 && oy >= 0 && oy <= H - 3);
      offsets.add(`${ox},${oy},${row[0]! > row[1]!}`);
      free(a);
      free(again);
    }
    assert.ok(offsets.size >= 6, `epochs give different crops: ${[...offsets]}`);
    const otherSeed = await view.get([GRID], { seed: 6, epoch: 0 });
    free(otherSeed);
    assert.equal(memory().liveTensors, live);
  });

  test('random-resized crops cut the drawn region of the source and resize it; the same per (seed, epoch, index), new each epoch', async () => {
    const live = memory().liveTensors;
    // Nearest-neighbour upsampling to 24 x 16 (from at most 12 x 8) shows every source pixel of the region:
    // its R and G values (20 x, 30 y) are exactly the region's columns and rows.
    const t = randomResizedCrop([16, 24], { interpolation: 'nearest' });
    const view = ds.withTransforms([t]);
    const boxes = new Set<string>();
    for (let epoch = 0; epoch < 8; epoch++) {
      const a = await view.get([GRID, NOISE], { seed: 9, epoch });
      const again = await view.get([GRID], { seed: 9, epoch });
      assert.deepEqual(a.images.shape, [2, 3, 16, 24]);
      const img = bytesOf(a.images, 0);
      assert.deepEqual(bytesOf(again.images, 0), img);
      const box = resizedCropBox(t, W, H, (k) => sampleUniform(9, epoch, GRID, k));
      const xs = [...new Set(img[0]!.flat())].sort((p, q) => p - q);
      const ys = [...new Set(img[1]!.flat())].sort((p, q) => p - q);
      assert.deepEqual(xs, Array.from({ length: box.width }, (_, i) => 20 * (box.left + i)), `epoch ${epoch} box ${JSON.stringify(box)}`);
      assert.deepEqual(ys, Array.from({ length: box.height }, (_, i) => 30 * (box.top + i)), `epoch ${epoch} box ${JSON.stringify(box)}`);
      boxes.add(JSON.stringify(box));
      free(a);
      free(again);
    }
    assert.ok(boxes.size >= 6, `epochs give different crops: ${[...boxes]}`);
    assert.equal(memory().liveTensors, live);
  });

  test('a random-resized crop of scale [1, 1] at the image ratio is a plain resize of the whole image', async () => {
    for (const interpolation of ['linear', 'cubic'] as const) {
      const whole = await ds.withTransforms([randomResizedCrop([5, 7], { scale: [1, 1], ratio: [W / H, W / H], interpolation })]).get([GRID, NOISE, ALPHA], { seed: 2, epoch: 3 });
      const plain = await ds.withTransforms([resize([5, 7], { interpolation })]).get([GRID, NOISE, ALPHA]);
      assert.deepEqual(whole.images.shape, [3, 3, 5, 7]);
      assert.deepEqual(Array.from(whole.images.dataSync() as Float32Array), Array.from(plain.images.dataSync() as Float32Array));
      free(whole);
      free(plain);
    }
  });

  test('channels-last memory format on request', async () => {
    const cl = await ds.withTransforms([centerCrop(4)]).get([GRID]);
    assert.equal(cl.images.isContiguous(), true);
    free(cl);
    const view = await openImageFolder(root, { transforms: [centerCrop(4)], memoryFormat: 'channelsLast' });
    const b = await view.get([GRID, NOISE]);
    assert.equal(b.images.isContiguous('channelsLast'), true);
    assert.deepEqual(b.images.shape, [2, 3, 4, 4]);
    free(b);
  });
});

describe('damaged files', () => {
  test('corrupt and truncated files are skipped, named in warnings and in the batch', async () => {
    const ds = await openImageFolder(root, { transforms: [centerCrop(8)] });
    const warnings: DataWarning[] = [];
    const live = memory().liveTensors;
    const b = await ds.get([GRID, BROKEN, GREY, TRUNCATED, WIDE], { onWarning: (w) => warnings.push(w) });
    assert.deepEqual(b.images.shape, [3, 3, 8, 8]);
    assert.deepEqual(b.indices, [GRID, GREY, WIDE]);
    assert.deepEqual(b.labels.toArray(), [0, 1, 2]);
    assert.deepEqual(b.skipped.map((s) => [s.index, s.file]), [[BROKEN, join(root, 'bee/broken.jpg')], [TRUNCATED, join(root, 'cat/truncated.jpg')]]);
    assert.equal(warnings.length, 2);
    assert.ok(warnings[0]!.message.includes(join(root, 'bee/broken.jpg')), warnings[0]!.message);
    assert.ok(warnings[1]!.message.includes(join(root, 'cat/truncated.jpg')), warnings[1]!.message);
    // libvips names the damage ('premature end of JPEG file'), though under concurrent decoding its
    // message is sometimes lost ('Unknown error'): the file and the skip are what must hold.
    assert.ok(warnings[1]!.reason.length > 0);
    free(b);
    const none = await ds.get([BROKEN]);
    assert.deepEqual(none.images.shape, [0, 3, 8, 8]);
    assert.deepEqual(none.labels.shape, [0]);
    free(none);
    assert.equal(memory().liveTensors, live);
  });

  test('images of different sizes without a crop are an error naming both files', async () => {
    const ds = await openImageFolder(root);
    await assert.rejects(ds.get([GRID, WIDE]), (e: Error) => {
      assert.ok(e.message.includes(join(root, 'ant/grid.png')) && e.message.includes(join(root, 'cat/wide.png')), e.message);
      assert.match(e.message, /12x8.*16x8/);
      return true;
    });
  });

  test('sharded loading over the folder: disjoint covering parts, equal batch counts, skips counted, nothing leaks', async () => {
    const ds = await openImageFolder(root, { transforms: [resize(8), randomCrop(6), horizontalFlip()], concurrency: 3 });
    const live = memory().liveTensors;
    const world = 3;
    const warned: string[] = [];
    const parts = await Promise.all(
      Array.from({ length: world }, async (_, rank) => {
        const loader = new DataLoader(ds, 2, { seed: 17, rank, worldSize: world, onWarning: (w) => warned.push(w.file) });
        const run = loader.epoch(1);
        const seen: number[] = [];
        let batches = 0;
        for await (const b of run) {
          batches++;
          assert.deepEqual(b.images.shape, [b.indices.length, 3, 6, 6]);
          assert.deepEqual(b.labels.toArray(), b.indices.map((i) => ds.label(i)));
          seen.push(...b.indices, ...b.skipped.map((s) => s.index));
          free(b);
        }
        return { seen, batches, summary: run.summary };
      }),
    );
    assert.deepEqual(parts.map((p) => p.batches), [2, 2, 2]);
    assert.deepEqual(parts.map((p) => p.seen.length), [3, 3, 3]);
    assert.deepEqual([...new Set(parts.flatMap((p) => p.seen))].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(parts.reduce((a, p) => a + p.summary.padded, 0), 1);
    const skipped = parts.flatMap((p) => p.summary.skippedSamples.map((s) => s.file)).sort();
    assert.deepEqual(skipped, [join(root, 'bee/broken.jpg'), join(root, 'cat/truncated.jpg')]);
    assert.deepEqual(warned.sort(), skipped);
    assert.equal(parts.reduce((a, p) => a + p.summary.skipped, 0), 2);
    assert.ok(parts.every((p) => p.summary.complete));
    assert.equal(memory().liveTensors, live);
  });
});
