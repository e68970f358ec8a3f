/**
 * Image folders whose files cannot be read: each skipped file says what is
 * wrong with it (never a bare "Unknown error"), a batch with no readable image
 * never reaches a model, and a folder with none says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { type Tensor, linear, scope, setNumThreads, zeros } from '../../src/index.js';
import { centerCrop, openImageFolder, resize } from '../../src/data/index.js';
import { evaluate } from '../../src/evaluation/index.js';
import { Classifier } from '../../src/models/classifier.js';
import { Module } from '../../src/nn/index.js';

setNumThreads(2);

/** Averages each channel; counts the batches it is given. */
class Counting extends Module {
  batches = 0;
  readonly weight = this.registerParameter('weight', zeros([2, 3]));

  forward(x: Tensor): Tensor {
    this.batches++;
    return scope(() => linear(x.mean([2, 3]), this.weight));
  }
}

async function png(file: string): Promise<void> {
  await sharp(Buffer.alloc(8 * 8 * 3, 128), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(file);
}

test('unreadable files: each reason names the damage; no empty batch reaches the model; none readable says so', async () => {
  const root = mkdtempSync(join(tmpdir(), 'advml-unreadable-'));
  try {
    for (const c of ['a', 'b']) mkdirSync(join(root, c));
    writeFileSync(join(root, 'a', 'empty.png'), new Uint8Array(0));
    writeFileSync(join(root, 'a', 'text.png'), 'not an image\n');
    await png(join(root, 'b', 'crc.png'));
    const bytes = readFileSync(join(root, 'b', 'crc.png'));
    bytes[bytes.length - 20] = (bytes[bytes.length - 20] as number) ^ 0xff; // inside IDAT: a bad CRC
    writeFileSync(join(root, 'b', 'crc.png'), bytes);
    const folder = await openImageFolder(root, { transforms: [resize(8), centerCrop([8, 8])] });
    const batch = await folder.get([0, 1, 2]);
    assert.equal(batch.indices.length, 0);
    assert.equal(batch.skipped.length, 3);
    for (const s of batch.skipped) {
      assert.ok(s.reason.length > 0 && !/^unknown error$/i.test(s.reason), `${s.file}: '${s.reason}'`);
      assert.ok(!s.reason.includes('\n'), 'one line');
    }
    batch.images.dispose();
    batch.labels.dispose();

    const counting = new Counting();
    const model = new Classifier(counting, { classes: 2, inputShape: [3, 8, 8], memoryFormat: 'contiguous' });
    await assert.rejects(evaluate(model, folder, { methods: ['fgsm'], eps: [8], batchSize: 1 }), /no readable image among the 3 requested/);
    assert.equal(counting.batches, 0, 'the model was never given an empty batch');

    // One readable image after the unreadable ones, batch size 1: evaluated alone.
    await png(join(root, 'b', 'good.png'));
    const withGood = await openImageFolder(root, { transforms: [resize(8), centerCrop([8, 8])] });
    const r = await evaluate(model, withGood, { methods: ['fgsm'], eps: [8], batchSize: 1 });
    assert.equal(r.images, 1);
    model.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
