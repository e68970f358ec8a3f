/** The strict number reader the CLI and the server share. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidNumberError, describeNumber, readNumber } from '../../src/io/index.js';

test('plain decimals are read, with fraction, exponent and sign', () => {
  const cases: [string, number][] = [['16', 16], ['0', 0], ['-0', 0], ['2.5', 2.5], ['.5', 0.5], ['5.', 5], ['1e3', 1000], ['1E-2', 0.01], ['-3', -3]];
  for (const [text, value] of cases) assert.equal(readNumber(text, 'x'), value, text);
  assert.ok(Object.is(readNumber('-0', 'x'), 0), '-0 reads as +0');
  assert.equal(readNumber(7, 'x'), 7, 'a number from parsed JSON');
});

test('what Number() accepts but a user did not mean is refused, naming the parameter and the value', () => {
  for (const text of ['0x10', '0o7', '0b1', '', ' ', '\t', ' 8', '8 ', '+8', 'Infinity', '-Infinity', 'NaN', '1e999', '1_000', '8,', 'eight', '1e', '.']) {
    assert.throws(() => readNumber(text, 'eps'), (e: unknown) => {
      assert.ok(e instanceof InvalidNumberError);
      assert.equal(e.message, `eps must be a finite number, got '${text}'`);
      return true;
    }, JSON.stringify(text));
  }
  for (const v of [Number.NaN, Infinity, null, true, [1], { n: 1 }, undefined]) {
    assert.throws(() => readNumber(v, 'seed'), InvalidNumberError, String(v));
  }
  assert.throws(() => readNumber(null, 'seed', { integer: true }), /^InvalidNumberError: seed must be an integer, got null$/);
});

test('bounds and integers, inclusive and exclusive, in the message', () => {
  assert.equal(readNumber('255', 'eps', { min: 0, max: 255 }), 255);
  assert.throws(() => readNumber('255.5', 'eps', { min: 0, max: 255, unit: 'pixel values' }), /^InvalidNumberError: eps must be a number in \[0, 255\] pixel values, got '255.5'$/);
  assert.throws(() => readNumber('1.5', '--limit', { integer: true, min: 1 }), /--limit must be a positive integer, got '1.5'/);
  assert.equal(readNumber('1e2', '--limit', { integer: true, min: 1 }), 100);
  assert.throws(() => readNumber('1e20', '--limit', { integer: true, min: 1 }), /^InvalidNumberError: --limit must be a positive integer \(at most 9007199254740991, 2\^53 - 1\), got '1e20'$/, 'beyond 2^53 is not a safe integer');
  assert.throws(() => readNumber('-1', '--seed', { integer: true, min: 0 }), /--seed must be a non-negative integer, got '-1'/);
  assert.throws(() => readNumber('0', '--scale', { greaterThan: 0, max: 8 }), /--scale must be a number in \(0, 8\], got '0'/);
  assert.throws(() => readNumber('1', '--label-smoothing', { min: 0, lessThan: 1 }), /--label-smoothing must be a number in \[0, 1\), got '1'/);
  assert.throws(() => readNumber('0', '--timeout', { greaterThan: 0 }), /--timeout must be a positive number, got '0'/);
  assert.equal(describeNumber({ min: 0 }), 'a number >= 0');
  assert.equal(describeNumber({ integer: true, min: 1, max: 1000 }), 'an integer in [1, 1000]');
});
