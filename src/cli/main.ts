#!/usr/bin/env node
/** The advml command line: `advml <command> [options]`. */
import { type Command, UsageError } from './command.js';

const loaders: Record<string, () => Promise<Command>> = {
  info: async () => (await import('./info.js')).info,
  bench: async () => (await import('./bench.js')).bench,
  attack: async () => (await import('./attack.js')).attack,
  eval: async () => (await import('./eval.js')).evalCommand,
  train: async () => (await import('./train.js')).train,
  demo: async () => (await import('./demo.js')).demo,
  transfer: async () => (await import('./transfer.js')).transfer,
  sweep: async () => (await import('./sweep.js')).sweep,
  serve: async () => (await import('./serve.js')).serve,
  reproduce: async () => (await import('./reproduce.js')).reproduce,
  report: async () => (await import('./report.js')).report,
  launch: async () => (await import('./launch.js')).launch,
};

const summaries: Record<string, string> = {
  info: 'show the engine: libtorch version, threads, CUDA devices, memory',
  bench: 'measure advml against PyTorch on the same models, batch and threads',
  attack: 'make adversarial images with any method and eps list; PNG files and a JSON summary',
  eval: 'accuracy grid over methods and eps, with confidence intervals and label-leaking flags',
  train: "adversarial training (the paper's Algorithm 1), resumable, from a preset",
  demo: 'the main job: plain and adversarial training on MNIST, evaluated, with a report',
  transfer: 'transfer and error rates of adversarial examples between models',
  sweep: 'capacity (width multiplier rho) and activation studies, trained and evaluated',
  serve: 'a web page to watch adversarial examples happen, on MNIST models or ResNet50',
  reproduce: "the paper's four findings on MNIST and Fashion-MNIST, written to docs/results.md",
  report: 'HTML page and PNG charts from eval, transfer, sweep and attack results',
  launch: 'run a command as N data-parallel worker processes (torchrun-style env, supervised)',
};

function usage(): string {
  const width = Math.max(...Object.keys(summaries).map((k) => k.length));
  const lines = Object.entries(summaries).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  return `Usage: advml <command> [options]

Adversarial machine learning at scale, on a libtorch engine.

Commands:
${lines.join('\n')}

Run 'advml <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const load = loaders[name];
  if (!load) {
    console.error(`advml: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  // Commands load lazily so `--help` does not start the engine.
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log((await load()).help);
    return 0;
  }
  try {
    return await (await load()).run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(e.message);
      return 2;
    }
    console.error(`advml ${name}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
