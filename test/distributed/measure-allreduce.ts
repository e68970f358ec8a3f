/**
 * Measures all-reduce across 2 processes on this machine (loopback Gloo), as
 * quoted in docs/distributed.md. Not a test: run it by hand,
 *
 *   node --import tsx test/distributed/measure-allreduce.ts [floats=24000000] [reps=5]
 *
 * It launches itself twice through the launcher. Measured: one tensor of N
 * float32; and the same N floats as a model's gradient list (tensor sizes of a
 * ResNet-like model, scaled) with each coalescing mode. Prints the median
 * time per all-reduce of rank 0. measure_allreduce.py is the PyTorch side.
 */
import { fileURLToPath } from 'node:url';
import { launch } from '../../src/distributed/launcher.js';

const floats = Number(process.argv[2] ?? 24_000_000);
const reps = Number(process.argv[3] ?? 5);

/** Tensor sizes summing to `total`: conv weights and small bias/norm vectors, as in a ResNet. */
function gradientSizes(total: number): number[] {
  const shapes: number[] = [];
  // 20 layers of weights growing with depth, each followed by two small vectors (bn weight and bias).
  const weights = Array.from({ length: 20 }, (_, i) => 2 ** Math.floor(i / 7));
  const unit = total / weights.reduce((a, b) => a + b, 0);
  let used = 0;
  for (const w of weights) {
    const n = Math.max(1, Math.floor(w * unit * 0.999));
    const small = Math.max(1, Math.floor(n / 2000));
    shapes.push(n, small, small);
    used += n + 2 * small;
  }
  shapes[0]! += total - used;
  return shapes;
}

/** ResNet-20 (CIFAR) parameter tensor sizes: 3x3 convs of 16, 32, 64 channels, batch-norm pairs, a 64x10 head. */
function resnet20Sizes(): number[] {
  const sizes = [3 * 16 * 9, 16, 16];
  let c = 16;
  for (const w of [16, 32, 64]) {
    for (let b = 0; b < 3; b++) {
      sizes.push(c * w * 9, w, w, w * w * 9, w, w);
      c = w;
    }
  }
  sizes.push(64 * 10, 10);
  return sizes;
}

async function worker(): Promise<void> {
  const { initProcessGroup } = await import('../../src/distributed/process-group.js');
  const { full, scope } = await import('../../src/engine/index.js');
  const pg = initProcessGroup({ timeoutMs: 120_000 });
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const time = (fn: () => void, n: number): number => {
    fn(); // warm-up: connections, buffers
    const ts: number[] = [];
    for (let i = 0; i < n; i++) {
      pg.barrier();
      const t0 = process.hrtime.bigint();
      fn();
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return median(ts);
  };
  const results: Record<string, number> = {};
  const modes = ['auto', 'flatten', 'coalesced', 'each'] as const;
  scope(() => {
    const one = full([floats], pg.rank + 1);
    results['one tensor'] = time(() => pg.allReduce(one, 'sum'), reps);
    one.dispose();
    const grads = gradientSizes(floats).map((n) => full([n], pg.rank + 1));
    for (const mode of modes) results[`${grads.length} tensors, ${mode}`] = time(() => pg.allReduce(grads, 'sum', { coalesce: mode }), reps);
    grads.forEach((g) => g.dispose());
    // A small model: ResNet-20's conv, batch-norm and head tensors, 0.27 M floats.
    const small = resnet20Sizes().map((n) => full([n], pg.rank + 1));
    const total = small.reduce((a, t) => a + t.size, 0);
    for (const mode of modes) results[`small model (${small.length} tensors, ${total} floats), ${mode}`] = time(() => pg.allReduce(small, 'sum', { coalesce: mode }), 20 * reps);
  });
  if (pg.rank === 0) {
    console.log(`all-reduce of ${floats} float32 across ${pg.worldSize} processes, median of ${reps} (ms):`);
    for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(56)} ${v.toFixed(2)}`);
  }
  pg.destroy();
}

if (process.env.RANK !== undefined) {
  await worker();
} else {
  const self = fileURLToPath(import.meta.url);
  const result = await launch({
    command: process.execPath, args: ['--import', 'tsx', self, String(floats), String(reps)], nprocPerNode: 2,
    onOutput: (l) => (l.stream === 'stdout' ? console.log(l.text) : console.error(`[rank ${l.rank}] ${l.text}`)),
  });
  process.exitCode = result.exitCode;
}
