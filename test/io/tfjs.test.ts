/**
 * TensorFlow.js LayersModel import and export, checked against TensorFlow.js
 * itself (pure JS, cpu backend; test/io/tfjs-reference.ts): a functional model
 * built in TensorFlow.js with every supported layer kind runs the same in
 * advml; advml models exported to the format run the same in TensorFlow.js
 * (within 1e-4) and come back into advml; malformed models fail with errors
 * naming the file and the fault.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, unlinkSync, truncateSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, type Tensor, grad, memory, noGrad, rand, scope, tensor } from '../../src/index.js';
import { tfjs } from '../../src/io/index.js';
import { MnistCnn, ResNet } from '../../src/models/index.js';
import {
  Activation, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, type Module, Sequential,
  withFrozenParameters,
} from '../../src/nn/index.js';
import { rng, uniformArray } from '../helpers/assert.js';
import { type Tfjs, loadTfjs, tfjsLoadDir, tfjsMissing, tfjsSaveDir } from './tfjs-reference.js';

const { loadLayersModel, importLayersModel, exportLayersModel, saveLayersModel, TfjsModelError } = tfjs;
const skipTf = tfjsMissing();

const tmp = (): string => mkdtempSync(join(tmpdir(), 'advml-tfjs-'));
const maxAbsDiff = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item());

/** Random NHWC data (from an independent PRNG) as a TensorFlow.js tensor and the advml NCHW tensor. */
function images(tf: Tfjs, n: number, h: number, w: number, c: number, seed: number): { tfx: ReturnType<Tfjs['tensor4d']>; x: Tensor } {
  const data = Float32Array.from(uniformArray(rng(seed), n * h * w * c, -1, 1));
  const x = scope(() => tensor(data, { shape: [n, h, w, c] }).permute([0, 3, 1, 2]).contiguous());
  return { tfx: tf.tensor4d(data, [n, h, w, c]), x };
}

/** Runs a TensorFlow.js model and returns its output as an advml tensor (NHWC outputs transposed to NCHW). */
function tfPredict(tf: Tfjs, model: ReturnType<Tfjs['model']> | Awaited<ReturnType<Tfjs['loadLayersModel']>>, x: ReturnType<Tfjs['tensor4d']>): Tensor {
  const y = model.predict(x) as ReturnType<Tfjs['tensor']>;
  const out = tensor(y.dataSync() as Float32Array, { shape: y.shape as number[] });
  y.dispose();
  return out.rank === 4 ? scope(() => out.permute([0, 3, 1, 2]).contiguous()) : out;
}

/** A functional model with every supported layer kind, odd image sizes so 'same' padding is asymmetric. */
function functionalModel(tf: Tfjs): ReturnType<Tfjs['model']> {
  const L = tf.layers;
  const inp = tf.input({ shape: [17, 19, 3], name: 'image' });
  const a = L.conv2d({ filters: 8, kernelSize: [4, 3], strides: 2, padding: 'same', activation: 'relu', name: 'conv_same_s2' }).apply(inp) as TfSym;
  let b = L.zeroPadding2d({ padding: [[1, 2], [0, 1]], name: 'pad' }).apply(inp) as TfSym;
  b = L.conv2d({ filters: 8, kernelSize: [4, 2], strides: 2, useBias: false, name: 'conv_valid' }).apply(b) as TfSym;
  let c = L.add({ name: 'add' }).apply([a, b]) as TfSym;
  c = L.batchNormalization({ name: 'bn', epsilon: 0.01 }).apply(c) as TfSym;
  const d = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu6', name: 'depthwise' }).apply(c) as TfSym;
  const e = L.conv2d({ filters: 16, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'tanh', name: 'dilated' }).apply(c) as TfSym;
  const f = L.concatenate({ name: 'concat' }).apply([d, e]) as TfSym;
  const g1 = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'maxpool_same' }).apply(f) as TfSym;
  const g2 = L.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same', name: 'avgpool_same' }).apply(f) as TfSym;
  const g3 = L.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: 'avgpool_same_s1' }).apply(g2) as TfSym;
  let g = L.multiply({ name: 'mul' }).apply([g1, g3]) as TfSym;
  g = L.minimum({ name: 'min' }).apply([g, L.average({ name: 'avg' }).apply([g2, g1]) as TfSym]) as TfSym;
  g = L.maximum({ name: 'max' }).apply([g, L.leakyReLU({ alpha: -0.2, name: 'reludecay' }).apply(g2) as TfSym]) as TfSym;
  g = L.reLU({ maxValue: 2.5, name: 'relu_capped' }).apply(g) as TfSym;
  const flat = L.flatten({ name: 'flatten' }).apply(L.maxPooling2d({ poolSize: 2, name: 'maxpool_valid' }).apply(g) as TfSym) as TfSym;
  const gap = L.globalAveragePooling2d({ name: 'gap' }).apply(g) as TfSym;
  const gmp = L.globalMaxPooling2d({ name: 'gmp' }).apply(g) as TfSym;
  const dense4 = L.dense({ units: 6, activation: 'sigmoid', name: 'dense_on_image' }).apply(g) as TfSym;
  const pooled = L.flatten({ name: 'flatten2' }).apply(L.averagePooling2d({ poolSize: 5, name: 'avgpool_valid' }).apply(dense4) as TfSym) as TfSym;
  let h = L.concatenate({ name: 'heads' }).apply([flat, gap, gmp, pooled]) as TfSym;
  h = L.dense({ units: 12, activation: 'elu', name: 'hidden' }).apply(h) as TfSym;
  h = L.dropout({ rate: 0.3, name: 'drop' }).apply(h) as TfSym;
  h = L.activation({ activation: 'selu', name: 'selu' }).apply(h) as TfSym;
  h = L.batchNormalization({ name: 'bn_vec' }).apply(h) as TfSym;
  const out = L.dense({ units: 5, activation: 'softmax', name: 'probs' }).apply(h) as TfSym;
  return tf.model({ inputs: inp, outputs: out, name: 'everything' });
}
type TfSym = ReturnType<Tfjs['input']>;

/** Gives every batch-norm layer non-trivial statistics, so inference mode is really exercised. */
function randomiseBatchNorm(tf: Tfjs, model: ReturnType<Tfjs['model']>): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const c = layer.getWeights()[0]?.shape[0] as number;
    layer.setWeights([
      tf.randomUniform([c], 0.5, 1.5, 'float32', 1),
      tf.randomUniform([c], -0.5, 0.5, 'float32', 2),
      tf.randomUniform([c], -0.3, 0.3, 'float32', 3),
      tf.randomUniform([c], 0.5, 2, 'float32', 4),
    ]);
  }
}

test('import: a functional TensorFlow.js model with every supported layer kind gives the same outputs in advml', { skip: skipTf }, async (t) => {
  const tf = await loadTfjs();
  const dir = tmp();
  try {
    const ref = functionalModel(tf);
    randomiseBatchNorm(tf, ref);
    await tfjsSaveDir(ref, dir, 50_000); // several shards
    const model = loadLayersModel(join(dir, 'model.json'));
    assert.deepEqual(model.inputShape, [3, 17, 19]);
    assert.ok(model.stateDict().has('conv_same_s2.weight') && model.stateDict().has('bn.running_var'));
    const { tfx, x } = images(tf, 3, 17, 19, 3, 1);
    const expected = tfPredict(tf, ref, tfx);
    const before = memory().liveTensors;
    const got = noGrad(() => model.forward(x));
    assert.equal(memory().liveTensors, before + 1, 'only the output stays alive');
    const d = maxAbsDiff(got, expected);
    assert.ok(d < 1e-5, `outputs differ from TensorFlow.js by ${d}`);
    t.diagnostic(`max |output difference| from TensorFlow.js: ${d.toExponential(2)}`);

    // outputLogits drops the final softmax: softmax(logits) is TensorFlow.js' output.
    const logitsModel = loadLayersModel(join(dir, 'model.json'), { outputLogits: true });
    const logits = noGrad(() => logitsModel.forward(x));
    assert.ok(maxAbsDiff(logits.softmax(1), expected) < 1e-5);
    assert.ok(maxAbsDiff(logits, expected) > 0.1, 'logits are not probabilities');

    // Gradients reach the input (what attacks need).
    const xg = x.clone().requiresGrad_(true);
    logitsModel.forward(xg).select(1, 2).sum().backward();
    assert.ok((xg.grad as Tensor).abs().sum().item() > 0);
    tf.dispose([tfx]);
    model.dispose();
    logitsModel.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('import: a convolution whose only consumer is batch norm runs folded in inference passes, matching TensorFlow.js', { skip: skipTf }, async () => {
  const tf = await loadTfjs();
  const dir = tmp();
  try {
    const L = tf.layers;
    const inp = tf.input({ shape: [12, 10, 3], name: 'image' });
    const a = L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'conv_a' }).apply(inp) as TfSym;
    const an = L.reLU({ name: 'relu_a' }).apply(L.batchNormalization({ name: 'bn_a' }).apply(a) as TfSym) as TfSym;
    // conv_b feeds its batch norm and the sum: it cannot fold.
    const b = L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false, name: 'conv_b' }).apply(an) as TfSym;
    const bn = L.batchNormalization({ name: 'bn_b', epsilon: 0.01 }).apply(b) as TfSym;
    const sum = L.add({ name: 'sum' }).apply([bn, b]) as TfSym;
    const out = L.dense({ units: 4, name: 'logits' }).apply(L.globalAveragePooling2d({ name: 'gap' }).apply(sum) as TfSym) as TfSym;
    const ref = tf.model({ inputs: inp, outputs: out, name: 'folding' });
    randomiseBatchNorm(tf, ref);
    await tfjsSaveDir(ref, dir);
    const start = memory().liveTensors;
    const model = loadLayersModel(join(dir, 'model.json'));
    const { tfx, x } = images(tf, 3, 12, 10, 3, 5);
    const expected = tfPredict(tf, ref, tfx);
    const before = memory().liveTensors;
    const got = noGrad(() => model.forward(x));
    assert.equal(memory().liveTensors, before + 3, 'the output, and the folded filters and bias of conv_a + bn_a (only)');
    const d = maxAbsDiff(got, expected);
    assert.ok(d < 1e-5, `folded outputs differ from TensorFlow.js by ${d}`);
    // The input gradient of a frozen pass (folded) equals that of a pass with gradients everywhere (not folded).
    const inputGradient = (): Tensor => scope(() => {
      const xr = x.detach().requiresGrad_();
      return grad(model.forward(xr).select(1, 1).sum(), xr)[0] as Tensor;
    });
    const frozen = withFrozenParameters(inputGradient);
    const plain = inputGradient();
    assert.ok(maxAbsDiff(frozen, plain) < 1e-5 * Math.max(1, scope(() => plain.abs().max().item())));
    tf.dispose([tfx]);
    model.dispose();
    for (const t of [got, expected, x, frozen, plain]) t.dispose();
    assert.equal(memory().liveTensors, start, 'dispose freed the folded filters too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A Sequential exercising every exportable layer and padding translation. */
function exportableModel(): Sequential {
  const g = new Generator(21);
  return new Sequential(
    new Conv2d(3, 6, 3, { padding: 1, generator: g }), // 'same'
    new BatchNorm2d(6, { eps: 1e-3, momentum: 0.2 }),
    new Activation('reluDecay', { beta: 0.3 }),
    new Conv2d(6, 8, [3, 5], { stride: 2, padding: [1, 2], bias: false, generator: g }), // ZeroPadding2D + valid
    new Activation('relu6'),
    new MaxPool2d(3, { stride: 1, padding: 1 }), // 'same'
    new AvgPool2d(2, { padding: 1 }), // ZeroPadding2D + valid (padding counted)
    new Conv2d(8, 10, 1, { generator: g }),
    new Activation('tanh'),
    new Dropout(0.25),
    new Flatten(),
    new Linear(10 * 6 * 6, 16, { generator: g }),
    new Activation('relu'),
    new Linear(16, 4, { generator: g }),
  );
}

/** A model ending in global average pooling, the way ResNets do. */
function globalPoolModel(): Sequential {
  const g = new Generator(22);
  return new Sequential(
    new Conv2d(1, 4, 3, { generator: g }),
    new BatchNorm2d(4),
    new Activation('relu'),
    new AdaptiveAvgPool2d(1),
    new Flatten(),
    new Linear(4, 3, { generator: g }),
  );
}

/** Moves batch-norm running statistics away from their initial values. */
function trainStatistics(m: Module, shape: number[]): void {
  m.train();
  scope(() => {
    for (let i = 0; i < 3; i++) noGrad(() => m.forward(rand(shape, { generator: new Generator(30 + i) }).mul(3)));
  });
  m.eval();
}

const exportCases: [string, () => Module, [number, number, number]][] = [
  ['MnistCnn (through toSequential)', () => new MnistCnn({ generator: new Generator(20), activation: 'reluDecay' }), [1, 28, 28]],
  ['a Sequential with batch norm, paddings, pools, reluDecay, relu6, tanh, dropout', exportableModel, [3, 21, 21]],
  ['a Sequential ending in global average pooling', globalPoolModel, [1, 9, 9]],
];

for (const [what, make, shape] of exportCases) {
  test(`export: ${what} gives the same logits in TensorFlow.js (within 1e-4) and in advml after re-import`, { skip: skipTf }, async (t) => {
    const tf = await loadTfjs();
    const dir = tmp();
    try {
      const model = make();
      trainStatistics(model, [4, ...shape]);
      const path = saveLayersModel(dir, model, { inputShape: shape, shardBytes: 8192, metadata: { inputRange: [0, 1] } });
      const json = JSON.parse(readFileSync(path, 'utf8')) as { format: string; userDefinedMetadata: unknown };
      assert.equal(json.format, 'layers-model');
      assert.deepEqual(json.userDefinedMetadata, { inputRange: [0, 1] });
      const [c, h, w] = shape;
      const { tfx, x } = images(tf, 5, h, w, c, 7);
      const ours = noGrad(() => model.forward(x));

      const inTf = await tfjsLoadDir(tf, dir);
      const theirs = tfPredict(tf, inTf, tfx);
      const d = maxAbsDiff(ours, theirs);
      assert.ok(d < 1e-4, `TensorFlow.js logits differ by ${d}`);

      const back = loadLayersModel(path);
      const again = noGrad(() => back.forward(x));
      const d2 = maxAbsDiff(ours, again);
      assert.ok(d2 < 1e-5, `re-imported logits differ by ${d2}`);
      t.diagnostic(`max |logit difference|: TensorFlow.js ${d.toExponential(2)}, re-imported ${d2.toExponential(2)}`);
      tf.dispose([tfx]);
      inTf.dispose();
      back.dispose();
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('export refuses what Keras cannot express exactly, naming the layer', () => {
  const g = new Generator(1);
  assert.throws(() => exportLayersModel(new Sequential(new Conv2d(4, 4, 3, { groups: 2, generator: g })), { inputShape: [4, 8, 8] }), /layer 0 \(Conv2d\): grouped convolutions/);
  assert.throws(() => exportLayersModel(new Sequential(new Conv2d(3, 4, 3, { generator: g })), { inputShape: [1, 8, 8] }), /has 3 input channels, the input here has 1/);
  assert.throws(() => exportLayersModel(new Sequential(new MaxPool2d(3, { stride: 2, padding: 1 })), { inputShape: [1, 8, 8] }), /padding \[1,1\] on a 8x8 input has no exact Keras equivalent/);
  assert.throws(() => exportLayersModel(new Sequential(new Flatten(), new Conv2d(1, 1, 1, { generator: g })), { inputShape: [1, 4, 4] }), /layer 1 \(Conv2d\): only element-wise layers may come between Flatten and the next Linear/);
  assert.throws(() => exportLayersModel(new Sequential(new AdaptiveAvgPool2d(1), new Conv2d(1, 1, 1, { generator: g })), { inputShape: [1, 4, 4] }), /needs an image input/);
  assert.throws(() => exportLayersModel(new Sequential(new Linear(16, 2, { generator: g })), { inputShape: [1, 4, 4] }), /add a Flatten/);
  assert.throws(() => exportLayersModel(new ResNet({ depth: 8, generator: g }), { inputShape: [3, 32, 32] }), /layer 0 \(ResNet\): this module cannot be exported/);
  assert.throws(() => exportLayersModel(new Sequential(new AdaptiveAvgPool2d(2)), { inputShape: [1, 4, 4] }), /only AdaptiveAvgPool2d\(1\)/);
  assert.throws(() => exportLayersModel(new Sequential(), { inputShape: [1, 4] }), /inputShape must be/);
});

// ---- malformed models ----

/** A small valid model directory (exported from advml) to break in different ways. */
function validModelDir(): { dir: string; path: string; json: Record<string, unknown> } {
  const dir = tmp();
  const m = new Sequential(new Conv2d(1, 2, 3, { generator: new Generator(3) }), new Flatten(), new Linear(2 * 4 * 4, 3, { generator: new Generator(4) }));
  const path = saveLayersModel(dir, m, { inputShape: [1, 6, 6], shardBytes: 64 });
  m.dispose();
  return { dir, path, json: JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> };
}

/** Asserts that loading fails with a TfjsModelError whose message names the file and matches `problem`. */
function assertFails(path: string, problem: RegExp, opts: tfjs.ImportOptions = {}): void {
  assert.throws(
    () => loadLayersModel(path, opts),
    (e: unknown) => {
      assert.ok(e instanceof TfjsModelError, `expected a TfjsModelError, got ${String(e)}`);
      assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
      assert.match(e.message, problem);
      return true;
    },
  );
}

test('malformed model.json: clear errors naming the file and the fault', () => {
  const { dir, path, json } = validModelDir();
  const write = (j: unknown): void => writeFileSync(path, typeof j === 'string' ? j : JSON.stringify(j));
  const clone = (): Record<string, any> => JSON.parse(JSON.stringify(json)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    assertFails(join(dir, 'missing.json'), /cannot be read/);
    write('{"format": "layers-model", ');
    assertFails(path, /is not valid JSON/);
    write([1, 2]);
    assertFails(path, /model\.json must be an object, got an array of 2/);
    write({ ...clone(), format: 'graph-model' });
    assertFails(path, /only 'layers-model'/);
    let j = clone();
    delete j.modelTopology;
    write(j);
    assertFails(path, /modelTopology must be an object, got nothing/);
    j = clone();
    j.modelTopology.config.layers[0].class_name = 'Conv3D';
    write(j);
    assertFails(path, /layers\[0\] \(layer 'conv2d_1'\): layer type Conv3D is not supported/);
    j = clone();
    j.modelTopology.config.layers[0].config.kernel_size = [3, 'x'];
    write(j);
    assertFails(path, /layers\[0\]\.config\.kernel_size\[1\] must be an integer >= 1, got "x"/);
    j = clone();
    j.modelTopology.config.layers[0].config.data_format = 'channels_first';
    write(j);
    assertFails(path, /data_format 'channels_first' is not supported/);
    j = clone();
    j.modelTopology.config.layers[0].config.padding = 'causal';
    write(j);
    assertFails(path, /padding 'causal' is not supported/);
    j = clone();
    delete j.modelTopology.config.layers[0].config.batch_input_shape;
    write(j);
    assertFails(path, /first layer of a Sequential model must declare batch_input_shape/);
    j = clone();
    j.modelTopology.config.layers[2].config.units = 4;
    write(j);
    assertFails(path, /weight 'dense_1\/kernel' has shape \[32,3\] in the manifest, but layer 'dense_1' \(Dense\) needs \[32,4\]/);
    j = clone();
    j.weightsManifest[0].weights[0].name = 'conv2d_1/kernel_renamed';
    write(j);
    assertFails(path, /the manifest has no weight 'conv2d_1\/kernel' for layer 'conv2d_1'/);
    j = clone();
    j.weightsManifest[0].weights.push({ name: 'extra/w', shape: [1], dtype: 'float32' });
    write(j);
    assertFails(path, /hold \d+ bytes .* but its 5 weights need/);
    j = clone();
    j.weightsManifest[0].weights[3].dtype = 'string';
    write(j);
    assertFails(path, /has dtype "string"; only float32, int32 and bool/);
    j = clone();
    j.weightsManifest[0].weights[1].name = j.weightsManifest[0].weights[0].name;
    write(j);
    assertFails(path, /is listed twice in the manifest/);
    j = clone();
    j.modelTopology.config.layers[1].config.data_format = 7;
    write(j);
    assertFails(path, /config\.data_format must be a string, got number 7/);
    j = clone();
    j.modelTopology.config.layers[2].config.activation = 'gelu_new';
    write(j);
    assertFails(path, /activation 'gelu_new' is not supported/);
    j = clone();
    j.modelTopology.config.layers[2].config.activation = 'relu';
    write(j);
    assertFails(path, /outputLogits: the output layer 'dense_1' \(Dense \(activation 'relu'\)\) does not end in a softmax/, { outputLogits: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missing, short and long weight shards are refused, naming the shard files', () => {
  const { dir, path, json } = validModelDir();
  try {
    const paths = (json.weightsManifest as { paths: string[] }[])[0]?.paths as string[];
    assert.ok(paths.length >= 3, `several shards (${paths.length})`);
    const last = join(dir, paths[paths.length - 1] as string);
    const saved = readFileSync(last);
    truncateSync(last, saved.byteLength - 3);
    assertFails(path, new RegExp(`hold \\d+ bytes \\(.*${paths[paths.length - 1]}: ${saved.byteLength - 3}\\) but its 4 weights need \\d+: a shard is truncated`));
    writeFileSync(last, saved);
    appendFileSync(last, Buffer.from([1, 2, 3, 4]));
    assertFails(path, /the shards hold more than the manifest describes/);
    unlinkSync(last);
    assertFails(path, new RegExp(`weight shard '${paths[paths.length - 1]}' \\(weightsManifest\\[0\\]\\.paths\\) cannot be read: .*ENOENT`));
    writeFileSync(last, saved);
    const j = JSON.parse(JSON.stringify(json)) as { weightsManifest: { paths: string[] }[] };
    (j.weightsManifest[0] as { paths: string[] }).paths[0] = '../escape.bin';
    writeFileSync(path, JSON.stringify(j));
    assertFails(path, /weight shard '\.\.\/escape\.bin' .* must stay inside the model directory/);
    writeFileSync(path, JSON.stringify(json));
    loadLayersModel(path).dispose(); // intact again
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A functional model.json around one layer entry list. */
function functionalJson(layers: unknown[], inputs: unknown = [['in', 0, 0]], outputs: unknown = [['out', 0, 0]]): unknown {
  return {
    format: 'layers-model',
    modelTopology: { class_name: 'Functional', config: { name: 'g', layers, input_layers: inputs, output_layers: outputs } },
    weightsManifest: [],
  };
}
const inputLayer = { name: 'in', class_name: 'InputLayer', config: { batch_input_shape: [null, 4] }, inbound_nodes: [] };
const act = (name: string, from: string): unknown => ({ name, class_name: 'Activation', config: { activation: 'relu' }, inbound_nodes: [[[from, 0, 0, {}]]] });

test('graph errors: dangling references, cycles, several inputs, shape clashes; unused and quantised weights', () => {
  const fails = (j: unknown, problem: RegExp): void => {
    assert.throws(() => importLayersModel({ modelJson: j, readShard: () => new Uint8Array(1), source: 'mem.json' }), (e: unknown) => {
      assert.ok(e instanceof TfjsModelError && e.message.startsWith('TensorFlow.js model mem.json: '), String(e));
      assert.match((e as Error).message, problem);
      return true;
    });
  };
  fails(functionalJson([inputLayer, act('out', 'nowhere')]), /layer 'out' reads layer 'nowhere', which does not exist/);
  fails(functionalJson([inputLayer, act('a', 'out'), act('out', 'a')]), /cycle through layer/);
  fails(functionalJson([inputLayer, act('out', 'in')], [['in', 0, 0], ['in', 0, 0]]), /models with 2 inputs are not supported/);
  fails(functionalJson([inputLayer, act('out', 'in'), act('out', 'in')]), /two layers are named 'out'/);
  fails(
    functionalJson([inputLayer, act('a', 'in'), { name: 'out', class_name: 'Concatenate', config: { axis: 0 }, inbound_nodes: [[['a', 0, 0, {}], ['in', 0, 0, {}]]] }]),
    /axis 0 is out of range/,
  );
  fails(
    functionalJson([
      { name: 'in', class_name: 'InputLayer', config: { batch_input_shape: [null, 4, 4, 2] }, inbound_nodes: [] },
      { name: 'p', class_name: 'ZeroPadding2D', config: { padding: 1 }, inbound_nodes: [[['in', 0, 0, {}]]] },
      { name: 'out', class_name: 'Add', config: {}, inbound_nodes: [[['p', 0, 0, {}], ['in', 0, 0, {}]]] },
    ]),
    /input shapes differ: \[null, 6, 6, 2\] and \[null, 4, 4, 2\]/,
  );
  fails(
    functionalJson([inputLayer, { name: 'out', class_name: 'Dense', config: { units: 2 }, inbound_nodes: [[['in', 0, 0, { mask: 1 }]]] }]),
    /call arguments mask are not supported/,
  );
  fails({ ...(functionalJson([inputLayer, act('out', 'in')]) as object), weightsManifest: [{ paths: ['x.bin'], weights: [{ name: 'w', shape: [1], dtype: 'bool' }] }] }, /no layer uses: w/);

  // A layer the output does not depend on is left out, and its weights are not 'unused'.
  const dead = functionalJson([inputLayer, act('out', 'in'), { name: 'dead', class_name: 'Dense', config: { units: 1, use_bias: false }, inbound_nodes: [[['in', 0, 0, {}]]] }]) as { weightsManifest: unknown[] };
  dead.weightsManifest = [{ paths: ['d.bin'], weights: [{ name: 'dead/kernel', shape: [4, 1], dtype: 'float32' }] }];
  const deadModel = importLayersModel({ modelJson: dead, readShard: () => new Uint8Array(16) });
  assert.deepEqual([...deadModel.layers.keys()], ['in', 'out']);
  deadModel.dispose();

  // Keras 3 writes inbound nodes as {args, kwargs} with __keras_tensor__ entries.
  const k3 = functionalJson([
    inputLayer,
    { name: 'out', class_name: 'Activation', config: { activation: 'softsign' }, inbound_nodes: [{ args: [{ class_name: '__keras_tensor__', config: { shape: [null, 4], keras_history: ['in', 0, 0] } }], kwargs: {} }] },
  ]);
  const k3model = importLayersModel({ modelJson: k3, readShard: () => new Uint8Array(0) });
  assert.deepEqual(noGrad(() => k3model.forward(tensor([[1, -3, 0, 0.5]]))).toArray(), [[0.5, -0.75, 0, Math.fround(0.5 / 1.5)]]);

  // Quantised weights: uint8 (q * scale + min) and float16 halves.
  const dense = (name: string, from: string): unknown => ({ name, class_name: 'Dense', config: { units: 2, use_bias: true }, inbound_nodes: [[[from, 0, 0, {}]]] });
  const json = functionalJson([inputLayer, dense('a', 'in'), dense('out', 'a')]) as { weightsManifest: unknown[] };
  json.weightsManifest = [
    { paths: ['q8.bin'], weights: [{ name: 'a/kernel', shape: [4, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } }, { name: 'a/bias', shape: [2], dtype: 'float32' }] },
    { paths: ['f16.bin'], weights: [{ name: 'out/kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'float16' } }, { name: 'out/bias', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } }] },
  ];
  const q8 = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, ...new Uint8Array(Float32Array.from([0.25, -0.5]).buffer)]);
  // float16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, 0 = 0x0000; bias 1.5 = 0x3e00, -1 = 0xbc00.
  const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x0000, 0x3e00, 0xbc00]).buffer);
  const model = importLayersModel({ modelJson: json, readShard: (p) => (p === 'q8.bin' ? q8 : f16) });
  const a = model.layers.get('a') as tfjs.KerasDense;
  assert.deepEqual(a.weightT?.toArray(), [[-1, 0, 1, 2], [-0.5, 0.5, 1.5, 2.5]]);
  const y = noGrad(() => model.forward(tensor([[1, 0, 0, 0]])));
  // a: [-1 + 0.25, -0.5 - 0.5] = [-0.75, -1]; out: [-0.75 * 1 + -1 * 0.5 + 1.5, -0.75 * -2 + 0 - 1] = [0.25, 0.5]
  assert.deepEqual(y.toArray(), [[0.25, 0.5]]);
  model.dispose();
});

test('an imported model trains: parameters get gradients, batch norm uses batch statistics in training mode', () => {
  const dir = tmp();
  try {
    const src = globalPoolModel();
    const path = saveLayersModel(dir, src, { inputShape: [1, 9, 9] });
    src.dispose();
    const m = loadLayersModel(path);
    assert.equal(m.training, false, 'imported models start in inference mode');
    m.train();
    const x = rand([4, 1, 9, 9], { generator: new Generator(5) });
    scope(() => m.forward(x).square().mean().backward());
    const names = m.namedParameters().filter(([, p]) => p.grad === null).map(([n]) => n);
    assert.deepEqual(names, []);
    assert.ok(!(m.stateDict().get('batch_normalization_1.running_mean') as Tensor).eq(0).all().item(), 'running statistics were updated');
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
