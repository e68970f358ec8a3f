/** The commands of the advml CLI, by name (apart from main.ts, which runs on import, so that launch can check a worker's command). */
import type { Command } from './command.js';

/** Every command: its one-line summary and a loader (commands load lazily, so --help does not start the engine). */
export const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  demo: { summary: 'the main job: plain and adversarial training on MNIST, evaluated, with a report', load: async () => (await import('./demo.js')).demo },
  train: { summary: "adversarial training (the paper's Algorithm 1), resumable, from a preset", load: async () => (await import('./train.js')).train },
  attack: { summary: 'make adversarial images with any method and eps list; PNG files and a JSON summary', load: async () => (await import('./attack.js')).attack },
  eval: { summary: 'accuracy grid over methods and eps, with confidence intervals and label-leaking flags', load: async () => (await import('./eval.js')).evalCommand },
  transfer: { summary: 'transfer and error rates of adversarial examples between models', load: async () => (await import('./transfer.js')).transfer },
  sweep: { summary: 'capacity (width multiplier rho) and activation studies, trained and evaluated', load: async () => (await import('./sweep.js')).sweep },
  report: { summary: 'HTML page and PNG charts from eval, transfer, sweep and attack results', load: async () => (await import('./report.js')).report },
  reproduce: { summary: "the paper's four findings on MNIST and Fashion-MNIST, written to docs/results.md", load: async () => (await import('./reproduce.js')).reproduce },
  harden: { summary: 'the hardening table: plain, Algorithm 1, ensemble AT, PGD-AT, TRADES and fast AT side by side', load: async () => (await import('./harden.js')).harden },
  serve: { summary: 'a web page to watch adversarial examples happen, on MNIST models or ResNet50', load: async () => (await import('./serve.js')).serve },
  launch: { summary: 'run a command as N data-parallel worker processes (torchrun-style env, supervised)', load: async () => (await import('./launch.js')).launch },
  bench: { summary: 'measure advml against PyTorch on the same models, batch and threads', load: async () => (await import('./bench.js')).bench },
  info: { summary: 'show the engine: libtorch version, threads, CUDA devices, memory', load: async () => (await import('./info.js')).info },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  return `Usage: advml <command> [options]

Adversarial machine learning at scale, on a libtorch engine.

Commands:
${lines.join('\n')}

Run 'advml <command> --help' for a command's options.`;
}
