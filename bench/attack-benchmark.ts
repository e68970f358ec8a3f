/**
 * Attack benchmark, one run:
 *  1. the many-eps grid against a per-eps loop in advml (six one-step methods
 *     x eps 2, 4, 8, 16), the speed-up the shared gradients give;
 *  2. FGSM for four eps through advml's attack API (grid) against PyTorch
 *     looping over eps as per-eps libraries do;
 *  3. one FGSM step through the attack API against the same step in PyTorch;
 *  4. the same step at bf16-autocast (bfloat16 convolutions, float32 loss).
 * Same model (ResNet-20 or the MNIST CNN), batch and threads on both sides.
 *
 *   node --import tsx bench/attack-benchmark.ts [--model resnet20] [--batch 128] [--threads 2] [--rounds 3] [--seconds 2]
 */
import { parseArgs } from 'node:util';
import { Generator, rand, randint, scope, setNumThreads } from '../src/index.js';
import * as A from '../src/attacks/index.js';
import { Classifier } from '../src/models/index.js';
import { type BenchModel, MODELS, measure } from './workloads.js';
import { median, startPeer } from './peer-process.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet20' },
    batch: { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '2' },
  },
  strict: true,
});
const modelName = args.model as BenchModel;
if (!(modelName in MODELS)) throw new Error(`--model: unknown model '${modelName}'`);
const batch = Number(args.batch);
const threads = Number(args.threads);
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);

const EPS = [2, 4, 8, 16];
const METHODS = [A.FGSM, A.FAST_GRADIENT_L2, A.FAST_GRADIENT_L1, A.STEP_LL, A.FAST_PREDICTED, A.FAST_ENTROPY];

async function main(): Promise<void> {
  setNumThreads(threads);
  const g = new Generator(0);
  const spec = MODELS[modelName];
  const module = spec.make(g).toMemoryFormat('channelsLast').eval();
  const model = new Classifier(module, { classes: 10, inputShape: spec.shape as [number, number, number], inputRange: [0, 1] });
  const x = rand([batch, ...spec.shape], { generator: g }).contiguous('channelsLast').keep();
  const y = randint(0, 10, [batch], { generator: g }).keep();

  const workloads = {
    // float32 like PyTorch's side, except the last line.
    loop: () => scope(() => {
      for (const eps of EPS) for (const m of METHODS) A.runOneStep(model, x, m, { eps, y, precision: 'fp32' });
    }),
    grid: () => scope(() => void A.oneStepGrid(model, x, METHODS, { eps: EPS, y, precision: 'fp32' })),
    fgsmGrid: () => scope(() => void A.oneStepGrid(model, x, [A.FGSM], { eps: EPS, y, precision: 'fp32' })),
    fgsm: () => scope(() => void A.fgsm(model, x, { eps: 8, y, precision: 'fp32' })),
    fgsmBf16: () => scope(() => void A.fgsm(model, x, { eps: 8, y, precision: 'bf16-autocast' })),
  };
  // Seconds per call: measure() counts calls when told the batch is 1.
  const time = (f: () => void): number => 1 / measure({ step: f, dispose: () => {} }, 1, seconds, 1).imagesPerSec;

  const peer = startPeer();
  const torch = await peer.version;
  const r: Record<string, number[]> = { loop: [], grid: [], fgsmGrid: [], fgsm: [], fgsmBf16: [], torchLoop: [], torchFgsm: [] };
  for (let i = 0; i < rounds; i++) {
    r.loop!.push(time(workloads.loop));
    r.grid!.push(time(workloads.grid));
    r.fgsmGrid!.push(time(workloads.fgsmGrid));
    r.fgsm!.push(time(workloads.fgsm));
    r.fgsmBf16!.push(time(workloads.fgsmBf16));
    const ask = async (mode: string): Promise<number> => batch / (await peer.ask({ model: modelName, mode, batch, threads, seconds, warmup: 1 })).imagesPerSec;
    r.torchLoop!.push(await ask('fgsm-eps-loop'));
    r.torchFgsm!.push(await ask('fgsm'));
  }
  peer.close();
  const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<string, number>;
  const ms = (s: number): string => `${(s * 1000).toFixed(0)} ms`;
  console.log(`model ${modelName}, batch ${batch}, ${threads} threads, PyTorch ${torch}; seconds per batch (median of ${rounds})`);
  console.log(`1. ${METHODS.length} one-step methods x ${EPS.length} eps: per-eps loop ${ms(m.loop!)}, grid ${ms(m.grid!)}: grid ${(m.loop! / m.grid!).toFixed(2)}x faster`);
  console.log(`2. FGSM at eps ${EPS.join(', ')}: PyTorch per-eps loop ${ms(m.torchLoop!)}, advml grid ${ms(m.fgsmGrid!)}: advml/PyTorch speed ${(m.torchLoop! / m.fgsmGrid!).toFixed(2)}`);
  console.log(`3. one FGSM step: PyTorch ${ms(m.torchFgsm!)}, advml ${ms(m.fgsm!)}: advml/PyTorch speed ${(m.torchFgsm! / m.fgsm!).toFixed(2)}`);
  console.log(`4. one FGSM step at bf16-autocast: advml ${ms(m.fgsmBf16!)}: ${(m.fgsm! / m.fgsmBf16!).toFixed(2)}x advml fp32, ${(m.torchFgsm! / m.fgsmBf16!).toFixed(2)}x PyTorch fp32`);
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
