import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globalGeneratorState, manualSeed, rand, setGlobalGeneratorState, dropout, ones } from '../../src/index.js';

test('the global generator state replays dropout masks and unseeded random ops', () => {
  manualSeed(11);
  const state = globalGeneratorState();
  const a = rand([4]).toArray();
  const m1 = dropout(ones([64]), 0.5, true).toArray();
  setGlobalGeneratorState(state);
  assert.deepEqual(rand([4]).toArray(), a);
  assert.deepEqual(dropout(ones([64]), 0.5, true).toArray(), m1);
  assert.throws(() => setGlobalGeneratorState(new Uint8Array(3)), /setGeneratorState: /);
});
