/** `advml eval`: the methods x eps accuracy grid with intervals, ratios, ties and label leaking. */
import { writeFileAtomicSync } from '../io/index.js';
import * as A from '../attacks/index.js';
import { type EvalResult, evaluate } from '../evaluation/index.js';
import { type Command, STEPS_HELP, UsageError, nonNegativeInt, parseOptions, positiveInt, stepsOption } from './command.js';
import { CONTRACT_HELP, CONTRACT_OPTIONS, loadModel, openData, parseEpsList, parseMethods, parsePrecision } from './common.js';
import { progressBar } from './progress.js';
import { initProcessGroup } from '../distributed/index.js';

export const evalCommand: Command = {
  name: 'eval',
  help: `Usage: advml eval --model MODEL [options]

Clean and adversarial top-1 and top-5 accuracy for each method and eps, each
with its 95% confidence interval (standard error over the test images), the
adversarial/clean ratio, the methods statistically tied with the strongest, and
label-leaking flags (adversarial accuracy above clean beyond the interval).

Options:
${CONTRACT_HELP}
  --data DATA       mnist or fashion-mnist, :test (default) or :train, or
                    folder:PATH (one sub-folder per class, resized and
                    centre-cropped to the model's input size)
  --limit N         first N images (default all)
  --methods LIST    comma-separated (default fgsm,step-ll,basic-iter,iter-ll);
                    'all' for every method
  --eps LIST        pixel units (default 2,4,8,16)
  --label SOURCE    override the label source of gradient methods
  --batch N         batch size (default 128)
  --seed N          seed of random methods (default 0)
  ${STEPS_HELP}
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
      methods: { type: 'string', default: 'fgsm,step-ll,basic-iter,iter-ll' },
      eps: { type: 'string', default: '2,4,8,16' },
      label: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      steps: { type: 'string' },
      json: { type: 'string' },
      precision: { type: 'string', default: 'auto' },
      ...CONTRACT_OPTIONS,
    });
    const precision = parsePrecision(o.precision, 'eval');
    if (!o.model) throw new UsageError("advml eval: --model is required (a checkpoint or model file)");
    const methods = parseMethods(o.methods, 'eval');
    const eps = parseEpsList(o.eps, 'eval');
    const label = o.label as A.LabelSource | undefined;
    if (label !== undefined && !A.LABEL_SOURCES.includes(label)) throw new UsageError(`advml eval: --label must be one of ${A.LABEL_SOURCES.join(', ')}`);
    const batchSize = positiveInt('eval', 'batch', o.batch, 128);
    const seed = nonNegativeInt('eval', 'seed', o.seed, 0);
    const steps = stepsOption('eval', o.steps);
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
      const result = await evaluate(model, data, { methods, eps, batchSize, seed, label, steps, onProgress: bar?.update, group, precision });
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

const pct = (v: number): string => (v * 100).toFixed(1).padStart(5);

function printTable(r: EvalResult): void {
  const ci = (i: { value: number; halfWidth: number }): string => `${pct(i.value)} ±${(i.halfWidth * 100).toFixed(1).padStart(4)}`;
  console.log(`${r.images} images. clean top-1 ${ci(r.clean.top1)}%  top-5 ${ci(r.clean.top5)}%`);
  console.log(`${'method'.padEnd(15)} ${'eps'.padStart(5)}  ${'label'.padEnd(11)} ${'top-1 %'.padEnd(12)} ${'top-5 %'.padEnd(12)} ratio  notes`);
  for (const c of r.cells) {
    const above = c.labelLeaking ? 'LABEL LEAKING' : c.aboveClean ? 'ABOVE CLEAN (the attack helps the model)' : '';
    const notes = [c.tiedWithStrongest ? 'strongest (tied)' : '', above].filter(Boolean).join(', ');
    console.log(`${c.method.padEnd(15)} ${String(c.eps).padStart(5)}  ${c.labelSource.padEnd(11)} ${ci(c.top1).padEnd(12)} ${ci(c.top5).padEnd(12)} ${c.ratio.toFixed(2)}   ${notes}`);
  }
}
