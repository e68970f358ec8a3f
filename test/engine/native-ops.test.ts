/**
 * The OpName union in src/engine/native.ts lists exactly the functions the
 * addon exports: read from the source text, compared with the loaded addon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/engine/native.js';

function opNamesFromSource(): string[] {
  const path = fileURLToPath(new URL('../../src/engine/native.ts', import.meta.url));
  const text = readFileSync(path, 'utf8');
  const m = /export type OpName\s*=([^;]*);/.exec(text);
  assert.ok(m, 'native.ts declares `export type OpName = ...;`');
  const body = (m[1] as string).replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const names = [...body.matchAll(/'([^']+)'/g)].map((x) => x[1] as string);
  // nothing but quoted names and '|' between them
  assert.equal(body.replace(/'[^']+'/g, '').replace(/[\s|]/g, ''), '', 'OpName holds only string literals');
  return names;
}

test('OpName matches the addon exports exactly', () => {
  const union = opNamesFromSource();
  assert.ok(union.length > 100, `parsed ${union.length} names`);
  const dupes = union.filter((n, i) => union.indexOf(n) !== i);
  assert.deepEqual(dupes, [], 'names listed twice in OpName');
  const exported = Object.keys(native);
  const rec = native as unknown as Record<string, unknown>;
  const notFunctions = exported.filter((k) => typeof rec[k] !== 'function');
  assert.deepEqual(notFunctions, [], 'addon exports that are not functions');
  const missingFromAddon = union.filter((n) => typeof rec[n] !== 'function');
  assert.deepEqual(missingFromAddon, [], 'OpName entries the addon does not export');
  const missingFromUnion = exported.filter((k) => !union.includes(k));
  assert.deepEqual(missingFromUnion, [], 'addon exports missing from OpName');
});

test('every addon function reports its own name in errors', () => {
  // Called with no arguments, each op either works or throws "name: ..." with err.op.
  const rec = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  // generatorState() with no generator reads the global generator's state.
  const harmless = new Set(['buildConfig', 'cudaBf16Supported', 'cudaDeviceCount', 'getNumThreads', 'isGradEnabled', 'memory', 'emptyCache', 'disposedHandle', 'generatorState']);
  for (const name of Object.keys(rec)) {
    if (harmless.has(name)) continue;
    let err: unknown;
    try {
      rec[name]!();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof Error, `${name}() with no arguments should throw`);
    assert.ok(err.message.startsWith(`${name}: `), `${name}: message was '${err.message}'`);
    assert.equal((err as Error & { op?: string }).op, name);
  }
});
