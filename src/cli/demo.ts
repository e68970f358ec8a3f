/**
 * `advml demo`, the main job: trains the MNIST CNN twice, without and with
 * adversarial training (step l.l., the paper's recipe scaled to MNIST),
 * evaluates both under one-step and iterative attacks at several eps, and
 * writes a report folder (results.json, report.md, and report/index.html with charts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as A from '../attacks/index.js';
import { type EvalResult, evaluate } from '../evaluation/index.js';
import { writeFileAtomicSync, makeDirectorySync } from '../io/index.js';
import { buildClassifier } from '../models/index.js';
import { PRESETS, type TrainConfig, runTraining } from '../training/index.js';
import { type Command, parseOptions, positiveInt } from './command.js';
import { loadDataset, parseEpsList } from './common.js';
import { progressBar } from './progress.js';

export const demo: Command = {
  name: 'demo',
  help: `Usage: advml demo [--out DIR] [options]

Trains the MNIST CNN twice on MNIST, plainly and with the paper's adversarial
training (step l.l., m 64, k 32, lambda 0.3, eps ~ truncated normal scaled to
MNIST), evaluates both with FGSM, step l.l., basic iter. and iter. l.l. at
several eps, and writes DIR/report.md, DIR/results.json and DIR/report/index.html
(charts of accuracy against eps with confidence bands, for both models).

Options:
  --out DIR          report folder (default runs/demo)
  --epochs N         training epochs per model (default 1)
  --train-images N   training images (default all 60,000)
  --eval-images N    test images evaluated (default 1000)
  --eps LIST         eps in pixel units (default 8,16,32)
  -h, --help         show this help`,
  async run(argv) {
    const { values: o } = parseOptions('demo', argv, {
      out: { type: 'string', default: 'runs/demo' },
      epochs: { type: 'string' },
      'train-images': { type: 'string' },
      'eval-images': { type: 'string' },
      eps: { type: 'string', default: '8,16,32' },
    });
    const epochs = positiveInt('demo', 'epochs', o.epochs, 1);
    const trainImages = positiveInt('demo', 'train-images', o['train-images'], 60000);
    const evalImages = positiveInt('demo', 'eval-images', o['eval-images'], 1000);
    const eps = parseEpsList(o.eps, 'demo');
    makeDirectorySync(o.out);
    const preset = PRESETS.mnist!;
    const train = loadDataset('mnist', 'train', trainImages);
    const test = loadDataset('mnist', 'test', evalImages);
    const methods: A.MethodName[] = ['fgsm', 'step-ll', 'basic-iter', 'iter-ll'];
    const runs: { name: string; k: number; seconds: number; result: EvalResult }[] = [];
    try {
      for (const [name, k] of [['plain', 0], ['adversarial', preset.config.adversarial.k]] as const) {
        const config: TrainConfig = { ...preset.config, epochs, adversarial: { ...preset.config.adversarial, k }, checkpointEvery: 0 };
        const model = buildClassifier(preset.spec);
        const bar = progressBar(`train ${name}`);
        const t0 = performance.now();
        await runTraining({
          model, train, config, checkpoint: join(o.out, `${name}.safetensors`),
          onEvent: (e) => {
            if (e.type === 'step') bar.update(e.step, e.totalSteps, { loss: e.loss, 'img/s': Math.round(e.imagesPerSec) });
          },
        });
        bar.done();
        const seconds = (performance.now() - t0) / 1000;
        const ebar = progressBar(`eval ${name}`);
        const result = await evaluate(model, test, { methods, eps, onProgress: ebar.update });
        ebar.done();
        runs.push({ name, k, seconds, result });
        model.dispose();
      }
    } finally {
      train.dispose();
      test.dispose();
    }
    const report = markdown(runs, eps, methods, { epochs, trainImages, evalImages, config: preset.config });
    writeFileSync(join(o.out, 'report.md'), report);
    const { buildReport } = await import('../report/index.js');
    await buildReport(
      { evals: runs.map((r) => ({ name: r.name, source: `advml demo (${r.name})`, model: join(o.out, `${r.name}.safetensors`), data: 'mnist:test', result: r.result })) },
      join(o.out, 'report'),
      { title: 'advml demo: plain and adversarially trained MNIST CNNs' },
    );
    writeFileAtomicSync(join(o.out, 'results.json'), JSON.stringify({ epochs, trainImages, evalImages, eps, runs }, null, 2) + '\n');
    console.log(report);
    console.log(`wrote ${join(o.out, 'report.md')}, ${join(o.out, 'results.json')} and the charts in ${join(o.out, 'report', 'index.html')}`);
    return 0;
  },
};

const pct = (v: number, h: number): string => `${(v * 100).toFixed(1)} ± ${(h * 100).toFixed(1)}`;

function markdown(
  runs: { name: string; k: number; seconds: number; result: EvalResult }[],
  eps: number[],
  methods: A.MethodName[],
  meta: { epochs: number; trainImages: number; evalImages: number; config: TrainConfig },
): string {
  const a = meta.config.adversarial;
  const lines = [
    '# advml demo: adversarial training on MNIST',
    '',
    `Two MNIST CNNs, ${meta.epochs} epoch(s) on ${meta.trainImages} training images each: one plain (k = 0), one with the`,
    `paper's Algorithm 1 (m ${meta.config.batchSize}, k ${a.k}, lambda ${a.lambda}, ${a.method}, eps ~ ${JSON.stringify(a.eps)} in pixel units).`,
    `Top-1 accuracy (%) on the first ${meta.evalImages} test images, with 95% intervals; eps in pixel units (0-255).`,
    '',
    `| model | training time | clean | ${methods.flatMap((m) => eps.map((e) => `${m} ${e}`)).join(' | ')} |`,
    `|---|---|---|${methods.flatMap(() => eps.map(() => '---')).join('|')}|`,
  ];
  for (const r of runs) {
    const cells = methods.flatMap((m) => eps.map((e) => {
      const c = r.result.cells.find((x) => x.method === m && x.eps === e)!;
      return pct(c.top1.value, c.top1.halfWidth) + (c.labelLeaking ? ' (leaking)' : '');
    }));
    lines.push(`| ${r.name} | ${r.seconds.toFixed(0)} s | ${pct(r.result.clean.top1.value, r.result.clean.top1.halfWidth)} | ${cells.join(' | ')} |`);
  }
  lines.push('', 'Label sources: fgsm and basic-iter use the true label; step-ll and iter-ll the least likely class.', '');
  return lines.join('\n');
}
