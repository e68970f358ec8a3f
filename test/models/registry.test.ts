/**
 * buildClassifier checks the spec before it builds a layer: classes 0 is
 * reported as the classifier's option, not by Linear ("outFeatures must be a
 * positive integer"), and a width of 1e300 is refused before Conv2d asks
 * libtorch for 1e300 filters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ArchitectureOptions, MAX_HIDDEN, MAX_WIDTH, type ModelSpec, buildClassifier } from '../../src/models/index.js';

const SPECS: Record<'mnist-cnn' | 'resnet' | 'inception-v3', ModelSpec['classifier']> = {
  'mnist-cnn': { classes: 10, inputShape: [1, 28, 28], inputRange: [0, 1] },
  resnet: { classes: 10, inputShape: [3, 32, 32], inputRange: [0, 1] },
  'inception-v3': { classes: 10, inputShape: [3, 75, 75], inputRange: [-1, 1] },
};
const spec = (architecture: keyof typeof SPECS, classifier: Partial<ModelSpec['classifier']>, options: ArchitectureOptions = {}): ModelSpec => ({
  architecture, options: { depth: architecture === 'resnet' ? 8 : undefined, ...options }, classifier: { ...SPECS[architecture], ...classifier },
});

for (const architecture of Object.keys(SPECS) as (keyof typeof SPECS)[]) {
  test(`${architecture}: classes and inputShape are checked before any layer`, () => {
    for (const classes of [0, 1, 2.5, NaN]) {
      assert.throws(() => buildClassifier(spec(architecture, { classes })), { message: `Classifier: classes must be an integer >= 2, got ${classes}` });
    }
    assert.throws(() => buildClassifier(spec(architecture, { inputShape: [0, 28, 28] })), { message: 'Classifier: inputShape must be [channels, height, width] of positive integers, got [0,28,28]' });
  });
  test(`${architecture}: width is a number in (0, ${MAX_WIDTH}]`, () => {
    for (const width of [1e300, MAX_WIDTH * 2, 0, -1, NaN]) {
      assert.throws(() => buildClassifier(spec(architecture, {}, { width })), { message: `width (rho) must be a number in (0, 8], got ${width}` });
    }
  });
}

test("mnist-cnn: hidden sets the dense layer's units alone, an integer up to its bound; other architectures have none", () => {
  const model = buildClassifier(spec('mnist-cnn', {}, { hidden: 1024, seed: 1 }));
  const shapes = [...model.module.stateDict()].map(([name, t]) => `${name} ${t.shape.join('x')}`);
  model.dispose();
  assert.deepEqual(shapes.filter((s) => /^(conv2|fc1|fc2)\.weight/.test(s)), ['conv2.weight 64x32x3x3', 'fc1.weight 1024x1600', 'fc2.weight 10x1024']);
  for (const hidden of [0, 2.5, MAX_HIDDEN + 1, NaN]) {
    assert.throws(() => buildClassifier(spec('mnist-cnn', {}, { hidden })), { message: `MnistCnn: hidden must be an integer in [1, ${MAX_HIDDEN}], got ${hidden}` });
  }
  assert.throws(() => buildClassifier(spec('resnet', {}, { hidden: 64 })), { message: "options.hidden is the MNIST CNN's dense layer; resnet has none" });
});

test('a valid spec still builds, at the smallest widths too', () => {
  const model = buildClassifier(spec('mnist-cnn', { classes: 2 }, { width: 0.01, seed: 1 }));
  assert.equal(model.classes, 2);
  model.dispose();
});
