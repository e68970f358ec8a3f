/**
 * The checkpoint's checksum covers its whole record, not only the tensors:
 * editing the learning rate, the step or the model's input range is refused
 * (by the library, by `advml eval`, and by `advml train --resume`, which
 * leaves the file as it was). Files of the first format still load. Files
 * that are not regular files (a FIFO with no writer, /dev/zero, a directory)
 * are refused without reading, and sizes are checked before reading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Tensor, tensor } from '../../src/index.js';
import {
  CheckpointError, FileReadError, SafetensorsError, decodeCheckpoint, decodeSafetensors, disposeCheckpoint, encodeCheckpoint, encodeSafetensors,
  loadCheckpointSync, loadSafetensors, loadSafetensorsSync, readRegularFileSync,
} from '../../src/io/index.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-integrity-'));

/** Replaces `from` by `to` (same length) in the file's bytes; the header length stays valid. */
function edit(bytes: Uint8Array, from: string, to: string): Buffer {
  assert.equal(from.length, to.length);
  const b = Buffer.from(bytes);
  const at = b.indexOf(from);
  assert.ok(at >= 0, `'${from}' is not in the file`);
  b.write(to, at, 'latin1');
  return b;
}

const refused = (source: string) => (e: unknown): boolean =>
  e instanceof CheckpointError && e.message === `checkpoint ${source}: its record or tensors do not match the checksum recorded when it was written (corrupt or edited); refusing to use it`;

test('editing the record (input range, learning rate, step) or adding metadata is refused by name', () => {
  const w = tensor([1, 2, 3]);
  const bytes = encodeCheckpoint({
    model: { architecture: 'mnist-cnn', classifier: { inputRange: [0, 1] } }, weights: new Map([['w', w]]),
    optimizer: { kind: 'sgd', step: 3, lr: 0.05, tensors: new Map() }, step: 12,
  });
  w.dispose();
  const ok = decodeCheckpoint(bytes, 'good');
  assert.equal(ok.step, 12);
  disposeCheckpoint(ok);
  // The record is a JSON string inside the header's JSON: its quotes are escaped there.
  for (const [from, to] of [['inputRange\\":[0,1]', 'inputRange\\":[0,7]'], ['lr\\":0.05', 'lr\\":0.95'], ['step\\":12', 'step\\":99']] as const) {
    assert.throws(() => decodeCheckpoint(edit(bytes, from, to), `edited ${to}`), refused(`edited ${to}`));
  }
  // Metadata added beside the record (re-encoded, a valid safetensors file).
  const { tensors, metadata } = decodeSafetensors(bytes);
  const extra = encodeSafetensors(tensors, { ...metadata, note: 'x' });
  for (const t of tensors.values()) t.dispose();
  assert.throws(() => decodeCheckpoint(extra, 'extra'), refused('extra'));
  const { tensors: t2, metadata: m2 } = decodeSafetensors(bytes);
  const unsummed = encodeSafetensors(t2, { advml: m2.advml as string });
  for (const t of t2.values()) t.dispose();
  assert.throws(() => decodeCheckpoint(unsummed, 'unsummed'), /checkpoint unsummed: no 'advml\.sha256' checksum in the metadata/);
});

test('a checkpoint of the first format (checksum of the tensors only) still loads; its tampered tensors are refused', () => {
  const w = tensor([1, 2, 3]);
  const h = createHash('sha256');
  h.update('model.w\0float32\x003\0');
  h.update(w.rawBytes());
  const record = { format: 'advml-checkpoint-1', model: { architecture: 'x' }, step: 5, epoch: 0, config: {}, optimizer: null, rng: [], sha256: h.digest('hex') };
  const bytes = encodeSafetensors(new Map([['model.w', w]]), { advml: JSON.stringify(record) });
  w.dispose();
  const c = decodeCheckpoint(bytes, 'old');
  assert.equal(c.step, 5);
  assert.deepEqual((c.weights.get('w') as Tensor).toArray(), [1, 2, 3]);
  disposeCheckpoint(c);
  const bad = Uint8Array.from(bytes);
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
  assert.throws(() => decodeCheckpoint(bad, 'old-bad'), /checkpoint old-bad: the tensors do not match the checksum/);
});

test('advml eval refuses an edited checkpoint, and train --resume refuses it and leaves it as it was', () => {
  const out = join(dir, 'run');
  const r = runCli(['train', '--out', out, '--steps', '2', '--limit', '128', '--eval-images', '20', '--seed', '1']);
  assert.equal(r.status, 0, r.stderr);
  const path = join(out, 'checkpoint.safetensors');
  const edited = edit(readFileSync(path), 'inputRange\\":[0,1]', 'inputRange\\":[0,7]');
  writeFileSync(path, edited);
  const ev = runCli(['eval', '--model', path, '--limit', '20', '--methods', 'fgsm', '--eps', '8']);
  assert.notEqual(ev.status, 0, ev.stdout);
  assert.match(ev.stderr, /checkpoint .*checkpoint\.safetensors: its record or tensors do not match the checksum/);
  const resumed = runCli(['train', '--out', out, '--steps', '4', '--limit', '128', '--eval-images', '20', '--seed', '1', '--resume']);
  assert.equal(resumed.status, 1, resumed.stdout);
  assert.match(resumed.stderr, /its record or tensors do not match the checksum/);
  assert.ok(readFileSync(path).equals(edited), '--resume changed the refused checkpoint');
});

test('a FIFO with no writer, /dev/zero and a directory are refused at once, by the checkpoint and safetensors readers and the CLI', async () => {
  const fifo = join(dir, 'model.fifo');
  execFileSync('mkfifo', [fifo]);
  const folder = join(dir, 'folder.safetensors');
  mkdirSync(folder);
  for (const [path, kind] of [[fifo, 'a FIFO'], ['/dev/zero', 'a character device'], [folder, 'a directory']] as const) {
    if (!existsSync(path)) continue;
    const why = `not a regular file (${kind}); refusing to read it`;
    assert.throws(() => loadCheckpointSync(path), (e: unknown) => e instanceof FileReadError && e.message === `checkpoint ${path}: ${why}`);
    assert.throws(() => loadSafetensorsSync(path), (e: unknown) => e instanceof SafetensorsError && e.message === `safetensors ${path}: ${why}`);
    await assert.rejects(loadSafetensors(path), (e: unknown) => e instanceof SafetensorsError && e.message === `safetensors ${path}: ${why}`);
  }
  const t0 = Date.now();
  const r = runCli(['eval', '--model', fifo, '--limit', '10'], { timeoutMs: 30_000 });
  assert.equal(r.status, 1, `status ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, /model\.fifo: not a regular file \(a FIFO\)/);
  const z = runCli(['eval', '--model', '/dev/zero', '--limit', '10'], { timeoutMs: 30_000 });
  assert.equal(z.status, 1, `status ${z.status}: ${z.stderr}`);
  assert.match(z.stderr, /\/dev\/zero: not a regular file \(a character device\)/);
  assert.ok(Date.now() - t0 < 30_000);
});

test('sizes are checked before reading; a missing file says so', () => {
  const path = join(dir, 'ten.bin');
  writeFileSync(path, Buffer.alloc(10, 1));
  assert.equal(readRegularFileSync(path, { maxBytes: 10 }).length, 10);
  assert.throws(() => readRegularFileSync(path, { maxBytes: 9, what: 'ONNX model' }),
    new RegExp(`^FileReadError: ONNX model ${path}: is 10 bytes, more than the 9 bytes accepted; refusing to read it$`));
  assert.throws(() => readRegularFileSync(join(dir, 'none')), (e: unknown) => e instanceof FileReadError && (e as { code?: string }).code === 'ENOENT' && /file .*none: cannot read \(ENOENT\)/.test(e.message));
});
