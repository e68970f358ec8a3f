/** `advml transfer`: source x target transfer and error rates between models, per method and eps. */
import { basename } from 'node:path';
import { writeFileAtomicSync } from '../io/index.js';
import type { Classifier } from '../models/index.js';
import { type TransferCell, transferMatrix } from '../evaluation/index.js';
import { type Command, UsageError, nonNegativeInt, parseOptions, positiveInt } from './command.js';
import { loadModel, openData, parseEpsList, parseMethods, parsePrecision } from './common.js';
import { progressBar } from './progress.js';
import { initProcessGroup } from '../distributed/index.js';

export const transfer: Command = {
  name: 'transfer',
  help: `Usage: advml transfer --model A --model B [--model C ...] [options]

Makes adversarial examples on each model (the source) from randomly sampled
test images and classifies them with every model (the target):
  transfer rate = among the images whose adversarial example the source
                  misclassifies, the fraction the target misclassifies too;
  error rate    = the fraction of all adversarial images the target misclassifies.

Options:
  --model FILE      a checkpoint, a .pt, .onnx or model.json (with its model
                    card beside it), or resnet50; repeat for each model (at
                    least two)
  --name LIST       comma-separated names for the models (default: file names)
  --data DATA       mnist or fashion-mnist (:test default), or folder:PATH
  --samples N       test images sampled at random (default 1000)
  --methods LIST    default fgsm,step-ll,basic-iter,iter-ll; 'all' for every method
  --eps LIST        pixel units (default 2,4,8,16)
  --seed N          sampling and random methods (default 0)
  --batch N         batch size (default 128)
  --precision P     precision of the attacks and of every classification:
                    auto (default: bf16-autocast where the CPU has bfloat16
                    instructions, else fp32), fp32, bf16-autocast; see
                    docs/precision.md
  --clean-correct   count, for each pair, only the images both models classify
                    correctly when clean (the shared clean errors otherwise
                    decide the rates where attacks fool few images)
  --json FILE       write every cell as JSON ({ cells: [...] })
  -h, --help        show this help`,
  async run(argv) {
    const { values: o } = parseOptions('transfer', argv, {
      model: { type: 'string', multiple: true },
      name: { type: 'string' },
      data: { type: 'string', default: 'mnist:test' },
      samples: { type: 'string' },
      methods: { type: 'string', default: 'fgsm,step-ll,basic-iter,iter-ll' },
      eps: { type: 'string', default: '2,4,8,16' },
      seed: { type: 'string' },
      batch: { type: 'string' },
      json: { type: 'string' },
      'clean-correct': { type: 'boolean' },
      precision: { type: 'string', default: 'auto' },
    });
    const precision = parsePrecision(o.precision, 'transfer');
    const files = o.model ?? [];
    if (files.length < 2) throw new UsageError('advml transfer: give at least two --model checkpoints');
    const names = o.name ? o.name.split(',') : files.map((f) => basename(f).replace(/\.safetensors$/, ''));
    if (names.length !== files.length) throw new UsageError(`advml transfer: --name has ${names.length} names for ${files.length} models`);
    if (new Set(names).size !== names.length) throw new UsageError(`advml transfer: model names must differ (${names.join(', ')}); use --name`);
    const methods = parseMethods(o.methods, 'transfer');
    const eps = parseEpsList(o.eps, 'transfer');
    const samples = positiveInt('transfer', 'samples', o.samples, 1000);
    const seed = nonNegativeInt('transfer', 'seed', o.seed, 0);
    const batchSize = positiveInt('transfer', 'batch', o.batch, 128);
    const models = new Map<string, Classifier>();
    try {
      for (const [i, f] of files.entries()) models.set(names[i] as string, await loadModel(f, 'transfer'));
      const first = models.values().next().value as Classifier;
      for (const [n, m] of models) {
        if (m.inputShape.join() !== first.inputShape.join() || m.classes !== first.classes) {
          throw new UsageError(`advml transfer: model '${n}' takes [${m.inputShape}] with ${m.classes} classes, unlike the first ([${first.inputShape}], ${first.classes})`);
        }
      }
      const data = await openData(o.data, 'transfer', { imageSize: [first.inputShape[1], first.inputShape[2]] });
      const group = initProcessGroup();
      try {
        const bar = group.rank === 0 ? progressBar('transfer') : null;
        const cells = await transferMatrix(models, data.dataset, { methods, eps, samples, seed, batchSize, cleanCorrectOnly: o['clean-correct'], onProgress: bar?.update, group, precision });
        bar?.done();
        if (group.rank !== 0) return 0;
        print(cells, names);
        if (o.json) writeFileAtomicSync(o.json, JSON.stringify({ data: data.label, models: Object.fromEntries(names.map((n, i) => [n, files[i]])), samples, seed, precision, cleanCorrectOnly: o['clean-correct'] === true, cells }, null, 2) + '\n');
      } finally {
        group.destroy();
        data.dispose();
      }
    } finally {
      for (const m of models.values()) m.dispose();
    }
    return 0;
  },
};

function print(cells: TransferCell[], names: string[]): void {
  const groups = new Map<string, TransferCell[]>();
  for (const c of cells) {
    const k = `${c.method} at eps ${c.eps}`;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const w = Math.max(8, ...names.map((n) => n.length));
  for (const [title, list] of groups) {
    console.log(`\n${title}: transfer rate % (error rate %), rows = source, columns = target`);
    console.log(`${''.padEnd(w)} ${names.map((n) => n.padStart(16)).join('')}`);
    for (const s of names) {
      const row = names.map((t) => {
        const c = list.find((x) => x.source === s && x.target === t)!;
        const tr = Number.isNaN(c.transferRate.value) ? '   -' : (c.transferRate.value * 100).toFixed(1).padStart(5);
        return `${tr} (${(c.errorRate.value * 100).toFixed(1).padStart(5)})`.padStart(16);
      });
      console.log(`${s.padEnd(w)} ${row.join('')}`);
    }
  }
}
