/**
 * One rank of the data-parallel equivalence test: a few steps of adversarial
 * training (step l.l., k = M/2, lambda 0.3) of a batch-norm ResNet in float64
 * on MNIST, each rank holding M / worldSize examples of every global batch,
 * with synchronised batch norm. After every step the ranks compare their
 * weights; rank 0 writes the final weights to the file named by argv[2].
 */
import { cat, noGrad, scope, tensor } from '../../src/index.js';
import { initProcessGroup, syncBatchNorm } from '../../src/distributed/index.js';
import { loadMnist } from '../../src/data/index.js';
import { saveSafetensorsSync } from '../../src/io/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';
import { AdversarialTrainer } from '../../src/training/index.js';

const [out] = process.argv.slice(2);
const M = 16;
const K = 8;
const STEPS = 4;
const pg = initProcessGroup({ timeoutMs: 60_000 });
const W = pg.worldSize;
const model = buildClassifier({
  architecture: 'resnet', options: { depth: 8, width: 0.5, seed: 5 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] },
});
model.module.toDtype('float64');
syncBatchNorm(model.module, pg);
pg.broadcast([...model.module.stateDict().values()], 0);
const data = loadMnist('train', { limit: M * STEPS });
const images = data.images.to('float64').keep();
const opt = new SGD(model.module.parameters(), 0.05, { momentum: 0.9 });
const trainer = new AdversarialTrainer(model, opt, { k: K / W, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 8 } }, { group: pg });
const losses: number[] = [];
for (let s = 0; s < STEPS; s++) {
  // This rank's part of global batch s: positions rank, rank + W, ... (the loader's sharding),
  // so the first K / W of each rank are together the first K of the batch.
  const idx = tensor(BigInt64Array.from({ length: M / W }, (_, j) => BigInt(s * M + pg.rank + j * W)));
  const x = images.indexSelect(0, idx);
  const y = data.labels.indexSelect(0, idx);
  losses.push(trainer.trainStep(x, y).loss);
  for (const t of [idx, x, y]) t.dispose();
  scope(() => {
    const flat = noGrad(() => cat(model.module.parameters().map((p) => p.detach().flatten())));
    const all = pg.allGather(flat);
    const worst = Math.max(...all.map((a) => a.sub(all[0] as typeof a).abs().max().item()));
    if (worst !== 0) throw new Error(`step ${s}: rank ${pg.rank} sees weights differing across ranks by ${worst}`);
  });
}
if (pg.rank === 0 && out) saveSafetensorsSync(out, model.module.stateDict(), { losses: JSON.stringify(losses) });
console.log(`rank ${pg.rank}: ${STEPS} steps, identical weights on every rank after each`);
pg.destroy();
