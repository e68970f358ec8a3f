/**
 * The loader's native JPEG path (native/jpeg.cc): decode + crop + PIL-style
 * antialiased bilinear resize + flip, against an independent reference
 * computed by Debian's PIL (test/data/jpeg_ref.py, the decoder and resampler
 * torchvision's ImageFolder pipeline runs), on baseline, 4:4:4, progressive,
 * grayscale and CMYK JPEGs; damaged files; and its use by openImageFolder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { type Tensor, memory, scope } from '../../src/index.js';
import { jpegDecodeCrop, readJpegHeader } from '../../src/engine/jpeg.js';
import { type DataWarning, horizontalFlip, openImageFolder, randomResizedCrop, resize } from '../../src/data/index.js';
import { resizedCropBox, resizedSize, sampleUniform } from '../../src/data/transforms.js';

const PYTHON = process.env.ADVML_PYTHON ?? '/usr/bin/python3';
const REF = fileURLToPath(new URL('./jpeg_ref.py', import.meta.url));

let dir: string;

interface Fixture {
  name: string;
  width: number;
  height: number;
}
// Made by sharp (libvips' encoder) and by PIL, so both writers' files are covered.
const FIXTURES: Fixture[] = [
  { name: 'rgb420.jpg', width: 500, height: 375 },
  { name: 'rgb444.jpg', width: 97, height: 61 },
  { name: 'progressive.jpg', width: 333, height: 250 },
  { name: 'grey.jpg', width: 120, height: 90 },
  { name: 'cmyk.jpg', width: 80, height: 64 },
  { name: 'pil-cmyk.jpg', width: 75, height: 50 },
  { name: 'pil-grey-progressive.jpg', width: 64, height: 81 },
  { name: 'pil-rgb.jpg', width: 257, height: 129 },
];

/** Smooth ramps plus noise, HWC RGB. */
function picture(w: number, h: number, seed: number): Buffer {
  let a = seed;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      const n = (a >>> 26) - 32;
      const i = (y * w + x) * 3;
      px[i] = Math.max(0, Math.min(255, Math.floor((255 * x) / (w - 1)) + n));
      px[i + 1] = Math.max(0, Math.min(255, Math.floor((255 * y) / (h - 1)) - n));
      px[i + 2] = (x * 7 + y * 3) & 255;
    }
  }
  return px;
}

interface Job {
  file: string;
  box: [number, number, number, number];
  out: [number, number];
  flip: boolean;
}

function pilReference(spec: { make?: unknown[]; jobs: Job[] }): string[] {
  const inFile = join(dir, `jobs-${Math.random().toString(36).slice(2)}.json`);
  const outFile = `${inFile}.out`;
  writeFileSync(inFile, JSON.stringify(spec));
  execFileSync(PYTHON, [REF, inFile, outFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (JSON.parse(readFileSync(outFile, 'utf8')) as { pixels: string[] }).pixels;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'advml-jpeg-'));
  const img = (f: Fixture, seed: number) => sharp(picture(f.width, f.height, seed), { raw: { width: f.width, height: f.height, channels: 3 } });
  const [a, b, c, d, e] = FIXTURES as [Fixture, Fixture, Fixture, Fixture, Fixture];
  await img(a, 1).jpeg({ quality: 90 }).toFile(join(dir, a.name));
  await img(b, 2).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toFile(join(dir, b.name));
  await img(c, 3).jpeg({ quality: 85, progressive: true }).toFile(join(dir, c.name));
  await img(d, 4).greyscale().jpeg({ quality: 90 }).toFile(join(dir, d.name));
  await img(e, 5).toColourspace('cmyk').jpeg({ quality: 90 }).toFile(join(dir, e.name));
  pilReference({
    make: [
      { file: join(dir, 'pil-cmyk.jpg'), mode: 'CMYK', width: 75, height: 50 },
      { file: join(dir, 'pil-grey-progressive.jpg'), mode: 'L', width: 64, height: 81, progressive: true },
      { file: join(dir, 'pil-rgb.jpg'), mode: 'RGB', width: 257, height: 129 },
    ],
    jobs: [],
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('jpegDecodeCrop against PIL', () => {
  test('decode, crop, bilinear resize and flip match PIL within 1 (the measured difference is reported)', async () => {
    const jobs: Job[] = [];
    const rrc = randomResizedCrop(224);
    for (const [fi, f] of FIXTURES.entries()) {
      const file = join(dir, f.name);
      const header = readJpegHeader(readFileSync(file));
      assert.deepEqual(header, { width: f.width, height: f.height, orientation: 1 }, f.name);
      // The whole image unchanged (no resampling), shrunk, enlarged, one side only, odd sizes.
      jobs.push({ file, box: [0, 0, f.width, f.height], out: [f.width, f.height], flip: false });
      const s = resizedSize(f.width, f.height, 37);
      jobs.push({ file, box: [0, 0, f.width, f.height], out: [s.width, s.height], flip: true });
      jobs.push({ file, box: [0, 0, f.width, f.height], out: [f.width, Math.max(1, f.height >> 1)], flip: false });
      jobs.push({ file, box: [0, 0, f.width, f.height], out: [f.width * 2 + 1, f.height], flip: false });
      jobs.push({ file, box: [1, 2, Math.max(1, f.width - 3), Math.max(1, f.height - 5)], out: [299, 299], flip: false });
      for (let epoch = 0; epoch < 4; epoch++) {
        const b = resizedCropBox(rrc, f.width, f.height, (k) => sampleUniform(7, epoch, fi, k));
        jobs.push({ file, box: [b.left, b.top, b.width, b.height], out: [224, 224], flip: epoch % 2 === 1 });
      }
    }
    const refs = pilReference({ jobs });
    let worst = 0;
    let differing = 0;
    let total = 0;
    for (const [i, j] of jobs.entries()) {
      const bytes = readFileSync(j.file);
      const got = await jpegDecodeCrop(bytes, {
        left: j.box[0], top: j.box[1], width: j.box[2], height: j.box[3], outWidth: j.out[0], outHeight: j.out[1], flip: j.flip,
      });
      const want = Buffer.from(refs[i] as string, 'hex');
      assert.equal(got.length, j.out[0] * j.out[1] * 3, `${j.file} ${JSON.stringify(j)}: output size`);
      assert.equal(want.length, got.length);
      let jobWorst = 0;
      for (let k = 0; k < got.length; k++) {
        const d = Math.abs((got[k] as number) - (want[k] as number));
        if (d > 0) differing++;
        if (d > jobWorst) jobWorst = d;
      }
      total += got.length;
      assert.ok(jobWorst <= 1, `${j.file} ${JSON.stringify(j)}: max difference from PIL ${jobWorst}`);
      worst = Math.max(worst, jobWorst);
    }
    // Bit-exact is the aim: say what was measured.
    console.log(`jpegDecodeCrop vs PIL: ${jobs.length} crops, ${total} bytes, max |difference| ${worst}, ${differing} bytes differ`);
  });

  test('output shape, flip, and arguments checked', async () => {
    const bytes = readFileSync(join(dir, 'rgb444.jpg'));
    const opts = { left: 10, top: 5, width: 40, height: 30, outWidth: 17, outHeight: 11 };
    const plain = await jpegDecodeCrop(bytes, opts);
    const flipped = await jpegDecodeCrop(bytes, { ...opts, flip: true });
    assert.ok(plain instanceof Uint8Array);
    assert.equal(plain.length, 17 * 11 * 3);
    for (let y = 0; y < 11; y++) {
      for (let x = 0; x < 17; x++) {
        for (let c = 0; c < 3; c++) assert.equal(flipped[(y * 17 + x) * 3 + c], plain[(y * 17 + 16 - x) * 3 + c]);
      }
    }
    await assert.rejects(jpegDecodeCrop(bytes, { ...opts, left: 90 }), /jpegDecodeCrop: the box 40x30 at \(90, 5\) is not inside the 97x61 image/);
    assert.throws(() => jpegDecodeCrop(bytes, { ...opts, outWidth: 0 }), /jpegDecodeCrop: argument 1.outWidth must be an integer >= 1/);
    assert.throws(() => jpegDecodeCrop('x' as unknown as Uint8Array, opts), /jpegDecodeCrop: argument 0 must be a Uint8Array/);
  });

  test('damaged JPEGs reject with libjpeg\'s message, never abort', async () => {
    const bytes = readFileSync(join(dir, 'rgb420.jpg'));
    const box = { left: 0, top: 0, width: 500, height: 375, outWidth: 50, outHeight: 40 };
    await assert.rejects(jpegDecodeCrop(bytes.subarray(0, Math.floor(bytes.length * 0.6)), box), /JPEG decoder: Premature end of JPEG file/);
    // failOn 'none' keeps a truncated file (libjpeg fills the rest), as sharp's failOn 'none' does.
    const kept = await jpegDecodeCrop(bytes.subarray(0, Math.floor(bytes.length * 0.6)), { ...box, failOn: 'none' });
    assert.equal(kept.length, 50 * 40 * 3);
    await assert.rejects(jpegDecodeCrop(bytes.subarray(0, 200), box), /JPEG decoder: /);
    await assert.rejects(jpegDecodeCrop(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2, 0xff, 0xd9]), box), /JPEG decoder: /);
    const garbage = Buffer.from(bytes);
    for (let i = 700; i < 760; i++) garbage[i] = 0xff;
    garbage[761] = 0xc0; // a frame header inside the entropy data
    await assert.rejects(jpegDecodeCrop(garbage, { ...box, failOn: 'warning' }), /JPEG decoder: /);
    // A small file whose frame header declares 30000x30000: refused before anything that size is allocated.
    const bomb = Buffer.from(bytes);
    const sof = bomb.findIndex((v, i) => v === 0xff && (bomb[i + 1] === 0xc0 || bomb[i + 1] === 0xc2));
    assert.ok(sof > 0, 'a frame header');
    bomb.writeUInt16BE(30000, sof + 5);
    bomb.writeUInt16BE(30000, sof + 7);
    await assert.rejects(jpegDecodeCrop(bomb, box), /JPEG decoder: the image is 30000x30000 pixels, more than the limit of 268402689/);
  });
});

describe('openImageFolder on JPEGs', () => {
  let root: string;
  before(async () => {
    root = join(dir, 'folder');
    for (const c of ['a', 'b']) mkdirSync(join(root, c), { recursive: true });
    for (const [i, f] of FIXTURES.entries()) writeFileSync(join(root, i % 2 ? 'b' : 'a', f.name), readFileSync(join(dir, f.name)));
    const good = readFileSync(join(dir, 'rgb420.jpg'));
    writeFileSync(join(root, 'b', 'truncated.jpg'), good.subarray(0, Math.floor(good.length * 0.6)));
    // An EXIF orientation other than 1: left to sharp.
    await sharp(picture(40, 30, 9), { raw: { width: 40, height: 30, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toFile(join(root, 'b', 'rotated.jpg'));
  });

  const bytesOf = (images: Tensor, n: number): Uint8Array => {
    const [, c, h, w] = images.shape as [number, number, number, number];
    const data = scope(() => images.permute([0, 2, 3, 1]).contiguous().dataSync() as Float32Array);
    return Uint8Array.from(data.subarray(n * c * h * w, (n + 1) * c * h * w), (v) => Math.round(v * 255));
  };

  test('random-resized crops and flips are PIL\'s for the drawn box; resize too; the truncated file is skipped and named', async () => {
    const ds = await openImageFolder(root, { transforms: [randomResizedCrop(64), horizontalFlip()] });
    const names = Array.from({ length: ds.length }, (_, i) => ds.path(i));
    const truncated = names.indexOf(join(root, 'b', 'truncated.jpg'));
    const rotated = names.indexOf(join(root, 'b', 'rotated.jpg'));
    const warnings: DataWarning[] = [];
    const live = memory().liveTensors;
    const all = names.map((_, i) => i);
    const b = await ds.get(all, { seed: 3, epoch: 2, onWarning: (w) => warnings.push(w) });
    assert.deepEqual(b.skipped.map((s) => s.file), [join(root, 'b', 'truncated.jpg')]);
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0]!.message.includes(join(root, 'b', 'truncated.jpg')), warnings[0]!.message);
    assert.match(warnings[0]!.reason, /Premature end of JPEG file/);
    assert.deepEqual(b.indices, all.filter((i) => i !== truncated));
    assert.deepEqual(b.images.shape, [all.length - 1, 3, 64, 64]);
    // The same boxes and flips as before the native path: resizedCropBox and the flip's draw.
    const jobs: Job[] = [];
    const checked: number[] = [];
    b.indices.forEach((index, n) => {
      if (index === rotated) return;
      const f = FIXTURES.find((x) => names[index]!.endsWith(`/${x.name}`))!;
      const box = resizedCropBox(randomResizedCrop(64), f.width, f.height, (k) => sampleUniform(3, 2, index, k));
      const flip = sampleUniform(3, 2, index, 22) < 0.5;
      jobs.push({ file: names[index]!, box: [box.left, box.top, box.width, box.height], out: [64, 64], flip });
      checked.push(n);
    });
    const refs = pilReference({ jobs });
    checked.forEach((n, i) => {
      const got = bytesOf(b.images, n);
      const want = Buffer.from(refs[i] as string, 'hex');
      let worst = 0;
      for (let k = 0; k < got.length; k++) worst = Math.max(worst, Math.abs((got[k] as number) - (want[k] as number)));
      assert.ok(worst <= 1, `${jobs[i]!.file}: max difference from PIL ${worst}`);
    });
    b.images.dispose();
    b.labels.dispose();

    const r = await ds.withTransforms([resize([30, 40])]).get([0, 1]);
    const refs2 = pilReference({
      jobs: [0, 1].map((i) => {
        const f = FIXTURES.find((x) => names[i]!.endsWith(`/${x.name}`))!;
        return { file: names[i]!, box: [0, 0, f.width, f.height] as [number, number, number, number], out: [40, 30] as [number, number], flip: false };
      }),
    });
    for (const n of [0, 1]) assert.ok(bytesOf(r.images, n).every((v, k) => Math.abs(v - (Buffer.from(refs2[n]!, 'hex')[k] as number)) <= 1));
    r.images.dispose();
    r.labels.dispose();
    assert.equal(memory().liveTensors, live);
  });

  test('EXIF-rotated JPEGs and other kernels still go through sharp', async () => {
    const file = join(root, 'b', 'rotated.jpg');
    assert.equal(readJpegHeader(readFileSync(file))?.orientation, 6);
    const ds = await openImageFolder(root, { transforms: [resize([10, 12])] });
    const i = Array.from({ length: ds.length }, (_, k) => ds.path(k)).indexOf(file);
    const got = await ds.get([i]);
    const { data } = await sharp(readFileSync(file)).resize(12, 10, { fit: 'fill', kernel: 'linear' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual(bytesOf(got.images, 0), Uint8Array.from(data));
    got.images.dispose();
    got.labels.dispose();
    const cubic = await ds.withTransforms([resize([10, 12], { interpolation: 'cubic' })]).get([0]);
    const { data: c } = await sharp(readFileSync(ds.path(0))).resize(12, 10, { fit: 'fill', kernel: 'cubic' }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual(bytesOf(cubic.images, 0), Uint8Array.from(c));
    cubic.images.dispose();
    cubic.labels.dispose();
  });
});
