/**
 * Foreign-model benchmark, one run: one FGSM step (forward, input gradient,
 * signed step) on a TorchScript and an ONNX model, against the same network
 * in PyTorch eager (bench/peer.py) and, for ResNet-20, advml's own zoo model;
 * fp32 and bf16-autocast, same batch and threads on every side.
 *
 *   node --import tsx bench/foreign-benchmark.ts [--threads 2] [--rounds 3] [--seconds 2] [--markdown FILE]
 *
 * The models come from bench/export_foreign.py (peer.py's own definitions,
 * written to a temporary folder by Debian's PyTorch).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Generator, type Precision, rand, randint, scope, setNumThreads } from '../src/index.js';
import * as A from '../src/attacks/index.js';
import { Classifier, ResNet, loadModel } from '../src/models/index.js';
import { measure } from './workloads.js';
import { median, startPeer } from './peer-process.js';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '2' },
    markdown: { type: 'string' },
  },
  strict: true,
});
const threads = Number(args.threads);
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);

const NETWORKS = {
  resnet20: { shape: [3, 32, 32] as [number, number, number], batch: 128 },
  resnet18: { shape: [3, 64, 64] as [number, number, number], batch: 32 },
};
type Network = keyof typeof NETWORKS;
const PRECISIONS: Precision[] = ['fp32', 'bf16-autocast'];

/** Seconds per FGSM step of `model` on a seeded batch. */
function fgsmSeconds(model: Classifier, network: Network, precision: Precision): number {
  const { shape, batch } = NETWORKS[network];
  const g = new Generator(0);
  const x = rand([batch, ...shape], { generator: g }).keep();
  const y = randint(0, 10, [batch], { generator: g }).keep();
  const step = (): void => scope(() => void A.fgsm(model, x, { eps: 8, y, precision }));
  const t = 1 / measure({ step, dispose: () => {} }, 1, seconds, 1).imagesPerSec;
  x.dispose();
  y.dispose();
  return t;
}

async function main(): Promise<void> {
  setNumThreads(threads);
  const dir = mkdtempSync(join(tmpdir(), 'advml-foreign-bench-'));
  try {
    execFileSync('/usr/bin/python3', [fileURLToPath(new URL('./export_foreign.py', import.meta.url)), dir], { stdio: 'ignore' });
    const models: [string, Network, Classifier][] = [];
    for (const network of Object.keys(NETWORKS) as Network[]) {
      const [c, h, w] = NETWORKS[network].shape;
      for (const ext of ['pt', 'onnx']) {
        models.push([ext === 'pt' ? 'TorchScript' : 'ONNX', network, await loadModel(join(dir, `${network}.${ext}`), { inputShape: [c, h, w], classes: 10 })]);
      }
    }
    const zoo = new Classifier(new ResNet({ depth: 20, generator: new Generator(0) }).toMemoryFormat('channelsLast').eval(), { classes: 10, inputShape: [3, 32, 32] });
    models.push(['advml zoo', 'resnet20', zoo]);

    const peer = startPeer();
    const torch = await peer.version;
    const times = new Map<string, number[]>();
    const add = (key: string, t: number): void => void (times.get(key) ?? times.set(key, []).get(key)!).push(t);
    for (let r = 0; r < rounds; r++) {
      for (const precision of PRECISIONS) {
        for (const [kind, network, model] of models) add(`${kind}|${network}|${precision}`, fgsmSeconds(model, network, precision));
        for (const network of Object.keys(NETWORKS) as Network[]) {
          const { batch } = NETWORKS[network];
          const answer = await peer.ask({ model: network, mode: 'fgsm', batch, threads, seconds, warmup: 1, precision: precision === 'fp32' ? 'fp32' : 'bf16' });
          add(`PyTorch eager|${network}|${precision}`, batch / answer.imagesPerSec);
        }
      }
    }
    peer.close();
    for (const [, , m] of models) m.dispose();

    const at = (kind: string, network: string, precision: string): number | undefined => {
      const list = times.get(`${kind}|${network}|${precision}`);
      return list ? median(list) : undefined;
    };
    const lines = [
      `One FGSM step, ${threads} threads, PyTorch ${torch}, median of ${rounds} rounds of ${seconds} s; speed ratios (above 1: advml faster).`,
      '',
      '| network (batch) | precision | model | ms per step | vs PyTorch eager | vs advml zoo |',
      '|---|---|---|---|---|---|',
    ];
    for (const network of Object.keys(NETWORKS) as Network[]) {
      for (const precision of PRECISIONS) {
        const torchT = at('PyTorch eager', network, precision)!;
        const zooT = at('advml zoo', network, precision);
        for (const kind of ['TorchScript', 'ONNX', 'advml zoo', 'PyTorch eager']) {
          const t = at(kind, network, precision);
          if (t === undefined) continue;
          const vsTorch = kind === 'PyTorch eager' ? '' : (torchT / t).toFixed(2);
          const vsZoo = zooT === undefined || kind === 'advml zoo' ? '' : (zooT / t).toFixed(2);
          lines.push(`| ${network} (${NETWORKS[network].batch}) | ${precision} | ${kind} | ${(t * 1000).toFixed(1)} | ${vsTorch} | ${vsZoo} |`);
        }
      }
    }
    console.log(lines.join('\n'));
    if (args.markdown) writeFileSync(args.markdown, lines.join('\n') + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
