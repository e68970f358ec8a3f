import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import type { SweepResult } from '../../src/evaluation/index.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-sweep-'));

test('advml sweep: capacity study over rho, plain and adversarial, written as sweep.json', () => {
  const out = join(dir, 'capacity');
  const r = runCli(['sweep', '--out', out, '--rho', '0.5,1', '--train-images', '640', '--eval-images', '100', '--methods', 'fgsm', '--eps', '32']);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepResult;
  assert.equal(s.study, 'capacity');
  assert.deepEqual(s.entries.map((e) => `${e.rho}:${e.adversarial}`), ['0.5:false', '0.5:true', '1:false', '1:true']);
  // The MNIST CNN's parameters: conv 32r, conv 64r, dense 128r, from its definition.
  const count = (rho: number): number => {
    const [c1, c2, h] = [Math.round(32 * rho), Math.round(64 * rho), Math.round(128 * rho)];
    return 9 * c1 + c1 + 9 * c1 * c2 + c2 + 25 * c2 * h + h + 10 * h + 10;
  };
  assert.equal(s.entries[0]!.parameters, count(0.5));
  assert.equal(s.entries[2]!.parameters, count(1));
  for (const e of s.entries) {
    assert.equal(e.result.images, 100);
    assert.equal(e.result.cells.length, 1);
  }
});

test('advml sweep: activation study and option errors', () => {
  const out = join(dir, 'act');
  const r = runCli(['sweep', '--out', out, '--activations', 'relu,tanh', '--training', 'plain', '--train-images', '320', '--eval-images', '50', '--methods', 'fgsm', '--eps', '16']);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepResult;
  assert.equal(s.study, 'activation');
  assert.deepEqual(s.entries.map((e) => e.activation), ['relu', 'tanh']);
  for (const [args, re] of [
    [['sweep', '--out', out, '--rho', '0,1'], /--rho value 1 must be a number in \(0, 8\], got '0'/],
    [['sweep', '--out', out, '--activations', 'gelu'], /unknown activation 'gelu'/],
    [['sweep', '--out', out, '--preset', 'imagenet-paper'], /--preset must be mnist or fashion-mnist/],
  ] as [string[], RegExp][]) {
    const e = runCli(args);
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr, re);
  }
});
