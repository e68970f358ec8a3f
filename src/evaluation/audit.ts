/**
 * The gradient-masking audit that comes with every evaluation: each check of
 * AutoAttack's own flags ("Reliable evaluation of adversarial robustness with
 * an ensemble of diverse parameter-free attacks", 2020) and of the checklist
 * of "On Evaluating Adversarial Robustness" (2019), with its evidence, plus
 * the label-leak flag of the paper and the one-step masking its sequel
 * ("Ensemble Adversarial Training", 2018) found: a random step before step
 * l.l. beating step l.l. alone. A check is 'fired' (a warning: the numbers
 * may overstate robustness), 'passed', or 'not-run' (the evaluation held no
 * data for it; the evidence says what would run it).
 *
 * Probes run on the first PROBE_IMAGES images of the evaluation: outputs of
 * two identical calls, whether outputs are probabilities, zero input
 * gradients, PGD at eps 255 (the whole range: accuracy must fall to chance),
 * and PGD with five times the steps and two random starts (accuracy should
 * barely move).
 */
import { Generator, type Precision, type Tensor, noGrad, scope } from '../engine/index.js';
import * as A from '../attacks/index.js';
import type { Classifier } from '../models/classifier.js';
import { type Interval, proportion } from './stats.js';
import type { Cell } from './evaluate.js';
import type { SuiteSummary } from './robustness.js';

export type AuditStatus = 'fired' | 'passed' | 'not-run';

export interface AuditCheck {
  id: string;
  /** What the check asks, in one line. */
  question: string;
  status: AuditStatus;
  /** The figures behind the status. */
  evidence: string;
}

export interface AuditResult {
  /** True if any check fired. */
  flagged: boolean;
  checks: AuditCheck[];
}

/** What the probes measured on one batch. */
export interface ProbeResult {
  images: number;
  /** Largest absolute difference between the logits of two identical calls. */
  outputDifference: number;
  /** Whether every output row is non-negative and sums to 1 (probabilities, not logits). */
  probabilityOutputs: boolean;
  /** Images (correctly classified) whose cross-entropy input gradient is exactly zero. */
  zeroGradients: number;
  correct: number;
  classes: number;
  /** PGD (L-inf, 10 steps) at eps 255 on the correctly classified probe images: accuracy. */
  unbounded: { correct: number; n: number };
  /** PGD at the largest eps: 10 steps, and 50 with two random starts. */
  moreSteps: { eps: number; steps: number; few: number; many: number; n: number } | null;
}

/** Transfer results a caller may add (white-box must be at least as strong). */
export interface TransferEvidence {
  source: string;
  method: string;
  eps: number;
  top1: Interval;
}

/** Images the probes run on: few, because they run in every evaluation. */
export const PROBE_IMAGES = 32;

/** Runs the probes on the first PROBE_IMAGES images of a batch (in the model's input range, labels y). */
export function probe(model: Classifier, batch: Tensor, labels: Tensor, opts: { precision?: Precision; largestEps?: number; seed?: number } = {}): ProbeResult {
  return model.inMode(false, () => scope(() => {
    const n = Math.min(batch.shape[0] as number, PROBE_IMAGES);
    const x = batch.narrow(0, 0, n);
    const y = labels.narrow(0, 0, n);
    const first = A.logitsOf(model, x, opts.precision);
    const second = A.logitsOf(model, x, opts.precision);
    const outputDifference = first.sub(second).abs().max().item();
    const rowSums = first.sum(1);
    const probabilityOutputs = first.min().item() >= 0 && rowSums.sub(1).abs().max().item() < 1e-4;
    const correctMask = first.argmax(1).eq(y);
    const correct = correctMask.sum().item();
    const g = A.lossAndGradient(model, x, A.crossEntropyLoss(y), opts.precision).grad;
    const zero = g.flatten(1).abs().max(1).eq(0).logicalAnd(correctMask).sum().item();
    const index = A.indicesWhere(correctMask);
    const xs = x.indexSelect(0, index);
    const ys = y.indexSelect(0, index);
    const accuracyOf = (adv: Tensor): number => noGrad(() => A.logitsOf(model, adv, opts.precision).argmax(1).eq(ys).sum().item());
    const seed = opts.seed ?? 0;
    let unbounded = { correct: 0, n: 0 };
    let moreSteps: ProbeResult['moreSteps'] = null;
    if (correct > 0) {
      unbounded = { correct: accuracyOf(A.pgd(model, xs, { eps: 255, y: ys, steps: 10, generator: new Generator(seed), precision: opts.precision })), n: correct };
      const e = opts.largestEps;
      if (e !== undefined && e > 0) {
        const few = accuracyOf(A.pgd(model, xs, { eps: e, y: ys, steps: 10, generator: new Generator(seed), precision: opts.precision }));
        // Five times the steps at the same total travel, and two random starts: an image counts as robust only if both fail.
        const many = scope(() => {
          const runs = [seed + 1, seed + 2].map((s) => A.pgd(model, xs, { eps: e, y: ys, steps: 50, alpha: (2.5 * e) / 50, generator: new Generator(s), precision: opts.precision }));
          const robust = runs.map((adv) => A.logitsOf(model, adv, opts.precision).argmax(1).eq(ys));
          return (robust[0] as Tensor).logicalAnd(robust[1] as Tensor).sum().item();
        });
        moreSteps = { eps: e, steps: 10, few, many, n: correct };
      }
    }
    return { images: n, outputDifference, probabilityOutputs, zeroGradients: zero, correct, classes: model.classes, unbounded, moreSteps };
  }));
}

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
const show = (i: Interval): string => `${pct(i.value)} [${pct(i.low)}, ${pct(i.high)}]`;

/** Strictly below beyond both intervals. */
const below = (a: Interval, b: Interval): boolean => a.high < b.low;

/** The audit of an evaluation's results, its probes and any transfer results. */
export function audit(cells: readonly Cell[], suite: SuiteSummary | undefined, probes: ProbeResult | undefined, transfer: readonly TransferEvidence[] = []): AuditResult {
  const checks: AuditCheck[] = [];
  const add = (id: string, question: string, status: AuditStatus, evidence: string): void => void checks.push({ id, question, status, evidence });
  const noProbe = 'no probe ran (evaluation without the audit probes)';
  const kindOf = (m: string): A.AttackKind => A.attackSpec(m).kind;
  const epsList = [...new Set(cells.map((c) => c.eps))].sort((a, b) => a - b);
  const at = (e: number, pick: (c: Cell) => boolean): Cell[] => cells.filter((c) => c.eps === e && pick(c));
  const strongest = (list: Cell[]): Cell | undefined => list.reduce<Cell | undefined>((s, c) => (s === undefined || c.top1.value < s.top1.value ? c : s), undefined);

  // ---- AutoAttack's flags ----
  if (probes) {
    add('randomized', 'Do two identical calls give the same outputs?', probes.outputDifference > 0 ? 'fired' : 'passed',
      `largest logit difference between two identical calls on ${probes.images} images: ${probes.outputDifference.toPrecision(3)}${probes.outputDifference > 0 ? ' (a randomised model: evaluate it with the rand suite, expectation over transformation)' : ''}`);
    add('softmax-output', 'Does the model output logits rather than probabilities?', probes.probabilityOutputs ? 'fired' : 'passed',
      probes.probabilityOutputs ? 'every output row is non-negative and sums to 1: the model ends in a softmax, which flattens the losses attacks follow; attack the logits' : 'outputs are not probability rows');
    add('zero-gradients', 'Do the correctly classified images have non-zero input gradients?', probes.zeroGradients > 0 ? 'fired' : 'passed',
      `${probes.zeroGradients} of ${probes.correct} correctly classified probe images have an input gradient of exactly zero`);
  } else {
    for (const id of ['randomized', 'softmax-output', 'zero-gradients']) add(id, `AutoAttack's ${id} check`, 'not-run', noProbe);
  }
  const squareRow = suite?.rows.map((r) => ({ eps: r.eps, square: r.attacks.find((a) => a.attack === 'square') })).filter((r) => r.square && r.square.attacked > 0);
  if (squareRow && squareRow.length) {
    const hits = squareRow.filter((r) => (r.square?.broken ?? 0) > 0);
    add('query-beats-white-box', 'Does the score-based Square find no point the white-box attacks missed?', hits.length ? 'fired' : 'passed',
      squareRow.map((r) => `eps ${r.eps}: Square broke ${r.square?.broken} of the ${r.square?.attacked} images the white-box attacks left`).join('; '));
  } else {
    add('query-beats-white-box', 'Does the score-based Square find no point the white-box attacks missed?', 'not-run', 'no suite with Square after white-box attacks ran');
  }

  // ---- the checklist ----
  const iterativeVsOne: string[] = [];
  const whiteVsBlack: string[] = [];
  let comparedIterative = false;
  let comparedBlack = false;
  for (const e of epsList) {
    const one = strongest(at(e, (c) => kindOf(c.method) === 'one-step' && A.attackSpec(c.method).gradients));
    const iterative = strongest(at(e, (c) => kindOf(c.method) === 'iterative'));
    if (one && iterative) {
      comparedIterative = true;
      if (below(one.top1, iterative.top1)) iterativeVsOne.push(`eps ${e}: ${one.method} ${show(one.top1)} below ${iterative.method} ${show(iterative.top1)}`);
    }
    const white = strongest(at(e, (c) => A.attackSpec(c.method).gradients && kindOf(c.method) !== 'query'));
    const black = [...at(e, (c) => kindOf(c.method) === 'query'), ...transfer.filter((t) => t.eps === e).map((t) => ({ method: `${t.method} from ${t.source}`, top1: t.top1 }))];
    for (const b of black) {
      if (!white) continue;
      comparedBlack = true;
      if (below(b.top1, white.top1)) whiteVsBlack.push(`eps ${e}: ${b.method} ${show(b.top1)} below white-box ${white.method} ${show(white.top1)}`);
    }
  }
  add('iterative-weaker', 'Are iterative attacks at least as strong as one-step ones?', comparedIterative ? (iterativeVsOne.length ? 'fired' : 'passed') : 'not-run',
    comparedIterative ? (iterativeVsOne.join('; ') || 'at every eps the strongest iterative attack is at least as strong as the strongest one-step gradient attack') : 'needs a one-step gradient method and an iterative method at one eps');
  add('black-box-stronger', 'Are white-box attacks at least as strong as transfer and query-only ones?', comparedBlack ? (whiteVsBlack.length ? 'fired' : 'passed') : 'not-run',
    comparedBlack ? (whiteVsBlack.join('; ') || 'no transfer or query-only attack beats the strongest white-box attack beyond the intervals') : 'needs a query-only method or transfer results beside a white-box method');

  const rises: string[] = [];
  // Each method's accuracies over eps, and the suite's robust accuracies.
  const curves = [...new Set(cells.map((c) => c.method))].map((m) => ({
    name: m, points: cells.filter((c) => c.method === m).map((c) => ({ eps: c.eps, accuracy: c.top1 })),
  }));
  if (suite) curves.push({ name: `suite ${suite.name}`, points: suite.rows.map((r) => ({ eps: r.eps, accuracy: r.robustAccuracy })) });
  for (const curve of curves) {
    const row = [...curve.points].sort((a, b) => a.eps - b.eps);
    for (let i = 1; i < row.length; i++) {
      const lo = row[i - 1] as (typeof row)[number];
      const hi = row[i] as (typeof row)[number];
      if (below(lo.accuracy, hi.accuracy)) rises.push(`${curve.name}: ${show(lo.accuracy)} at eps ${lo.eps}, ${show(hi.accuracy)} at eps ${hi.eps}`);
    }
  }
  const severalEps = curves.some((c) => c.points.length > 1);
  add('accuracy-rises-with-eps', 'Does accuracy fall (or stay) as eps grows?', severalEps ? (rises.length ? 'fired' : 'passed') : 'not-run',
    severalEps ? (rises.join('; ') || `every method's accuracy${suite ? ' and the suite\'s robust accuracy' : ''} is non-increasing in eps`) : 'needs two or more eps values');

  if (probes && probes.unbounded.n > 0) {
    const acc = proportion(probes.unbounded.correct, probes.unbounded.n);
    const chance = 1 / probes.classes;
    add('unbounded-not-chance', 'Does an attack with eps 255 (the whole range) bring accuracy to chance?', acc.low > chance ? 'fired' : 'passed',
      `PGD-10 at eps 255 on ${probes.unbounded.n} correctly classified probe images: ${show(acc)} against chance ${pct(chance)}`);
  } else {
    add('unbounded-not-chance', 'Does an attack with eps 255 (the whole range) bring accuracy to chance?', 'not-run', probes ? 'no correctly classified probe image' : noProbe);
  }
  if (probes?.moreSteps) {
    const s = probes.moreSteps;
    const few = proportion(s.few, s.n);
    const many = proportion(s.many, s.n);
    add('more-steps-help', 'Do more steps and restarts change little?', below(many, few) ? 'fired' : 'passed',
      `PGD at eps ${s.eps} on ${s.n} probe images: ${show(few)} with ${s.steps} steps, ${show(many)} with ${s.steps * 5} steps and two random starts`);
  } else {
    add('more-steps-help', 'Do more steps and restarts change little?', 'not-run', probes ? 'needs a positive eps and a correctly classified probe image' : noProbe);
  }

  // ---- the paper's and its sequel's flags ----
  const leaks = cells.filter((c) => c.labelLeaking);
  add('label-leaking', 'Does no true-label attack raise accuracy above clean?', leaks.length ? 'fired' : 'passed',
    leaks.map((c) => `${c.method} at eps ${c.eps}: ${show(c.top1)}, above clean by ${pct(c.difference.low)} to ${pct(c.difference.high)}`).join('; ') || 'no attack that uses the true label raised accuracy above clean');
  const masking: string[] = [];
  let comparedMasking = false;
  for (const e of epsList) {
    const step = at(e, (c) => c.method === 'step-ll')[0];
    const random = at(e, (c) => c.method === 'r-step-ll')[0];
    if (!step || !random) continue;
    comparedMasking = true;
    if (below(random.top1, step.top1)) masking.push(`eps ${e}: r-step-ll ${show(random.top1)} below step-ll ${show(step.top1)}`);
  }
  add('random-step-stronger', 'Is step l.l. at least as strong as a random step followed by step l.l.?', comparedMasking ? (masking.length ? 'fired' : 'passed') : 'not-run',
    comparedMasking ? (masking.join('; ') || 'R+Step-LL never beats step l.l. beyond the intervals') : 'needs step-ll and r-step-ll at one eps');

  return { flagged: checks.some((c) => c.status === 'fired'), checks };
}
