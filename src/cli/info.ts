/** `advml info`: what the engine was built against and what it can use here. */
import { buildInfo, cpuHasBf16, cudaDeviceCount, cudaHasBf16, getNumThreads, loadedBlas, memory, resolvePrecision } from '../engine/index.js';
import { type Command, parseOptions } from './command.js';

export const info: Command = {
  name: 'info',
  help: `Usage: advml info [--json] [--config]

Prints the libtorch version the native addon was built against, the thread
count in use (ADVML_NUM_THREADS overrides the default of one per core), the
CUDA devices libtorch sees, what precision 'auto' means on this CPU (and on
the CUDA device, where there is one), the BLAS
library libtorch calls, the CPU allocator, and the engine's memory counters.

Options:
  --json     print one JSON object
  --config   also print libtorch's build configuration
  -h, --help show this help`,
  async run(argv) {
    const { values } = parseOptions('info', argv, { json: { type: 'boolean' }, config: { type: 'boolean' } });
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
