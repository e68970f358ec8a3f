/**
 * The paper's ImageNet recipe (`--preset imagenet-paper`: Inception v3, m 32,
 * k 16, lambda 0.3, step l.l., RMSProp) end to end on a small generated
 * folder of JPEGs in the ImageNet layout, at 75x75 and width 0.25 to keep it
 * short:
 * - the images reach the model in [-1, 1] through the real training loop;
 * - the training augmentation (random-resized crop, flip) is seeded and
 *   differs between epochs; validation images do not change;
 * - `advml train` reports top-1 and top-5 with intervals under the paper's
 *   attacks at eps 2, 4, 8, 16 and writes them to final-eval.json;
 * - `--batch 4` keeps the preset's k/m = 1/2 (k 2, not 16);
 * - killed with SIGKILL after a checkpoint, `--resume` ends with the weights
 *   of the run that never stopped, bit for bit.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { openImageNet } from '../../src/data/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { PRESETS, runTraining } from '../../src/training/index.js';
import { runCli } from '../helpers/cli.js';
import { events, startAndKill, weightsOf } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-imagenet-recipe-'));
const data = join(dir, 'folder');
const CLASSES = 8;
const SIZE = 75;

/** CLASSES classes; 4 training and 2 validation JPEGs each, of assorted sizes and aspect ratios. */
before(async () => {
  for (const [split, n] of [['train', 4], ['val', 2]] as const) {
    for (let c = 0; c < CLASSES; c++) {
      const folder = join(data, split, `n0${c}000000`);
      mkdirSync(folder, { recursive: true });
      for (let i = 0; i < n; i++) {
        const width = 90 + ((c * 37 + i * 53) % 90);
        const height = 80 + ((c * 29 + i * 41) % 80);
        const image = sharp({ create: { width, height, channels: 3, background: { r: (31 * c) % 256, g: 255 - ((31 * c) % 256), b: 60 * i }, noise: { type: 'gaussian', mean: 90 + 15 * c, sigma: 45 } } });
        await image.jpeg({ quality: 90 }).toFile(join(folder, `${i}.JPEG`));
      }
    }
  }
});

const spec = (): (typeof PRESETS)[string]['spec'] => {
  const s = structuredClone(PRESETS['imagenet-paper']!.spec);
  s.classifier.inputShape = [3, SIZE, SIZE];
  s.classifier.classes = CLASSES;
  s.options.width = 0.25;
  return s;
};

test('the training loop feeds the model images in [-1, 1]; the augmentation is seeded and changes between epochs', { timeout: 300_000 }, async () => {
  const train = await openImageNet('train', { size: SIZE, dir: data });
  const val = await openImageNet('val', { size: SIZE, dir: data });
  assert.equal(train.classNames.length, CLASSES);
  const take = async (d: typeof train, epoch: number): Promise<number[]> => {
    const b = await d.get([0, 1, 2], { epoch, seed: 1 });
    try {
      assert.deepEqual(b.images.shape, [3, 3, SIZE, SIZE]);
      return Array.from(b.images.dataSync() as Float32Array);
    } finally {
      b.images.dispose();
      b.labels.dispose();
    }
  };
  assert.deepEqual(await take(train, 0), await take(train, 0), 'the same epoch gives the same crops');
  assert.notDeepEqual(await take(train, 1), await take(train, 0), 'another epoch gives other crops');
  assert.deepEqual(await take(val, 1), await take(val, 0), 'validation images are the same every epoch');

  // The real loop, with the model's input recorded.
  const model = buildClassifier(spec());
  const seen: [number, number][] = [];
  const logits = model.logits.bind(model);
  model.logits = (x: Tensor): Tensor => {
    seen.push([x.min().item(), x.max().item()]);
    return logits(x);
  };
  const config = structuredClone(PRESETS['imagenet-paper']!.config);
  Object.assign(config, { batchSize: 4, maxSteps: 2, evalEvery: 0, checkpointEvery: 0 });
  config.adversarial.k = 2;
  await runTraining({ model, train, config, checkpoint: join(dir, 'loop.safetensors') });
  model.dispose();
  assert.ok(seen.length >= 2, `the model was called ${seen.length} times`);
  const low = Math.min(...seen.map((s) => s[0]));
  const high = Math.max(...seen.map((s) => s[1]));
  assert.ok(low >= -1 && high <= 1, `inputs in [${low}, ${high}]`);
  assert.ok(low < -0.5 && high > 0.5, `inputs span the range [-1, 1]: [${low}, ${high}]`);
});

const args = (out: string): string[] => [
  'train', '--preset', 'imagenet-paper', '--data-dir', data, '--image-size', String(SIZE), '--width', '0.25',
  '--batch', '4', '--steps', '12', '--checkpoint-every', '2', '--eval-images', '16', '--json', '--out', out,
];

test('advml train --preset imagenet-paper: k follows the batch, top-1 and top-5 under the paper attacks at eps 2-16; kill -9 and --resume give the same weights', { timeout: 600_000 }, async () => {
  const reference = join(dir, 'reference');
  const r = runCli(args(reference), { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const steps = events(reference).filter((e) => e.type === 'step');
  assert.equal(steps.length, 12, '1.5 epochs of 8 batches: the resumed run crosses an epoch');
  assert.ok(steps.every((e) => e.adversarialCount === 2), `k = 2 of m = 4: ${steps.map((e) => e.adversarialCount)}`);
  assert.match(r.stdout, /16 images\. clean top-1 +[\d.]+ ± *[\d.]+%  top-5 +[\d.]+ ± *[\d.]+%/);
  const result = JSON.parse(readFileSync(join(reference, 'final-eval.json'), 'utf8')) as { images: number; cells: { method: string; eps: number; top1: { value: number }; top5: { value: number; halfWidth: number } }[] };
  assert.equal(result.images, 16);
  assert.deepEqual(result.cells.map((c) => `${c.method}@${c.eps}`), [2, 4, 8, 16].flatMap((e) => ['fgsm', 'step-ll', 'basic-iter', 'iter-ll'].map((m) => `${m}@${e}`)));
  assert.ok(result.cells.every((c) => c.top5.value >= c.top1.value && c.top5.halfWidth >= 0), 'top-5 at least top-1, with an interval');

  const killed = join(dir, 'killed');
  const after = await startAndKill(args(killed), 2);
  assert.ok(after >= 2 && after < 12, `killed after the checkpoint of step ${after}`);
  assert.ok(existsSync(join(killed, 'checkpoint.safetensors')));
  const resumed = runCli([...args(killed), '--resume'], { timeoutMs: 300_000 });
  assert.equal(resumed.status, 0, resumed.stderr + resumed.stdout);
  assert.match(resumed.stdout, /"type":"resume","step":\d+/);
  const a = weightsOf(join(reference, 'checkpoint.safetensors'));
  const b = weightsOf(join(killed, 'checkpoint.safetensors'));
  assert.equal(b.step, 12);
  assert.deepEqual(b, a);
});

test('advml train --preset imagenet-resnet50: torchvision ResNet-50 on the same folder, k 2 of 4, no closing evaluation when asked', { timeout: 300_000 }, () => {
  const out = join(dir, 'resnet50');
  const r = runCli(['train', '--preset', 'imagenet-resnet50', '--data-dir', data, '--image-size', '64', '--width', '0.25', '--batch', '4', '--steps', '3', '--eval-images', '8', '--no-final-eval', '--json', '--out', out], { timeoutMs: 240_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.ok(events(out).filter((e) => e.type === 'step').every((e) => e.adversarialCount === 2));
  assert.equal(existsSync(join(out, 'final-eval.json')), false);
  const info = runCli(['info', '--model', join(out, 'checkpoint.safetensors')]);
  assert.match(info.stdout, /input +3x64x64 \(C x H x W\), values in \[0,1\]/);
  assert.match(info.stdout, /classes +8/);
});

test('bad image-folder options are refused with a message naming them', () => {
  const r = runCli(['train', '--preset', 'imagenet-paper', '--data-dir', data, '--limit', '10', '--out', join(dir, 'x')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--limit takes the first N images of mnist or fashion-mnist/);
  const m = runCli(['train', '--image-size', '96', '--out', join(dir, 'y')]);
  assert.equal(m.status, 2);
  assert.match(m.stderr, /--data-dir and --image-size are for the image-folder presets \(imagenet-paper, imagenet-resnet50\), not mnist/);
  const both = runCli(['train', '--k', '3', '--adv-fraction', '0.5', '--out', join(dir, 'z')]);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /give --k or --adv-fraction, not both/);
  const missing = runCli(['train', '--preset', 'imagenet-paper', '--data-dir', join(dir, 'nowhere'), '--out', join(dir, 'w')]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /ImageNet not found: .*nowhere\/train does not exist/);
});
