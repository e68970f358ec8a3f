/**
 * `advml launch`: runs an advml command as N worker processes of a
 * data-parallel job (the launcher is src/distributed/launcher.ts). The
 * launcher itself never loads libtorch.
 */
import { launch as launchWorkers, type LaunchEvent, type OutputLine } from '../distributed/launcher.js';
import { type Command, UsageError, nonNegativeInt, parseOptions, positiveInt } from './command.js';
import { COMMANDS } from './commands.js';

const help = `Usage: advml launch --nproc-per-node N [options] -- <command> [args...]

Starts N worker processes of the advml CLI on this machine, each running
'advml <command> [args...]' with RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT set (the variables
torchrun sets), so that the command's process group spans all workers
(a command joins it by calling initProcessGroup()).

Each output line is prefixed with its worker's rank. SIGINT and SIGTERM are
forwarded to all workers. When a worker exits non-zero or is killed, the
others get SIGTERM and, after the grace period, SIGKILL; the launcher then
names the rank that failed, how, and its last lines on stderr (its own error
message; not with --no-prefix), and exits with that worker's exit code
(128 + the signal number when a signal ended it).

For several machines run one launcher per machine with the same --nnodes,
--master-addr and --master-port and its own --node-rank.

Options:
  --nproc-per-node N  worker processes on this machine (required)
  --nnodes M          machines in the job (default 1)
  --node-rank R       this machine's index in [0, M) (default 0)
  --master-addr A     address of the machine running rank 0
                      (default 127.0.0.1; required when M > 1)
  --master-port P     rendezvous port on that machine (default: a free port on
                      127.0.0.1; required when M > 1)
  --timeout-ms MS     timeout of each collective and of the rendezvous, passed
                      as ADVML_DIST_TIMEOUT_MS (default 60000)
  --threads T         libtorch threads per worker (default: cores / N, at least 1)
  --grace-ms MS       time between SIGTERM and SIGKILL when stopping workers
                      (default 5000)
  --no-prefix         let workers write straight to this terminal, unprefixed
  -h, --help          show this help

Examples:
  advml launch --nproc-per-node 2 -- info --json
  advml launch --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500 \\
      --nproc-per-node 4 -- train --out runs/dp --preset mnist`;

export const launch: Command = {
  name: 'launch',
  help,
  async run(argv) {
    const sep = argv.indexOf('--');
    const command = sep < 0 ? [] : argv.slice(sep + 1);
    // The launcher's own options are read first, so that an unknown one is named as such, not taken for a missing '--'.
    const { values } = launchOptions(sep < 0 ? argv : argv.slice(0, sep), {
      'nproc-per-node': { type: 'string' },
      nnodes: { type: 'string' },
      'node-rank': { type: 'string' },
      'master-addr': { type: 'string' },
      'master-port': { type: 'string' },
      'timeout-ms': { type: 'string' },
      threads: { type: 'string' },
      'grace-ms': { type: 'string' },
      'no-prefix': { type: 'boolean' },
    });
    if (sep < 0) throw new UsageError(`advml launch: put the command to run after '--', e.g. advml launch --nproc-per-node 2 -- info (see 'advml launch --help')`);
    if (values['nproc-per-node'] === undefined) throw new UsageError(`advml launch: --nproc-per-node is required (see 'advml launch --help')`);
    const nproc = positiveInt('launch', 'nproc-per-node', values['nproc-per-node'], 1);
    const nnodes = positiveInt('launch', 'nnodes', values.nnodes, 1);
    const nodeRank = nonNegativeInt('launch', 'node-rank', values['node-rank'], 0);
    if (nodeRank >= nnodes) throw new UsageError(`advml launch: --node-rank must be less than --nnodes (${nnodes}), got ${nodeRank}`);
    const masterAddr = values['master-addr'];
    const masterPort = values['master-port'] === undefined ? undefined : positiveInt('launch', 'master-port', values['master-port'], 0);
    if (masterPort !== undefined && masterPort > 65535) throw new UsageError(`advml launch: --master-port must be at most 65535, got ${masterPort}`);
    if (nnodes > 1 && (masterAddr === undefined || masterPort === undefined)) {
      throw new UsageError('advml launch: with --nnodes > 1, give --master-addr and --master-port (the same on every machine)');
    }
    const timeoutMs = values['timeout-ms'] === undefined ? undefined : positiveInt('launch', 'timeout-ms', values['timeout-ms'], 0);
    const threads = values.threads === undefined ? undefined : positiveInt('launch', 'threads', values.threads, 1);
    const graceMs = nonNegativeInt('launch', 'grace-ms', values['grace-ms'], 5000);
    checkWorkerCommand(command);

    const entry = process.argv[1];
    if (entry === undefined) throw new Error('cannot tell which script runs the advml CLI (process.argv[1] is unset)');
    const prefix = !values['no-prefix'];
    const env = { ...process.env, ...(timeoutMs === undefined ? {} : { ADVML_DIST_TIMEOUT_MS: String(timeoutMs) }) };
    const print = (line: OutputLine): void => {
      (line.stream === 'stdout' ? process.stdout : process.stderr).write(`[rank ${line.rank}] ${line.text}\n`);
    };
    const onEvent = (e: LaunchEvent): void => {
      if (e.type === 'failure') {
        console.error(`advml launch: rank ${e.worker.rank} (local rank ${e.worker.localRank}, pid ${e.worker.pid}) failed: ${e.worker.description}; stopping the other workers`);
      }
    };
    const result = await launchWorkers({
      command: process.execPath,
      args: [...process.execArgv, entry, ...command],
      nprocPerNode: nproc, nnodes, nodeRank, masterAddr, masterPort, env, graceMs,
      ...(threads === undefined ? {} : { threadsPerWorker: threads }),
      stdio: prefix ? 'pipe' : 'inherit',
      onOutput: print,
      onEvent,
      forwardSignals: true,
    });
    if (result.failed) {
      const f = result.failed;
      // The worker's own last words (its usage error, say) belong in the launcher's verdict, not only scrolled past above it.
      const tail = f.stderrTail ?? [];
      const stopped = `${result.workers.length} workers stopped; exit code ${result.exitCode}`;
      if (tail.length === 1) console.error(`advml launch: rank ${f.rank} failed (${f.description}): ${tail[0]}; ${stopped}`);
      else if (tail.length > 1) console.error(`advml launch: rank ${f.rank} failed (${f.description}); ${stopped}; its last lines on stderr:\n${tail.map((l) => `  ${l}`).join('\n')}`);
      else console.error(`advml launch: rank ${f.rank} failed (${f.description}); ${stopped}`);
    } else if (result.interrupted) {
      console.error(`advml launch: interrupted by ${result.interrupted}; workers: ${result.workers.map((w) => `rank ${w.rank} ${w.description}`).join(', ')}`);
    }
    return result.exitCode;
  },
};

/** parseOptions for launch: a command name before '--' reads as a stray argument, so the message says where it goes. */
function launchOptions<O extends Parameters<typeof parseOptions>[2]>(argv: string[], options: O): ReturnType<typeof parseOptions<O>> {
  try {
    return parseOptions('launch', argv, options);
  } catch (e) {
    const stray = e instanceof UsageError ? /Unexpected argument '([^']*)'/.exec(e.message)?.[1] : undefined;
    if (stray === undefined) throw e;
    throw new UsageError(`advml launch: '${stray}' is not an option of launch; put the command to run after '--', e.g. advml launch --nproc-per-node 2 -- ${stray} (see 'advml launch --help')`);
  }
}

/** The command after '--' must name an advml command: an option there ('-- --bogus') means the command was left out. */
function checkWorkerCommand(command: string[]): void {
  const known = Object.keys(COMMANDS).filter((c) => c !== 'launch').join(', ');
  const first = command[0];
  if (first === undefined) throw new UsageError(`advml launch: no command after '--' (e.g. -- info --json)`);
  if (first === 'launch') throw new UsageError('advml launch: the command cannot be launch itself');
  if (first.startsWith('-')) {
    throw new UsageError(`advml launch: no command after '--': '${first}' is an option, and the command comes first (e.g. -- train ${command.join(' ')}); commands: ${known}`);
  }
  if (!Object.hasOwn(COMMANDS, first)) throw new UsageError(`advml launch: unknown command '${first}' after '--'; commands: ${known}`);
}
