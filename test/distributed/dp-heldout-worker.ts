/**
 * One rank of the data-parallel run test: runTraining of a batch-norm ResNet
 * WITHOUT synchronised batch norm, so each rank's batch statistics differ,
 * with a held-out evaluation every 2 steps sharded over the group. After the
 * run every rank prints how far its buffers are from the other ranks', its
 * held-out results and, on rank 0, the same evaluation of its own model alone
 * on all the images: `RESULT <json>` lines the test compares.
 *
 *   dp-heldout-worker.ts [--checkpoint FILE] [--steps N] [--resume]
 *
 * With --checkpoint the run keeps its checkpoint there (else in a temporary
 * folder); --steps stops after N steps in all; --resume continues from FILE.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cat, noGrad, scope } from '../../src/index.js';
import { initProcessGroup } from '../../src/distributed/index.js';
import { TensorDataset, loadMnist } from '../../src/data/index.js';
import { type EvalResult, evaluate } from '../../src/evaluation/index.js';
import { type ModelSpec, buildClassifier } from '../../src/models/index.js';
import { type HeldOut, runTraining } from '../../src/training/index.js';

const { values: args } = parseArgs({ options: { checkpoint: { type: 'string' }, steps: { type: 'string' }, resume: { type: 'boolean' } }, strict: true });
const pg = initProcessGroup({ timeoutMs: 60_000 });
const spec: ModelSpec = { architecture: 'resnet', options: { depth: 8, width: 0.5, seed: 3 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] } };
const model = buildClassifier(spec);
const train = TensorDataset.from(loadMnist('train', { limit: 16 * 6 }));
const test = TensorDataset.from(loadMnist('test', { limit: 50 }));
const grid = { methods: ['step-ll' as const], eps: [16], precision: 'fp32' as const };
const summary = (r: EvalResult): HeldOut => ({ clean: r.clean.top1.value, adversarial: r.cells[0]!.top1.value, what: 'step-ll at eps 16' });
const heldOuts: HeldOut[] = [];
const dir = mkdtempSync(join(tmpdir(), 'advml-dp-heldout-'));
try {
  await runTraining({
    model, train, checkpoint: args.checkpoint ?? join(dir, 'c.safetensors'), resume: args.resume, group: pg,
    config: {
      batchSize: 16 / pg.worldSize, epochs: 1, maxSteps: args.steps === undefined ? undefined : Number(args.steps), seed: 4, evalEvery: 2, checkpointEvery: 0, precision: 'fp32',
      adversarial: { k: 8 / pg.worldSize, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 16 } },
      optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    },
    heldOut: async (m, group) => summary(await evaluate(m, test, { ...grid, group })),
    onEvent: (e) => {
      if (e.type === 'eval') heldOuts.push({ clean: e.clean, adversarial: e.adversarial, what: e.what });
    },
  });
  const bufferSpread = noGrad(() => scope(() => {
    const all = pg.allGather(cat(model.module.namedBuffers().map(([, b]) => b.to('float64').flatten())));
    return Math.max(...all.map((a) => a.sub(all[0]!).abs().max().item()));
  }));
  const alone = pg.rank === 0 ? summary(await evaluate(model, test, grid)) : null;
  process.stdout.write(`RESULT ${JSON.stringify({ rank: pg.rank, bufferSpread, heldOuts, alone })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  pg.destroy();
}
