/**
 * The training-mode batch norm + residual add + ReLU node against the separate
 * ops it replaces: forward and backward (input, weight, bias and shortcut
 * gradients) of relu(bn(x) + shortcut) on channels-last batches of ResNet-20's
 * three stage shapes at batch 128, float32 and bfloat16 activations, same
 * process and threads. Milliseconds per call, median of the rounds.
 *
 *   node --import tsx bench/fused-benchmark.ts [--rounds 5] [--calls 20]
 */
import { parseArgs } from 'node:util';
import { type DType, type Tensor, getNumThreads, grad, randn, scope } from '../src/index.js';
import { BatchNorm2d, batchNormActivation, batchNormReluFuses, setBatchNormReluFusion } from '../src/nn/index.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, calls: { type: 'string', default: '20' } }, strict: true });
const rounds = Number(args.rounds);
const calls = Number(args.calls);
for (const [name, v] of [['rounds', rounds], ['calls', calls]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got '${args[name]}'`);
}
const SHAPES = [[128, 16, 32, 32], [128, 32, 16, 16], [128, 64, 8, 8]];
const RELU = { name: 'relu' } as const;
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;

/** Milliseconds per forward + backward call, fused or separate, median over rounds (the two alternate). */
function measure(shape: number[], dtype: DType): { fused: number; separate: number } {
  return scope(() => {
    const bn = new BatchNorm2d(shape[1] as number).train();
    const activation = (): Tensor => randn(shape).to(dtype).contiguous('channelsLast');
    const x = activation().requiresGrad_();
    const shortcut = activation().requiresGrad_();
    const gy = activation();
    const call = (): void => scope(() => {
      const y = batchNormActivation(bn, x, RELU, shortcut);
      grad([y], [x, bn.weight as Tensor, bn.bias as Tensor, shortcut], { gradOutputs: [gy] });
    });
    const time = (fused: boolean): number => {
      const previous = setBatchNormReluFusion(fused);
      try {
        if (batchNormReluFuses(bn, x, RELU, shortcut) !== fused) throw new Error(`the node ${fused ? 'does not apply' : 'applies'} to ${dtype} ${shape.join('x')}`);
        for (let i = 0; i < 3; i++) call();
        const t0 = performance.now();
        for (let i = 0; i < calls; i++) call();
        return (performance.now() - t0) / calls;
      } finally {
        setBatchNormReluFusion(previous);
      }
    };
    const fused: number[] = [];
    const separate: number[] = [];
    for (let r = 0; r < rounds; r++) {
      fused.push(time(true));
      separate.push(time(false));
    }
    bn.dispose();
    return { fused: median(fused), separate: median(separate) };
  });
}

console.log(`relu(bn(x) + shortcut), training mode, forward + backward; ${getNumThreads()} threads, median of ${rounds} rounds of ${calls} calls\n`);
console.log('| activations | shape | fused node | separate ops | separate / fused |');
console.log('|---|---|---|---|---|');
for (const dtype of ['float32', 'bfloat16'] as DType[]) {
  for (const shape of SHAPES) {
    const r = measure(shape, dtype);
    console.log(`| ${dtype} | ${shape.join('x')} | ${r.fused.toFixed(2)} ms | ${r.separate.toFixed(2)} ms | **${(r.separate / r.fused).toFixed(2)}** |`);
  }
}
