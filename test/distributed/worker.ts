/**
 * One rank of the multi-process tests, run as `node --import tsx worker.ts
 * <scenario>` with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (by the
 * test or by the launcher). It prints what the collectives returned as one
 * line `RESULT <json>`; the test compares that with the analytic values, so
 * nothing here knows the expected answers.
 */
import { arange, cat, full, noGrad, tensor, type Tensor } from '../../src/engine/index.js';
import { DistributedError, initProcessGroup, isDistributed, rank, worldSize, type ProcessGroup } from '../../src/distributed/index.js';

const scenario = process.argv[2] ?? 'collectives';

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function result(value: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`);
}

function errorInfo(e: unknown, startedAt: number): Record<string, unknown> {
  const d = e instanceof DistributedError ? e : null;
  return {
    name: e instanceof Error ? e.name : typeof e,
    message: e instanceof Error ? e.message : String(e),
    op: d?.op, rank: d?.rank, worldSize: d?.worldSize, reason: d?.reason,
    elapsedMs: Date.now() - startedAt,
  };
}

/** The per-rank inputs: the test builds the same formulas to get the expected values. */
function inputs(r: number): Tensor[] {
  return [
    arange(0, 6, 1, { dtype: 'float32' }).reshape([2, 3]).mul(r + 1), // float32 [2,3]: (r+1) * i
    tensor([0.25, -1.5, 3, 7.125], { dtype: 'float64' }).add(r * 10), // float64 [4]: v + 10r
    arange(0, 6, 1, { dtype: 'int64' }).reshape([3, 1, 2]).mul(r).add(r * r), // int64 [3,1,2]: r*i + r^2
    arange(0, 6, 1, { dtype: 'float32' }).reshape([3, 2]).add(r).transpose(0, 1), // float32 [2,3], not contiguous: element [p][q] = 2q + p + r
    full([], 2 * r - 1), // float32 0-dim: 2r - 1
  ];
}

function values(ts: Tensor[]): unknown[] {
  return ts.map((t) => ({ dtype: t.dtype, shape: t.shape, data: t.toArray() }));
}

function collectives(pg: ProcessGroup): void {
  const r = pg.rank;
  const out: Record<string, unknown> = { rank: r, worldSize: pg.worldSize, localRank: pg.localRank, backend: pg.backend,
    helpers: { isDistributed: isDistributed(), rank: rank(), worldSize: worldSize() } };

  for (const mode of ['auto', 'flatten', 'coalesced', 'each'] as const) {
    const ts = inputs(r);
    pg.allReduce(ts, 'sum', { coalesce: mode });
    out[`sum-${mode}`] = values(ts);
  }
  // Tensors of 1 MiB and more travel on their own in 'auto' mode (one of them not contiguous):
  // reported as a few elements and the float64 sum. big[0]: full 300000 of r + 1;
  // big[1]: [600, 1000] with element [p][q] = 600q + p + r.
  {
    const big = [full([300_000], r + 1), arange(0, 600_000, 1, { dtype: 'float32' }).reshape([1000, 600]).transpose(0, 1).add(r)];
    const small = tensor([1, 2, 3]).mul(r);
    pg.broadcast([big[0]!, small, big[1]!], 1);
    out.bigBroadcast = {
      small: small.toArray(),
      big0: [big[0]!.select(0, 0).item(), big[0]!.select(0, 299_999).item(), big[0]!.sum().item()],
      big1: [0, 5, 599].map((p, i) => big[1]!.select(0, p).select(0, [0, 7, 999][i]!).item()),
    };
  }
  for (const mode of ['auto', 'flatten'] as const) {
    const big = [full([300_000], r + 1), arange(0, 600_000, 1, { dtype: 'float32' }).reshape([1000, 600]).transpose(0, 1).add(r)];
    const small = inputs(r);
    pg.allReduce([small[0]!, big[0]!, small[1]!, big[1]!, small[2]!], 'sum', { coalesce: mode });
    out[`big-${mode}`] = {
      small: values([small[0]!, small[1]!, small[2]!]),
      big0: { first: big[0]!.select(0, 0).item(), last: big[0]!.select(0, 299_999).item(), sum: big[0]!.to('float64').sum().item() },
      big1: { shape: big[1]!.shape, e00: big[1]!.select(0, 0).select(0, 0).item(), e57: big[1]!.select(0, 5).select(0, 7).item(),
        last: big[1]!.select(0, 599).select(0, 999).item(), sum: big[1]!.to('float64').sum().item() },
    };
  }
  for (const op of ['max', 'min'] as const) {
    const ts = inputs(r);
    pg.allReduce(ts, op);
    out[op] = values(ts);
  }
  {
    const ts = inputs(r).filter((t) => t.dtype !== 'int64'); // avg needs floating dtypes
    pg.allReduce(ts, 'avg');
    out.avg = values(ts);
  }
  // A leaf that requires grad (a parameter) can be reduced and broadcast in place.
  const param = tensor([1, 2, 3]).mul(r + 1).requiresGrad_(true);
  pg.allReduce([param], 'sum');
  out.param = { data: param.toArray(), requiresGrad: param.requiresGrad };
  out.numbers = pg.allReduceNumbers([r, 1, 0.5 * r], 'sum');

  for (const root of [0, 1]) {
    const ts = inputs(r);
    pg.broadcast(ts, root);
    out[`broadcast${root}`] = values(ts);
  }
  noGrad(() => pg.broadcast([param], 0));

  // rank r contributes r + 1 rows of [r, r, r] (int64): sizes of dim 0 differ.
  const rows = full([r + 1, 3], r, { dtype: 'int64' });
  const gathered = pg.allGather(rows);
  out.allGather = values(gathered);
  out.allGatherCat = cat(gathered).shape;
  out.allGatherEqual = values(pg.allGather(arange(0, 4, 1, { dtype: 'float32' }).add(10 * r)));
  out.allGatherScalar = values(pg.allGather(full([], r, { dtype: 'float64' })));

  // Ranks disagreeing on a trailing dimension: every rank gets the same error, and the group stays usable.
  const started = Date.now();
  try {
    pg.allGather(full([2, r + 1], 1));
    out.mismatch = null;
  } catch (e) {
    out.mismatch = errorInfo(e, started);
  }

  // Every dtype, including those Gloo cannot carry itself (bool, int16, bfloat16): rank r holds
  // [1, 0, 2] * (r + 1), or [r is even, true, false] as bool.
  const dtypes: Record<string, unknown> = {};
  for (const dtype of ['bool', 'uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'bfloat16', 'float32', 'float64'] as const) {
    const make = (): Tensor => (dtype === 'bool' ? tensor([r % 2 === 0 ? 1 : 0, 1, 0]).gt(0) : tensor([1, 0, 2]).mul(r + 1).to(dtype));
    const b = make();
    pg.broadcast([b], 1);
    const entry: Record<string, unknown> = { broadcast1: b.toArray(), allGather: pg.allGather(make()).map((t) => [t.dtype, t.toArray()]) };
    if (dtype !== 'bool') {
      const s = make();
      pg.allReduce([s, make()], 'sum');
      entry.sum = [s.dtype, s.toArray()];
    }
    dtypes[dtype] = entry;
  }
  out.dtypes = dtypes;

  // Barrier: rank r arrives after r * 150 ms; no rank leaves before the last arrives.
  sleep(150 * r);
  const enter = Date.now();
  pg.barrier();
  out.barrier = { enter, leave: Date.now() };
  result(out);
}

const pg = initProcessGroup({ timeoutMs: Number(process.env.TEST_TIMEOUT_MS ?? 20_000) });
switch (scenario) {
  case 'collectives':
    collectives(pg);
    break;
  case 'stall': {
    // Rank 1 never calls the all-reduce; rank 0 times out.
    pg.barrier();
    if (pg.rank === 0) {
      const started = Date.now();
      try {
        pg.allReduce([tensor([1, 2])], 'sum', { timeoutMs: Number(process.env.OP_TIMEOUT_MS ?? 1000) });
        result({ error: null });
      } catch (e) {
        result({ error: errorInfo(e, started) });
      }
    } else {
      process.stdout.write('STALLING\n');
      sleep(60_000);
    }
    break;
  }
  case 'die': {
    // Rank 1 is killed (by the test, or by itself with DIE_SELF=1) while rank 0 waits in an all-reduce.
    pg.barrier();
    if (pg.rank === 0) {
      process.stdout.write('WAITING\n');
      const started = Date.now();
      try {
        pg.allReduce([tensor([1, 2])], 'sum');
        result({ error: null });
      } catch (e) {
        result({ error: errorInfo(e, started) });
        process.stderr.write(`${(e as Error).message}\n`);
        pg.destroy();
        sleep(300); // let the launcher see rank 1's death first
        process.exit(1);
      }
    } else {
      process.stdout.write('READY\n');
      if (process.env.DIE_SELF === '1') {
        sleep(300);
        process.kill(process.pid, 'SIGKILL');
      }
      sleep(60_000);
    }
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
pg.destroy();
