/**
 * Gradient all-reduce overlapped with backward, against reduce-after-backward,
 * where it matters: two processes in their own network namespaces joined by a
 * veth pair whose both ends are limited with `tc` (tbf) to a link rate, one
 * libtorch thread each (this machine has 2 cores). For every link rate and
 * model, one pair of processes alternates training steps with and without
 * overlap on the same model (the same trainer code, `overlap` on or off) and
 * reports the median ms/step of each, the speed-up, and the time of the
 * gradients' all-reduce alone (no compute) on that link.
 *
 *   node --import tsx bench/overlap-benchmark.ts [--rates 1gbit,10gbit] [--models inception-v3,resnet-50]
 *     [--image 299] [--batch 2] [--steps 3] [--json out.json]
 *
 * Run as root (it makes and removes the namespaces, the veth pair and the
 * qdiscs). Models: Inception v3 (torchvision's layout, without the auxiliary
 * head, which the trainer does not use) and ResNet-50 (torchvision's layout,
 * defined below), at --image x --image pixels and --batch images per process.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpus, hostname } from 'node:os';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Generator, rand, randint, scope, zeros, type Tensor } from '../src/index.js';
import { initProcessGroup } from '../src/distributed/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module } from '../src/nn/index.js';
import { Classifier, InceptionV3, ResNetImageNet } from '../src/models/index.js';
import { SGD } from '../src/optim/index.js';
import { AdversarialTrainer } from '../src/training/index.js';

const { values: args } = parseArgs({
  options: {
    rates: { type: 'string', default: '1gbit,10gbit' },
    models: { type: 'string', default: 'inception-v3,resnet-50' },
    image: { type: 'string', default: '299' },
    batch: { type: 'string', default: '2' },
    steps: { type: 'string', default: '3' },
    json: { type: 'string' },
    worker: { type: 'string' },
  },
  strict: true,
});
const image = Number(args.image);
const batch = Number(args.batch);
const steps = Number(args.steps);

function buildModel(name: string): Classifier {
  const g = new Generator(1);
  const module = name === 'inception-v3' ? new InceptionV3({ generator: g, auxLogits: false }) : name === 'resnet-50' ? new ResNetImageNet({ depth: 50, generator: g }) : null;
  if (!module) throw new Error(`unknown model ${name}`);
  return new Classifier(module.toMemoryFormat('channelsLast'), { classes: 1000, inputShape: [3, image, image], inputRange: [-1, 1] });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** One rank: alternates steps without and with overlap on one model; rank 0 prints the figures as JSON. */
function worker(name: string): void {
  const pg = initProcessGroup();
  const model = buildModel(name);
  pg.broadcast([...model.module.stateDict().values()], 0);
  const opt = new SGD(model.module.parameters(), 0.001, { momentum: 0.9 });
  const config = { k: 0, lambda: 0.3, method: 'step-ll' as const, eps: { kind: 'fixed' as const, value: 8 } };
  const plain = new AdversarialTrainer(model, opt, config, { group: pg, overlap: false });
  const overlap = new AdversarialTrainer(model, opt, config, { group: pg, overlap: true });
  const g = new Generator(2 + pg.rank);
  const x = rand([batch, 3, image, image], { generator: g }).mul(2).sub(1).contiguous('channelsLast').keep();
  const y = randint(0, 1000, [batch], { generator: g }).keep();
  const times: Record<'plain' | 'overlap', number[]> = { plain: [], overlap: [] };
  for (let i = 0; i <= steps; i++) {
    for (const [mode, t] of [['plain', plain], ['overlap', overlap]] as const) {
      pg.barrier();
      const t0 = performance.now();
      t.trainStep(x, y);
      if (i > 0) times[mode].push(performance.now() - t0); // the first step of each warms up
    }
  }
  // The gradients' all-reduce alone on this link (the bytes of every parameter, as reduce-after-backward sends them).
  const grads = model.module.parameters().map((p) => zeros(p.shape).keep());
  const reduce: number[] = [];
  for (let i = 0; i < 3; i++) {
    pg.barrier();
    const t0 = performance.now();
    pg.allReduce(grads, 'sum');
    reduce.push(performance.now() - t0);
  }
  const params = grads.reduce((n, t) => n + t.size, 0);
  const buckets = pg.gradientReducer(model.module.parameters()).buckets().length;
  if (pg.rank === 0) {
    console.log(JSON.stringify({ model: name, params, buckets, plainMs: median(times.plain), overlapMs: median(times.overlap), allReduceMs: median(reduce), plain: times.plain, overlap: times.overlap }));
  }
  pg.destroy();
}

// ---- the orchestrator: namespaces, link, workers ----

const id = `advov${process.pid % 10000}`;
const hosts = [
  { ns: `${id}a`, dev: `${id}a0`, addr: '10.213.78.1' },
  { ns: `${id}b`, dev: `${id}b0`, addr: '10.213.78.2' },
];

function sh(cmd: string, cmdArgs: string[]): void {
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')}: ${r.stderr || r.error?.message}`);
}

function makeLink(): void {
  sh('ip', ['netns', 'add', hosts[0]!.ns]);
  sh('ip', ['netns', 'add', hosts[1]!.ns]);
  sh('ip', ['link', 'add', hosts[0]!.dev, 'type', 'veth', 'peer', 'name', hosts[1]!.dev]);
  for (const h of hosts) {
    sh('ip', ['link', 'set', h.dev, 'netns', h.ns]);
    sh('ip', ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.dev]);
    sh('ip', ['-n', h.ns, 'link', 'set', h.dev, 'up']);
    sh('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
  }
}

function removeLink(): void {
  for (const h of hosts) spawnSync('ip', ['netns', 'del', h.ns]);
}

/** Token bucket on both ends (each direction limited): burst of 10 ms at the rate, up to 50 ms of queue. */
function setRate(rate: string): void {
  const bits = Number(/^(\d+)gbit$/.exec(rate)?.[1] ?? NaN) * 1e9;
  if (!Number.isFinite(bits)) throw new Error(`rate must be like 1gbit, got ${rate}`);
  const burst = Math.round(bits / 8 / 100);
  for (const h of hosts) {
    sh('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'replace', 'dev', h.dev, 'root', 'tbf', 'rate', rate, 'burst', String(burst), 'latency', '50ms']);
  }
}

async function runPair(model: string, port: number): Promise<Record<string, unknown>> {
  const runs = hosts.map((h, rank) => new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url),
      '--worker', model, '--image', String(image), '--batch', String(batch), '--steps', String(steps)], {
      env: {
        ...process.env, RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1', MASTER_ADDR: hosts[0]!.addr,
        MASTER_PORT: String(port), GLOO_SOCKET_IFNAME: h.dev, ADVML_NUM_THREADS: '1', ADVML_DIST_TIMEOUT_MS: '300000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  }));
  const [a, b] = await Promise.all(runs);
  if (a!.code !== 0 || b!.code !== 0) throw new Error(`${model} workers failed:\n${a!.out}\n${b!.out}`);
  const line = a!.out.split('\n').filter((l) => l.startsWith('{')).at(-1);
  return JSON.parse(line as string) as Record<string, unknown>;
}

async function main(): Promise<void> {
  if (args.worker) return worker(args.worker);
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark makes network namespaces and qdiscs');
  const rates = (args.rates as string).split(',');
  const models = (args.models as string).split(',');
  const started = new Date();
  const rows: Record<string, unknown>[] = [];
  removeLink();
  makeLink();
  try {
    let port = 29_600 + (process.pid % 300);
    for (const rate of rates) {
      setRate(rate);
      for (const model of models) {
        const t0 = performance.now();
        const r = await runPair(model, port++);
        const row = { rate, ...r, speedup: (r.plainMs as number) / (r.overlapMs as number), wallS: (performance.now() - t0) / 1000 };
        rows.push(row);
        console.log(`${rate.padEnd(7)} ${model.padEnd(13)} without overlap ${(r.plainMs as number).toFixed(0).padStart(6)} ms/step, ` +
          `with ${(r.overlapMs as number).toFixed(0).padStart(6)} ms/step: speed-up ${row.speedup.toFixed(2)}x; ` +
          `all-reduce alone ${(r.allReduceMs as number).toFixed(0)} ms (${r.params} parameters, ${r.buckets} buckets)`);
      }
    }
  } finally {
    removeLink();
  }
  const cpu = cpus();
  const header = { date: started.toISOString(), host: hostname(), cpu: cpu[0]?.model, cores: cpu.length, image, batchPerProcess: batch, steps, threadsPerProcess: 1 };
  console.log(`${header.date} on ${header.cpu} (${header.cores} cores); ${image}x${image} images, batch ${batch} per process, median of ${steps} steps`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ ...header, rows }, null, 2) + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  removeLink();
  process.exit(1);
});
