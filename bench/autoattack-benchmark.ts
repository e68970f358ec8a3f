/**
 * AutoAttack benchmark, one run per model: APGD-CE through advml (per-image
 * early exit, fp32, and bf16-autocast where the CPU has bfloat16) against the
 * PyTorch transcription of the same algorithm in bench/apgd_peer.py (the whole
 * batch every iteration, fp32), same weights, images, eps, iterations, batch
 * and threads; then the whole standard suite through advml. Robust accuracy
 * with its 95% interval on each side, seconds and the ratio are printed.
 *
 * The models are trained here on the real datasets (a fixed seed): the MNIST
 * CNN on MNIST and a ResNet-20 (one input channel) on Fashion-MNIST.
 *
 *   node --import tsx bench/autoattack-benchmark.ts [--models mnist-cnn,resnet20] [--images 1000] [--steps 100]
 *     [--train-steps 300] [--batch 250] [--suite-images 1000] [--threads 2] [--eps-mnist 25.5,76.5] [--eps-resnet20 2,8]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Generator, type Precision, type Tensor, cpuHasBf16, crossEntropy, noGrad, randperm, scope, setNumThreads } from '../src/index.js';
import * as A from '../src/attacks/index.js';
import { type Classifier, type ModelSpec, buildClassifier } from '../src/models/index.js';
import { loadFashionMnist, loadMnist } from '../src/data/index.js';
import { saveSafetensorsSync } from '../src/io/index.js';
import { proportion } from '../src/evaluation/index.js';
import { SGD } from '../src/optim/index.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'mnist-cnn,resnet20' },
    images: { type: 'string', default: '1000' },
    steps: { type: 'string', default: '100' },
    'train-steps': { type: 'string', default: '300' },
    batch: { type: 'string', default: '250' },
    // The suite's Square runs 5,000 forward passes on every image the gradient attacks leave: the longest part.
    'suite-images': { type: 'string', default: '1000' },
    threads: { type: 'string', default: '2' },
    // AutoAttack's usual radii (0.3 on MNIST, 8/255 for a CIFAR-sized ResNet, here on Fashion-MNIST) and a smaller one
    // where an undefended model keeps some accuracy, so early exit has less to skip.
    'eps-mnist': { type: 'string', default: '25.5,76.5' },
    'eps-resnet20': { type: 'string', default: '2,8' },
  },
  strict: true,
});
const count = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
};
const epsList = (name: string, v: string | undefined): number[] => (v ?? '').split(',').map((e) => {
  const n = Number(e);
  if (!(n > 0 && n <= 255)) throw new Error(`--${name} must list eps values in (0, 255], got ${v}`);
  return n;
});
const images = count('images', args.images);
const steps = count('steps', args.steps);
const trainSteps = count('train-steps', args['train-steps']);
const batch = count('batch', args.batch);
const suiteImages = count('suite-images', args['suite-images']);
const threads = count('threads', args.threads);

interface Bench { spec: ModelSpec; data: 'mnist' | 'fashion'; eps: number[] }
const BENCHES: Record<string, Bench> = {
  'mnist-cnn': {
    spec: { architecture: 'mnist-cnn', options: { seed: 1 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] } },
    data: 'mnist', eps: epsList('eps-mnist', args['eps-mnist']),
  },
  resnet20: {
    spec: { architecture: 'resnet', options: { depth: 20, seed: 1 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] } },
    data: 'fashion', eps: epsList('eps-resnet20', args['eps-resnet20']),
  },
};

function train(b: Bench): Classifier {
  const model = buildClassifier(b.spec);
  const set = (b.data === 'mnist' ? loadMnist : loadFashionMnist)('train', { limit: Math.min(60000, trainSteps * 100) });
  const n = set.images.shape[0] as number;
  const opt = new SGD(model.module.parameters(), 0.05, { momentum: 0.9 });
  const g = new Generator(2);
  model.module.train();
  let order = randperm(n, { generator: g }).keep();
  for (let i = 0; i < trainSteps; i++) {
    const at = (i * 100) % n;
    if (at === 0 && i > 0) {
      order.dispose();
      order = randperm(n, { generator: g }).keep();
    }
    scope(() => {
      const idx = order.narrow(0, at, 100);
      crossEntropy(model.logits(set.images.indexSelect(0, idx)), set.labels.indexSelect(0, idx)).backward();
    });
    opt.step();
    opt.zeroGrad();
  }
  model.module.eval();
  order.dispose();
  opt.dispose();
  return model;
}

/** Per image: correct after `attack` (run batch by batch); and the seconds it took. */
function timed(model: Classifier, x: Tensor, y: Tensor, attack: (xs: Tensor, ys: Tensor) => Tensor): { robust: boolean[]; seconds: number } {
  const t0 = performance.now();
  const robust: boolean[] = [];
  for (let i = 0; i < (x.shape[0] as number); i += batch) {
    scope(() => {
      const len = Math.min(batch, (x.shape[0] as number) - i);
      const xs = x.narrow(0, i, len);
      const ys = y.narrow(0, i, len);
      const adv = attack(xs, ys);
      robust.push(...Array.from(noGrad(() => model.logits(adv).argmax(1).eq(ys)).dataSync() as Uint8Array, (v) => v !== 0));
    });
  }
  return { robust, seconds: (performance.now() - t0) / 1000 };
}

function peer(name: string, weights: string, data: string, eps: number, dir: string): { robust: boolean[]; seconds: number; torch: string } {
  const request = join(dir, `${name}-request.json`);
  writeFileSync(request, JSON.stringify({ model: name, inChannels: 1, weights, images: data, eps, steps, batch, threads, seed: 0 }));
  const script = fileURLToPath(new URL('./apgd_peer.py', import.meta.url));
  const r = spawnSync('/usr/bin/python3', [script, request], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`PyTorch APGD-CE failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { seconds: number; robust: number[]; torch: string };
  return { robust: out.robust.map((v) => v === 1), seconds: out.seconds, torch: out.torch };
}

const share = (v: boolean[]): string => {
  const p = proportion(v.filter(Boolean).length, v.length);
  return `${(100 * p.value).toFixed(1)}% ± ${(100 * p.halfWidth).toFixed(1)}`;
};

function main(): void {
  setNumThreads(threads);
  const dir = mkdtempSync(join(tmpdir(), 'advml-autoattack-bench-'));
  const names = (args.models as string).split(',');
  for (const name of names) {
    const b = BENCHES[name];
    if (!b) throw new Error(`--models: unknown model '${name}': expected ${Object.keys(BENCHES).join(', ')}`);
    const model = train(b);
    const test = (b.data === 'mnist' ? loadMnist : loadFashionMnist)('test', { limit: images });
    const x = test.images;
    const y = test.labels;
    const weights = join(dir, `${name}.safetensors`);
    const data = join(dir, `${name}-images.safetensors`);
    // Logical NCHW order on both sides (advml keeps its weights channels-last).
    saveSafetensorsSync(weights, Object.fromEntries([...model.module.stateDict()].map(([k, v]) => [k, v.contiguous()])));
    saveSafetensorsSync(data, { images: x.contiguous(), labels: y });
    const clean = timed(model, x, y, (xs) => xs.clone());
    console.log(`\n${name} (${b.data}, trained ${trainSteps} steps), ${images} test images, APGD ${steps} iterations, batch ${batch}, ${threads} threads`);
    console.log(`  clean accuracy ${share(clean.robust)}`);
    for (const eps of b.eps) {
      const apgd = (precision: Precision, earlyExit = true) => (xs: Tensor, ys: Tensor): Tensor =>
        A.apgdCe(model, xs, { eps, y: ys, steps, generator: new Generator(0), precision, earlyExit });
      const torch = peer(name, weights, data, eps, dir);
      const fp32 = timed(model, x, y, apgd('fp32'));
      const whole = timed(model, x, y, apgd('fp32', false));
      const bf16 = cpuHasBf16() ? timed(model, x, y, apgd('bf16-autocast')) : null;
      const [xq, yq] = [x.narrow(0, 0, Math.min(suiteImages, images)), y.narrow(0, 0, Math.min(suiteImages, images))];
      const suite = timed(model, xq, yq, (xs, ys) => A.runSuite(model, xs, ys, A.suiteSteps('standard'), eps, { seed: 0, precision: 'fp32', overrides: { steps } }).adversarial);
      const row = (label: string, r: { robust: boolean[]; seconds: number }, ratio = true): void =>
        console.log(`  ${label.padEnd(36)} ${share(r.robust).padEnd(14)} ${r.seconds.toFixed(1).padStart(7)} s${ratio ? `  advml/PyTorch speed ${(torch.seconds / r.seconds).toFixed(2)}x` : ''}`);
      console.log(`  eps ${eps} (PyTorch ${torch.torch}); robust accuracy, 95% interval, seconds`);
      row('APGD-CE PyTorch fp32', torch, false);
      row('APGD-CE advml fp32', fp32);
      row('APGD-CE advml fp32, no early exit', whole);
      if (bf16) row('APGD-CE advml bf16-autocast', bf16);
      else console.log('  APGD-CE advml bf16-autocast: not run, this CPU has no bfloat16 instructions');
      row(`standard suite advml fp32 (${xq.shape[0]} images)`, suite, false);
    }
    model.dispose();
  }
}

main();
