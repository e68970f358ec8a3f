/**
 * The one registry of attacks. Every method declares its name, the norms it
 * works in, where its label comes from, its kind and the options it takes;
 * the CLI, evaluation, training and the server ask this registry, and
 * `attackGrid` is the one place that turns (methods, eps list) into
 * adversarial batches: one backward pass for all eps of the one-step
 * methods, one search for all eps of the minimal-perturbation methods, one
 * run per eps for the rest.
 */
import { Generator, type Tensor, scope } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type AttackOptions, type Norm, checkInputs, epsTensor } from './common.js';
export type { AttackProgress } from './common.js';
import { type LabelSource } from './labels.js';
import { type OneStepMethod, oneStepGrid, runOneStep } from './one-step.js';
import { FGSM } from './fgsm.js';
import { FAST_GRADIENT_L1, FAST_GRADIENT_L2 } from './fast-gradient.js';
import { STEP_LL } from './step-ll.js';
import { STEP_RND } from './step-rnd.js';
import { FAST_PREDICTED } from './fast-predicted.js';
import { FAST_ENTROPY } from './fast-entropy.js';
import { KL } from './kl.js';
import { RANDOM_NORMAL, RANDOM_SIGN } from './random-noise.js';
import { R_STEP_LL } from './r-step-ll.js';
import { basicIter, iterLL, miFgsm, pgd, rsFgsm } from './iterative.js';
import { keepWithinEps } from './batch.js';
import { APGD_CE, APGD_DLR, APGD_T } from './apgd.js';
import { FAB, FAB_T } from './fab.js';
import { HOP_SKIP_JUMP } from './hop-skip-jump.js';
import { SQUARE } from './square.js';
import { DEEPFOOL } from './deepfool.js';
import { CW_L2 } from './cw.js';

/**
 * - one-step: one gradient (or random) step of size eps;
 * - iterative: many gradient steps inside the eps ball;
 * - minimal: searches the smallest perturbation that changes the decision (any eps reads off its size);
 * - query: needs only the model's outputs (scores or labels), no gradients.
 */
export type AttackKind = 'one-step' | 'iterative' | 'minimal' | 'query';

export const ATTACK_KINDS: readonly AttackKind[] = ['one-step', 'iterative', 'minimal', 'query'];

/** The options any registered attack may take; each spec lists those it reads. */
export interface RunOptions extends AttackOptions {
  /** Label source override (methods whose label is not 'none'). */
  label?: LabelSource;
  /** Norm of the ball (or of the minimal perturbation), one of the spec's norms. */
  norm?: Norm;
  /** Iterations. */
  steps?: number;
  /** Step size of an iterative method, pixel units (default: the method's own). */
  stepSize?: number;
  /** Whether an iterative method starts from a uniform random point of the ball (default: the method's own). */
  randomStart?: boolean;
  /** Random restarts. */
  restarts?: number;
  /** Query budget of a query-only attack. */
  queries?: number;
  /** Target classes of a targeted attack (the most likely other classes). */
  targets?: number;
  /** Samples per gradient for expectation over transformation (randomised models). */
  eot?: number;
  /** Per-image early exit (default true): a broken image leaves the batch and keeps its result. */
  earlyExit?: boolean;
}

export type RunOption = Exclude<keyof RunOptions, keyof AttackOptions | 'onProgress' | 'earlyExit'>;

/** A minimal-perturbation search's answer. */
export interface MinimalResult {
  /** The adversarial images found; an image where the search failed is returned clean. */
  adversarial: Tensor;
  /** Size of each image's perturbation in pixel units and in the search's norm; Infinity where it failed, 0 where the clean image is already misclassified. */
  norms: Float64Array;
}

export interface AttackSpec {
  name: string;
  /** One line for help texts and the page. */
  summary: string;
  kind: AttackKind;
  /** The norms it works in; the first is the default. */
  norms: readonly Norm[];
  /** Where its label comes from ('none': no label, e.g. entropy or random noise; 'targets': the top other classes). */
  label: LabelSource | 'none' | 'targets';
  /** Whether it needs input gradients (false: only the model's outputs). */
  gradients: boolean;
  /** The options of RunOptions it reads. */
  options: readonly RunOption[];
  /** Published defaults of its options, as shown in help texts. */
  defaults?: Partial<Record<RunOption, number | string>>;
  /** Adversarial images for one eps (per image): inside the eps ball and the input range. */
  run(model: Classifier, x: Tensor, opts: RunOptions): Tensor;
  /** Minimal-perturbation methods: the search itself, independent of eps. */
  minimal?(model: Classifier, x: Tensor, opts: Omit<RunOptions, 'eps'>): MinimalResult;
  /** One-step methods: the description the many-eps grid uses. */
  oneStep?: OneStepMethod;
}

const ONE_STEP_SUMMARIES: Record<string, [string, Norm, LabelSource | 'none']> = {
  fgsm: ['fast gradient sign method: one step of eps along sign(grad J(x, y_true))', 'linf', 'true'],
  'fast-l2': ['one step of L2 size eps along the normalised gradient', 'l2', 'true'],
  'fast-l1': ['one step of L1 size eps along the L1-normalised gradient', 'l1', 'true'],
  'step-ll': ['one step of eps away from the least likely class', 'linf', 'leastLikely'],
  'step-rnd': ['one step of eps towards a random other class', 'linf', 'random'],
  'fast-predicted': ['FGSM with the predicted label (no label leaking)', 'linf', 'predicted'],
  'fast-entropy': ['one step of eps up the entropy of the prediction', 'linf', 'none'],
  kl: ['one step of eps up the KL divergence from the clean prediction', 'linf', 'none'],
  'random-sign': ['random baseline: eps times a random sign per pixel', 'linf', 'none'],
  'random-normal': ['random baseline: truncated normal noise of std eps', 'linf', 'none'],
  'r-step-ll': ['a random sign step of eps/2, then step l.l. of eps/2', 'linf', 'leastLikely'],
};

const ONE_STEP_METHODS: OneStepMethod[] = [FGSM, FAST_GRADIENT_L2, FAST_GRADIENT_L1, STEP_LL, STEP_RND, FAST_PREDICTED, FAST_ENTROPY, KL, RANDOM_SIGN, RANDOM_NORMAL, R_STEP_LL];

function oneStepSpec(method: OneStepMethod): AttackSpec {
  const [summary, norm, label] = ONE_STEP_SUMMARIES[method.name] as [string, Norm, LabelSource | 'none'];
  const gradients = method.kind === 'gradient' || method.name === 'kl' || method.name === 'r-step-ll';
  return {
    name: method.name, summary, kind: 'one-step', norms: [norm], label, gradients,
    options: label === 'none' ? [] : ['label'],
    run: (model, x, opts) => runOneStep(model, x, method, opts),
    oneStep: method,
  };
}

/** The registry's stepSize as the iterative methods' alpha; anything but an options object goes on to their own check. */
const withStepSize = (opts: RunOptions): RunOptions & { alpha?: number } => (typeof opts === 'object' && opts !== null ? { ...opts, alpha: opts.stepSize } : opts);

const ITERATIVE: AttackSpec[] = [
  {
    name: 'basic-iter', summary: "the paper's basic iterative method: steps of 1 pixel, min(eps + 4, 1.25 eps) of them",
    kind: 'iterative', norms: ['linf'], label: 'true', gradients: true, options: ['label', 'steps'], run: basicIter,
  },
  {
    name: 'iter-ll', summary: "the paper's iterative least-likely class method",
    kind: 'iterative', norms: ['linf'], label: 'leastLikely', gradients: true, options: ['label', 'steps'], run: iterLL,
  },
  {
    name: 'pgd', summary: 'projected gradient descent from a random start: 10 steps of 2.5 eps / 10, restarts on the unbroken images',
    kind: 'iterative', norms: ['linf', 'l2', 'l1'], label: 'true', gradients: true, options: ['label', 'steps', 'restarts', 'norm', 'stepSize', 'randomStart'], defaults: { steps: 10, restarts: 1 },
    run: (model, x, opts) => pgd(model, x, withStepSize(opts)),
  },
  {
    name: 'rs-fgsm', summary: 'FGSM from a uniform random start in the ball, one step of 1.25 eps, projected (fast adversarial training)',
    kind: 'iterative', norms: ['linf'], label: 'true', gradients: true, options: ['label', 'stepSize', 'randomStart'],
    run: (model, x, opts) => rsFgsm(model, x, withStepSize(opts)),
  },
  {
    name: 'mi-fgsm', summary: 'momentum iterative FGSM: 10 steps of eps / 10, decay 1',
    kind: 'iterative', norms: ['linf'], label: 'true', gradients: true, options: ['label', 'steps'], defaults: { steps: 10 }, run: miFgsm,
  },
];

const REGISTRY = new Map<string, AttackSpec>();

/** Adds a method to the registry; a name may be registered once. */
export function registerAttack(spec: AttackSpec): void {
  if (REGISTRY.has(spec.name)) throw new Error(`attack '${spec.name}' is registered twice`);
  if (spec.norms.length === 0) throw new Error(`attack '${spec.name}' declares no norm`);
  if (spec.kind === 'minimal' && !spec.minimal) throw new Error(`minimal-perturbation attack '${spec.name}' has no search`);
  REGISTRY.set(spec.name, spec);
}

for (const m of ONE_STEP_METHODS) registerAttack(oneStepSpec(m));
for (const s of [...ITERATIVE, APGD_CE, APGD_DLR, APGD_T, FAB, FAB_T, DEEPFOOL, CW_L2, SQUARE, HOP_SKIP_JUMP]) registerAttack(s);

/** Readable names, for the page and reports; every registered method has one (a test checks). */
const TITLES: Record<string, string> = {
  fgsm: 'FGSM', 'fast-l2': 'Fast gradient L2', 'fast-l1': 'Fast gradient L1', 'step-ll': 'Step l.l.', 'step-rnd': 'Step rnd.',
  'fast-predicted': 'FGSM, predicted label', 'fast-entropy': 'Fast entropy', kl: 'Fast KL', 'random-sign': 'Random sign noise',
  'random-normal': 'Random normal noise', 'r-step-ll': 'R+Step l.l.', 'basic-iter': 'Basic iterative', 'iter-ll': 'Iterative l.l.',
  pgd: 'PGD', 'rs-fgsm': 'RS-FGSM', 'mi-fgsm': 'MI-FGSM', 'apgd-ce': 'APGD-CE', 'apgd-dlr': 'APGD-DLR', 'apgd-t': 'APGD-T',
  fab: 'FAB', 'fab-t': 'FAB-T', deepfool: 'DeepFool', 'cw-l2': 'C&W L2', square: 'Square', 'hop-skip-jump': 'HopSkipJump',
};

/** The readable name of a registered method ('r-step-ll': 'R+Step l.l.'). */
export function methodTitle(name: string): string {
  return TITLES[attackSpec(name).name] ?? name;
}

/**
 * Whether a method pushes the image towards its label (the least likely or a
 * random class: the label is its target) instead of away from the true class.
 */
export function isTargeted(name: string): boolean {
  const own = attackSpec(name).label;
  return own === 'leastLikely' || own === 'random';
}

/** Every registered attack, in registration order. */
export function attacks(): AttackSpec[] {
  return [...REGISTRY.values()];
}

/** Names of every registered attack. */
export function attackNames(): string[] {
  return [...REGISTRY.keys()];
}

/** The attack named `name`; an unknown name is an error listing the known ones. */
export function attackSpec(name: string): AttackSpec {
  const spec = REGISTRY.get(name);
  if (!spec) throw new Error(`unknown attack method '${name}': expected one of ${attackNames().join(', ')}`);
  return spec;
}

/** Whether `name` is a registered attack. */
export function isAttackName(name: string): boolean {
  return REGISTRY.has(name);
}

/**
 * The label source a method uses, as reports name it: the override for
 * methods that take a label, the method's own otherwise.
 */
export function labelSourceOf(name: string, override?: LabelSource): string {
  const spec = attackSpec(name);
  if (spec.label === 'none' || spec.label === 'targets') return spec.label;
  return spec.options.includes('label') ? (override ?? spec.label) : spec.label;
}

/** The norm a method runs in: the requested one if it has it (an error naming its norms if not), else its default. */
export function normOf(name: string, norm?: Norm): Norm {
  const spec = attackSpec(name);
  if (norm === undefined) return spec.norms[0] as Norm;
  if (!spec.norms.includes(norm)) throw new Error(`attack '${name}' works in ${spec.norms.join(', ')}, not ${norm}`);
  return norm;
}

/** Options for {@link attackGrid}: RunOptions less eps and the random stream, plus a seed. */
export interface GridRunOptions extends Omit<RunOptions, 'eps' | 'generator'> {
  /** Seed of each (method, eps) run's random stream (default 0): results repeat bit for bit. */
  seed?: number;
  /** Receives each minimal-perturbation method's per-image sizes (pixel units; Infinity where its search failed). */
  onMinimal?: (method: string, norms: Float64Array) => void;
}

/**
 * Adversarial batches for every method and eps (pixel units), in the order
 * given: per method name, one tensor per eps. One-step methods share backward
 * passes across eps (and across methods with the same gradient);
 * minimal-perturbation methods search once and each eps keeps the images
 * whose perturbation fits (the others are returned clean); every other method
 * runs once per eps with a fresh generator seeded `seed`.
 */
export function attackGrid(model: Classifier, x: Tensor, y: Tensor | undefined, names: readonly string[], eps: readonly number[], opts: GridRunOptions = {}): Map<string, Tensor[]> {
  checkInputs(model, x, { y });
  const specs = names.map(attackSpec);
  for (const s of specs) if (opts.norm !== undefined && s.options.includes('norm')) normOf(s.name, opts.norm);
  const seed = opts.seed ?? 0;
  const out = new Map<string, Tensor[]>();
  try {
    const oneStep = specs.filter((s) => s.oneStep);
    if (oneStep.length) {
      const grid = oneStepGrid(model, x, oneStep.map((s) => s.oneStep as OneStepMethod), { ...opts, eps: [...eps], y, seed });
      for (const s of oneStep) out.set(s.name, grid.get(s.name) as Tensor[]);
    }
    for (const s of specs) {
      if (out.has(s.name)) continue;
      const { onMinimal: _, seed: _s, ...rest } = opts;
      const runOpts = { ...declaredOptions(s, rest), y };
      if (s.minimal) {
        const found = s.minimal(model, x, { ...runOpts, generator: new Generator(seed) });
        opts.onMinimal?.(s.name, found.norms);
        out.set(s.name, withinEps(model, x, found, eps, normOf(s.name, runOpts.norm)));
        continue;
      }
      out.set(s.name, eps.map((e) => s.run(model, x, { ...runOpts, eps: e, generator: new Generator(seed) })));
    }
  } catch (e) {
    for (const ts of out.values()) for (const t of ts) t.dispose();
    throw e;
  }
  return out;
}

const RUN_OPTIONS: readonly RunOption[] = ['label', 'norm', 'steps', 'stepSize', 'randomStart', 'restarts', 'queries', 'targets', 'eot'];

/** `opts` less the options `spec` does not declare: a suite-wide steps count must not reach a one-step method. */
export function declaredOptions<T extends Partial<RunOptions>>(spec: AttackSpec, opts: T): T {
  const out = { ...opts };
  for (const k of RUN_OPTIONS) if (!spec.options.includes(k)) delete out[k];
  return out;
}

/** For each eps, the minimal adversarial images whose perturbation fits within eps, the clean image elsewhere. */
export function withinEps(model: Classifier, x: Tensor, found: MinimalResult, eps: readonly number[], norm: Norm): Tensor[] {
  try {
    return eps.map((e) => scope(() => keepWithinEps(model, x, found.adversarial, epsTensor(model, x, e, 'eps', norm).eps, norm)));
  } finally {
    found.adversarial.dispose();
  }
}
