/**
 * The CUDA steps of scripts/gpu-check.sh, on the library API (the CLI has no
 * device option). Run as `node --import tsx scripts/gpu-check.ts STEP` with
 * ADVML_ADDON naming the CUDA build of the addon:
 *
 *   devices       the addon sees a CUDA device; prints its build and bf16 support
 *   algorithm1    one plain step and one Algorithm 1 step (k of m adversarial,
 *                 step l.l.) of the MNIST CNN on cuda:0, compared with the same
 *                 steps on the CPU from the same weights and batch
 *   bf16          the same Algorithm 1 step under bf16 autocast on cuda:0
 *   nccl          two processes, one all-reduce over NCCL (both on cuda:0 when
 *                 there is one GPU; NCCL may refuse that)
 *
 * Exit status: 0 passed, 77 skipped (the last line says why), anything else failed.
 * See docs/gpu.md.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  Generator, type Tensor, buildInfo, cudaDeviceCount, cudaHasBf16, full, noGrad, rand, randint, scope,
} from '../src/engine/index.js';
import { type Classifier, type ModelSpec, buildClassifier } from '../src/models/index.js';
import { SGD } from '../src/optim/index.js';
import { AdversarialTrainer } from '../src/training/index.js';
import { initProcessGroup } from '../src/distributed/index.js';

const SKIP = 77;
// ADVML_GPU_CHECK_DEVICE=cpu runs the training steps against themselves on the CPU: a check of this driver where there is no GPU.
const DEVICE = process.env.ADVML_GPU_CHECK_DEVICE ?? 'cuda:0';
// With DEVICE cpu, ADVML_GPU_CHECK_BACKEND=gloo runs the two-process step over Gloo on the CPU, for the same purpose.
const BACKEND = process.env.ADVML_GPU_CHECK_BACKEND === 'gloo' && DEVICE === 'cpu' ? 'gloo' : 'nccl';

class Skip extends Error {}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function needCuda(device = 'cuda'): void {
  if (device.startsWith('cuda') && cudaDeviceCount() === 0) {
    throw new Error(`the addon (${process.env.ADVML_ADDON ?? 'build/Release/advml.node'}) sees no CUDA device: built against a CPU libtorch, or no driver`);
  }
}

/** Moves every parameter and buffer to `device` in place (the handles stay, as PyTorch's module.to(device)). */
function moveTo(model: Classifier, device: string): void {
  noGrad(() => {
    for (const [, t] of model.module.stateDict()) {
      const moved = t.toDevice(device);
      t.setData(moved);
      moved.dispose();
    }
  });
}

const SPEC: ModelSpec = { architecture: 'mnist-cnn', options: { seed: 1 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] } };

interface StepReport { device: string; precision: string; plainLoss: number; advLoss: number; advCount: number; weightChange: number }

/** A plain step then an Algorithm 1 step (k = 8 of m = 16, step l.l. at eps 16) from seed-1 weights, on `device`. */
function twoSteps(device: string, precision: 'fp32' | 'bf16-autocast'): { report: StepReport; weights: Map<string, Float32Array> } {
  const model = buildClassifier(SPEC);
  if (device !== 'cpu') moveTo(model, device);
  const before = scope(() => model.module.parameters().map((p) => p.toDevice('cpu').detach().clone().keep()));
  const plain = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0.05, { momentum: 0.9 }), { k: 0 }, { seed: 3, precision });
  const adv = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0.05, { momentum: 0.9 }),
    { k: 8, method: 'step-ll', eps: { kind: 'fixed', value: 16 } }, { seed: 3, precision });
  const g = new Generator(11);
  const [x, y] = scope(() => {
    const xs = rand([16, 1, 28, 28], { generator: g });
    const ys = randint(0, 10, [16], { generator: g });
    return [(device === 'cpu' ? xs : xs.toDevice(device)).keep(), (device === 'cpu' ? ys : ys.toDevice(device)).keep()];
  }) as [Tensor, Tensor];
  for (const p of model.module.parameters()) {
    if (p.device !== device) throw new Error(`a parameter stayed on ${p.device}, not ${device}`);
  }
  const s1 = plain.trainStep(x, y);
  say(`${device} ${precision}: plain step (k = 0) done, loss ${s1.loss}; now the Algorithm 1 step (k = 8 of 16, step l.l.)`);
  const s2 = adv.trainStep(x, y);
  if (adv.precision !== precision) throw new Error(`the trainer resolved precision ${precision} to ${adv.precision}`);
  for (const [name, p] of model.module.namedParameters()) {
    if (p.device !== device) throw new Error(`${name} moved to ${p.device} during training`);
  }
  const weights = new Map<string, Float32Array>();
  let change = 0;
  model.module.namedParameters().forEach(([name, p], i) => {
    const now = scope(() => p.toDevice('cpu').detach().to('float32').dataSync() as Float32Array);
    weights.set(name, Float32Array.from(now));
    const was = before[i]!.dataSync() as Float32Array;
    for (let j = 0; j < now.length; j++) change = Math.max(change, Math.abs(now[j]! - was[j]!));
  });
  for (const t of before) t.dispose();
  x.dispose();
  y.dispose();
  model.dispose();
  return { report: { device, precision, plainLoss: s1.loss, advLoss: s2.loss, advCount: s2.adversarialCount, weightChange: change }, weights };
}

function compare(label: string, cuda: ReturnType<typeof twoSteps>, cpu: ReturnType<typeof twoSteps>, lossTol: number, weightTol: number): void {
  const a = cuda.report;
  const b = cpu.report;
  say(`${label}: ${JSON.stringify({ checked: a, reference: b })}`);
  for (const [k, v] of [['plainLoss', a.plainLoss], ['advLoss', a.advLoss]] as const) {
    if (!Number.isFinite(v)) throw new Error(`${label}: ${k} on ${DEVICE} is ${v}`);
  }
  if (a.advCount !== 8) throw new Error(`${label}: ${a.advCount} adversarial examples in the Algorithm 1 step, expected 8`);
  if (!(a.weightChange > 0)) throw new Error(`${label}: the weights on ${DEVICE} did not change`);
  for (const k of ['plainLoss', 'advLoss'] as const) {
    const rel = Math.abs(a[k] - b[k]) / Math.max(1e-6, Math.abs(b[k]));
    if (rel > lossTol) throw new Error(`${label}: ${k} ${a[k]} on ${DEVICE} vs ${b[k]} on the CPU (relative difference ${rel.toExponential(2)} > ${lossTol})`);
  }
  let worst = 0;
  for (const [name, w] of cuda.weights) {
    const v = cpu.weights.get(name)!;
    for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(w[j]! - v[j]!));
  }
  say(`${label}: largest weight difference ${DEVICE} vs cpu after both steps ${worst.toExponential(2)} (tolerance ${weightTol})`);
  if (worst > weightTol) throw new Error(`${label}: weights differ from the CPU's by ${worst} > ${weightTol}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One rank: all-reduce (rank + 1) * [0, 1, ..., 7] over NCCL on its GPU; prints RESULT <json>. */
function ncclWorker(): void {
  needCuda(DEVICE);
  const pg = initProcessGroup({ backend: BACKEND, timeoutMs: 60_000 });
  const device = DEVICE === 'cpu' ? 'cpu' : `cuda:${pg.localRank % cudaDeviceCount()}`;
  const x = scope(() => full([8], 1).cumsum(0).sub(1).mul(pg.rank + 1).toDevice(device));
  pg.allReduce(x, 'sum');
  const got = Array.from(x.toDevice('cpu').dataSync() as Float32Array);
  say(`RESULT ${JSON.stringify({ rank: pg.rank, device, got })}`);
  pg.destroy();
}

async function nccl(): Promise<void> {
  needCuda(DEVICE);
  const n = cudaDeviceCount();
  const port = await freePort();
  const self = fileURLToPath(import.meta.url);
  const runs = [0, 1].map((rank) => new Promise<{ rank: number; code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, self, 'nccl-worker'], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ rank, code, out }); });
  }));
  const results = await Promise.all(runs);
  const expected = Array.from({ length: 8 }, (_, i) => 3 * i); // (1 + 2) * i
  const all = results.map((r) => `--- rank ${r.rank} (exit ${r.code})\n${r.out.trim()}`).join('\n');
  say(all);
  if (results.some((r) => /needs an addon built against a CUDA libtorch with NCCL/.test(r.out))) {
    throw new Skip('the addon was built without NCCL (see the build step\'s torch-config describe: nccl.why)');
  }
  if (n === 1 && results.some((r) => /Duplicate GPU|duplicate GPU|invalid usage/i.test(r.out))) {
    throw new Skip('NCCL refuses two ranks on one GPU (one GPU here): "Duplicate GPU detected"; needs 2 GPUs');
  }
  for (const r of results) {
    const line = r.out.split('\n').find((l) => l.startsWith('RESULT '));
    if (r.code !== 0 || !line) throw new Error(`rank ${r.rank} exited with ${r.code} without a result`);
    const got = (JSON.parse(line.slice('RESULT '.length)) as { got: number[] }).got;
    if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`rank ${r.rank}: all-reduce gave [${got}], expected [${expected}]`);
  }
  say(`${BACKEND}: both ranks hold [${expected}] (${DEVICE === 'cpu' ? 'on the CPU' : n === 1 ? 'two ranks on cuda:0' : 'cuda:0 and cuda:1'})`);
}

async function main(step: string | undefined): Promise<void> {
  switch (step) {
    case 'devices': {
      needCuda();
      say(`devices: ${JSON.stringify({ cudaDeviceCount: cudaDeviceCount(), cudaBf16: cudaHasBf16(), build: buildInfo() })}`);
      return;
    }
    case 'algorithm1': {
      needCuda(DEVICE);
      // TF32 convolutions (libtorch's default on Ampere and later) round to 10 bits of mantissa.
      compare('algorithm1 fp32', twoSteps(DEVICE, 'fp32'), twoSteps('cpu', 'fp32'), 2e-2, 2e-2);
      return;
    }
    case 'bf16': {
      needCuda(DEVICE);
      if (DEVICE.startsWith('cuda') && !cudaHasBf16()) throw new Skip(`${DEVICE} has no native bfloat16 (compute capability below 8.0 or no cuDNN bf16 convolutions)`);
      compare('algorithm1 bf16-autocast', twoSteps(DEVICE, 'bf16-autocast'), twoSteps('cpu', 'fp32'), 5e-2, 5e-2);
      return;
    }
    case 'nccl':
      return nccl();
    case 'nccl-worker':
      return ncclWorker();
    default:
      throw new Error(`unknown step ${String(step)}: expected devices, algorithm1, bf16 or nccl`);
  }
}

main(process.argv[2]).then(
  () => process.exit(0),
  (e: unknown) => {
    if (e instanceof Skip) {
      say(`SKIP: ${e.message}`);
      process.exit(SKIP);
    }
    process.stderr.write(`FAIL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
