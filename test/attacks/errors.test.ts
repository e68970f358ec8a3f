/**
 * Errors that name what the caller passed: an empty batch, and eps missing or
 * of the wrong kind, for every method, reported before any op runs (not as
 * "amin(): Expected reduction dim", "eps tensor must have shape [N], got
 * [undefined]" or a TypeError from reading a property of undefined).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, tensor, zeros } from '../../src/index.js';
import * as A from '../../src/attacks/index.js';
import { linearClassifier, toTensor, interiorBatch } from './linear-model.js';

const model = linearClassifier();
const x = toTensor(interiorBatch(2));
const y = tensor(new BigInt64Array([1n, 2n]));
const EXPECTED = 'a number in \\[0, 255\\] pixel values, an array of them \\(one per image\\) or a Tensor \\[N\\]';

for (const name of A.METHOD_NAMES) {
  const run = A.attackSpec(name).run;
  test(`${name}: an empty batch is refused as such`, () => {
    assert.throws(() => run(model, zeros([0, 3, 2, 2], { dtype: 'float64' }), { eps: 2, y: tensor(new BigInt64Array(0)), generator: new Generator(1) }), {
      message: 'x: the batch holds no image',
    });
  });
  test(`${name}: eps as a string, an object, missing, or no options at all`, () => {
    const cases: [unknown, string][] = [['2', "the string '2'"], [{}, 'an object'], [undefined, 'undefined'], [null, 'null'], [true, 'boolean true']];
    for (const [eps, shown] of cases) {
      assert.throws(() => run(model, x, { eps, y, generator: new Generator(1) } as never), new RegExp(`^Error: eps must be ${EXPECTED}, got ${shown}$`), String(eps));
    }
    assert.throws(() => run(model, x, { y } as never), new RegExp(`^Error: eps must be ${EXPECTED}, got undefined$`));
    assert.throws(() => (run as (...a: unknown[]) => unknown)(model, x), /^Error: attack options must be an object with at least eps, got undefined$/);
    // One value in a list of the wrong kind is named by its index.
    // The bound is the whole range in the norm the method checks eps in: 255 in L-inf, 255 sqrt(12) in L2 for these 12-value images.
    const bound = '(255\\] pixel values|883\\.346\\] pixel values \\(l2\\))';
    assert.throws(() => run(model, x, { eps: [1, '2'] as unknown as number[], y, generator: new Generator(1) }), new RegExp(`^Error: eps\\[1\\] must be a number in \\[0, ${bound}, got the string '2'$`));
  });
}

test('the grid of one-step methods names each eps by its place', () => {
  assert.throws(() => A.oneStepGrid(model, x, [A.FGSM], { eps: [2, 'a' as unknown as number], y }), new RegExp(`^Error: eps\\[1\\] must be ${EXPECTED}, got the string 'a'$`));
  assert.throws(() => (A.oneStepGrid as (...a: unknown[]) => unknown)(model, x, [A.FGSM]), /^Error: attack options must be an object/);
});
