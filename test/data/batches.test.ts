import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memory, rand, randint } from '../../src/index.js';
import { TensorDataset, forEachBatch } from '../../src/data/index.js';

test('forEachBatch reads the indices in order, reports progress per batch and frees every batch, even when fn throws', async () => {
  const data = new TensorDataset(rand([10, 1, 2, 2]), randint(0, 3, [10]));
  const live = memory().liveTensors;
  const seen: number[][] = [];
  const progress: [number, number][] = [];
  await forEachBatch(data, [9, 0, 1, 2, 3, 4, 5, 6, 7, 8], 4, (b) => void seen.push(b.indices), { onProgress: (done, total) => progress.push([done, total]) });
  assert.deepEqual(seen, [[9, 0, 1, 2], [3, 4, 5, 6], [7, 8]]);
  assert.deepEqual(progress, [[4, 10], [8, 10], [10, 10]]);
  assert.equal(memory().liveTensors, live);
  await assert.rejects(forEachBatch(data, [0, 1, 2], 2, () => { throw new Error('boom'); }), /boom/);
  assert.equal(memory().liveTensors, live);
  data.dispose();
});
