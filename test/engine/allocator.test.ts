/**
 * The caching CPU allocator (native/allocator.cc): large blocks are mapped
 * once, kept when freed and handed out again for the same rounded size; small
 * ones stay with libtorch's default allocator; the cache stays under its limit
 * and emptyCache() returns it; ADVML_CPU_CACHE_MB sets the limit (0: off) and
 * a malformed value is refused with its name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { emptyCache, empty, full, memory, ones, scope } from '../../src/engine/index.js';

const MiB = 1 << 20;
const engine = fileURLToPath(new URL('../../src/engine/index.ts', import.meta.url));

/** Runs `code` in a fresh process (the engine imported as E) with `env`; returns its JSON output or its error. */
function inChild(env: Record<string, string>, code: string): { status: number | null; out: unknown; stderr: string } {
  const script = `import * as E from ${JSON.stringify(engine)};\n${code}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return { status: r.status, out: last ? JSON.parse(last) : null, stderr: r.stderr };
}

test('a freed large block is cached and handed out again; small blocks bypass the cache', () => {
  emptyCache();
  const start = memory();
  const a = empty([MiB]); // 4 MiB of float32
  const mapped = memory().largeBlockBytes;
  assert.ok(mapped >= start.largeBlockBytes + 4 * MiB, 'a 4 MiB tensor is a large block');
  a.dispose();
  assert.ok(memory().cachedBytes >= 4 * MiB, 'freed, it waits in the cache');
  const b = empty([MiB]);
  assert.equal(memory().largeBlockBytes, mapped, 'the same size maps nothing new');
  assert.equal(memory().cachedBytes, start.cachedBytes, 'it came out of the cache');
  b.dispose();
  const small = ones([1000]);
  assert.equal(memory().largeBlockBytes, mapped, 'a 4 KB tensor is not a large block');
  small.dispose();
  emptyCache();
  assert.equal(memory().cachedBytes, 0);
  assert.equal(memory().largeBlockBytes, start.largeBlockBytes - start.cachedBytes, 'emptyCache unmapped every free block');
});

test('reused blocks hold what is written to them', () => {
  // Fill, free, and take the same blocks back many times: no value from an earlier tensor may show through.
  for (let i = 1; i <= 20; i++) {
    const sums = scope(() => [full([MiB], i).sum().item(), full([3 * MiB], -i).sum().item()]);
    assert.deepEqual(sums, [i * MiB, -3 * i * MiB]);
  }
});

test('a steady loop of the same sizes maps nothing after its first round', () => {
  const round = (): void => scope(() => {
    let h = ones([64, 16, 32, 32]);
    for (let k = 0; k < 5; k++) h = h.mul(1.5).relu().add(1);
  });
  round();
  const mapped = memory().largeBlockBytes;
  for (let i = 0; i < 50; i++) round();
  assert.equal(memory().largeBlockBytes, mapped);
});

test('ADVML_CPU_CACHE_MB bounds the cache; 0 turns the allocator off', () => {
  const churn = `
    const ts = [1, 2, 3, 4].map(() => E.empty([1 << 20]));  // four 4 MiB blocks
    for (const t of ts) t.dispose();
    console.log(JSON.stringify(E.memory()));`;
  const limited = inChild({ ADVML_CPU_CACHE_MB: '8' }, churn);
  assert.equal(limited.status, 0, limited.stderr);
  const m = limited.out as { cachedBytes: number; cacheLimitBytes: number };
  assert.equal(m.cacheLimitBytes, 8 * MiB);
  assert.ok(m.cachedBytes <= 8 * MiB && m.cachedBytes >= 4 * MiB, `cached ${m.cachedBytes} bytes under an 8 MiB limit`);

  const off = inChild({ ADVML_CPU_CACHE_MB: '0' }, churn);
  assert.equal(off.status, 0, off.stderr);
  assert.deepEqual(
    [(off.out as { cacheLimitBytes: number }).cacheLimitBytes, (off.out as { largeBlockBytes: number }).largeBlockBytes],
    [0, 0],
    'with the allocator off no large block is mapped',
  );
});

test('a malformed ADVML_CPU_CACHE_MB is refused with its name', () => {
  const r = inChild({ ADVML_CPU_CACHE_MB: '1GB' }, 'console.log(JSON.stringify(E.memory()));');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ADVML_CPU_CACHE_MB must be a whole number of MiB.*'1GB'/);
});
