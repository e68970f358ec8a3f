/**
 * The launcher as a library, on tiny `node -e` workers: the environment each
 * worker gets, output relayed line by line, supervision (a failing worker
 * stops the others, SIGKILL after the grace period), signal forwarding, and
 * option errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeExit, freePort, launch, startWorkers, type LaunchEvent, type OutputLine } from '../../src/distributed/launcher.js';

const node = process.execPath;
const script = (src: string): string[] => ['-e', src];
const sleepForever = 'setInterval(() => {}, 1000);';

test('each worker gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT, ADVML_NUM_THREADS', async () => {
  const lines: OutputLine[] = [];
  const events: LaunchEvent[] = [];
  const port = await freePort();
  const result = await launch({
    command: node,
    args: script(`const e = process.env; console.log(JSON.stringify([e.RANK, e.WORLD_SIZE, e.LOCAL_RANK, e.LOCAL_WORLD_SIZE, e.GROUP_RANK, e.MASTER_ADDR, e.MASTER_PORT, e.ADVML_NUM_THREADS])); process.stderr.write('to stderr\\nno newline at end');`),
    nprocPerNode: 3, nnodes: 2, nodeRank: 1, masterAddr: '127.0.0.1', masterPort: port, threadsPerWorker: 2,
    env: { PATH: process.env.PATH },
    onOutput: (l) => lines.push(l),
    onEvent: (e) => events.push(e),
  });
  assert.deepEqual([result.ok, result.exitCode, result.failed, result.interrupted, result.worldSize], [true, 0, null, null, 6]);
  for (let local = 0; local < 3; local++) {
    const mine = lines.filter((l) => l.localRank === local);
    assert.deepEqual(mine.map((l) => [l.rank, l.stream, l.stream === 'stdout' ? JSON.parse(l.text) : l.text]).sort(), [
      [3 + local, 'stderr', 'no newline at end'],
      [3 + local, 'stderr', 'to stderr'],
      [3 + local, 'stdout', [String(3 + local), '6', String(local), '3', '1', '127.0.0.1', String(port), '2']],
    ]);
  }
  assert.deepEqual(result.workers.map((w) => [w.rank, w.code, w.signal, w.description]), [[3, 0, null, 'exit code 0'], [4, 0, null, 'exit code 0'], [5, 0, null, 'exit code 0']]);
  assert.equal(events.filter((e) => e.type === 'start').length, 3);
  assert.equal(events.filter((e) => e.type === 'exit').length, 3);
});

test('defaults: one node, 127.0.0.1, a free port, ADVML_NUM_THREADS left alone when the environment sets it', async () => {
  const out: string[] = [];
  const result = await launch({
    command: node, args: script('console.log(process.env.MASTER_ADDR, process.env.MASTER_PORT, process.env.ADVML_NUM_THREADS)'),
    nprocPerNode: 2, env: { ...process.env, ADVML_NUM_THREADS: '7' }, onOutput: (l) => out.push(l.text),
  });
  assert.equal(result.ok, true);
  assert.equal(out[0], out[1]);
  const [addr, port, threads] = (out[0] as string).split(' ');
  assert.equal(addr, '127.0.0.1');
  assert.ok(Number(port) > 0 && Number(port) < 65536);
  assert.equal(threads, '7');
  assert.equal(result.masterPort, Number(port));
});

test('a worker exiting non-zero stops the others (SIGTERM) and is reported with its exit code', async () => {
  const events: LaunchEvent[] = [];
  const started = Date.now();
  const result = await launch({
    command: node, args: script(`if (process.env.RANK === '1') setTimeout(() => process.exit(3), 200); else ${sleepForever}`),
    nprocPerNode: 3, graceMs: 5000, onEvent: (e) => events.push(e),
  });
  assert.ok(Date.now() - started < 4000, 'the sleepers were stopped by SIGTERM, without waiting for the grace period');
  assert.deepEqual([result.ok, result.exitCode], [false, 3]);
  assert.deepEqual([result.failed?.rank, result.failed?.code, result.failed?.signal, result.failed?.description], [1, 3, null, 'exit code 3']);
  assert.equal(result.failed?.stoppedByLauncher, false);
  for (const r of [0, 2]) {
    const w = result.workers[r]!;
    assert.deepEqual([w.signal, w.stoppedByLauncher], ['SIGTERM', true], `rank ${r}`);
  }
  const failure = events.find((e) => e.type === 'failure');
  assert.ok(failure && failure.type === 'failure' && failure.worker.rank === 1);
  assert.deepEqual(events.filter((e) => e.type === 'signal').map((e) => e.type === 'signal' && [e.rank, e.signal]).sort(), [[0, 'SIGTERM'], [2, 'SIGTERM']]);
});

test("a failed worker's last stderr lines come with its exit, blank lines left out, the last five kept", async () => {
  const lines = Array.from({ length: 7 }, (_, i) => `line ${i + 1}`).join('\\n\\n');
  const result = await launch({
    command: node, args: script(`if (process.env.RANK === '1') { process.stderr.write('${lines}\\n'); process.exit(2); } else ${sleepForever}`),
    nprocPerNode: 2, graceMs: 5000,
  });
  assert.deepEqual([result.failed?.rank, result.exitCode], [1, 2]);
  assert.deepEqual(result.failed?.stderrTail, ['line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
  assert.deepEqual(result.workers[0]?.stderrTail, [], 'the stopped worker wrote nothing');
  const inherited = await launch({ command: node, args: script('process.exit(4)'), nprocPerNode: 1, stdio: 'inherit' });
  assert.equal(inherited.failed?.stderrTail, undefined, 'not captured when the workers write to the terminal');
});

test('a worker killed by a signal is reported with the signal; exit code 128 + its number', async () => {
  const result = await launch({
    command: node, args: script(`if (process.env.RANK === '0') setTimeout(() => process.kill(process.pid, 'SIGKILL'), 100); else ${sleepForever}`),
    nprocPerNode: 2,
  });
  assert.deepEqual([result.failed?.rank, result.failed?.code, result.failed?.signal, result.failed?.description], [0, null, 'SIGKILL', 'signal SIGKILL']);
  assert.equal(result.exitCode, 137);
  assert.equal(result.workers[1]!.signal, 'SIGTERM');
});

test('a worker ignoring SIGTERM gets SIGKILL after the grace period', async () => {
  const events: LaunchEvent[] = [];
  const started = Date.now();
  const result = await launch({
    command: node,
    args: script(`if (process.env.RANK === '0') setTimeout(() => process.exit(1), 200); else { process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); ${sleepForever} }`),
    nprocPerNode: 2, graceMs: 400, onEvent: (e) => events.push(e),
  });
  const elapsed = Date.now() - started;
  assert.deepEqual([result.failed?.rank, result.failed?.code], [0, 1]);
  assert.deepEqual([result.workers[1]!.signal, result.workers[1]!.stoppedByLauncher], ['SIGKILL', true]);
  assert.deepEqual(events.filter((e) => e.type === 'signal').map((e) => e.type === 'signal' && e.signal), ['SIGTERM', 'SIGKILL']);
  assert.ok(elapsed >= 550 && elapsed < 5000, `took ${elapsed} ms`);
});

test('signal() forwards an interrupt to every worker; the launch counts as interrupted, exit code 128 + signal', async () => {
  const out: string[] = [];
  let ready = 0;
  let resolveReady: () => void = () => {};
  const allReady = new Promise<void>((resolve) => (resolveReady = resolve));
  const group = await startWorkers({
    command: node,
    args: script(`process.on('SIGINT', () => { console.log('got SIGINT'); process.exit(0); }); console.log('ready'); ${sleepForever}`),
    nprocPerNode: 2,
    onOutput: (l) => {
      out.push(`${l.rank}:${l.text}`);
      if (l.text === 'ready' && ++ready === 2) resolveReady();
    },
  });
  assert.equal(group.pids.length, 2);
  await allReady;
  group.signal('SIGINT');
  const result = await group.result;
  assert.deepEqual([result.ok, result.failed, result.interrupted, result.exitCode], [false, null, 'SIGINT', 130]);
  assert.deepEqual(out.filter((l) => l.endsWith('got SIGINT')).sort(), ['0:got SIGINT', '1:got SIGINT']);
  assert.deepEqual(result.workers.map((w) => [w.code, w.stoppedByLauncher]), [[0, true], [0, true]]);
});

test('a command that cannot start is a failure with the spawn error', async () => {
  const result = await launch({ command: '/nonexistent/advml-worker', nprocPerNode: 2 });
  assert.equal(result.ok, false);
  assert.equal(result.failed?.rank, 0);
  assert.match(result.failed?.description ?? '', /could not start: .*ENOENT/);
  assert.equal(result.exitCode, 1);
});

test('option errors', async () => {
  await assert.rejects(launch({ command: node, nprocPerNode: 0 }), /launch: nprocPerNode must be an integer >= 1, got 0/);
  await assert.rejects(launch({ command: node, nprocPerNode: 1, nnodes: 2 }), /with nnodes > 1, masterAddr and masterPort are required/);
  await assert.rejects(launch({ command: node, nprocPerNode: 1, nnodes: 2, nodeRank: 2, masterAddr: 'a', masterPort: 1 }), /nodeRank \(nnodes 2\) must be an integer in \[0, 1\], got 2/);
  await assert.rejects(launch({ command: node, nprocPerNode: 1, masterPort: 70000 }), /masterPort must be an integer in \[1, 65535\]/);
  await assert.rejects(launch({ command: '', nprocPerNode: 1 }), /command must be a non-empty string/);
  assert.equal(describeExit(2, null), 'exit code 2');
  assert.equal(describeExit(null, 'SIGTERM'), 'signal SIGTERM');
});
