/** `advml info`: what the engine was built against and what it can use here. */
import { Generator, buildInfo, cpuHasBf16, cudaDeviceCount, cudaHasBf16, getNumThreads, grad, loadedBlas, memory, noGrad, rand, resolvePrecision, scope } from '../engine/index.js';
import type { Classifier } from '../models/index.js';
import { type Command, parseOptions } from './command.js';
import { CONTRACT_HELP, CONTRACT_OPTIONS, loadModel } from './common.js';

export const info: Command = {
  name: 'info',
  help: `Usage: advml info [--json] [--config] [--model MODEL [contract options]]

Prints the libtorch version the native addon was built against, the thread
count in use (ADVML_NUM_THREADS overrides the default of one per core), the
CUDA devices libtorch sees, what precision 'auto' means on this CPU (and on
the CUDA device, where there is one), the BLAS
library libtorch calls, the CPU allocator, and the engine's memory counters.

With --model, prints the model's input contract (range, mean and std, channel
order, input size, classes), its parameter count, and a self-check: one
inference-mode forward pass and one input gradient on random images in the
model's range, both finite and of the right shape.

Options:
  --json     print one JSON object
  --config   also print libtorch's build configuration
${CONTRACT_HELP}
  -h, --help show this help`,
  async run(argv) {
    const { values } = parseOptions('info', argv, { json: { type: 'boolean' }, config: { type: 'boolean' }, model: { type: 'string' }, ...CONTRACT_OPTIONS });
    if (values.model !== undefined) return modelInfo(await loadModel(values.model, 'info', values), values.model, values.json === true);
    const b = buildInfo();
    const report = {
      libtorch: b.torchVersion,
      threads: getNumThreads(),
      cudaDevices: cudaDeviceCount(),
      cpuBf16: cpuHasBf16(),
      autoPrecision: resolvePrecision('auto'),
      ...(cudaDeviceCount() > 0 ? { cudaBf16: cudaHasBf16(), autoPrecisionCuda: resolvePrecision('auto', 'cuda') } : {}),
      blas: loadedBlas(),
      memory: memory(),
      ...(values.config ? { parallel: b.parallel, config: b.config } : {}),
    };
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      console.log(`libtorch     ${report.libtorch}`);
      console.log(`threads      ${report.threads}`);
      console.log(`CUDA devices ${report.cudaDevices}${report.autoPrecisionCuda ? ` (auto = ${report.autoPrecisionCuda} there; bfloat16: ${report.cudaBf16 ? 'yes' : 'no'})` : ''}`);
      console.log(`precision    auto = ${report.autoPrecision} (bfloat16 instructions: ${report.cpuBf16 ? 'yes' : 'no'})`);
      console.log(`BLAS         ${report.blas.join(', ') || 'unknown'}`);
      const limit = report.memory.cacheLimitBytes;
      console.log(`allocator    ${limit ? `caching, keeps up to ${limit / 2 ** 20} MiB of freed large blocks (ADVML_CPU_CACHE_MB)` : "libtorch's default (ADVML_CPU_CACHE_MB=0)"}`);
      console.log(`live tensors ${report.memory.liveTensors}`);
      if (values.config) console.log(`\n${b.parallel}\n${b.config}`);
    }
    return 0;
  },
};

/** What a model takes and predicts, and whether a forward pass and an input gradient work on it. */
async function modelInfo(model: Classifier, source: string, json: boolean): Promise<number> {
  try {
    const contract = model.contract();
    const check = selfCheck(model);
    const report = { model: source, contract, parameters: model.module.parameterCount(), selfCheck: check };
    if (json) console.log(JSON.stringify(report, null, 2));
    else {
      const names = contract.classNames;
      console.log(`model        ${source}`);
      console.log(`input        ${contract.inputShape.join('x')} (C x H x W), values in [${contract.inputRange}]${contract.bgr ? ', BGR order' : ''}`);
      console.log(`preprocess   mean ${contract.mean ? `[${contract.mean}]` : 'none'}, std ${contract.std ? `[${contract.std}]` : 'none'}`);
      console.log(`classes      ${contract.classes}${names ? ` (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''})` : ''}`);
      console.log(`parameters   ${report.parameters.toLocaleString('en-US')}`);
      console.log(`self-check   ${check.ok ? 'ok' : 'FAILED'}: ${check.detail}`);
    }
    return check.ok ? 0 : 1;
  } finally {
    model.dispose();
  }
}

/** One inference-mode forward and one input gradient on two random images in the model's range. */
function selfCheck(model: Classifier): { ok: boolean; detail: string } {
  model.module.eval();
  try {
    return scope(() => {
      const [lo, hi] = model.inputRange;
      const x = rand([2, ...model.inputShape], { generator: new Generator(0) }).mul(hi - lo).add(lo).requiresGrad_(true);
      const logits = model.logits(x);
      const finiteLogits = noGrad(() => logits.isfinite().all().item() === 1);
      const [g] = grad(logits.logSoftmax(1).select(1, 0).sum(), x);
      const gradNorm = noGrad(() => g!.norm(2).item());
      const ok = finiteLogits && Number.isFinite(gradNorm) && gradNorm > 0;
      return { ok, detail: `logits [${logits.shape}]${finiteLogits ? '' : ' NOT FINITE'}, input gradient norm ${gradNorm.toPrecision(3)}${gradNorm > 0 ? '' : ' (zero: no gradient reaches the input)'}` };
    });
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
}
