/**
 * The loader over in-memory datasets: epoch orders against PyTorch's
 * DistributedSampler (sampler_ref.py / sampler_ref.json), sharding properties
 * over many sizes (disjoint, covering, equal batch counts), reproducibility,
 * batching, prefetching, summaries, errors and tensor leak counts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memory, tensor, arange } from '../../src/engine/index.js';
import {
  type Batch,
  type Dataset,
  type GetOptions,
  DataLoader,
  TensorDataset,
  epochOrder,
  loadMnist,
  mnistDir,
  readIdx,
  shardOrder,
} from '../../src/data/index.js';

const here = dirname(fileURLToPath(import.meta.url));

interface RefCase {
  length: number;
  worldSize: number;
  seed: number;
  epoch: number;
  dropLast: boolean;
  perm: number[];
  ranks: number[][];
}

/** A dataset whose sample i is the image [[i]] with label i % 10, so batches show which samples they hold. */
function identityDataset(n: number): TensorDataset {
  return new TensorDataset(arange(0, n, 1, { dtype: 'float32' }).reshape([n, 1]), arange(0, n).remainder(10), { name: 'identity' });
}

/** All batches of one epoch, as the row values they carry; disposes the tensors. */
async function collect(loader: DataLoader, epoch: number): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of loader.epoch(epoch)) {
    const rows = Array.from(b.images.dataSync() as Float32Array);
    assert.deepEqual(rows, b.indices, 'each row is the sample its index names');
    assert.deepEqual(Array.from(b.labels.dataSync() as BigInt64Array, Number), b.indices.map((i) => i % 10));
    out.push(rows);
    b.images.dispose();
    b.labels.dispose();
  }
  return out;
}

describe('epoch order and sharding', () => {
  test("orders and shards equal PyTorch's DistributedSampler (committed reference)", async () => {
    const ref = JSON.parse(readFileSync(join(here, 'sampler_ref.json'), 'utf8')) as { cases: RefCase[] };
    assert.ok(ref.cases.length >= 5);
    for (const c of ref.cases) {
      const what = JSON.stringify({ ...c, perm: undefined, ranks: undefined });
      assert.deepEqual(epochOrder(c.length, { seed: c.seed, epoch: c.epoch }), c.perm, what);
      const uneven = c.dropLast ? 'drop' : 'pad';
      const ds = identityDataset(c.length);
      for (let r = 0; r < c.worldSize; r++) {
        assert.deepEqual(shardOrder(c.perm, r, c.worldSize, uneven).indices, c.ranks[r], `${what} rank ${r}`);
        const loader = new DataLoader(ds, 3, { seed: c.seed, rank: r, worldSize: c.worldSize, uneven });
        assert.deepEqual((await collect(loader, c.epoch)).flat(), c.ranks[r], `${what} rank ${r} through the loader`);
      }
      ds.dispose();
    }
  });

  test('ranks get disjoint parts covering the epoch and the same number of batches', () => {
    for (const n of [1, 2, 7, 10, 64, 101]) {
      for (const world of [1, 2, 3, 4, 8]) {
        const order = epochOrder(n, { seed: n, epoch: world });
        for (const uneven of ['pad', 'drop'] as const) {
          const shards = Array.from({ length: world }, (_, r) => shardOrder(order, r, world, uneven));
          const sizes = new Set(shards.map((s) => s.indices.length));
          assert.equal(sizes.size, 1, `n=${n} world=${world} ${uneven}: equal parts`);
          const all = shards.flatMap((s) => s.indices);
          const distinct = new Set(all);
          if (uneven === 'pad') {
            assert.equal(shards[0]!.indices.length, Math.ceil(n / world));
            assert.equal(distinct.size, n, 'every sample is seen');
            const padded = shards.reduce((a, s) => a + s.padded, 0);
            assert.equal(all.length - n, padded, 'the repeats are the padding');
            assert.ok(padded < world);
          } else {
            assert.equal(shards[0]!.indices.length, Math.floor(n / world));
            assert.equal(distinct.size, all.length, 'no sample twice');
            assert.equal(shards[0]!.unassigned, n % world);
          }
          for (const batchSize of [1, 3, 16]) {
            for (const dropLast of [false, true]) {
              const counts = new Set(
                Array.from({ length: world }, (_, rank) => {
                  // batchesPerEpoch needs no data: a stand-in dataset of the right length.
                  const ds: Dataset = { length: n, classNames: [], get: () => Promise.reject(new Error('unused')) };
                  return new DataLoader(ds, batchSize, { rank, worldSize: world, uneven, dropLast }).batchesPerEpoch;
                }),
              );
              assert.equal(counts.size, 1, `n=${n} world=${world} ${uneven} batch=${batchSize} dropLast=${dropLast}`);
            }
          }
        }
      }
    }
  });

  test('through the loader: 3 ranks over 10 samples, pad and drop, batch counts equal', async () => {
    const ds = identityDataset(10);
    for (const uneven of ['pad', 'drop'] as const) {
      const perRank = await Promise.all(
        [0, 1, 2].map((rank) => collect(new DataLoader(ds, 2, { seed: 5, rank, worldSize: 3, uneven }), 4)),
      );
      assert.deepEqual(perRank.map((b) => b.length), [2, 2, 2]);
      assert.deepEqual(perRank.map((b) => b.flat().length), uneven === 'pad' ? [4, 4, 4] : [3, 3, 3]);
      const seen = perRank.flat(2);
      if (uneven === 'pad') assert.deepEqual([...new Set(seen)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      else assert.equal(new Set(seen).size, 9);
    }
    ds.dispose();
  });

  test('the same seed gives the same order; epochs and seeds change it; no shuffle keeps dataset order', async () => {
    const ds = identityDataset(50);
    const a = await collect(new DataLoader(ds, 8, { seed: 3 }), 2);
    const b = await collect(new DataLoader(ds, 8, { seed: 3, prefetch: 0 }), 2);
    assert.deepEqual(a, b);
    const otherEpoch = await collect(new DataLoader(ds, 8, { seed: 3 }), 3);
    const otherSeed = await collect(new DataLoader(ds, 8, { seed: 4 }), 2);
    assert.notDeepEqual(a.flat(), otherEpoch.flat());
    assert.notDeepEqual(a.flat(), otherSeed.flat());
    for (const order of [a, otherEpoch, otherSeed]) assert.deepEqual([...order.flat()].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    const plain = await collect(new DataLoader(ds, 8, { shuffle: false }), 7);
    assert.deepEqual(plain.flat(), Array.from({ length: 50 }, (_, i) => i));
    ds.dispose();
  });

  test('the last partial batch is kept, or dropped with dropLast', async () => {
    const ds = identityDataset(10);
    const kept = await collect(new DataLoader(ds, 4, { shuffle: false }), 0);
    assert.deepEqual(kept.map((b) => b.length), [4, 4, 2]);
    const loader = new DataLoader(ds, 4, { shuffle: false, dropLast: true });
    const run = loader.epoch(0);
    const sizes: number[] = [];
    for await (const b of run) {
      sizes.push(b.indices.length);
      b.images.dispose();
      b.labels.dispose();
    }
    assert.deepEqual(sizes, [4, 4]);
    assert.equal(run.summary.droppedLast, 2);
    assert.equal(loader.batchesPerEpoch, 2);
    ds.dispose();
  });
});

describe('batches, prefetching and memory', () => {
  test('MNIST batches carry the pixels and labels of the raw IDX files', async () => {
    const mnist = TensorDataset.from(loadMnist('test', { limit: 600 }));
    const rawLabels = readIdx(join(mnistDir(), 't10k-labels-idx1-ubyte')).data;
    const rawImages = readIdx(join(mnistDir(), 't10k-images-idx3-ubyte')).data;
    const live = memory().liveTensors;
    const loader = new DataLoader(mnist, 128, { seed: 11, rank: 1, worldSize: 2 });
    let n = 0;
    for await (const b of loader.epoch(0)) {
      assert.deepEqual(b.images.shape, [b.indices.length, 1, 28, 28]);
      assert.deepEqual(Array.from(b.labels.dataSync() as BigInt64Array, Number), b.indices.map((i) => rawLabels[i]));
      const px = b.images.dataSync() as Float32Array;
      b.indices.forEach((idx, row) => {
        for (const p of [0, 200, 400, 783]) assert.equal(px[row * 784 + p], Math.fround((rawImages[idx * 784 + p] as number) / 255));
      });
      n += b.indices.length;
      b.images.dispose();
      b.labels.dispose();
    }
    assert.equal(n, 300);
    assert.equal(memory().liveTensors, live);
    mnist.dispose();
  });

  test('prefetching asks for batches ahead of the consumer', async () => {
    const inner = identityDataset(40);
    for (const prefetch of [0, 1, 3]) {
      const asked: number[] = [];
      const ds: Dataset = {
        length: 40,
        classNames: [],
        get: (indices: readonly number[], opts?: GetOptions) => {
          asked.push(indices.length);
          return inner.get(indices, opts);
        },
      };
      const loader = new DataLoader(ds, 5, { prefetch });
      let seenAtFirst = -1;
      for await (const b of loader.epoch(0)) {
        if (seenAtFirst < 0) seenAtFirst = asked.length;
        b.images.dispose();
        b.labels.dispose();
      }
      assert.equal(seenAtFirst, 1 + prefetch, `prefetch ${prefetch}: batches requested when the first is handed out`);
      assert.equal(asked.length, 8);
    }
    inner.dispose();
  });

  test('no tensor leaks: full epochs, a loop that breaks early, a loop body that throws', async () => {
    const ds = identityDataset(100);
    const live = memory().liveTensors;
    await collect(new DataLoader(ds, 7, { prefetch: 4 }), 0);
    assert.equal(memory().liveTensors, live);
    const early = new DataLoader(ds, 7, { prefetch: 4 }).epoch(1);
    for await (const b of early) {
      b.images.dispose();
      b.labels.dispose();
      if (b.batch === 2) break;
    }
    assert.equal(early.summary.complete, false);
    assert.equal(early.summary.batches, 3);
    assert.equal(memory().liveTensors, live, 'prefetched batches are freed after break');
    await assert.rejects(async () => {
      for await (const b of new DataLoader(ds, 7, { prefetch: 3 }).epoch(2)) {
        b.images.dispose();
        b.labels.dispose();
        throw new Error('training step failed');
      }
    }, /training step failed/);
    assert.equal(memory().liveTensors, live);
    ds.dispose();
  });

  test('a dataset error reaches the caller and frees the prefetched batches', async () => {
    const inner = identityDataset(30);
    let calls = 0;
    const failing: Dataset = {
      length: 30,
      classNames: [],
      get: async (indices, opts): Promise<Batch> => {
        if (++calls === 3) throw new Error('disk went away');
        return inner.get(indices, opts);
      },
    };
    const live = memory().liveTensors;
    const got: number[] = [];
    await assert.rejects(async () => {
      for await (const b of new DataLoader(failing, 5, { prefetch: 2 }).epoch(0)) {
        got.push(b.batch);
        b.images.dispose();
        b.labels.dispose();
      }
    }, /disk went away/);
    assert.deepEqual(got, [0, 1]);
    assert.equal(memory().liveTensors, live);
    inner.dispose();
  });

  test('summary and onEpochEnd', async () => {
    const ds = identityDataset(11);
    const ends: number[] = [];
    const loader = new DataLoader(ds, 2, { rank: 2, worldSize: 4, seed: 9, onEpochEnd: (s) => ends.push(s.epoch) });
    const run = loader.epoch(6);
    for await (const b of run) {
      b.images.dispose();
      b.labels.dispose();
    }
    const s = run.summary;
    assert.deepEqual(
      { ...s, seconds: 0 },
      { epoch: 6, rank: 2, worldSize: 4, batches: 2, samples: 3, skipped: 0, skippedSamples: [], padded: 0, unassigned: 0, droppedLast: 0, complete: true, seconds: 0 },
    );
    assert.ok(s.seconds > 0);
    assert.deepEqual(ends, [6]);
    // Rank 3 of 4 over 11 samples gets position 11, a repeat.
    const r3 = new DataLoader(ds, 2, { rank: 3, worldSize: 4 }).epoch(0);
    for await (const b of r3) {
      b.images.dispose();
      b.labels.dispose();
    }
    assert.equal(r3.summary.padded, 1);
    assert.equal(r3.summary.samples, 3);
    assert.throws(() => run[Symbol.asyncIterator](), /epoch 6 was already iterated/);
    ds.dispose();
  });

  test('arguments are checked with messages naming them', async () => {
    const ds = identityDataset(5);
    assert.throws(() => new DataLoader(ds, 0), /DataLoader: batchSize must be an integer >= 1, got 0/);
    assert.throws(() => new DataLoader(ds, 2, { rank: 2, worldSize: 2 }), /rank 2 must be below worldSize 2/);
    assert.throws(() => new DataLoader(ds, 2, { worldSize: 0 }), /worldSize must be an integer >= 1, got 0/);
    assert.throws(() => new DataLoader(ds, 2, { uneven: 'wrap' as 'pad' }), /uneven must be 'pad' or 'drop', got 'wrap'/);
    assert.throws(() => new DataLoader(ds, 2, { seed: -1 }), /seed must be an integer >= 0, got -1/);
    assert.throws(() => new DataLoader(ds, 2, { prefetch: 1.5 }), /prefetch must be an integer >= 0, got 1.5/);
    assert.throws(() => new DataLoader(ds, 2).epoch(-1), /epoch must be an integer >= 0, got -1/);
    assert.throws(() => new DataLoader({} as Dataset, 2), /dataset must implement Dataset/);
    await assert.rejects(ds.get([0, 5]), /TensorDataset.get|identity.get: indices\[1\] = 5 is out of range 0..4/);
    assert.throws(() => new TensorDataset(tensor([1, 2, 3]), tensor([1, 2])), /labels must have shape \[3\]/);
    ds.dispose();
  });
});

describe('resuming mid-epoch', () => {
  test('startBatch gives exactly the batches a full pass gives from there, reading none before', async () => {
    const ds = identityDataset(53);
    let reads = 0;
    const counting = { length: ds.length, classNames: ds.classNames, get: (i: readonly number[], o?: Parameters<typeof ds.get>[1]) => { reads++; return ds.get(i, o); } };
    const loader = new DataLoader(counting, 8, { seed: 4, prefetch: 2 });
    const full = await collect(loader, 2);
    reads = 0;
    const rest: number[][] = [];
    const run = loader.epoch(2, { startBatch: 4 });
    for await (const b of run) {
      assert.ok(b.batch >= 4);
      rest.push(Array.from(b.images.dataSync() as Float32Array));
      b.images.dispose();
      b.labels.dispose();
    }
    assert.deepEqual(rest, full.slice(4));
    assert.equal(reads, full.length - 4, 'batches before startBatch are not read');
    assert.equal(run.summary.batches, full.length - 4);
    assert.throws(() => loader.epoch(0, { startBatch: 99 }), /startBatch 99 is past the epoch's 7 batches/);
    ds.dispose();
  });
});
