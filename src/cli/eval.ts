/**
 * `advml eval`: the methods x eps accuracy grid with intervals, ratios, ties
 * and label leaking; a suite's robust accuracy (AutoAttack); minimal
 * perturbation sizes; and the gradient-masking audit.
 */
import { writeFileAtomicSync } from '../io/index.js';
import * as A from '../attacks/index.js';
import { type EvalResult, evaluate } from '../evaluation/index.js';
import { type Command, STEPS_HELP, UsageError, nonNegativeInt, parseOptions, positiveInt, stepsOption } from './command.js';
import { CONTRACT_HELP, CONTRACT_OPTIONS, loadModel, openData, parseEpsList, parseLabelSource, parseMethods, parseNorm, parsePrecision } from './common.js';
import { progressBar } from './progress.js';
import { initProcessGroup } from '../distributed/index.js';

export const evalCommand: Command = {
  name: 'eval',
  help: `Usage: advml eval --model MODEL [options]

Clean and adversarial top-1 and top-5 accuracy for each method and eps, each
with its 95% confidence interval (standard error over the test images), the
adversarial/clean ratio, the methods statistically tied with the strongest, and
label-leaking flags (adversarial accuracy above clean beyond the interval).
With --suite, the suite's robust accuracy at each eps (each attack runs on the
images every earlier one failed to break), how many images each attack broke
and its time. Minimal-perturbation methods (fab, fab-t, deepfool, cw-l2) also
give the median and quantiles of the sizes they found. Every evaluation ends
with the gradient-masking audit; docs/evaluation.md says how to read it.

Options:
${CONTRACT_HELP}
  --data DATA       mnist or fashion-mnist, :test (default) or :train, or
                    folder:PATH (one sub-folder per class, resized and
                    centre-cropped to the model's input size)
  --limit N         first N images (default all)
  --methods LIST    comma-separated (default fgsm,step-ll,basic-iter,iter-ll,
                    or none with --suite); 'all' for every method; one of:
                    ${A.METHOD_NAMES.join(', ')}
  --suite NAME      autoattack (= standard: apgd-ce, apgd-t, fab-t, square),
                    plus, rand (randomised models), or a comma-separated list
                    of methods run one after another on the unbroken images
  --norm N          linf (default), l2 or l1: the ball of the suite and of the
                    methods that take a norm (eps is its size in pixel units)
  --no-audit        skip the audit's probes (the checks from the grid still run)
  --eps LIST        pixel units (default 2,4,8,16)
  --label SOURCE    override the label source of gradient methods
  --batch N         batch size (default 128)
  --seed N          seed of random methods (default 0)
  ${STEPS_HELP}
  --queries N       query budget of the query-only attacks (default: each
                    attack's own, 5000 for the suite's Square)
  --precision P     precision of forward passes and attacks: auto (default:
                    bf16-autocast where the CPU has bfloat16 instructions),
                    fp32, bf16-autocast; see docs/precision.md
  --json FILE       write the full result as JSON
  -h, --help        show this help`,
  async run(argv) {
    const { values: o } = parseOptions('eval', argv, {
      model: { type: 'string' },
      data: { type: 'string', default: 'mnist:test' },
      limit: { type: 'string' },
      methods: { type: 'string' },
      suite: { type: 'string' },
      norm: { type: 'string' },
      'no-audit': { type: 'boolean' },
      eps: { type: 'string', default: '2,4,8,16' },
      label: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      steps: { type: 'string' },
      queries: { type: 'string' },
      json: { type: 'string' },
      precision: { type: 'string', default: 'auto' },
      ...CONTRACT_OPTIONS,
    });
    const precision = parsePrecision(o.precision, 'eval');
    if (!o.model) throw new UsageError("advml eval: --model is required (a checkpoint or model file)");
    const norm = parseNorm(o.norm, 'eval');
    const suite = o.suite === undefined ? undefined : parseSuite(o.suite);
    const methods = o.methods === undefined ? (suite ? [] : ['fgsm', 'step-ll', 'basic-iter', 'iter-ll']) : parseMethods(o.methods, 'eval');
    const eps = parseEpsList(o.eps, 'eval', norm);
    const label = parseLabelSource(o.label, 'eval');
    const batchSize = positiveInt('eval', 'batch', o.batch, 128);
    const seed = nonNegativeInt('eval', 'seed', o.seed, 0);
    const steps = stepsOption('eval', o.steps);
    const queries = o.queries === undefined ? undefined : positiveInt('eval', 'queries', o.queries, 1);
    const limit = o.limit === undefined ? undefined : positiveInt('eval', 'limit', o.limit, 1);
    const model = await loadModel(o.model, 'eval', o);
    const opened = await openData(o.data, 'eval', { limit, imageSize: [model.inputShape[1], model.inputShape[2]] }).catch((e: unknown) => {
      model.dispose();
      throw e;
    });
    const data = opened.dataset;
    // Under advml launch the test set is split over the processes and the counts merged exactly.
    const group = initProcessGroup();
    try {
      const bar = group.rank === 0 ? progressBar('eval') : null;
      const result = await evaluate(model, data, { methods, suite, norm, auditProbes: !o['no-audit'], eps, batchSize, seed, label, steps, queries, onProgress: bar?.update, group, precision }).catch((e: unknown) => {
        // A norm a method does not have is the caller's error.
        if (e instanceof Error && /works in .*, not /.test(e.message)) throw new UsageError(`advml eval: ${e.message}`);
        throw e;
      });
      bar?.done();
      if (group.rank === 0) {
        printTable(result);
        if (o.json) writeFileAtomicSync(o.json, JSON.stringify({ model: o.model, data: opened.label, ...result }, null, 2) + '\n');
      }
    } finally {
      group.destroy();
      opened.dispose();
      model.dispose();
    }
    return 0;
  },
};

/** A suite name, or a list of methods to run as a suite. */
function parseSuite(text: string): string | A.SuiteStep[] {
  if (A.SUITE_NAMES.includes(text)) return text;
  if (!text.includes(',') && !A.isAttackName(text)) throw new UsageError(`advml eval: unknown suite '${text}': expected ${A.SUITE_NAMES.join(', ')} or a comma-separated list of methods`);
  return A.suiteOf(parseMethods(text, 'eval'));
}

const pct = (v: number): string => (v * 100).toFixed(1).padStart(5);

/** Prints an evaluation as `advml eval` does: clean and each cell with intervals, the suite, the minimal sizes. */
export function printTable(r: EvalResult): void {
  const ci = (i: { value: number; halfWidth: number }): string => `${pct(i.value)} ±${(i.halfWidth * 100).toFixed(1).padStart(4)}`;
  console.log(`${r.images} images. clean top-1 ${ci(r.clean.top1)}%  top-5 ${ci(r.clean.top5)}%`);
  if (r.cells.length) console.log(`${'method'.padEnd(15)} ${'eps'.padStart(5)}  ${'label'.padEnd(11)} ${'top-1 %'.padEnd(12)} ${'top-5 %'.padEnd(12)} ratio  notes`);
  for (const c of r.cells) {
    const above = c.labelLeaking ? 'LABEL LEAKING' : c.aboveClean ? 'ABOVE CLEAN (the attack helps the model)' : '';
    const notes = [c.tiedWithStrongest ? 'strongest (tied)' : '', above].filter(Boolean).join(', ');
    console.log(`${c.method.padEnd(15)} ${String(c.eps).padStart(5)}  ${c.labelSource.padEnd(11)} ${ci(c.top1).padEnd(12)} ${ci(c.top5).padEnd(12)} ${c.ratio.toFixed(2)}   ${notes}`);
  }
  if (r.suite) {
    console.log(`\nsuite ${r.suite.name} (${r.suite.attacks.join(', ')}), ${r.suite.norm}:`);
    for (const row of r.suite.rows) {
      const parts = row.attacks.map((a) => `${a.attack} broke ${a.broken}/${a.attacked} in ${a.seconds.toFixed(1)} s`);
      console.log(`  eps ${String(row.eps).padStart(5)}  robust ${ci(row.robustAccuracy)}%  ${parts.join(', ')}`);
    }
  }
  for (const m of r.minimal) {
    const size = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'not found');
    const qs = m.quantiles.map((q) => `q${Math.round(q.q * 100)} ${size(q.value)}`).join(', ');
    console.log(`minimal ${m.method} (${m.norm}, pixel units): found ${m.found}/${m.n}, median ${m.n ? size(m.median) : '-'}${qs ? `; ${qs}` : ''}`);
  }
  console.log(`\ngradient-masking audit: ${r.audit.flagged ? 'FLAGGED' : 'no flag fired'}`);
  for (const c of r.audit.checks) console.log(`  ${c.status === 'fired' ? 'FIRED  ' : c.status === 'passed' ? 'passed ' : 'not run'} ${c.id}: ${c.evidence}`);
}
