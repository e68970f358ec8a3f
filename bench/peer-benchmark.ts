/**
 * The peer benchmark: advml as it runs by default against PyTorch (Debian
 * python3-torch, driven by bench/peer.py) two ways, in one run:
 *
 *  - PyTorch as its users run it by default: float32, NCHW, PyTorch's own
 *    thread count, glibc's default allocator settings;
 *  - PyTorch with advml's tricks: the same precision as advml for the mode,
 *    channels-last, advml's thread count, and the settings advml makes at
 *    load (glibc's MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_, one OpenBLAS
 *    thread).
 *
 * Same models, batch and modes on every side. Rounds rotate which engine goes
 * first; the median of the rounds is kept.
 *
 *   node --import tsx bench/peer-benchmark.ts [--rounds 3] [--seconds 2]
 *        [--batch 128] [--batch1-modes forward,fgsm] [--threads N]
 *        [--precision auto|fp32|bf16-autocast] [--models mnist-cnn,resnet20]
 *        [--modes forward,fgsm,eval-fgsm,train,adv-train] [--json out.json] [--markdown docs/benchmarks.md]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { type ConcretePrecision, buildInfo, checkPrecision, cpuHasBf16, getNumThreads, resolvePrecision, setNumThreads } from '../src/index.js';
import { DEFAULT_ATTACK_PRECISION } from '../src/attacks/index.js';
import { DEFAULT_TRAINING_PRECISION } from '../src/training/index.js';
import { writeFileAtomicSync } from '../src/io/index.js';
import { BENCH_MODES, type BenchMode, type BenchModel, MODELS, isTraining, measure, workload } from './workloads.js';
import { median, startPeer } from './peer-process.js';

/** The process settings advml makes at load (native/core.cc), as glibc and OpenBLAS read them from the environment. */
const TUNED_ENV = { MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_TRIM_THRESHOLD_: String(1 << 30), OPENBLAS_NUM_THREADS: '1' };

/** Targets of advml's default against PyTorch's default (attack and evaluation 2.5x, training 1.5x) and against tuned PyTorch (1.0x). */
const TARGET_VS_DEFAULT = (mode: BenchMode): number => (isTraining(mode) ? 1.5 : 2.5);
const TARGET_VS_TUNED = 1.0;

interface Row {
  model: BenchModel;
  mode: BenchMode;
  batch: number;
  precision: ConcretePrecision;
  advml: number;
  pytorchDefault: number;
  pytorchTuned: number;
  vsDefault: number;
  vsTuned: number;
  rounds: { advml: number[]; pytorchDefault: number[]; pytorchTuned: number[] };
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    batch: { type: 'string', default: '128' },
    'batch1-modes': { type: 'string', default: 'forward,fgsm' },
    threads: { type: 'string' },
    precision: { type: 'string' },
    models: { type: 'string', default: 'mnist-cnn,resnet20' },
    modes: { type: 'string', default: BENCH_MODES.join(',') },
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
if (args.threads !== undefined) setNumThreads(positiveInt('threads', args.threads));
const threads = getNumThreads();
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be positive, got '${args.seconds}'`);
const listOf = <T extends string>(name: string, text: string, known: readonly T[]): T[] => {
  const items = text.split(',').filter(Boolean) as T[];
  for (const m of items) if (!known.includes(m)) throw new Error(`--${name}: unknown value '${m}' (known: ${known.join(', ')})`);
  return items;
};
const models = listOf('models', args.models, Object.keys(MODELS) as BenchModel[]);
const modes = listOf('modes', args.modes, BENCH_MODES);
const batch1Modes = listOf('batch1-modes', args['batch1-modes'], BENCH_MODES);
const override = args.precision === undefined ? undefined : checkPrecision(args.precision);
/** advml's precision for a mode: its library default unless --precision overrides it. */
const precisionFor = (mode: BenchMode): ConcretePrecision => resolvePrecision(override ?? (isTraining(mode) ? DEFAULT_TRAINING_PRECISION : DEFAULT_ATTACK_PRECISION));

async function main(): Promise<void> {
  const pyDefault = startPeer(args.python);
  const pyTuned = startPeer(args.python, TUNED_ENV);
  const info = await pyDefault.info;
  await pyTuned.info;
  const rows: Row[] = [];
  const cases: [BenchModel, BenchMode, number][] = [];
  for (const model of models) {
    for (const mode of modes) cases.push([model, mode, batch]);
    if (batch !== 1) for (const mode of batch1Modes) cases.push([model, mode, 1]);
  }
  for (const [model, mode, b] of cases) {
    const precision = precisionFor(mode);
    const r = { advml: [] as number[], pytorchDefault: [] as number[], pytorchTuned: [] as number[] };
    // Batch 1 takes many more steps per second: time it as long, but warm up more.
    const warm = b === 1 ? warmup * 10 : warmup;
    const runners: (() => Promise<void>)[] = [
      async () => {
        const w = workload(model, mode, b, precision);
        r.advml.push(measure(w, b, seconds, warm).imagesPerSec);
        w.dispose();
      },
      async () => {
        r.pytorchDefault.push((await pyDefault.ask({ model, mode, batch: b, threads: null, seconds, warmup: warm })).imagesPerSec);
      },
      async () => {
        r.pytorchTuned.push((await pyTuned.ask({ model, mode, batch: b, threads, seconds, warmup: warm, channelsLast: true, precision })).imagesPerSec);
      },
    ];
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < runners.length; i++) await (runners[(round + i) % runners.length] as () => Promise<void>)();
    }
    const row: Row = {
      model, mode, batch: b, precision,
      advml: median(r.advml), pytorchDefault: median(r.pytorchDefault), pytorchTuned: median(r.pytorchTuned),
      vsDefault: median(r.advml) / median(r.pytorchDefault), vsTuned: median(r.advml) / median(r.pytorchTuned), rounds: r,
    };
    rows.push(row);
    console.log(
      `${model.padEnd(10)} ${mode.padEnd(9)} batch ${String(b).padStart(3)} ${precision.padEnd(13)} advml ${row.advml.toFixed(0).padStart(6)}  ` +
        `PyTorch default ${row.pytorchDefault.toFixed(0).padStart(6)} (x${row.vsDefault.toFixed(2)})  tuned ${row.pytorchTuned.toFixed(0).padStart(6)} (x${row.vsTuned.toFixed(2)}) img/s`,
    );
  }
  pyDefault.close();
  pyTuned.close();
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores (${hostname()}), bfloat16 instructions: ${cpuHasBf16() ? 'yes' : 'no'}`;
  const meta = { date: new Date().toISOString(), machine, batch, threads, pytorchDefaultThreads: info.threads, rounds, seconds, torchVersion: info.torch, advmlLibtorch: buildInfo().torchVersion };
  if (args.json) writeFileSync(args.json, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  if (args.markdown) writeSection(args.markdown, markdown(meta, rows));
  const misses = rows.filter((r) => r.batch !== 1 && (r.vsDefault < TARGET_VS_DEFAULT(r.mode) || r.vsTuned < TARGET_VS_TUNED));
  console.log(`lowest ratio vs PyTorch default: ${Math.min(...rows.map((r) => r.vsDefault)).toFixed(2)}; vs tuned PyTorch: ${Math.min(...rows.map((r) => r.vsTuned)).toFixed(2)}`);
  console.log(misses.length ? `below target: ${misses.map((r) => `${r.model} ${r.mode}`).join(', ')}` : `batch ${batch}: every target met (attack and evaluation >= 2.5x, training >= 1.5x PyTorch's default; >= 1.0x tuned PyTorch)`);
}

const START = '<!-- peer-benchmark: start -->';
const END = '<!-- peer-benchmark: end -->';

/** Replaces this benchmark's section of the page (between its markers), keeping the rest; a new page otherwise. */
function writeSection(path: string, section: string): void {
  const page = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const [a, b] = [page.indexOf(START), page.indexOf(END)];
  const body = `${START}\n${section}${END}\n`;
  const next = a >= 0 && b > a ? page.slice(0, a) + body + page.slice(b + END.length + 1) : `# Benchmarks: advml against PyTorch\n\n${body}`;
  writeFileAtomicSync(path, next);
}

function markdown(meta: { date: string; machine: string; batch: number; threads: number; pytorchDefaultThreads: number; rounds: number; seconds: number; torchVersion: string; advmlLibtorch: string }, rows: Row[]): string {
  const mark = (ratio: number, target: number, batch: number): string => (batch === 1 ? ratio.toFixed(2) : `**${ratio.toFixed(2)}**${ratio >= target ? '' : ' (below target)'}`);
  const table = rows
    .map((r) => `| ${r.model} | ${r.mode} | ${r.batch} | ${r.precision} | ${r.advml.toFixed(0)} | ${r.pytorchDefault.toFixed(0)} | ${r.pytorchTuned.toFixed(0)} | ${mark(r.vsDefault, TARGET_VS_DEFAULT(r.mode), r.batch)} | ${mark(r.vsTuned, TARGET_VS_TUNED, r.batch)} |`)
    .join('\n');
  return `## advml's defaults against PyTorch's, and against PyTorch with the same settings

Produced by \`npm run bench -- --markdown docs/benchmarks.md\` (bench/peer-benchmark.ts). advml and two PyTorch
processes run in one process tree; in each of ${meta.rounds} rounds of at least ${meta.seconds} s per figure the order rotates. Each
figure is the median of the rounds, in images per second. Same models (bench/peer.py mirrors src/models) and
batches on every side.

- **advml** as a user runs it: its own API (\`Classifier\`, \`fgsm()\`, \`AdversarialTrainer\`) with the library's
  defaults: precision \`auto\` for attacks and evaluation (bf16-autocast on this CPU), the training default
  (see [precision](precision.md)), channels-last, ${meta.threads} threads (the machine's cores), its caching CPU
  allocator for large blocks and glibc keeping the small ones (see [engine](engine.md#memory)), one OpenBLAS thread
  under libtorch's own pool (see [BLAS](#blas)), and, for a frozen model (\`forward\`, \`fgsm\`, \`eval-fgsm\` and
  the example-making half of \`adv-train\`), batch norm folded into the convolutions and bfloat16 weights cast once
  (see [engine](engine.md#frozen-models-batch-norm-folded-weights-cast-once)); in training mode, batch norm,
  the residual add and ReLU as one native node (see [engine](engine.md#training-batch-norm-residual-add-and-relu-as-one-node)).
- **PyTorch default**: as its users run it by default: float32, NCHW, eager mode, PyTorch's own thread count
  (${meta.pytorchDefaultThreads} on this machine), glibc's default allocator settings; \`torch.autograd.grad\` for FGSM,
  \`torch.optim.SGD\` (momentum 0.9) for training.
- **PyTorch tuned**: the same code with advml's settings: the precision column's (\`torch.autocast("cpu",
  torch.bfloat16)\` around forward passes, loss in float32), channels-last model and batch, ${meta.threads} threads,
  glibc's \`MALLOC_MMAP_THRESHOLD_\`/\`MALLOC_TRIM_THRESHOLD_\` set as advml sets them, and \`OPENBLAS_NUM_THREADS=1\`.
  What PyTorch's eager mode has no setting for stays as PyTorch does it: no caching CPU allocator, batch norm
  as a layer of its own (folded nowhere, fused with nothing), weights cast at every autocast region,
  least-likely labels from a pass of their own. Those and the one-gradient grid are where advml's margin over
  this column comes from; convolutions and matrix products are the same libtorch kernels on both sides.

Machine: ${meta.machine}. Date: ${meta.date}. PyTorch ${meta.torchVersion} (Debian); advml on libtorch ${meta.advmlLibtorch}.

| model | mode | batch | precision | advml img/s | PyTorch default img/s | PyTorch tuned img/s | advml / default | advml / tuned |
|---|---|---|---|---|---|---|---|---|
${table}

Targets at batch ${meta.batch}: against PyTorch's default, at least 2.5x for the attack step and evaluation (\`fgsm\`, \`forward\`, \`eval-fgsm\`)
and 1.5x for training; against tuned PyTorch, at least 1.0x. Batch-1 rows (interactive use) carry no target.

Modes: \`forward\` is inference without autograd (the evaluation pass); \`fgsm\` is forward, cross-entropy, gradient
with respect to the input and the signed step; \`eval-fgsm\` is what an evaluation does per batch for FGSM at eps 2, 4,
8, 16: clean accuracy, the four adversarial batches and their accuracies (advml makes the four from one gradient,
the grid of docs/attacks.md; PyTorch takes one gradient per eps, as per-eps libraries do); \`train\` is forward, backward and an SGD-with-momentum step in training
mode; \`adv-train\` is one step of the paper's Algorithm 1 (k = m/2 step l.l. examples at eps 8 made in inference mode
from the current weights, then a step on the mixed batch with lambda 0.3; advml takes the least-likely labels from
the logits of the gradient's forward pass, PyTorch from a no-grad pass first, as libraries that pick labels before attacking do).
`;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
