/**
 * The loader benchmark: images per second out of advml's `openImageFolder` +
 * `DataLoader` with `imagenetTrainTransforms(size)` (random-resized crop and
 * flip) against torchvision's `ImageFolder` + `DataLoader` with
 * RandomResizedCrop + RandomHorizontalFlip + ToTensor (bench/loader_peer.py),
 * on the same folder of synthetic ImageNet-like JPEGs
 * (scripts/make-imagenet-folder.py, generated when missing), side by side in
 * one run.
 *
 * Parallelism, mapped one to one: torchvision's `num_workers` worker
 * processes each decode one image at a time with PIL (single-threaded); advml
 * decodes on libuv's pool with UV_THREADPOOL_SIZE = the same number (sharp's
 * per-image libvips concurrency is 1 on glibc Linux, its default there), so
 * both decode `workers` images at once. The rest is each side's default:
 * advml keeps 16 images in flight per dataset and prefetches 2 batches;
 * torch's workers prefetch 2 batches each. Both hand the main process float32
 * [N, 3, size, size] batches. Each side first runs one untimed epoch (page
 * cache, worker start-up), then `--epochs` timed ones; rounds rotate which
 * side goes first, and the median is kept. Each side also reports its CPU
 * time per image (all its threads and worker processes, warm-up epoch
 * included): on a shared machine, where other work steals cores and makes
 * images per second noisy, that figure says which pipeline does less work.
 *
 *   node --import tsx bench/loader-benchmark.ts [--root /tmp/advml-loader-bench] [--classes 20]
 *        [--per-class 50] [--workers N (default: the cores)] [--batch 64] [--sizes 224,299]
 *        [--rounds 3] [--epochs 1] [--json out.json]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DataLoader, imagenetTrainTransforms, openImageFolder } from '../src/data/index.js';
import { median } from './peer-process.js';

interface ChildRequest {
  root: string;
  size: number;
  batch: number;
  workers: number;
  epochs: number;
  seed: number;
}

interface Measured {
  imagesPerSec: number;
  images: number;
  seconds: number;
  /** CPU milliseconds (every thread and worker process) per image, over every epoch including the warm-up. */
  cpuMsPerImage: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));

/** The advml side, in a child process so that UV_THREADPOOL_SIZE is read at its start. */
async function advmlSide(req: ChildRequest): Promise<Measured> {
  const cpu0 = process.cpuUsage();
  const ds = await openImageFolder(req.root, { transforms: imagenetTrainTransforms(req.size) });
  const loader = new DataLoader(ds, req.batch, { seed: req.seed });
  const pass = async (epoch: number): Promise<number> => {
    let n = 0;
    for await (const b of loader.epoch(epoch)) {
      n += b.images.shape[0] as number;
      b.images.dispose();
      b.labels.dispose();
    }
    return n;
  };
  const warm = await pass(0);
  let images = 0;
  const start = performance.now();
  for (let e = 1; e <= req.epochs; e++) images += await pass(e);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { imagesPerSec: images / seconds, images, seconds, cpuMsPerImage: (cpu.user + cpu.system) / 1000 / (images + warm) };
}

function runAdvml(req: ChildRequest): Measured {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', JSON.stringify(req)], {
    env: { ...process.env, UV_THREADPOOL_SIZE: String(req.workers) },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the advml side failed (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Measured;
}

function runTorchvision(python: string, req: ChildRequest): Measured & { torch: string; torchvision: string } {
  const r = spawnSync(python, [join(here, 'loader_peer.py'), JSON.stringify(req)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the torchvision side failed (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Measured & { torch: string; torchvision: string };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      child: { type: 'string' },
      root: { type: 'string', default: '/tmp/advml-loader-bench' },
      classes: { type: 'string', default: '20' },
      'per-class': { type: 'string', default: '50' },
      workers: { type: 'string', default: String(cpus().length) },
      batch: { type: 'string', default: '64' },
      sizes: { type: 'string', default: '224,299' },
      rounds: { type: 'string', default: '3' },
      epochs: { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      json: { type: 'string' },
      python: { type: 'string', default: '/usr/bin/python3' },
    },
    strict: true,
  });
  if (args.child !== undefined) {
    console.log(JSON.stringify(await advmlSide(JSON.parse(args.child) as ChildRequest)));
    return;
  }
  const positiveInt = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
    return n;
  };
  const [classes, perClass, workers, batch, rounds, epochs] = (['classes', 'per-class', 'workers', 'batch', 'rounds', 'epochs'] as const).map((k) =>
    positiveInt(k, args[k]),
  ) as [number, number, number, number, number, number];
  const seed = Number(args.seed);
  const sizes = args.sizes.split(',').map((s) => positiveInt('sizes', s));
  const train = join(args.root, 'train');
  if (!existsSync(train)) {
    console.error(`writing ${classes} x ${perClass} synthetic images into ${args.root} ...`);
    execFileSync(args.python, [join(here, '..', 'scripts', 'make-imagenet-folder.py'), args.root, '--classes', String(classes), '--train', String(perClass), '--val', '0', '--seed', String(seed)], { stdio: 'inherit' });
  }
  const rows: {
    size: number;
    advml: number;
    torchvision: number;
    ratio: number;
    cpuMsPerImage: { advml: number; torchvision: number };
    rounds: { advml: number[]; torchvision: number[]; advmlCpuMs: number[]; torchvisionCpuMs: number[] };
  }[] = [];
  let versions = { torch: '?', torchvision: '?' };
  for (const size of sizes) {
    const req: ChildRequest = { root: train, size, batch, workers, epochs, seed };
    const r = { advml: [] as number[], torchvision: [] as number[], advmlCpuMs: [] as number[], torchvisionCpuMs: [] as number[] };
    const sides = [
      () => {
        const a = runAdvml(req);
        r.advml.push(a.imagesPerSec);
        r.advmlCpuMs.push(a.cpuMsPerImage);
      },
      () => {
        const t = runTorchvision(args.python, req);
        versions = { torch: t.torch, torchvision: t.torchvision };
        r.torchvision.push(t.imagesPerSec);
        r.torchvisionCpuMs.push(t.cpuMsPerImage);
      },
    ];
    for (let round = 0; round < rounds; round++) for (let i = 0; i < sides.length; i++) (sides[(round + i) % sides.length] as () => void)();
    const row = {
      size, advml: median(r.advml), torchvision: median(r.torchvision), ratio: median(r.advml) / median(r.torchvision),
      cpuMsPerImage: { advml: median(r.advmlCpuMs), torchvision: median(r.torchvisionCpuMs) }, rounds: r,
    };
    rows.push(row);
    console.log(
      `size ${size}: advml ${row.advml.toFixed(0)} img/s, torchvision ${row.torchvision.toFixed(0)} img/s, advml / torchvision x${row.ratio.toFixed(2)} ` +
        `(rounds: advml ${r.advml.map((v) => v.toFixed(0)).join(', ')}; torchvision ${r.torchvision.map((v) => v.toFixed(0)).join(', ')}); ` +
        `CPU ms per image: advml ${row.cpuMsPerImage.advml.toFixed(2)}, torchvision ${row.cpuMsPerImage.torchvision.toFixed(2)}`,
    );
  }
  // What libvips runs per image in this process (the child's is the same: sharp's default, no one sets it).
  const sharpConcurrency = sharp.concurrency();
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores (${hostname()})`;
  const meta = {
    date: new Date().toISOString(), machine, images: classes * perClass, classes, batch, workers, rounds, epochs,
    mapping: `torchvision num_workers = ${workers} worker processes; advml UV_THREADPOOL_SIZE = ${workers} libuv threads (sharp's per-image concurrency ${sharpConcurrency}), concurrency 16, prefetch 2`,
    torch: versions.torch, torchvision: versions.torchvision, node: process.version,
  };
  console.log(`machine: ${meta.machine}; date: ${meta.date}; ${meta.images} images (${classes} classes), batch ${batch}; ${meta.mapping}`);
  console.log(`torch ${meta.torch}, torchvision ${meta.torchvision}, node ${meta.node}`);
  console.log('\n| size | advml img/s | torchvision img/s | advml / torchvision | CPU ms per image, advml | CPU ms per image, torchvision |\n|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.size} | ${r.advml.toFixed(0)} | ${r.torchvision.toFixed(0)} | **${r.ratio.toFixed(2)}** | ${r.cpuMsPerImage.advml.toFixed(2)} | ${r.cpuMsPerImage.torchvision.toFixed(2)} |`);
  }
  const low = rows.filter((r) => r.ratio < 1);
  console.log(low.length ? `below 1.0x at size ${low.map((r) => r.size).join(', ')}` : 'advml >= 1.0x torchvision at every size');
  if (args.json) writeFileSync(args.json, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
