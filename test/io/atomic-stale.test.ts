/**
 * Temporaries left by a write killed mid-way: a real process killed with
 * SIGKILL while writing a checkpoint leaves `.<name>.<pid>.<hex>.tmp`; the
 * next save of that target removes it, and only what is provably stale
 * (this target's pattern, a process that no longer exists).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor } from '../../src/index.js';
import { disposeCheckpoint, loadCheckpointSync, removeStaleTemporaries, saveCheckpointSync, writeFileAtomic } from '../../src/io/index.js';

const atomic = fileURLToPath(new URL('../../src/io/atomic.ts', import.meta.url));

/** Starts a process that writes `target` atomically, sends its first chunk, then stalls until killed. */
async function stalledWriter(target: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const script = `
    import { writeFileAtomic } from ${JSON.stringify(atomic)};
    async function* chunks() {
      yield new Uint8Array(4096).fill(7);
      console.log('WRITING');
      await new Promise(() => setInterval(() => {}, 1000));
    }
    await writeFileAtomic(${JSON.stringify(target)}, chunks());`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('WRITING') && resolve());
    child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before writing`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid as number,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

const temporaries = (dir: string, name: string): string[] => readdirSync(dir).filter((n) => n.startsWith(`.${name}.`) && n.endsWith('.tmp'));

test('kill -9 during a checkpoint write leaves a temporary; the next save removes it and keeps the live and foreign ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-stale-'));
  const target = join(dir, 'checkpoint.safetensors');
  const w = tensor([1, 2, 3]);
  saveCheckpointSync(target, { model: { architecture: 'x' }, weights: new Map([['w', w]]), step: 1 });
  const before = readFileSync(target);

  const killed = await stalledWriter(target);
  const left = temporaries(dir, 'checkpoint.safetensors');
  assert.equal(left.length, 1, `expected the writer's temporary, found ${left.join(', ')}`);
  assert.match(left[0] as string, new RegExp(`^\\.checkpoint\\.safetensors\\.${killed.pid}\\.[0-9a-f]{12}\\.tmp$`));
  await killed.kill();
  assert.deepEqual(readFileSync(target), before, 'the killed write changed the checkpoint');
  assert.deepEqual(temporaries(dir, 'checkpoint.safetensors'), left, 'kill -9 left no temporary: nothing to test');

  // Beside it: one of a dead pid (stale too), one of a writer still running (kept), one of another
  // target (kept), and names that only look alike (kept).
  const dead = `.checkpoint.safetensors.${await deadPid()}.00112233aabb.tmp`;
  const live = await stalledWriter(target);
  const liveTemp = temporaries(dir, 'checkpoint.safetensors').find((n) => n.includes(`.${live.pid}.`)) as string;
  const foreign = `.other.safetensors.${await deadPid()}.00112233aabb.tmp`;
  const alike = ['.checkpoint.safetensors.notes.tmp', '.checkpoint.safetensors.x.1.00112233aabb.tmp', 'checkpoint.safetensors.1.00112233aabb.tmp'];
  for (const n of [dead, foreign, ...alike]) writeFileSync(join(dir, n), 'x');
  try {
    saveCheckpointSync(target, { model: { architecture: 'x' }, weights: new Map([['w', w]]), step: 2 });
    const after = readdirSync(dir);
    for (const n of [...left, dead]) assert.ok(!after.includes(n), `${n} is still there after the next save`);
    for (const n of [liveTemp, foreign, ...alike]) assert.ok(after.includes(n), `${n} was removed`);
    const c = loadCheckpointSync(target);
    assert.equal(c.step, 2);
    disposeCheckpoint(c);
  } finally {
    await live.kill();
    w.dispose();
  }
  // The asynchronous writer cleans up the same way, and the helper reports what it removed.
  await writeFileAtomic(target, 'new');
  assert.ok(!existsSync(join(dir, liveTemp)), 'the async write left the dead writer\'s temporary');
  assert.deepEqual(removeStaleTemporaries(target), []);
});
