/**
 * The hardening recipes against closed forms on the linear classifier of the
 * attack tests (its input gradients and softmax in plain float64 JavaScript):
 * each recipe's reported loss equals its formula by hand at the adversarial
 * point it made, RS-FGSM and TRADES' inner maximisation follow their
 * definitions step for step, ensemble training draws its sources uniformly
 * from the attack stream and never updates them, and the overfitting guard
 * decides as documented.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type Tensor, rand, randint, randn, scope, tensor } from '../../src/index.js';
import { rsFgsm, pgd } from '../../src/attacks/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdversarialTrainer, OverfitGuard, TRADES_DEFAULTS, type TrainEvent, recipe, runTraining, tradesAdversarial, tradesLoss } from '../../src/training/index.js';
import { TensorDataset, loadMnist } from '../../src/data/index.js';
import { disposeCheckpoint, loadCheckpointSync } from '../../src/io/index.js';
import { buildClassifier } from '../../src/models/index.js';
import { MNIST_SPEC } from '../helpers/checkpoints.js';
import { SGD } from '../../src/optim/index.js';
import { B, C, D, W, backLogits, interiorBatch, linearClassifier, logits, projectLinf, rows, sign, softmax, toTensor } from '../attacks/linear-model.js';

const X = interiorBatch(6);
const Y = [0, 1, 2, 3, 1, 2];
const labels = (): Tensor => tensor(Y, { dtype: 'int64' });
const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const ce = (x: number[], y: number): number => -Math.log(softmax(logits(x))[y] as number);
/** KL(p(x) || p(x')) by hand. */
const kl = (x: number[], xAdv: number[]): number => {
  const p = softmax(logits(x));
  const q = softmax(logits(xAdv));
  return p.reduce((s, pc, c) => s + pc * (Math.log(pc) - Math.log(q[c] as number)), 0);
};
const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const flat = (t: Tensor): number[] => Array.from(t.to('float64').dataSync() as Float64Array);

test('TRADES loss = mean CE(clean) + beta mean KL(clean || adversarial), by hand', () => {
  const clean = tensor([[1, 0, -1], [0.5, 2, 0], [0, 0, 0]], { dtype: 'float64' });
  const adv = tensor([[0, 1, -1], [2, 0.5, 0]], { dtype: 'float64' });
  const y = tensor([0, 1, 2], { dtype: 'int64' });
  const p = [[1, 0, -1], [0.5, 2, 0], [0, 0, 0]].map(softmax);
  const q = [[0, 1, -1], [2, 0.5, 0]].map(softmax);
  const ceHand = mean([0, 1, 2].map((i) => -Math.log(p[i]![i]!)));
  const klHand = mean([0, 1].map((i) => p[i]!.reduce((s, pc, c) => s + pc * (Math.log(pc) - Math.log(q[i]![c]!)), 0)));
  const { loss, kl: k } = tradesLoss(clean, adv, y, 6);
  close(loss.item(), ceHand + 6 * klHand, 1e-12, 'loss');
  close(k!.item(), klHand, 1e-12, 'KL');
  close(tradesLoss(clean, null, y, 6).loss.item(), ceHand, 1e-12, 'without adversarial part');
});

test('RS-FGSM: a uniform start in the ball, then one projected step of 1.25 eps along sign(grad)', () => {
  const model = linearClassifier();
  const x = toTensor(X);
  const eps = [4, 8, 12, 16, 20, 24];
  const adv = rows(rsFgsm(model, x, { eps, y: labels(), generator: new Generator(5) }));
  const u = flat(rand([6, ...x.shape.slice(1)], { generator: new Generator(5), dtype: 'float64' }));
  X.forEach((xi, k) => {
    const e = (eps[k] as number) / 255;
    const start = projectLinf(xi, xi.map((v, i) => v + e * (2 * (u[k * D + i] as number) - 1)), e);
    const g = backLogits(softmax(logits(start)).map((p, c) => p - (c === Y[k] ? 1 : 0)));
    const expected = projectLinf(xi, start.map((v, i) => v + 1.25 * e * (sign(g)[i] as number)), e);
    expected.forEach((v, i) => close(adv[k]![i]!, v, 1e-12, `image ${k} pixel ${i}`));
  });
  // Without the random start it is FGSM: every pixel moves by eps (the step is clipped to the ball).
  const plain = rows(rsFgsm(model, x, { eps: 8, y: labels(), randomStart: false }));
  X.forEach((xi, k) => plain[k]!.forEach((v, i) => close(Math.abs(v - xi[i]!), 8 / 255, 1e-12, `FGSM image ${k}`)));
  assert.throws(() => rsFgsm(model, x, { eps: 8, y: labels(), steps: 3 }), /one step/);
  model.dispose();
});

test('TRADES\' inner maximisation: from x + 0.001 N(0, I), sign steps up KL(p(x) || p(x\')), projected', () => {
  const model = linearClassifier();
  const x = toTensor(X);
  const eps = [8, 16, 8, 16, 8, 16];
  const steps = 5;
  const adv = rows(tradesAdversarial(model, x, { eps, steps, generator: new Generator(9) }));
  const n = flat(randn([6, ...x.shape.slice(1)], { generator: new Generator(9), dtype: 'float64' }));
  X.forEach((xi, k) => {
    const e = (eps[k] as number) / 255;
    const p = softmax(logits(xi));
    let cur = projectLinf(xi, xi.map((v, i) => v + TRADES_DEFAULTS.start * (n[k * D + i] as number)), e);
    for (let s = 0; s < steps; s++) {
      // d KL(p || q(x')) / dx' = W^T (q - p).
      const g = backLogits(softmax(logits(cur)).map((q, c) => q - (p[c] as number)));
      cur = projectLinf(xi, cur.map((v, i) => v + TRADES_DEFAULTS.stepOfEps * e * (sign(g)[i] as number)), e);
    }
    cur.forEach((v, i) => close(adv[k]![i]!, v, 1e-12, `image ${k} pixel ${i}`));
    assert.ok(kl(xi, adv[k]!) > kl(xi, projectLinf(xi, xi.map((v, i) => v + TRADES_DEFAULTS.start * (n[k * D + i] as number)), e)), 'the KL rose');
  });
  model.dispose();
});

/** A trainer on the linear model with learning rate 0, so a replay of its streams sees the same weights. */
function frozenTrainer(config: ConstructorParameters<typeof AdversarialTrainer>[2]) {
  const model = linearClassifier();
  const trainer = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0), config, { seed: 4 });
  return { model, trainer };
}

/** Runs one step, then replays its streams to get the adversarial part it trained on. */
function stepAndReplay(trainer: AdversarialTrainer, k: number): { loss: number; adv: number[][]; stats: ReturnType<AdversarialTrainer['trainStep']> } {
  const x = toTensor(X);
  const eps = trainer.epsGenerator.getState();
  const attack = trainer.attackGenerator.getState();
  const stats = trainer.trainStep(x, labels());
  trainer.epsGenerator.setState(eps);
  trainer.attackGenerator.setState(attack);
  const source = trainer.chooseSource();
  const adv = rows(trainer.makeAdversarial(x.narrow(0, 0, k), labels().narrow(0, 0, k), source));
  return { loss: stats.loss, adv, stats };
}

test('PGD-AT and fast AT: the loss is the mean cross-entropy on the adversarial examples (k = m)', () => {
  for (const [name, method] of [['pgd-at', 'pgd'], ['fast-at', 'rs-fgsm']] as const) {
    const { model, trainer } = frozenTrainer({ recipe: name, k: 6, eps: { kind: 'fixed', value: 16 }, attackSteps: name === 'pgd-at' ? 7 : undefined });
    assert.equal(trainer.method, method);
    assert.equal(trainer.lambda, recipe(name).lambda);
    const { loss, adv, stats } = stepAndReplay(trainer, 6);
    close(loss, mean(adv.map((a, i) => ce(a, Y[i] as number))), 1e-12, `${name} loss`);
    close(stats.adversarialLoss!, loss, 1e-12, `${name} adversarial loss`);
    assert.equal(stats.cleanAccuracy, null);
    // The replayed part is the attack itself, at this eps, within the ball.
    adv.forEach((a, k) => a.forEach((v, i) => assert.ok(Math.abs(v - X[k]![i]!) <= 16 / 255 + 1e-12)));
    model.dispose();
  }
  // The PGD replay is the registered PGD with the trainer's steps.
  const { model, trainer } = frozenTrainer({ recipe: 'pgd-at', k: 6, eps: { kind: 'fixed', value: 16 }, attackSteps: 7, attackStepSize: 3 });
  const state = trainer.attackGenerator.getState();
  const viaTrainer = rows(trainer.makeAdversarial(toTensor(X), labels()));
  const g = new Generator(0);
  g.setState(state);
  const direct = rows(pgd(model, toTensor(X), { eps: 16, y: labels(), steps: 7, alpha: 3, generator: g }));
  assert.deepEqual(viaTrainer, direct);
  model.dispose();
});

test('TRADES in the trainer: the reported loss is the formula at the point it found; k of m get the KL term', () => {
  const { model, trainer } = frozenTrainer({ recipe: 'trades', k: 4, beta: 2, eps: { kind: 'fixed', value: 12 }, attackSteps: 3 });
  const { loss, adv, stats } = stepAndReplay(trainer, 4);
  const klMean = mean(adv.map((a, i) => kl(X[i]!, a)));
  close(loss, mean(X.map((x, i) => ce(x, Y[i] as number))) + 2 * klMean, 1e-12, 'TRADES loss');
  close(stats.adversarialLoss!, klMean, 1e-12, 'mean KL');
  assert.ok(stats.cleanAccuracy !== null && stats.adversarialAccuracy !== null);
  assert.throws(() => frozenTrainer({ recipe: 'trades', k: 4, method: 'pgd' }), /takes no method/);
  assert.throws(() => frozenTrainer({ recipe: 'pgd-at', k: 4, beta: 1 }), /beta weighs TRADES/);
  model.dispose();
});

test('ensemble: each batch\'s source drawn uniformly from the sources and the current model; sources never updated', () => {
  // Two static sources, each another linear model: scaled and shifted weights.
  const source = (scale: number, name: string) => {
    const m = linearClassifier();
    scope(() => m.module.loadStateDict({ '1.weight': tensor(W.map((r) => r.map((v) => v * scale)), { dtype: 'float64' }), '1.bias': tensor(B, { dtype: 'float64' }) }));
    return { name, model: m };
  };
  const sources = [source(-1, 'a'), source(0.5, 'b')];
  const before = sources.map((s) => [...s.model.module.stateDict()].map(([k, v]) => [k, flat(v)] as const));
  const model = linearClassifier();
  const trainer = new AdversarialTrainer(model, new SGD(model.module.parameters(), 0.5), { recipe: 'ensemble', k: 3, method: 'fgsm', eps: { kind: 'fixed', value: 8 }, sources: ['a', 'b'] }, { seed: 2, sources });
  // The documented draw: randint(0, sources + 1) from the attack stream, the last index the current model.
  const g = new Generator(0);
  g.setState(trainer.attackGenerator.getState());
  const seen: string[] = [];
  for (let s = 0; s < 60; s++) {
    const i = randint(0, 3, [1], { generator: g }).item();
    const stats = trainer.trainStep(toTensor(X), labels());
    assert.equal(stats.source, ['a', 'b', 'current'][i]);
    seen.push(stats.source!);
  }
  for (const name of ['a', 'b', 'current']) {
    const n = seen.filter((s) => s === name).length;
    assert.ok(n >= 10 && n <= 30, `${name} drawn ${n} times of 60`);
  }
  sources.forEach((s, j) => {
    assert.equal(s.model.module.training, false, 'sources stay in inference mode');
    for (const [k, v] of s.model.module.stateDict()) assert.deepEqual(flat(v), before[j]!.find(([n]) => n === k)![1], `source ${s.name} ${k} changed`);
    for (const p of s.model.module.parameters()) assert.equal(p.grad, null, 'no gradient reaches a source');
  });
  // The adversarial examples of source a are FGSM on a: along -sign(grad of the model), since a's weights are negated.
  const onA = rows(trainer.makeAdversarial(toTensor(X).narrow(0, 0, 3), labels().narrow(0, 0, 3), sources[0]!));
  X.slice(0, 3).forEach((xi, k) => {
    const ga = backLogits(softmax(W.map((w, c) => -w.reduce((s, wi, i) => s + wi * xi[i]!, 0) + B[c]!)).map((p, c) => p - (c === Y[k] ? 1 : 0))).map((v) => -v);
    projectLinf(xi, xi.map((v, i) => v + (8 / 255) * Math.sign(ga[i]!)), 8 / 255).forEach((v, i) => close(onA[k]![i]!, v, 1e-12, `source a image ${k}`));
  });
  assert.throws(() => new AdversarialTrainer(model, new SGD(model.module.parameters(), 0), { recipe: 'ensemble', k: 3 }), /at least one static source/);
  assert.throws(() => new AdversarialTrainer(model, new SGD(model.module.parameters(), 0), { k: 3 }, { sources }), /for ensemble adversarial training/);
  for (const s of sources) s.model.dispose();
  model.dispose();
  assert.equal(C, 4);
});

test('the overfitting guard: a fall of more than drop below the best is a collapse; the best survives a resume', () => {
  const g = new OverfitGuard({});
  assert.deepEqual([0.3, 0.5, 0.45, 0.31, 0.29].map((r, i) => g.check(i, r).collapsed), [false, false, false, false, true]);
  const h = new OverfitGuard({ drop: 0.1, action: 'rollback' });
  h.check(1, 0.6);
  const resumed = new OverfitGuard({ drop: 0.1 });
  resumed.restore(h.state());
  assert.equal(resumed.check(2, 0.49).collapsed, true);
  assert.deepEqual({ best: resumed.check(3, 0.55).best }, { best: 0.6 });
  // The collapses seen are kept too: a second resume still knows of the one at step 2.
  const again = new OverfitGuard({ drop: 0.1 });
  again.restore(JSON.parse(JSON.stringify(resumed.state())));
  assert.equal(again.check(4, 0.3).collapsed, true);
  assert.deepEqual(again.collapses.map((v) => [v.step, v.robust, v.best]), [[2, 0.49, 0.6], [4, 0.3, 0.6]]);
  assert.deepEqual(g.collapses.map((v) => v.step), [4]);
  assert.throws(() => new OverfitGuard({ drop: 0 }), /guard drop/);
  assert.throws(() => new OverfitGuard({ action: 'halt' as 'stop' }), /guard action/);
});

test('the guard in a run: with stop, a scripted collapse ends the run at that evaluation with a checkpoint that resumes with the best so far', async () => {
  const train = TensorDataset.from(loadMnist('train', { limit: 256 }));
  const dir = mkdtempSync(join(tmpdir(), 'advml-guard-'));
  const checkpoint = join(dir, 'checkpoint.safetensors');
  // Held-out robust accuracies by step: 0.5 at 2, 0.7 at 4, 0.45 at 6 (0.25 below the best: a collapse).
  const scripted: Record<number, number> = { 2: 0.5, 4: 0.7, 6: 0.45, 8: 0.6 };
  const run = async (resume: boolean) => {
    const model = buildClassifier(MNIST_SPEC);
    const events: TrainEvent[] = [];
    let step = 0;
    const r = await runTraining({
      model, train, checkpoint, resume,
      config: { batchSize: 32, epochs: 1, maxSteps: 8, seed: 1, evalEvery: 2, adversarial: { recipe: 'fast-at', k: 32, eps: { kind: 'fixed', value: 8 } }, optimizer: { name: 'sgd', lr: 0.01 }, guard: { action: 'stop' } },
      heldOut: async () => ({ clean: 1, adversarial: scripted[step] ?? 0, what: 'scripted' }),
      onEvent: (e) => {
        if (e.type === 'step') step = e.step;
        events.push(e);
      },
    });
    model.dispose();
    return { r, guards: events.filter((e) => e.type === 'guard') };
  };
  const first = await run(false);
  assert.equal(first.r.stopped, true);
  assert.deepEqual(first.r.collapse, { step: 6, robust: 0.45, best: 0.7, bestStep: 4, collapsed: true });
  assert.deepEqual(first.guards.map((g) => g.type === 'guard' && g.collapsed), [false, false, true]);
  const saved = loadCheckpointSync(checkpoint);
  assert.equal(saved.step, 6);
  disposeCheckpoint(saved);
  // Resumed, the guard remembers 0.7: 0.6 at step 8 is within 0.2 of it, and the run ends normally.
  const second = await run(true);
  assert.equal(second.r.collapse, null);
  assert.deepEqual(second.guards.map((g) => g.type === 'guard' && [g.step, g.best, g.collapsed]), [[8, 0.7, false]]);
  train.dispose();
});
