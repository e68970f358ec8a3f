/**
 * `advml sweep`: the paper's capacity and activation studies at a size this
 * machine can run. Trains one model per (rho or activation) x (plain,
 * adversarial), evaluates each on the same test images, and writes
 * DIR/sweep.json (SweepResult) for `advml report`.
 */
import { join } from 'node:path';
import type { ActivationName } from '../nn/index.js';
import { evaluate, type SweepEntry, type SweepResult } from '../evaluation/index.js';
import { writeFileAtomicSync, makeDirectorySync } from '../io/index.js';
import { MAX_WIDTH, buildClassifier } from '../models/index.js';
import { PRESETS, type Preset, runTraining } from '../training/index.js';
import { type Command, UsageError, numberOption, parseOptions, positiveInt } from './command.js';
import { loadDataset, parseEpsList, parseMethods } from './common.js';
import { progressBar } from './progress.js';

const ACTIVATIONS: readonly ActivationName[] = ['relu', 'relu6', 'tanh', 'reluDecay'];

export const sweep: Command = {
  name: 'sweep',
  help: `Usage: advml sweep --out DIR [options]

Capacity study (default): trains the preset's model at each width multiplier
rho, with and without adversarial training, and evaluates every model.
Activation study (--activations): the same over activation functions at rho 1.

Options:
  --out DIR           folder for the checkpoints and sweep.json (required)
  --preset NAME       mnist (default) or fashion-mnist
  --rho LIST          width multipliers, each in (0, ${MAX_WIDTH}] (default 0.5,0.71,1,1.41,2)
  --activations LIST  run the activation study instead: relu,relu6,tanh,reluDecay
  --training WHICH    both (default), plain or adversarial
  --epochs N          training epochs per model (default 1)
  --train-images N    training images (default all)
  --eval-images N     test images (default 1000)
  --methods LIST      default step-ll,fgsm,basic-iter,iter-ll
  --eps LIST          pixel units (default: the preset's)
  -h, --help          show this help`,
  async run(argv) {
    const { values: o } = parseOptions('sweep', argv, {
      out: { type: 'string' }, preset: { type: 'string', default: 'mnist' }, rho: { type: 'string', default: '0.5,0.71,1,1.41,2' },
      activations: { type: 'string' }, training: { type: 'string', default: 'both' }, epochs: { type: 'string' },
      'train-images': { type: 'string' }, 'eval-images': { type: 'string' }, methods: { type: 'string', default: 'step-ll,fgsm,basic-iter,iter-ll' },
      eps: { type: 'string' },
    });
    if (!o.out) throw new UsageError('advml sweep: --out is required');
    const preset = PRESETS[o.preset];
    if (!preset || preset.data === 'imagenet') throw new UsageError(`advml sweep: --preset must be mnist or fashion-mnist, got '${o.preset}'`);
    const rhos = o.rho.split(',').map((r, i, all) => numberOption('sweep', all.length === 1 ? 'rho' : `rho value ${i + 1}`, r.trim(), { greaterThan: 0, max: MAX_WIDTH }));
    const activations = o.activations === undefined ? null : (o.activations.split(',') as ActivationName[]);
    for (const a of activations ?? []) if (!ACTIVATIONS.includes(a)) throw new UsageError(`advml sweep: unknown activation '${a}' (known: ${ACTIVATIONS.join(', ')})`);
    if (!['both', 'plain', 'adversarial'].includes(o.training)) throw new UsageError(`advml sweep: --training must be both, plain or adversarial`);
    const kinds = o.training === 'both' ? [false, true] : [o.training === 'adversarial'];
    const epochs = positiveInt('sweep', 'epochs', o.epochs, 1);
    const trainImages = o['train-images'] === undefined ? undefined : positiveInt('sweep', 'train-images', o['train-images'], 1);
    const evalImages = positiveInt('sweep', 'eval-images', o['eval-images'], 1000);
    const methods = parseMethods(o.methods, 'sweep');
    const eps = o.eps === undefined ? preset.evalEps : parseEpsList(o.eps, 'sweep');
    makeDirectorySync(o.out);

    const configs = (activations ?? ['relu' as ActivationName]).flatMap((activation) =>
      (activations ? [1] : rhos).flatMap((rho) => kinds.map((adversarial) => ({ rho, activation, adversarial }))),
    );
    const train = loadDataset(preset.data as 'mnist', 'train', trainImages);
    const test = loadDataset(preset.data as 'mnist', 'test', evalImages);
    const result: SweepResult = { preset: preset.name, study: activations ? 'activation' : 'capacity', methods, eps, entries: [] };
    try {
      for (const cfg of configs) {
        const name = `rho${cfg.rho}-${cfg.activation}-${cfg.adversarial ? 'adv' : 'plain'}`;
        const p: Preset = JSON.parse(JSON.stringify(preset)) as Preset;
        p.spec.options.width = cfg.rho;
        p.spec.options.activation = cfg.activation;
        p.config.epochs = epochs;
        p.config.checkpointEvery = 0;
        if (!cfg.adversarial) p.config.adversarial.k = 0;
        const model = buildClassifier(p.spec);
        const checkpoint = join(o.out, `${name}.safetensors`);
        const bar = progressBar(`train ${name}`);
        const t0 = performance.now();
        await runTraining({ model, train, config: p.config, checkpoint, onEvent: (e) => e.type === 'step' && bar.update(e.step, e.totalSteps, { loss: e.loss }) });
        bar.done();
        const trainSeconds = (performance.now() - t0) / 1000;
        const r = await evaluate(model, test, { methods, eps });
        const entry: SweepEntry = { ...cfg, checkpoint, parameters: model.module.parameterCount(), trainSeconds, result: r };
        result.entries.push(entry);
        console.log(`${name}: ${entry.parameters} parameters, ${trainSeconds.toFixed(0)} s, clean ${(r.clean.top1.value * 100).toFixed(1)}%, ` +
          r.cells.filter((c) => c.eps === eps[Math.floor(eps.length / 2)]).map((c) => `${c.method} ${(c.top1.value * 100).toFixed(1)}%`).join(', '));
        model.dispose();
        writeFileAtomicSync(join(o.out, 'sweep.json'), JSON.stringify(result, null, 2) + '\n');
      }
    } finally {
      train.dispose();
      test.dispose();
    }
    console.log(`wrote ${join(o.out, 'sweep.json')}`);
    return 0;
  },
};
