/** `advml bench`: the peer benchmark against PyTorch (bench/peer-benchmark.ts). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, UsageError } from './command.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const bench: Command = {
  name: 'bench',
  help: `Usage: advml bench [options]

Runs bench/peer-benchmark.ts: advml and PyTorch (Debian python3-torch) on the
MNIST CNN and ResNet-20, batch 128, 2 threads, forward / FGSM step / training
step, alternating in one run, and prints images per second and the ratio.

Options (passed through):
  --rounds N         rounds per figure, median kept (default 3)
  --seconds S        minimum timed seconds per measurement (default 2)
  --batch N          batch size (default 128)
  --threads N        threads on both sides (default 2)
  --models LIST      mnist-cnn,resnet20
  --modes LIST       forward,fgsm,train,adv-train
  --json FILE        write the figures as JSON
  --markdown FILE    write the figures as a Markdown page (docs/benchmarks.md)
  -h, --help         show this help`,
  async run(argv) {
    const script = `${root}bench/peer-benchmark.ts`;
    if (!existsSync(script)) throw new UsageError('advml bench: needs a source checkout (bench/peer-benchmark.ts not found)');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...argv], { stdio: 'inherit', cwd: root });
    return r.status ?? 1;
  },
};
