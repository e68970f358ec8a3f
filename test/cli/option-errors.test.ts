/**
 * Numbers out of reach are refused at the option the user typed, by the real
 * CLI: `--width 1e300` and `--rho 1e300` (once an integer of 300 digits
 * printed from the `empty` op), `--seed 1e20` (once "newGenerator: argument 0
 * must be an integer, got 1000...000.000000", then a message calling 1e20 not
 * an integer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const out = mkdtempSync(join(tmpdir(), 'advml-option-errors-'));

test('width, rho and seed beyond their bounds are usage errors that name the option, the value and the range', () => {
  for (const [args, message] of [
    [['train', '--out', out, '--width', '1e300'], "advml train: --width must be a number in (0, 8], got '1e300'"],
    [['train', '--out', out, '--width', '9'], "advml train: --width must be a number in (0, 8], got '9'"],
    [['train', '--out', out, '--hidden', '1e6'], "advml train: --hidden must be an integer in [1, 65536], got '1e6'"],
    [['train', '--out', out, '--preset', 'imagenet-resnet50', '--hidden', '64'], 'advml train: --hidden is for the MNIST CNN; preset imagenet-resnet50 trains resnet-imagenet'],
    [['sweep', '--out', out, '--rho', '1e300'], "advml sweep: --rho must be a number in (0, 8], got '1e300'"],
    [['sweep', '--out', out, '--rho', '1,0x10'], "advml sweep: --rho value 2 must be a number in (0, 8], got '0x10'"],
    [['train', '--out', out, '--seed', '1e20'], "advml train: --seed must be a non-negative integer (at most 9007199254740991, 2^53 - 1), got '1e20'"],
    [['train', '--out', out, '--seed', '18446744073709551616'], "advml train: --seed must be a non-negative integer (at most 9007199254740991, 2^53 - 1), got '18446744073709551616'"],
  ] as [string[], string][]) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), message);
  }
});
