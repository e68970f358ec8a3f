/** `advml bench`: the peer benchmark against PyTorch (bench/peer-benchmark.ts). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, UsageError } from './command.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const bench: Command = {
  name: 'bench',
  help: `Usage: advml bench [options]

Runs bench/peer-benchmark.ts: advml with its defaults against PyTorch (Debian
python3-torch) as its users run it by default (float32, NCHW, its own thread
count) and against PyTorch with advml's settings (same precision,
channels-last, threads, allocator), on the MNIST CNN and ResNet-20: forward,
FGSM step, training step, adversarial training step, batch 128 and batch 1,
rotating in one run; prints images per second, the ratios and the targets.

Options (passed through):
  --rounds N          rounds per figure, median kept (default 3)
  --seconds S         minimum timed seconds per measurement (default 2)
  --batch N           batch size (default 128)
  --batch1-modes L    modes also measured at batch 1 (default forward,fgsm)
  --threads N         advml's and tuned PyTorch's threads (default: the cores)
  --precision P       override advml's default precision (fp32, bf16-autocast, auto)
  --models LIST       mnist-cnn,resnet20
  --modes LIST        forward,fgsm,eval-fgsm,train,adv-train
  --json FILE         write the figures as JSON
  --markdown FILE     write the section into a Markdown page (docs/benchmarks.md)
  -h, --help         show this help`,
  async run(argv) {
    const script = `${root}bench/peer-benchmark.ts`;
    if (!existsSync(script)) throw new UsageError('advml bench: needs a source checkout (bench/peer-benchmark.ts not found)');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...argv], { stdio: 'inherit', cwd: root });
    return r.status ?? 1;
  },
};
