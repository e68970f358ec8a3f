/**
 * The BLAS choice, measured: libtorch reaches BLAS through libblas.so.3, which
 * Debian resolves through the `libblas.so.3` alternative (the reference BLAS
 * from libblas3, or OpenBLAS from libopenblas0-pthread). Each variant runs in
 * its own child process whose LD_LIBRARY_PATH puts that library first; the
 * child checks which libblas the dynamic loader actually mapped. Workloads:
 * float32 forward and FGSM step, NCHW and channels-last, batch 1 and 128,
 * where BLAS matters (batch-1 convolutions that skip oneDNN, linear layers).
 *
 *   node --import tsx bench/blas-benchmark.ts [--seconds 1] [--rounds 3]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type MemoryFormat, loadedBlas } from '../src/index.js';
import { type BenchMode, type BenchModel, measure, workload } from './workloads.js';
import { median } from './peer-process.js';

const LIBS: Record<string, string> = {
  reference: '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3',
  openblas: '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3',
};
const CASES: [BenchModel, BenchMode, number, MemoryFormat][] = [];
for (const model of ['mnist-cnn', 'resnet20'] as BenchModel[]) {
  for (const batch of [1, 128]) for (const format of ['contiguous', 'channelsLast'] as MemoryFormat[]) for (const mode of ['forward', 'fgsm'] as BenchMode[]) CASES.push([model, mode, batch, format]);
}

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' }, child: { type: 'boolean' } },
  strict: true,
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);

/** In the child: which libblas is mapped, and images/s for every case. */
function child(): void {
  const mapped = loadedBlas();
  const figures = CASES.map(([model, mode, batch, format]) => {
    const w = workload(model, mode, batch, 'fp32', format);
    const r = measure(w, batch, seconds, batch === 1 ? 20 : 2).imagesPerSec;
    w.dispose();
    return r;
  });
  console.log(JSON.stringify({ mapped, figures }));
}

function main(): void {
  const script = fileURLToPath(import.meta.url);
  const results: Record<string, number[][]> = {};
  const dirs: Record<string, string> = {};
  for (const [name, lib] of Object.entries(LIBS)) {
    if (!existsSync(lib)) throw new Error(`${name} BLAS not installed: ${lib}`);
    dirs[name] = mkdtempSync(join(tmpdir(), `advml-blas-${name}-`));
    symlinkSync(lib, join(dirs[name] as string, 'libblas.so.3'));
    results[name] = [];
  }
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? Object.keys(LIBS) : Object.keys(LIBS).reverse();
      for (const name of order) {
        const out = spawnSync(process.execPath, ['--import', 'tsx', script, '--child', '--seconds', String(seconds)], {
          env: { ...process.env, LD_LIBRARY_PATH: dirs[name] }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
        });
        if (out.status !== 0) throw new Error(`${name} child failed (${out.status})`);
        const answer = JSON.parse(out.stdout.trim().split('\n').pop() as string) as { mapped: string[]; figures: number[] };
        // /proc/self/maps names the file behind the symlinks.
        const expected = realpathSync(LIBS[name] as string);
        if (!answer.mapped.includes(expected)) {
          throw new Error(`${name}: the child mapped ${answer.mapped.join(', ')} instead of ${expected}`);
        }
        (results[name] as number[][]).push(answer.figures);
      }
    }
  } finally {
    for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true });
  }
  const med = (name: string, i: number): number => median((results[name] as number[][]).map((f) => f[i] as number));
  console.log('| model | mode | batch | memory format | reference BLAS img/s | OpenBLAS img/s | OpenBLAS / reference |');
  console.log('|---|---|---|---|---|---|---|');
  CASES.forEach(([model, mode, batch, format], i) => {
    const [a, b] = [med('reference', i), med('openblas', i)];
    console.log(`| ${model} | ${mode} | ${batch} | ${format} | ${a.toFixed(0)} | ${b.toFixed(0)} | **${(b / a).toFixed(2)}** |`);
  });
}

if (args.child) child();
else main();
