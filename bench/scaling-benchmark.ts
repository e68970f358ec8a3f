/**
 * Scaling on this machine, in one run:
 *  1. adversarial training (ResNet-20, the paper's step: k = m/2 step l.l.,
 *     lambda 0.3) as 1 process with 2 threads against 2 processes with 1 thread
 *     each (data-parallel, the same global batch), images per second;
 *  2. the all-reduce time per step for ResNet-20's and Inception v3's
 *     gradients between 2 processes over loopback;
 *  3. one Inception v3 training step on this CPU (batch 4, scaled to 32), the
 *     compute the projection in docs/scaling.md starts from.
 *
 *   node --import tsx bench/scaling-benchmark.ts [--batch 128] [--seconds 10] [--json out.json]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { Generator, crossEntropy, rand, randint, scope, setNumThreads, zeros } from '../src/index.js';
import { initProcessGroup } from '../src/distributed/index.js';
import { launch } from '../src/distributed/launcher.js';
import { Classifier, InceptionV3, ResNet } from '../src/models/index.js';
import { SGD } from '../src/optim/index.js';
import { AdversarialTrainer } from '../src/training/index.js';

const { values: args } = parseArgs({
  options: { batch: { type: 'string', default: '128' }, seconds: { type: 'string', default: '10' }, json: { type: 'string' }, worker: { type: 'string' } },
  strict: true,
});
const batch = Number(args.batch);
const seconds = Number(args.seconds);

/** Data-parallel adversarial training for `seconds`; prints global images/s (rank 0). */
function trainWorker(): void {
  const pg = initProcessGroup();
  const local = batch / pg.worldSize;
  const g = new Generator(1);
  const model = new Classifier(new ResNet({ depth: 20, generator: g }).toMemoryFormat('channelsLast'), { classes: 10, inputShape: [3, 32, 32] });
  const opt = new SGD(model.module.parameters(), 0.01, { momentum: 0.9 });
  const trainer = new AdversarialTrainer(model, opt, { k: local / 2, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 8 } }, { group: pg });
  const x = rand([local, 3, 32, 32], { generator: new Generator(2 + pg.rank) }).contiguous('channelsLast').keep();
  const y = randint(0, 10, [local], { generator: new Generator(3 + pg.rank) }).keep();
  for (let i = 0; i < 2; i++) trainer.trainStep(x, y);
  let steps = 0;
  const t0 = performance.now();
  // Every rank runs the same number of steps: rank 0 decides when to stop.
  for (;;) {
    trainer.trainStep(x, y);
    steps++;
    const done = pg.allReduceNumbers([pg.rank === 0 && performance.now() - t0 > seconds * 1000 ? 1 : 0], 'sum')[0] as number;
    if (done > 0) break;
  }
  const s = (performance.now() - t0) / 1000;
  if (pg.rank === 0) console.log(JSON.stringify({ imagesPerSec: (steps * batch) / s, steps }));
  pg.destroy();
}

/** Median all-reduce time of a model's gradient list between the ranks. */
function allReduceWorker(): void {
  const pg = initProcessGroup();
  const result: Record<string, number> = {};
  for (const [name, make] of [['resnet20', () => new ResNet({ depth: 20 })], ['inception-v3', () => new InceptionV3({})]] as const) {
    const m = make();
    const grads = m.parameters().map((p) => zeros(p.shape).keep());
    m.dispose();
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      pg.barrier();
      const t0 = performance.now();
      pg.allReduce(grads, 'sum');
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    result[`${name}Ms`] = times[3] as number;
    result[`${name}Floats`] = grads.reduce((n, t) => n + t.size, 0);
    for (const t of grads) t.dispose();
  }
  if (pg.rank === 0) console.log(JSON.stringify(result));
  pg.destroy();
}

async function runWorkers(n: number, threads: number, worker: string): Promise<Record<string, number>> {
  const lines: string[] = [];
  const r = await launch({
    command: process.execPath, args: ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', worker, '--batch', String(batch), '--seconds', String(seconds)],
    nprocPerNode: n, threadsPerWorker: threads, onOutput: (l) => lines.push(l.text),
  });
  if (!r.ok) throw new Error(`${worker} workers failed:\n${lines.join('\n')}`);
  const last = lines.filter((l) => l.startsWith('{')).at(-1);
  return JSON.parse(last as string) as Record<string, number>;
}

function inceptionStep(): number {
  setNumThreads(2);
  const b = 4;
  const model = new Classifier(new InceptionV3({ generator: new Generator(1) }).toMemoryFormat('channelsLast'), { classes: 1000, inputShape: [3, 299, 299], inputRange: [-1, 1] });
  const opt = new SGD(model.module.parameters(), 0.01, { momentum: 0.9 });
  const x = rand([b, 3, 299, 299]).mul(2).sub(1).contiguous('channelsLast').keep();
  const y = randint(0, 1000, [b]).keep();
  const step = (): void => {
    scope(() => crossEntropy(model.logits(x), y).backward());
    opt.step();
    opt.zeroGrad();
  };
  step();
  const t0 = performance.now();
  step();
  step();
  return ((performance.now() - t0) / 2 / 1000) * (32 / b);
}

async function main(): Promise<void> {
  if (args.worker === 'train') return trainWorker();
  if (args.worker === 'allreduce') return allReduceWorker();
  const one = await runWorkers(1, 2, 'train');
  const two = await runWorkers(2, 1, 'train');
  const ar = await runWorkers(2, 1, 'allreduce');
  const inceptionSeconds = inceptionStep();
  const out = {
    date: new Date().toISOString(), batch,
    oneProcessTwoThreads: one.imagesPerSec, twoProcessesOneThread: two.imagesPerSec, ratio: (two.imagesPerSec as number) / (one.imagesPerSec as number),
    ...ar, inceptionStepSecondsBatch32: inceptionSeconds,
  };
  console.log(`adversarial training, ResNet-20, global batch ${batch}: 1 process x 2 threads ${one.imagesPerSec?.toFixed(0)} img/s, ` +
    `2 processes x 1 thread ${two.imagesPerSec?.toFixed(0)} img/s (ratio ${out.ratio.toFixed(2)})`);
  console.log(`all-reduce, 2 processes on loopback: ResNet-20 gradients (${ar.resnet20Floats} floats) ${ar.resnet20Ms?.toFixed(1)} ms; ` +
    `Inception v3 (${ar['inception-v3Floats']} floats) ${ar['inception-v3Ms']?.toFixed(1)} ms`);
  console.log(`Inception v3 training step on this CPU, batch 32 (from batch 4): ${inceptionSeconds.toFixed(1)} s`);
  if (args.json) writeFileSync(args.json, JSON.stringify(out, null, 2) + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
