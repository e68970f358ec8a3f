/** `advml info`: what the engine was built against and what it can use here. */
import { buildInfo, cudaDeviceCount, getNumThreads, memory } from '../engine/index.js';
import { type Command, parseOptions } from './command.js';

export const info: Command = {
  name: 'info',
  help: `Usage: advml info [--json] [--config]

Prints the libtorch version the native addon was built against, the thread
count in use (ADVML_NUM_THREADS overrides the default of one per core), the
CUDA devices libtorch sees and the engine's memory counters.

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
      memory: memory(),
      ...(values.config ? { parallel: b.parallel, config: b.config } : {}),
    };
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      console.log(`libtorch     ${report.libtorch}`);
      console.log(`threads      ${report.threads}`);
      console.log(`CUDA devices ${report.cudaDevices}`);
      console.log(`live tensors ${report.memory.liveTensors}`);
      if (values.config) console.log(`\n${b.parallel}\n${b.config}`);
    }
    return 0;
  },
};
