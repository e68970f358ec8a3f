/**
 * The peer benchmark: advml against PyTorch (Debian python3-torch, driven by
 * bench/peer.py) on the same models, batch size and thread count, in one run.
 * Rounds alternate which engine goes first; the median of the rounds is kept.
 *
 *   node --import tsx bench/peer-benchmark.ts [--rounds 3] [--seconds 2]
 *        [--batch 128] [--threads 2] [--models mnist-cnn,resnet20]
 *        [--modes forward,fgsm,train] [--json out.json] [--markdown docs/benchmarks.md]
 */
import { writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { buildInfo, setNumThreads } from '../src/index.js';
import { type BenchMode, type BenchModel, MODELS, measure, workload } from './workloads.js';
import { median, startPeer } from './peer-process.js';

interface Row {
  model: BenchModel;
  mode: BenchMode;
  advml: number;
  pytorch: number;
  ratio: number;
  advmlRounds: number[];
  pytorchRounds: number[];
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    batch: { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    models: { type: 'string', default: 'mnist-cnn,resnet20' },
    modes: { type: 'string', default: 'forward,fgsm,train,adv-train' },
    json: { type: 'string' },
    markdown: { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
  strict: true,
});

const positiveInt = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
};
const rounds = positiveInt('rounds', args.rounds);
const warmup = positiveInt('warmup', args.warmup);
const batch = positiveInt('batch', args.batch);
const threads = positiveInt('threads', args.threads);
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be positive, got '${args.seconds}'`);
const models = args.models.split(',') as BenchModel[];
for (const m of models) if (!(m in MODELS)) throw new Error(`--models: unknown model '${m}' (known: ${Object.keys(MODELS).join(', ')})`);
const modes = args.modes.split(',') as BenchMode[];
for (const m of modes) if (!['forward', 'fgsm', 'train', 'adv-train'].includes(m)) throw new Error(`--modes: unknown mode '${m}'`);

async function main(): Promise<void> {
  setNumThreads(threads);
  const peer = startPeer(args.python);
  const torchVersion = await peer.version;
  const rows: Row[] = [];
  for (const model of models) {
    for (const mode of modes) {
      const a: number[] = [];
      const p: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const runAdvml = (): void => {
          const w = workload(model, mode, batch);
          a.push(measure(w, batch, seconds, warmup).imagesPerSec);
          w.dispose();
        };
        const runPeer = async (): Promise<void> => {
          p.push((await peer.ask({ model, mode, batch, threads, seconds, warmup })).imagesPerSec);
        };
        if (r % 2 === 0) {
          runAdvml();
          await runPeer();
        } else {
          await runPeer();
          runAdvml();
        }
      }
      const row = { model, mode, advml: median(a), pytorch: median(p), ratio: median(a) / median(p), advmlRounds: a, pytorchRounds: p };
      rows.push(row);
      console.log(`${model.padEnd(10)} ${mode.padEnd(8)} advml ${row.advml.toFixed(0).padStart(6)} img/s   PyTorch ${row.pytorch.toFixed(0).padStart(6)} img/s   ratio ${row.ratio.toFixed(2)}`);
    }
  }
  peer.close();
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores (${hostname()})`;
  const meta = { date: new Date().toISOString(), machine, batch, threads, rounds, seconds, torchVersion, advmlLibtorch: buildInfo().torchVersion };
  if (args.json) writeFileSync(args.json, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  if (args.markdown) writeFileSync(args.markdown, markdown(meta, rows));
  const worst = Math.min(...rows.map((r) => r.ratio));
  console.log(`lowest ratio advml/PyTorch: ${worst.toFixed(2)}`);
}

function markdown(meta: Record<string, string | number>, rows: Row[]): string {
  const table = rows
    .map((r) => `| ${r.model} | ${r.mode} | ${r.advml.toFixed(0)} | ${r.pytorch.toFixed(0)} | **${r.ratio.toFixed(2)}** |`)
    .join('\n');
  return `# Benchmarks: advml against PyTorch

Produced by \`npm run bench -- --markdown docs/benchmarks.md\` (bench/peer-benchmark.ts). Both engines run in one
process tree, alternating which goes first in each of ${meta.rounds} rounds of at least ${meta.seconds} s; each figure is
the median of the rounds, in images per second. Same models (bench/peer.py mirrors src/models), batch ${meta.batch},
${meta.threads} threads on both sides, float32.

- **advml** runs as it does by default: channels-last, each intermediate freed at its last use, the input
  gradient only for FGSM (\`grad(loss, x)\`), glibc keeping freed blocks (mallopt at load).
- **PyTorch** runs as a user runs it by default: NCHW, eager mode, \`torch.autograd.grad\` for FGSM,
  \`torch.optim.SGD\` (momentum 0.9) for training.

Machine: ${meta.machine}. Date: ${meta.date}. PyTorch ${meta.torchVersion} (Debian); advml on libtorch ${meta.advmlLibtorch}.

| model | mode | advml img/s | PyTorch img/s | advml / PyTorch |
|---|---|---|---|---|
${table}

Modes: \`forward\` is inference without autograd; \`fgsm\` is forward, cross-entropy, gradient with respect to the
input and the signed step; \`train\` is forward, backward and an SGD-with-momentum step in training mode;
\`adv-train\` is one step of the paper's Algorithm 1 (k = m/2 step l.l. examples at eps 8 made in inference mode from
the current weights, then a step on the mixed batch with lambda 0.3), advml through its \`AdversarialTrainer\`.
`;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
