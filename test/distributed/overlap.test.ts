/**
 * The gradient reducer (all-reduce overlapped with backward,
 * ProcessGroup.gradientReducer) against reduce-after-backward, over real
 * processes on 127.0.0.1: weights equal bit for bit over steps of training,
 * unused parameters that do not hang a step, and failures reported rather
 * than hung. The ranks run test/distributed/overlap-worker.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/distributed/launcher.js';
import { resultOf } from './helpers.js';

const worker = fileURLToPath(new URL('./overlap-worker.ts', import.meta.url));

interface Rank { rank: number; stdout: string; stderr: string; code: number | null; signal: NodeJS.Signals | null }

/** Runs 2 ranks of the worker; with `stopRank1`, rank 1 is killed once rank 0 has exited (it is left stalling on purpose). */
async function runRanks(scenario: string, stopRank1 = false, killAfterMs = 120_000): Promise<Rank[]> {
  const port = await freePort();
  const children = [0, 1].map((rank) => spawn(process.execPath, ['--import', 'tsx', worker, scenario], {
    env: { ...process.env, ADVML_NUM_THREADS: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank) },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), killAfterMs);
  const runs = children.map((child, rank) => {
    const r: Rank = { rank, stdout: '', stderr: '', code: null, signal: null };
    child.stdout.setEncoding('utf8').on('data', (s: string) => (r.stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (r.stderr += s));
    return new Promise<Rank>((resolve) => child.once('close', (code, signal) => resolve(Object.assign(r, { code, signal }))));
  });
  if (stopRank1) void runs[0]?.then(() => children[1]?.kill('SIGKILL'));
  const out = await Promise.all(runs);
  clearTimeout(timer);
  return out;
}

interface Variant { identical: boolean[]; moved: boolean; sent: number[]; buckets: number }

test('2 processes: training with the overlapping reducer ends with the weights of reduce-after-backward, bit for bit, after every step', { timeout: 180_000 }, async () => {
  const ranks = await runRanks('equal');
  for (const r of ranks) {
    assert.equal(r.code, 0, `rank ${r.rank} failed:\n${r.stderr}`);
    const res = resultOf<Record<string, Variant> & { ranksAgree: boolean }>(r.stdout, `rank ${r.rank}`);
    assert.equal(res.ranksAgree, true);
    for (const name of ['default', 'tiny', 'tinySyncBn']) {
      const v = res[name] as Variant;
      assert.deepEqual(v.identical, [true, true, true], `${name} on rank ${r.rank}: ${JSON.stringify(v)}`);
      assert.equal(v.moved, true, `${name}: training moved the weights`);
    }
    // Tiny buckets: several messages, all of them sent while backward ran (every parameter is used).
    const tiny = res.tiny as Variant;
    assert.ok(tiny.buckets > 3, JSON.stringify(tiny));
    assert.deepEqual(tiny.sent, [tiny.buckets, tiny.buckets, tiny.buckets]);
    assert.deepEqual((res.tinySyncBn as Variant).sent, tiny.sent);
  }
});

test('unused parameters: zeros contributed, no hang; a parameter no rank used keeps no gradient', { timeout: 120_000 }, async () => {
  const ranks = await runRanks('unused');
  const results = ranks.map((r) => {
    assert.equal(r.code, 0, `rank ${r.rank} failed:\n${r.stderr}`);
    return resultOf<Record<string, unknown>>(r.stdout, `rank ${r.rank}`);
  });
  for (const res of results) {
    // One bucket per parameter, in reverse parameter order.
    assert.deepEqual(res.buckets, [[3], [2], [1], [0]]);
    // x = [r + 1, 10 (r + 1)] summed over ranks 0 and 1 = [3, 30]; d only on rank 1 (x = [2, 20], times 3).
    for (const step of [0, 1]) {
      assert.deepEqual(res[`grads${step}`], [[3, 30], [6, 60], null, [6, 60]]);
      // The graph search marks c (and d on rank 0) ready before backward: every bucket left during backward.
      assert.deepEqual(res[`finish${step}`], { sentDuringBackward: 4, buckets: 4 });
    }
    // Without the loss, the parameters never reached are found at finish(), which sends everything then.
    assert.deepEqual(res.noLoss, { finish: { sentDuringBackward: 0, buckets: 4 }, grads: [[4, 4], null, null, null] });
    const t = res.trainer as { steps: number; sent: number[]; spareGrads: boolean[] };
    assert.equal(t.steps, 2);
    assert.deepEqual(t.spareGrads, [false, false]);
    assert.ok(t.sent.every((n) => n > 1), JSON.stringify(t));
  }
  assert.equal(results[0]?.trainerWeights, results[1]?.trainerWeights, 'the ranks hold one model');
});

test('a rank killed mid-step: the survivor\'s finish() throws a DistributedError (connection) at once', { timeout: 60_000 }, async () => {
  const [lead, dead] = await runRanks('die', true) as [Rank, Rank];
  assert.equal(dead.signal, 'SIGKILL');
  const res = resultOf<{ ok: boolean; name: string; op: string; reason: string; elapsedMs: number; message: string }>(lead.stdout, 'rank 0');
  assert.equal(res.ok, false);
  assert.equal(res.name, 'DistributedError');
  assert.equal(res.op, 'allReduce');
  assert.equal(res.reason, 'connection', res.message);
  assert.ok(res.elapsedMs < 10_000, `took ${res.elapsedMs} ms`);
});

test('a rank that stalls mid-step: finish() times out after the reducer\'s timeout', { timeout: 60_000 }, async () => {
  const [lead] = await runRanks('hang', true) as [Rank, Rank];
  const res = resultOf<{ ok: boolean; op: string; reason: string; elapsedMs: number; message: string }>(lead.stdout, 'rank 0');
  assert.equal(res.ok, false);
  assert.equal(res.reason, 'timeout', res.message);
  assert.ok(res.elapsedMs >= 1000 && res.elapsedMs < 5000, `took ${res.elapsedMs} ms`);
});
