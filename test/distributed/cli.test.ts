/** `advml launch` wired into the CLI (the built dist/cli/main.js, as users run it). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';

function byRank(stdout: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of stdout.split('\n')) {
    const m = /^\[rank (\d+)\] (.*)$/.exec(line);
    if (m) out.set(Number(m[1]), `${out.get(Number(m[1])) ?? ''}${m[2]}\n`);
  }
  return out;
}

test('advml launch --nproc-per-node 2 -- info --json: two workers, each output line prefixed with its rank', () => {
  const r = runCli(['launch', '--nproc-per-node', '2', '--threads', '1', '--', 'info', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const ranks = byRank(r.stdout);
  assert.deepEqual([...ranks.keys()].sort(), [0, 1]);
  for (const [rank, text] of ranks) {
    const info = JSON.parse(text) as { libtorch: string; threads: number };
    assert.match(info.libtorch, /^\d+\.\d+/, `rank ${rank}`);
    assert.equal(info.threads, 1, `rank ${rank}: --threads reaches the worker`);
  }
});

test("advml launch: a failing worker makes the launcher name the rank, how it failed and the worker's own message, and exit non-zero", () => {
  const r = runCli(['launch', '--nproc-per-node', '2', '--', 'train', '--bogus']);
  assert.equal(r.status, 2, r.stderr);
  const message = "advml train: Unknown option '--bogus' (see 'advml train --help')";
  assert.ok(r.stderr.includes(`] ${message}\n`), r.stderr);
  const last = r.stderr.trim().split('\n').at(-1) as string;
  assert.match(last, /^advml launch: rank [01] failed \(exit code 2\): (.*); 2 workers stopped; exit code 2$/);
  assert.ok(last.includes(`(exit code 2): ${message}; 2 workers`), last);
});

test('advml launch: usage errors exit 2 with a message naming the option', () => {
  const cases: [string[], RegExp][] = [
    [['launch', '--nproc-per-node', '2', 'info'], /^advml launch: 'info' is not an option of launch; put the command to run after '--'/],
    // An unknown option is named as such, not taken for the missing '--' ...
    [['launch', '--nproc-per-node', '2', '--bogus'], /^advml launch: Unknown option '--bogus' \(see 'advml launch --help'\)\n$/],
    // ... and an option where the command belongs is said to be one, before any worker starts.
    [['launch', '--nproc-per-node', '2', '--', '--bogus'], /^advml launch: no command after '--': '--bogus' is an option, and the command comes first \(e\.g\. -- train --bogus\); commands: demo, train, /],
    [['launch', '--nproc-per-node', '2', '--', 'no-such-command'], /^advml launch: unknown command 'no-such-command' after '--'; commands: demo, train, /],
    [['launch', '--', 'info'], /--nproc-per-node is required/],
    [['launch', '--nproc-per-node', '0', '--', 'info'], /--nproc-per-node must be a positive integer, got '0'/],
    [['launch', '--nproc-per-node', '2', '--nnodes', '2', '--', 'info'], /with --nnodes > 1, give --master-addr and --master-port/],
    [['launch', '--nproc-per-node', '2', '--nnodes', '2', '--node-rank', '2', '--master-addr', '10.0.0.1', '--master-port', '29500', '--', 'info'], /--node-rank must be less than --nnodes \(2\), got 2/],
    [['launch', '--nproc-per-node', '1', '--master-port', '70000', '--', 'info'], /--master-port must be at most 65535/],
    [['launch', '--nproc-per-node', '1', '--'], /no command after '--'/],
    [['launch', '--nproc-per-node', '1', '--', 'launch', '--nproc-per-node', '1', '--', 'info'], /cannot be launch itself/],
    [['launch', '--nproc-per-node', '1', '--bogus', '--', 'info'], /Unknown option '--bogus'/],
  ];
  for (const [args, re] of cases) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('advml --help lists launch; advml launch --help describes it', () => {
  const top = runCli(['--help']);
  assert.match(top.stdout, /launch\s+run a command as N data-parallel worker processes/);
  const help = runCli(['launch', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: advml launch --nproc-per-node N/);
});
