/**
 * Attack suites: a list of attacks run one after another, each only on the
 * images that every earlier one failed to break, as AutoAttack ("Reliable
 * evaluation of adversarial robustness with an ensemble of diverse
 * parameter-free attacks", 2020) composes APGD-CE, APGD-T, FAB-T and Square.
 * An image counts as broken only when a fresh forward pass of its final
 * adversarial image misclassifies it; the robust accuracy is the share of
 * images that no attack broke (a clean misclassification counts as broken).
 */
import { Generator, type Precision, type Tensor, noGrad, scope } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { type Eps, type Norm, checkInputs, epsPixels } from './common.js';
import { indexTensor, logitsOf, mergeRows } from './batch.js';
import { type AttackProgress, type RunOptions, attackSpec, declaredOptions, normOf } from './registry.js';

/** One attack of a suite with the options it runs with there. */
export interface SuiteStep {
  attack: string;
  options?: Partial<Pick<RunOptions, 'steps' | 'restarts' | 'queries' | 'targets' | 'eot'>>;
}

/**
 * AutoAttack's versions with its published settings:
 * - standard: APGD-CE (1 restart), APGD-T (9 targets), FAB-T (9 targets), Square (5,000 queries);
 * - plus: APGD-CE and APGD-DLR with 5 restarts, FAB with 5 restarts, Square, APGD-T, FAB-T;
 * - rand: APGD-CE and APGD-DLR with 20 samples per gradient (expectation over transformation), for models with randomness.
 */
export const SUITES = {
  standard: [
    { attack: 'apgd-ce', options: { restarts: 1, steps: 100 } },
    { attack: 'apgd-t', options: { restarts: 1, steps: 100, targets: 9 } },
    { attack: 'fab-t', options: { restarts: 1, steps: 100, targets: 9 } },
    { attack: 'square', options: { restarts: 1, queries: 5000 } },
  ],
  plus: [
    { attack: 'apgd-ce', options: { restarts: 5, steps: 100 } },
    { attack: 'apgd-dlr', options: { restarts: 5, steps: 100 } },
    { attack: 'fab', options: { restarts: 5, steps: 100 } },
    { attack: 'square', options: { restarts: 1, queries: 5000 } },
    { attack: 'apgd-t', options: { restarts: 1, steps: 100, targets: 9 } },
    { attack: 'fab-t', options: { restarts: 1, steps: 100, targets: 9 } },
  ],
  rand: [
    { attack: 'apgd-ce', options: { restarts: 1, steps: 100, eot: 20 } },
    { attack: 'apgd-dlr', options: { restarts: 1, steps: 100, eot: 20 } },
  ],
} as const satisfies Record<string, readonly SuiteStep[]>;

export type SuiteName = keyof typeof SUITES;

/** Names a suite may be given by; 'autoattack' is the standard version. */
export const SUITE_NAMES: readonly string[] = ['autoattack', ...Object.keys(SUITES)];

/** The steps of a named suite; an unknown name is an error listing the known ones. */
export function suiteSteps(name: string): readonly SuiteStep[] {
  const key = name === 'autoattack' ? 'standard' : name;
  const steps = (SUITES as Record<string, readonly SuiteStep[]>)[key];
  if (!steps) throw new Error(`unknown suite '${name}': expected one of ${SUITE_NAMES.join(', ')}`);
  return steps;
}

/** A suite made of attacks named in a list, each with its own defaults. */
export function suiteOf(names: readonly string[]): SuiteStep[] {
  return names.map((attack) => {
    attackSpec(attack);
    return { attack };
  });
}

export interface SuiteOptions {
  /** Seed of each attack's random stream (default 0): each attack starts a fresh stream. */
  seed?: number;
  precision?: Precision;
  /** The norm every attack of the suite runs in (default L-inf). */
  norm?: Norm;
  /** Overrides of every step's options (e.g. fewer steps for a quick look); a step ignores those it does not take. */
  overrides?: SuiteStep['options'];
  onProgress?: (p: AttackProgress) => void;
}

export interface SuiteAttackResult {
  attack: string;
  /** Images this attack broke (of those still robust when it ran). */
  broken: number;
  /** Images it was run on. */
  attacked: number;
  seconds: number;
}

export interface SuiteResult {
  /** The final images: each broken image's adversarial, the clean image elsewhere. */
  adversarial: Tensor;
  /** Per image: whether no attack broke it (and the clean image was classified correctly). */
  robust: boolean[];
  /** Per image: the attack that broke it, 'clean' if the clean image was already misclassified, null if robust. */
  brokenBy: (string | null)[];
  perAttack: SuiteAttackResult[];
}

/** The overrides that are set (an undefined one keeps the step's own setting). */
const defined = (o: SuiteStep['options']): SuiteStep['options'] => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));

/** Per-image correctness of the model on x against y. */
function correctOf(model: Classifier, x: Tensor, y: Tensor, precision?: Precision): boolean[] {
  return noGrad(() => scope(() => Array.from(logitsOf(model, x, precision).argmax(1).eq(y).dataSync() as Uint8Array, (v) => v !== 0)));
}

/**
 * Runs `steps` in order at eps (pixel units, one value or one per image),
 * each attack on the images still robust; see {@link SuiteResult}.
 */
export function runSuite(model: Classifier, x: Tensor, y: Tensor, steps: readonly SuiteStep[], eps: Eps, opts: SuiteOptions = {}): SuiteResult {
  checkInputs(model, x, { y });
  const n = x.shape[0] as number;
  const specs = steps.map((s) => attackSpec(s.attack));
  for (const s of specs) normOf(s.name, opts.norm);
  // Checked once for the whole suite, in the suite's norm.
  const epsValues = epsPixels(x, eps, 'eps', opts.norm ?? 'linf');
  return model.inMode(false, () => {
    const correct = correctOf(model, x, y, opts.precision);
    const brokenBy: (string | null)[] = correct.map((c) => (c ? null : 'clean'));
    let adversarial = x.detach().clone();
    const perAttack: SuiteAttackResult[] = [];
    try {
      steps.forEach((step, k) => {
        const spec = specs[k] as (typeof specs)[number];
        const active = brokenBy.flatMap((b, i) => (b === null ? [i] : []));
        const t0 = performance.now();
        let broken = 0;
        if (active.length > 0) {
          const next = scope(() => {
            const index = indexTensor(active);
            const xs = x.indexSelect(0, index);
            const ys = y.indexSelect(0, index);
            const runOpts: RunOptions = declaredOptions(spec, {
              ...step.options, ...defined(opts.overrides), eps: active.map((i) => epsValues[i] as number), y: ys,
              generator: new Generator(opts.seed ?? 0), precision: opts.precision, norm: opts.norm, onProgress: opts.onProgress,
            });
            const adv = spec.run(model, xs, runOpts);
            const still = correctOf(model, adv, ys, opts.precision);
            const hit = still.flatMap((c, j) => (c ? [] : [j]));
            still.forEach((c, j) => {
              if (!c) brokenBy[active[j] as number] = spec.name;
            });
            broken = hit.length;
            if (hit.length === 0) return null;
            const hitIndex = indexTensor(hit);
            return mergeRows(adversarial, indexTensor(hit.map((j) => active[j] as number)), adv.indexSelect(0, hitIndex)).keep();
          });
          if (next) {
            adversarial.dispose();
            adversarial = next;
          }
        }
        perAttack.push({ attack: spec.name, broken, attacked: active.length, seconds: (performance.now() - t0) / 1000 });
      });
    } catch (e) {
      adversarial.dispose();
      throw e;
    }
    return { adversarial, robust: brokenBy.map((b) => b === null), brokenBy, perAttack };
  });
}
