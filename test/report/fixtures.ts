/**
 * Small synthetic report inputs, valid per the evaluation types: every
 * interval is computed from counts with the library's own `proportion` and
 * `pairedDifference`, the way `evaluate` and `transferMatrix` build them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cell, EvalResult } from '../../src/evaluation/evaluate.js';
import { pairedDifference, proportion } from '../../src/evaluation/stats.js';
import type { SweepResult } from '../../src/evaluation/sweep-types.js';
import type { TransferCell } from '../../src/evaluation/transfer.js';
import type { MethodName } from '../../src/attacks/index.js';
import { audit } from '../../src/evaluation/audit.js';
import { rasterToPng } from '../../src/report/raster.js';

const encodePng = (pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Uint8Array => rasterToPng({ pixels, width, height, channels });

/** Correct counts (top-1) per method and eps, out of `n`; top-5 is top-1 plus a few. */
export function evalResult(n: number, clean: number, grid: Record<string, { label: string; top1: number[] }>, eps: number[]): EvalResult {
  const cleanTop1 = proportion(clean, n);
  const cells: Cell[] = [];
  for (const [method, { label, top1 }] of Object.entries(grid)) {
    top1.forEach((correct, i) => {
      const up = Math.max(0, correct - clean) + 2;
      const down = up + (clean - correct);
      const paired = { n, up, down };
      const difference = pairedDifference(paired);
      const t1 = proportion(correct, n);
      cells.push({
        method: method as MethodName, eps: eps[i] as number, labelSource: label, top1: t1, top5: proportion(Math.min(n, correct + 20), n),
        ratio: t1.value / cleanTop1.value, difference, aboveClean: difference.low > 0, labelLeaking: difference.low > 0 && label === 'true', tiedWithStrongest: false,
        counts: { n, top1: correct, top5: Math.min(n, correct + 20), paired },
      });
    });
  }
  for (const e of eps) {
    const row = cells.filter((c) => c.eps === e);
    const strongest = row.reduce((a, b) => (b.top1.value < a.top1.value ? b : a));
    for (const c of row) c.tiedWithStrongest = c.top1.low <= strongest.top1.high && strongest.top1.low <= c.top1.high;
  }
  return { images: n, clean: { top1: cleanTop1, top5: proportion(Math.min(n, clean + 15), n), counts: { n, top1: clean, top5: Math.min(n, clean + 15) } }, cells, minimal: [], audit: audit(cells, undefined, undefined) };
}

/** The `advml eval --json` document of a plain model: strong attacks, no leaking. */
export function plainEval(): { model: string; data: string } & EvalResult {
  return {
    model: 'runs/plain.safetensors',
    data: 'mnist:test',
    ...evalResult(1000, 985, { fgsm: { label: 'true', top1: [900, 700, 350, 80] }, 'step-ll': { label: 'leastLikely', top1: [950, 850, 600, 300] } }, [2, 4, 8, 16]),
  };
}

/** An adversarially trained model whose FGSM accuracy rises above clean: label leaking at eps 8 and 16. */
export function leakingEval(): { model: string; data: string } & EvalResult {
  return {
    model: 'runs/adv.safetensors',
    data: 'mnist:test',
    ...evalResult(1000, 900, { fgsm: { label: 'true', top1: [905, 930, 960, 980] }, 'iter-ll': { label: 'leastLikely', top1: [870, 800, 650, 400] } }, [2, 4, 8, 16]),
  };
}

/** A transfer matrix over three models, two methods, two eps. */
export function transferCells(): TransferCell[] {
  const models = ['plain', 'adv', 'wide'];
  const cells: TransferCell[] = [];
  let seed = 7;
  const rand = (k: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
  for (const method of ['fgsm', 'step-ll'] as MethodName[]) {
    for (const eps of [4, 16]) {
      for (const source of models) {
        const n = 200;
        // The adversarially trained model resists fgsm at eps 4 entirely: no transfer rate can be measured from it.
        const sourceFooled = source === 'adv' && eps === 4 ? 0 : 40 + rand(120);
        for (const target of models) {
          const transferred = source === target ? sourceFooled : rand(sourceFooled + 1);
          const targetErrors = source === target ? sourceFooled : transferred + rand(Math.min(20, n - sourceFooled) + 1);
          cells.push({
            method, eps, source, target, sourceFooled, transferred, targetErrors, n,
            transferRate: proportion(transferred, sourceFooled), errorRate: proportion(targetErrors, n),
          });
        }
      }
    }
  }
  return cells;
}

/** A capacity sweep: rho 0.5..4, plain and adversarial training. */
export function capacitySweep(): SweepResult {
  const entries = [];
  for (const rho of [0.5, 1, 2, 4]) {
    for (const adversarial of [false, true]) {
      const clean = Math.round(960 + 8 * Math.log2(rho) - (adversarial ? 10 : 0));
      const adv = (base: number): number[] => [base, base - 60, base - 150].map((v) => Math.max(10, Math.round(v + (adversarial ? 250 + 40 * Math.log2(rho) : 0))));
      entries.push({
        rho, activation: 'relu', adversarial, checkpoint: `runs/rho${rho}-${adversarial ? 'adv' : 'plain'}.safetensors`,
        parameters: Math.round(50000 * rho * rho), trainSeconds: 120 * rho,
        result: evalResult(1000, clean, { fgsm: { label: 'true', top1: adv(500) }, 'step-ll': { label: 'leastLikely', top1: adv(600) } }, [2, 8, 16]),
      });
    }
  }
  return { preset: 'mnist-cnn', study: 'capacity', methods: ['fgsm', 'step-ll'], eps: [2, 8, 16], entries };
}

/** An activation sweep: three activations, plain and adversarial. */
export function activationSweep(): SweepResult {
  const entries = [];
  for (const [k, activation] of ['relu', 'relu6', 'tanh'].entries()) {
    for (const adversarial of [false, true]) {
      entries.push({
        rho: 1, activation, adversarial, checkpoint: `runs/${activation}.safetensors`, parameters: 50000, trainSeconds: 100,
        result: evalResult(500, 480 - 5 * k, { fgsm: { label: 'true', top1: [300 + (adversarial ? 120 : 0) - 20 * k] } }, [8]),
      });
    }
  }
  return { preset: 'mnist-cnn', study: 'activation', methods: ['fgsm'], eps: [8], entries };
}

/** A 28x28 gray test pattern: a digit-like ring whose radius depends on `seed`. */
export function pattern(seed: number): Uint8Array {
  const px = new Uint8Array(28 * 28);
  const r = 6 + (seed % 5);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const d = Math.hypot(x - 14, y - 14);
    px[y * 28 + x] = Math.abs(d - r) < 2 ? 230 : 10;
  }
  return px;
}

/**
 * An `advml attack` output folder with `count` images, one method and two eps,
 * clean PNGs under clean/ named by `cleanFile` (so no dataset is needed), and
 * adversarial PNGs that add a +-eps checkerboard.
 */
export function writeAttackDir(dir: string, count = 4): void {
  const results = [];
  for (const eps of [8, 32]) {
    const perImage = [];
    mkdirSync(join(dir, 'fgsm', `eps-${eps}`), { recursive: true });
    mkdirSync(join(dir, 'clean'), { recursive: true });
    for (let i = 0; i < count; i++) {
      const clean = pattern(i);
      const adv = clean.map((v, j) => Math.max(0, Math.min(255, v + (((j % 28) + Math.floor(j / 28)) % 2 ? eps : -eps))));
      const file = join('fgsm', `eps-${eps}`, `${i}.png`);
      writeFileSync(join(dir, file), encodePng(adv, 28, 28, 1));
      writeFileSync(join(dir, 'clean', `${i}.png`), encodePng(clean, 28, 28, 1));
      perImage.push({ index: i, label: i % 10, clean: i % 10, adversarial: eps > 10 ? (i + 3) % 10 : i % 10, linf: eps, l2: eps * 28, file, cleanFile: join('clean', `${i}.png`) });
    }
    results.push({ method: 'fgsm', eps, labelSource: 'true', accuracy: eps > 10 ? 0 : 1, perImage });
  }
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ model: 'runs/plain.safetensors', data: 'mnist:test', images: count, cleanAccuracy: 1, results }, null, 2));
}
