/**
 * Process groups on c10d with real processes over loopback (127.0.0.1 only,
 * ports chosen free at test time): collectives against analytic values for 2
 * and 3 ranks, the single-process identity case, argument errors, a timeout,
 * and a rank killed while another waits in an all-reduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { full, memory, scope, tensor } from '../../src/engine/index.js';
import {
  DistributedError, currentGroup, initProcessGroup, isDistributed, launch, rank, worldSize, type ProcessGroup,
} from '../../src/distributed/index.js';
import type { Collective } from '../../src/training/trainer.js';
import { close, resultOf, spawnRanks, workerArgs, zipWith, type Nested } from './helpers.js';

// ---- the analytic values ----

interface Value { dtype: string; shape: number[]; data: Nested }

const rows = (shape: [number, number], f: (p: number, q: number) => number): Nested =>
  Array.from({ length: shape[0] }, (_, p) => Array.from({ length: shape[1] }, (_, q) => f(p, q)));

/** What worker.ts's inputs(r) hold, written out independently. */
function rankInputs(r: number): Value[] {
  return [
    { dtype: 'float32', shape: [2, 3], data: rows([2, 3], (p, q) => (r + 1) * (3 * p + q)) },
    { dtype: 'float64', shape: [4], data: [0.25, -1.5, 3, 7.125].map((v) => v + 10 * r) },
    { dtype: 'int64', shape: [3, 1, 2], data: [0, 1, 2].map((p) => [[0, 1].map((q) => r * (2 * p + q) + r * r)]) },
    { dtype: 'float32', shape: [2, 3], data: rows([2, 3], (p, q) => 2 * q + p + r) },
    { dtype: 'float32', shape: [], data: 2 * r - 1 },
  ];
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

function expectReduced(actual: Value[], world: number, f: (xs: number[]) => number, what: string, keep = (_v: Value, _k: number): boolean => true): void {
  const perRank = Array.from({ length: world }, (_, r) => rankInputs(r).filter(keep));
  assert.equal(actual.length, perRank[0]!.length, `${what}: number of tensors`);
  perRank[0]!.forEach((v, k) => {
    const a = actual[k]!;
    assert.equal(a.dtype, v.dtype, `${what}[${k}] dtype`);
    assert.deepEqual(a.shape, v.shape, `${what}[${k}] shape`);
    close(a.data, zipWith(perRank.map((vs) => vs[k]!.data), f), 1e-6, `${what}[${k}]`);
  });
}

interface ErrorInfo { name: string; message: string; op?: string; rank?: number; worldSize?: number; reason?: string; elapsedMs: number }

interface CollectiveResult {
  rank: number; worldSize: number; localRank: number; backend: string;
  helpers: { isDistributed: boolean; rank: number; worldSize: number };
  [key: string]: unknown;
}

/** Checks one rank's RESULT of the 'collectives' scenario against the analytic values. */
function checkCollectives(res: CollectiveResult, r: number, world: number): void {
  assert.equal(res.rank, r);
  assert.equal(res.worldSize, world);
  assert.equal(res.localRank, r);
  assert.equal(res.backend, 'gloo');
  assert.deepEqual(res.helpers, { isDistributed: true, rank: r, worldSize: world });
  for (const mode of ['auto', 'flatten', 'coalesced', 'each']) expectReduced(res[`sum-${mode}`] as Value[], world, sum, `sum-${mode}`);
  const ranks0 = Array.from({ length: world }, (_, q) => q);
  const k1 = sum(ranks0.map((q) => q + 1));
  const sr = sum(ranks0);
  for (const mode of ['auto', 'flatten']) {
    const big = res[`big-${mode}`] as { small: Value[]; big0: Record<string, number>; big1: Record<string, unknown> };
    expectReduced(big.small, world, sum, `big-${mode}.small`, (_v, k) => k < 3); // inputs 0, 1, 2
    assert.deepEqual(big.big0, { first: k1, last: k1, sum: 300_000 * k1 }, `big-${mode}.big0`);
    // element [p][q] = world * (600q + p) + sum(r); summed over p < 600, q < 1000
    const total = world * ((599 * 600) / 2 * 1000 + 600 * ((999 * 1000) / 2) * 600) + 600_000 * sr;
    assert.deepEqual(big.big1, { shape: [600, 1000], e00: sr, e57: world * (600 * 7 + 5) + sr, last: world * (600 * 999 + 599) + sr, sum: total }, `big-${mode}.big1`);
  }
  // broadcast from rank 1 of the same large tensors and a small one
  assert.deepEqual(res.bigBroadcast, { small: [1, 2, 3], big0: [2, 2, 600_000], big1: [1, 600 * 7 + 5 + 1, 600 * 999 + 599 + 1] });
  expectReduced(res.max as Value[], world, (xs) => Math.max(...xs), 'max');
  expectReduced(res.min as Value[], world, (xs) => Math.min(...xs), 'min');
  expectReduced(res.avg as Value[], world, (xs) => sum(xs) / world, 'avg', (v) => v.dtype !== 'int64');
  const k = sum(Array.from({ length: world }, (_, q) => q + 1));
  assert.deepEqual(res.param, { data: [k, 2 * k, 3 * k], requiresGrad: true });
  const ranks = Array.from({ length: world }, (_, q) => q);
  assert.deepEqual(res.numbers, [sum(ranks), world, 0.5 * sum(ranks)]);
  for (const root of [0, 1]) {
    const got = res[`broadcast${root}`] as Value[];
    rankInputs(root).forEach((v, i) => {
      assert.deepEqual([got[i]!.dtype, got[i]!.shape], [v.dtype, v.shape]);
      close(got[i]!.data, v.data, 0, `broadcast${root}[${i}]`);
    });
  }
  assert.deepEqual(res.allGather, ranks.map((q) => ({ dtype: 'int64', shape: [q + 1, 3], data: Array.from({ length: q + 1 }, () => [q, q, q]) })));
  assert.deepEqual(res.allGatherCat, [(world * (world + 1)) / 2, 3]);
  assert.deepEqual(res.allGatherEqual, ranks.map((q) => ({ dtype: 'float32', shape: [4], data: [0, 1, 2, 3].map((i) => i + 10 * q) })));
  assert.deepEqual(res.allGatherScalar, ranks.map((q) => ({ dtype: 'float64', shape: [], data: q })));
  const dtypes = res.dtypes as Record<string, { broadcast1: unknown; allGather: unknown; sum?: unknown }>;
  for (const dtype of ['bool', 'uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'bfloat16', 'float32', 'float64']) {
    const of = (q: number): unknown => (dtype === 'bool' ? [q % 2 === 0, true, false] : [q + 1, 0, 2 * (q + 1)]);
    assert.deepEqual(dtypes[dtype], {
      broadcast1: of(1),
      allGather: ranks.map((q) => [dtype, of(q)]),
      ...(dtype === 'bool' ? {} : { sum: [dtype, [k, 0, 2 * k]] }),
    }, dtype);
  }
  const mm = res.mismatch as ErrorInfo;
  assert.equal(mm.name, 'DistributedError');
  assert.equal(mm.op, 'allGather');
  assert.equal(mm.rank, r);
  assert.equal(mm.reason, 'mismatch');
  assert.match(mm.message, new RegExp(`^allGather failed on rank ${r} of ${world} .*rank 0 has float32 \\[2, 1\\], rank 1 has float32 \\[2, 2\\]`));
}

function checkBarrier(results: CollectiveResult[]): void {
  const enters = results.map((res) => (res.barrier as { enter: number }).enter);
  for (const res of results) {
    const leave = (res.barrier as { leave: number }).leave;
    assert.ok(leave >= Math.max(...enters) - 2, `rank ${res.rank} left the barrier at ${leave}, before the last rank entered at ${Math.max(...enters)}`);
  }
}

// ---- multi-process ----

test('3 ranks: all-reduce (sum, avg, max, min; mixed dtypes and shapes, coalesced), broadcast from 0 and 1, all-gather, barrier', async () => {
  const runs = await spawnRanks(3, 'collectives');
  const exits = await Promise.all(runs.map((r) => r.exited));
  exits.forEach((e, r) => assert.deepEqual(e, { code: 0, signal: null }, `rank ${r}: ${runs[r]!.stderr}`));
  const results = runs.map((run) => resultOf<CollectiveResult>(run.stdout, `rank ${run.rank}`));
  results.forEach((res, r) => checkCollectives(res, r, 3));
  checkBarrier(results);
});

test('2 ranks started by the launcher library: the same collectives, checked for world size 2', async () => {
  const out: string[] = ['', ''];
  const result = await launch({
    command: process.execPath, args: workerArgs('collectives'), nprocPerNode: 2, threadsPerWorker: 1,
    onOutput: (l) => {
      if (l.stream === 'stdout') out[l.rank] += `${l.text}\n`;
    },
  });
  assert.equal(result.ok, true, JSON.stringify(result.workers));
  assert.equal(result.masterAddr, '127.0.0.1');
  const results = out.map((s, r) => resultOf<CollectiveResult>(s, `rank ${r}`));
  results.forEach((res, r) => checkCollectives(res, r, 2));
  checkBarrier(results);
});

test('a rank that never joins: the waiting rank throws a timeout error naming allReduce and its rank, within the timeout', async () => {
  const runs = await spawnRanks(2, 'stall', { OP_TIMEOUT_MS: '1000' });
  const [r0, r1] = runs as [typeof runs[0], typeof runs[0]];
  await r1.printed('STALLING');
  const e0 = await r0.exited;
  r1.child.kill('SIGKILL');
  await r1.exited;
  assert.equal(e0.code, 0, r0.stderr);
  const err = resultOf<{ error: ErrorInfo }>(r0.stdout).error;
  assert.equal(err.name, 'DistributedError');
  assert.deepEqual([err.op, err.rank, err.worldSize, err.reason], ['allReduce', 0, 2, 'timeout']);
  assert.match(err.message, /^allReduce failed on rank 0 of 2 \(timeout 1000 ms\): timed out after 1000 ms/);
  assert.ok(err.elapsedMs >= 950 && err.elapsedMs < 5000, `failed after ${err.elapsedMs} ms`);
});

test('SIGKILL one of 2 ranks while the other waits in an all-reduce: the survivor throws at once, naming the op and its rank', async () => {
  const runs = await spawnRanks(2, 'die', { TEST_TIMEOUT_MS: '30000' });
  const [r0, r1] = runs as [typeof runs[0], typeof runs[0]];
  await Promise.all([r0.printed('WAITING'), r1.printed('READY')]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  r1.child.kill('SIGKILL');
  const [e0, e1] = await Promise.all([r0.exited, r1.exited]);
  assert.equal(e1.signal, 'SIGKILL');
  assert.equal(e0.code, 1, r0.stderr);
  const err = resultOf<{ error: ErrorInfo }>(r0.stdout).error;
  assert.deepEqual([err.name, err.op, err.rank, err.worldSize, err.reason], ['DistributedError', 'allReduce', 0, 2, 'connection']);
  assert.match(err.message, /^allReduce failed on rank 0 of 2 \(timeout 30000 ms\): .*(closed|reset)/i);
  assert.ok(err.elapsedMs < 10_000, `the survivor took ${err.elapsedMs} ms (timeout 30000)`);
});

test('the launcher reports a rank killed mid-job and stops the survivor', async () => {
  const lines: string[] = [];
  const result = await launch({
    command: process.execPath, args: workerArgs('die'), nprocPerNode: 2, threadsPerWorker: 1, graceMs: 2000,
    env: { ...process.env, DIE_SELF: '1', TEST_TIMEOUT_MS: '30000' },
    onOutput: (l) => lines.push(`[${l.rank}] ${l.text}`),
  });
  assert.equal(result.ok, false);
  assert.ok(result.failed, 'a failed worker is reported');
  assert.deepEqual([result.failed.rank, result.failed.code, result.failed.signal], [1, null, 'SIGKILL'], lines.join('\n'));
  assert.equal(result.failed.description, 'signal SIGKILL');
  assert.equal(result.exitCode, 128 + 9);
  const survivor = result.workers[0]!;
  assert.ok(survivor.code === 1 || survivor.signal === 'SIGTERM', `rank 0 ended with ${survivor.description}`);
});

// ---- one process ----

test('single process (WORLD_SIZE unset): collectives are identities, no network, helpers agree', () => {
  const before = memory().liveTensors;
  const pg = initProcessGroup({ env: {} });
  try {
    assert.deepEqual([pg.rank, pg.worldSize, pg.localRank, pg.backend, pg.isDistributed], [0, 1, 0, 'none', false]);
    assert.equal(currentGroup(), pg);
    assert.deepEqual([isDistributed(), rank(), worldSize()], [false, 0, 1]);
    scope(() => {
      const a = tensor([[1, 2], [3, 4]]);
      const b = tensor([5, -6], { dtype: 'int64' });
      for (const op of ['sum', 'max', 'min'] as const) pg.allReduce([a, b], op);
      pg.allReduce(a, 'avg');
      pg.broadcast([a, b], 0);
      assert.deepEqual(a.toArray(), [[1, 2], [3, 4]]);
      assert.deepEqual(b.toArray(), [5, -6]);
      const g = pg.allGather(a);
      assert.equal(g.length, 1);
      assert.notEqual(g[0], a);
      assert.deepEqual(g[0]!.toArray(), [[1, 2], [3, 4]]);
      pg.barrier();
      assert.deepEqual(pg.allReduceNumbers([3, 0.5]), [3, 0.5]);
    });
    assert.equal(memory().liveTensors, before, 'no tensor left alive');
    // The trainer's contract (src/training) is met by ProcessGroup.
    const c: Collective = pg;
    assert.equal(c.worldSize, 1);
  } finally {
    pg.destroy();
  }
  assert.equal(pg.isDestroyed, true);
  assert.notEqual(currentGroup(), pg);
  assert.equal(currentGroup().worldSize, 1);
  assert.throws(() => pg.barrier(), /barrier: the process group was destroyed/);
  pg.destroy(); // harmless
});

test('WORLD_SIZE=1 with MASTER_* set is still a single process; the timeout comes from ADVML_DIST_TIMEOUT_MS', () => {
  const pg = initProcessGroup({ env: { WORLD_SIZE: '1', RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1', ADVML_DIST_TIMEOUT_MS: '1234' } });
  try {
    assert.deepEqual([pg.worldSize, pg.backend, pg.timeoutMs], [1, 'none', 1234]);
    assert.throws(() => initProcessGroup({ env: {} }), /a process group is already active \(rank 0 of 1\); destroy\(\) it first/);
  } finally {
    pg.destroy();
  }
});

test('argument errors name the argument, the value and what was expected', () => {
  const pg: ProcessGroup = initProcessGroup({ env: {} });
  try {
    scope(() => {
      const f = full([2], 1);
      const i = tensor([1, 2], { dtype: 'int64' });
      assert.throws(() => pg.allReduce([f], 'prod' as 'sum'), /allReduce: op must be one of sum, avg, max, min, got 'prod'/);
      assert.throws(() => pg.allReduce([f, i], 'avg'), /allReduce: 'avg' needs floating-point tensors; tensors\[1\] is int64/);
      assert.throws(() => pg.allReduce([f.gt(0)]), /tensors\[0\] is bool/);
      assert.throws(() => pg.allReduce([f, 3 as unknown as typeof f]), /allReduce: tensors\[1\] must be a Tensor/);
      assert.throws(() => pg.allReduce([f], 'sum', { coalesce: 'bucket' as 'each' }), /options.coalesce must be one of auto, flatten, coalesced, each, got 'bucket'/);
      assert.throws(() => pg.allReduce([f], 'sum', { timeoutMs: 0 }), /allReduce: options.timeoutMs must be an integer >= 1, got 0/);
      assert.throws(() => pg.broadcast([f], 1), /broadcast: root \(world size 1\) must be an integer in \[0, 0\], got 1/);
      const d = full([1], 0);
      d.dispose();
      assert.throws(() => pg.allReduce([d]), /allReduce: tensors\[0\] is a disposed tensor/);
    });
  } finally {
    pg.destroy();
  }
  const init = (env: Record<string, string>) => () => initProcessGroup({ env });
  assert.throws(init({ WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' }), /rank is not set \(pass options.rank or set RANK\); world size is 2/);
  assert.throws(init({ WORLD_SIZE: '2', RANK: '1', MASTER_PORT: '29500' }), /masterAddr is not set \(pass options.masterAddr or set MASTER_ADDR\)/);
  assert.throws(init({ WORLD_SIZE: '2', RANK: '1', MASTER_ADDR: '127.0.0.1' }), /masterPort is not set .*MASTER_PORT/);
  assert.throws(init({ WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' }), /rank \(world size 2\) must be an integer in \[0, 1\], got 2/);
  assert.throws(init({ WORLD_SIZE: 'two' }), /environment variable WORLD_SIZE must be an integer >= 1, got 'two'/);
  assert.throws(init({ ADVML_DIST_TIMEOUT_MS: '-5' }), /ADVML_DIST_TIMEOUT_MS must be an integer >= 1, got '-5'/);
  assert.throws(init({ WORLD_SIZE: '2', RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '70000' }), /masterPort must be an integer in \[1, 65535\], got 70000/);
});

test('a rendezvous with no store to join fails with an init error naming the rank, within the init timeout', () => {
  const started = Date.now();
  assert.throws(
    () => initProcessGroup({ rank: 1, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 1, initTimeoutMs: 500, timeoutMs: 500 }),
    (e: unknown) => {
      assert.ok(e instanceof DistributedError, String(e));
      assert.equal(e.op, 'init');
      assert.equal(e.rank, 1);
      assert.match(e.message, /^init failed on rank 1 of 2 \(timeout 500 ms\): /);
      return true;
    },
  );
  assert.ok(Date.now() - started < 10_000);
  assert.equal(currentGroup().worldSize, 1, 'no group left behind');
});
