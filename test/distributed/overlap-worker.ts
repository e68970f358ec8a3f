/**
 * One rank of the overlap tests (test/distributed/overlap.test.ts), run as
 * `node --import tsx overlap-worker.ts <scenario>` with the torchrun variables
 * set. Prints one `RESULT <json>` line.
 *
 * - `equal`: adversarial training of a small batch-norm ResNet in float32,
 *   a few steps each with reduce-after-backward and with the overlapping
 *   reducer (default buckets; tiny buckets; tiny buckets with synchronised
 *   batch norm, whose backward all-reduces while buckets are in flight),
 *   every variant from the same initial weights and batches; reports whether
 *   each overlapping variant's weights equal the plain one's bit for bit
 *   after every step, and how many buckets left during backward.
 * - `unused`: a model with a parameter the loss never uses and one used on
 *   rank 1 only, through the reducer directly, and a classifier with an
 *   unused layer through the trainer.
 * - `die` / `hang`: rank 1 dies (SIGKILL) or stalls before its backward; rank
 *   0 reports the error finish() raised and how long it took.
 */
import { Generator, cat, noGrad, rand, randint, scope, tensor, type Tensor } from '../../src/index.js';
import { Module, Linear } from '../../src/nn/index.js';
import { DistributedError, initProcessGroup, syncBatchNorm, type ProcessGroup } from '../../src/distributed/index.js';
import { Classifier, buildClassifier } from '../../src/models/index.js';
import { SGD } from '../../src/optim/index.js';
import { AdversarialTrainer, type Collective } from '../../src/training/index.js';

const scenario = process.argv[2] ?? 'equal';
const STEPS = 3;
const M = 8;

function result(value: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`);
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The group as the trainer sees it, with a reducer of the given bucket size whose statistics are recorded. */
function withReducer(pg: ProcessGroup, bucketBytes: number | undefined, sent: number[]): Collective {
  return {
    rank: pg.rank, worldSize: pg.worldSize,
    allReduce: (t, op) => pg.allReduce(t, op),
    allReduceNumbers: (v, op) => pg.allReduceNumbers(v, op),
    broadcast: (t, root) => pg.broadcast(t, root),
    allGather: (t) => pg.allGather(t),
    gradientReducer: (params) => {
      const r = pg.gradientReducer(params, bucketBytes === undefined ? {} : { bucketBytes, firstBucketBytes: bucketBytes });
      return { prepare: (loss) => r.prepare(loss), finish: () => sent.push(r.finish().sentDuringBackward) };
    },
  };
}

function resnet(): Classifier {
  return buildClassifier({
    architecture: 'resnet', options: { depth: 8, width: 0.5, seed: 5 }, classifier: { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] },
  });
}

/** The weights as bytes, one string per step, to compare bit for bit. */
function weightBytes(model: Classifier): Buffer {
  return scope(() => {
    const flat = noGrad(() => cat(model.module.parameters().map((p) => p.detach().flatten())));
    const a = flat.dataSync() as Float32Array;
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  });
}

function train(pg: ProcessGroup, variant: { overlap: boolean; bucketBytes?: number; syncBn?: boolean }): { steps: Buffer[]; sent: number[]; buckets: number } {
  const model = resnet();
  if (variant.syncBn) syncBatchNorm(model.module, pg);
  pg.broadcast([...model.module.stateDict().values()], 0);
  const sent: number[] = [];
  const group = withReducer(pg, variant.bucketBytes, sent);
  const opt = new SGD(model.module.parameters(), 0.05, { momentum: 0.9 });
  const trainer = new AdversarialTrainer(model, opt, { k: M / 2, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 8 } }, { group, overlap: variant.overlap });
  const g = new Generator(100 + pg.rank);
  const steps: Buffer[] = [];
  for (let s = 0; s < STEPS; s++) {
    scope(() => {
      const x = rand([M, 1, 28, 28], { generator: g });
      const y = randint(0, 10, [M], { generator: g });
      trainer.trainStep(x, y);
    });
    steps.push(weightBytes(model));
  }
  const buckets = pg.gradientReducer(model.module.parameters(), variant.bucketBytes === undefined ? {} : { bucketBytes: variant.bucketBytes, firstBucketBytes: variant.bucketBytes }).buckets().length;
  return { steps, sent, buckets };
}

function equal(pg: ProcessGroup): void {
  const plain = train(pg, { overlap: false });
  const plainSync = train(pg, { overlap: false, syncBn: true });
  const variants = {
    default: train(pg, { overlap: true }),
    tiny: train(pg, { overlap: true, bucketBytes: 4096 }),
    tinySyncBn: train(pg, { overlap: true, bucketBytes: 4096, syncBn: true }),
  };
  const out: Record<string, unknown> = { rank: pg.rank };
  for (const [name, v] of Object.entries(variants)) {
    const ref = name === 'tinySyncBn' ? plainSync : plain;
    out[name] = {
      identical: v.steps.map((b, i) => b.equals(ref.steps[i] as Buffer)),
      moved: !v.steps[0]?.equals(v.steps[STEPS - 1] as Buffer),
      sent: v.sent, buckets: v.buckets,
    };
  }
  // The ranks hold one model.
  const last = plain.steps[STEPS - 1] as Buffer;
  const mine = tensor(new Float32Array(last.buffer, last.byteOffset, last.byteLength / 4).slice());
  const all = pg.allGather(mine);
  out.ranksAgree = scope(() => all.every((a) => a.sub(all[0] as Tensor).abs().max().item() === 0));
  result(out);
}

/** A ResNet plus a layer the forward pass never uses (the last parameters, so the first bucket's). */
class WithSpare extends Module {
  readonly net: Module;
  constructor(net: Module) {
    super();
    this.net = this.registerModule('net', net);
    this.registerModule('spare', new Linear(4, 3));
  }
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}

function unused(pg: ProcessGroup): void {
  const out: Record<string, unknown> = { rank: pg.rank };
  // Directly: a and b used on every rank, c never, d on rank 1 only; one bucket per parameter.
  const [a, b, c, d] = [1, 2, 3, 4].map((v) => tensor([v, v], { dtype: 'float32' }).requiresGrad_().keep()) as [Tensor, Tensor, Tensor, Tensor];
  const reducer = pg.gradientReducer([a, b, c, d], { bucketBytes: 1, firstBucketBytes: 1 });
  out.buckets = reducer.buckets();
  for (let step = 0; step < 2; step++) {
    scope(() => {
      const x = tensor([pg.rank + 1, 10 * (pg.rank + 1)], { dtype: 'float32' });
      let loss = a.mul(x).sum().add(b.mul(x).mul(2).sum());
      if (pg.rank === 1) loss = loss.add(d.mul(x).mul(3).sum());
      reducer.prepare(loss);
      loss.backward();
      out[`finish${step}`] = reducer.finish();
    });
    out[`grads${step}`] = [a, b, c, d].map((p) => (p.grad ? p.grad.toArray() : null));
    for (const p of [a, b, c, d]) p.grad = null;
  }
  // Without the loss (no graph search): the unused parameter is found at finish().
  scope(() => {
    const loss = a.mul(2).sum();
    reducer.prepare();
    loss.backward();
    out.noLoss = { finish: reducer.finish(), grads: [a, b, c, d].map((p) => (p.grad ? p.grad.toArray() : null)) };
  });
  // Through the trainer: a classifier with an unused layer trains, and the layer keeps no gradient.
  const base = resnet();
  const model = new Classifier(new WithSpare(base.module), { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] });
  pg.broadcast([...model.module.stateDict().values()], 0);
  const sent: number[] = [];
  const opt = new SGD(model.module.parameters(), 0.05, { momentum: 0.9 });
  const trainer = new AdversarialTrainer(model, opt, { k: 2, lambda: 0.3, method: 'step-ll', eps: { kind: 'fixed', value: 8 } }, { group: withReducer(pg, 4096, sent) });
  const g = new Generator(7 + pg.rank);
  for (let s = 0; s < 2; s++) scope(() => trainer.trainStep(rand([4, 1, 28, 28], { generator: g }), randint(0, 10, [4], { generator: g })));
  out.trainer = { steps: trainer.step, sent, spareGrads: model.module.namedParameters().filter(([n]) => n.startsWith('spare.')).map(([, p]) => p.grad !== null) };
  out.trainerWeights = weightBytes(model).toString('base64');
  result(out);
}

function failure(pg: ProcessGroup, how: 'die' | 'hang'): void {
  const p = tensor(new Float32Array(1 << 16).fill(1)).requiresGrad_().keep();
  const q = tensor(new Float32Array(1 << 16).fill(2)).requiresGrad_().keep();
  const reducer = pg.gradientReducer([p, q], { bucketBytes: 1, firstBucketBytes: 1, timeoutMs: how === 'hang' ? 1000 : 30_000 });
  // One good step first.
  scope(() => {
    const loss = p.mul(q).sum();
    reducer.prepare(loss);
    loss.backward();
    reducer.finish();
  });
  console.log('stepped');
  if (pg.rank === 1) {
    if (how === 'die') process.kill(process.pid, 'SIGKILL');
    sleep(20_000);
    return;
  }
  sleep(200);
  const t0 = Date.now();
  try {
    scope(() => {
      const loss = p.mul(q).sum();
      reducer.prepare(loss);
      loss.backward();
      reducer.finish();
    });
    result({ rank: pg.rank, ok: true });
  } catch (e) {
    const d = e instanceof DistributedError ? e : null;
    result({ rank: pg.rank, ok: false, name: (e as Error).name, message: (e as Error).message, op: d?.op, reason: d?.reason, elapsedMs: Date.now() - t0 });
  }
  process.exit(0);
}

const pg = initProcessGroup({ timeoutMs: 60_000, initTimeoutMs: 30_000 });
if (scenario === 'equal') equal(pg);
else if (scenario === 'unused') unused(pg);
else if (scenario === 'die' || scenario === 'hang') failure(pg, scenario);
else throw new Error(`unknown scenario ${scenario}`);
pg.destroy();
