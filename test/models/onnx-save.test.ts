/**
 * Writing a trained ONNX model back: an SGD step moves the weights and the
 * running statistics of a PyTorch-exported model (test/models/fixtures/
 * export_onnx.py), saveOnnx writes it, and the file loads again with exactly
 * the trained state and logits. A stand-alone reader
 * (fixtures/read_onnx_initializers.py: the protobuf wire format read with
 * struct) finds advml's values in it; everything else (nodes, opset, producer,
 * other initialisers, fields the loader does not know) is kept as it was.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs/light.js';
import { type Tensor, noGrad, optim, scope, setNumThreads } from '../../src/index.js';
import { loadSafetensorsSync } from '../../src/io/index.js';
import { type OnnxModule, loadOnnxModel, loadOnnxModelFromBytes, saveOnnx, serializeOnnx } from '../../src/models/index.js';
import { decodeModelMessage, encodeModelMessage } from '../../src/models/onnx/proto.js';
import { hasTorch, runPython } from '../helpers/python.js';

setNumThreads(2);

const exporter = fileURLToPath(new URL('./fixtures/export_onnx.py', import.meta.url));
const reader = fileURLToPath(new URL('./fixtures/read_onnx_initializers.py', import.meta.url));
const noTorch = !hasTorch() && '/usr/bin/python3 cannot import torch (scripts/setup.sh installs python3-torch): PyTorch fixtures skipped';
const FIXTURE = 'tiny_mnist_op13';
let dir = '';

before(() => {
  if (noTorch) return;
  dir = mkdtempSync(join(tmpdir(), 'advml-onnx-save-'));
  runPython(exporter, [dir, FIXTURE]);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Message = { graph: { initializer: Record<string, unknown>[]; node: unknown[]; input: unknown[]; output: unknown[] } } & Record<string, unknown>;

/** Model fields the decoding schema does not list (doc_string, metadata_props), appended as raw protobuf. */
const UNKNOWN_FIELDS = (() => {
  const w = protobuf.Writer.create();
  w.uint32((6 << 3) | 2).string('a model doc string');
  w.uint32((14 << 3) | 2).fork().uint32((1 << 3) | 2).string('trained_by').uint32((2 << 3) | 2).string('nobody').ldelim();
  return w.finish();
})();

/**
 * The fixture with what PyTorch's files lack: conv.weight in float_data instead
 * of raw_data, initialisers that are neither parameters nor buffers, and
 * unknown model fields.
 */
function editedFixture(): Uint8Array {
  const m = decodeModelMessage(readFileSync(join(dir, `${FIXTURE}.onnx`))) as Message;
  const conv = m.graph.initializer.find((t) => t.name === 'conv.weight') as Record<string, unknown>;
  const raw = conv.rawData as Uint8Array;
  conv.floatData = Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  conv.rawData = new Uint8Array();
  m.graph.initializer.push(
    { name: 'unused_table', dims: [3], dataType: 1, rawData: new Uint8Array(new Float32Array([1.5, -2, 3]).buffer) },
    { name: 'unused_shape', dims: [2], dataType: 7, int64Data: [2, -1] },
  );
  const bytes = encodeModelMessage(m);
  return Buffer.concat([bytes, UNKNOWN_FIELDS]);
}

/** One training-mode SGD step (lr 0.5) on sum(logits * w): moves every parameter and the running statistics. */
function trainOneStep(model: OnnxModule): void {
  const ref = loadSafetensorsSync(join(dir, `${FIXTURE}.safetensors`)).tensors;
  const sgd = new optim.SGD(model.parameters(), 0.5);
  model.train();
  scope(() => model.forward(ref.get('x') as Tensor).mul(ref.get('w') as Tensor).sum().backward());
  sgd.step();
  sgd.zeroGrad();
  model.eval();
  for (const t of ref.values()) t.dispose();
}

const bytesOf = (t: Tensor): Buffer => Buffer.from(t.rawBytes());

function input(): Tensor {
  const ref = loadSafetensorsSync(join(dir, `${FIXTURE}.safetensors`)).tensors;
  const x = ref.get('x') as Tensor;
  for (const [k, t] of ref) if (k !== 'x') t.dispose();
  return x;
}

test('a trained model written back loads with exactly the trained state and gives the same logits', { skip: noTorch }, () => {
  const bytes = editedFixture();
  const untrained = loadOnnxModelFromBytes(bytes, 'edited');
  const model = loadOnnxModelFromBytes(bytes, 'edited');
  trainOneStep(model);
  const path = join(dir, 'trained.onnx');
  saveOnnx(model, path);
  assert.deepEqual(Buffer.from(serializeOnnx(model)), readFileSync(path), 'serializeOnnx gives the bytes saveOnnx writes');

  const loaded = loadOnnxModel(path);
  const trained = model.stateDict();
  const back = loaded.stateDict();
  const before = untrained.stateDict();
  assert.deepEqual([...back.keys()].sort(), [...trained.keys()].sort());
  assert.ok(back.has('bn.running_mean') && back.has('conv.weight'));
  for (const [name, t] of trained) {
    const b = back.get(name) as Tensor;
    assert.equal(b.dtype, t.dtype, `${name} keeps its dtype`);
    assert.deepEqual(b.shape, t.shape, `${name} keeps its shape`);
    assert.ok(bytesOf(b).equals(bytesOf(t)), `${name} is written back exactly`);
    assert.ok(!bytesOf(b).equals(bytesOf(before.get(name) as Tensor)), `${name} was moved by training, and the moved value was written`);
  }
  const x = input();
  noGrad(() => scope(() => {
    const want = model.forward(x);
    const got = loaded.forward(x);
    assert.equal(got.sub(want).abs().max().item(), 0, 'the reloaded model gives the trained logits');
    assert.ok(untrained.forward(x).sub(want).abs().max().item() > 1e-3, 'training changed the logits');
  }));
  x.dispose();
  for (const m of [untrained, model, loaded]) m.dispose();
});

test('an untrained model is written back byte for byte as PyTorch exported it', { skip: noTorch }, () => {
  const original = readFileSync(join(dir, `${FIXTURE}.onnx`));
  const model = loadOnnxModel(join(dir, `${FIXTURE}.onnx`));
  assert.ok(Buffer.from(serializeOnnx(model)).equals(original));
  model.dispose();
});

test('nodes, opset, producer, inputs, outputs, other initialisers and unknown fields are kept; float_data becomes raw_data', { skip: noTorch }, () => {
  const bytes = editedFixture();
  const model = loadOnnxModelFromBytes(bytes, 'edited');
  trainOneStep(model);
  const saved = serializeOnnx(model);
  const was = decodeModelMessage(bytes) as Message;
  const now = decodeModelMessage(saved) as Message;
  for (const key of ['irVersion', 'producerName', 'producerVersion', 'opsetImport']) assert.deepEqual(now[key], was[key], key);
  assert.equal(now.graph.node.length, 5, 'Conv, BatchNormalization, Relu, Flatten, Gemm');
  for (const key of ['node', 'input', 'output'] as const) assert.deepEqual(now.graph[key], was.graph[key], `graph.${key}`);
  assert.deepEqual(now.graph.initializer.map((t) => t.name), was.graph.initializer.map((t) => t.name), 'initialisers keep their order');
  for (const name of ['unused_table', 'unused_shape']) {
    assert.deepEqual(now.graph.initializer.find((t) => t.name === name), was.graph.initializer.find((t) => t.name === name), `${name} is untouched`);
  }
  assert.ok(Buffer.from(saved.subarray(saved.length - UNKNOWN_FIELDS.length)).equals(Buffer.from(UNKNOWN_FIELDS)), 'fields the loader does not read are copied');
  for (const t of now.graph.initializer.filter((t) => model.stateNames.has(t.name as string))) {
    const old = was.graph.initializer.find((o) => o.name === t.name) as Record<string, unknown>;
    assert.deepEqual([t.dims, t.dataType], [old.dims, old.dataType], `${t.name as string}: dims and data type kept`);
    assert.equal((t.floatData as unknown[] | undefined)?.length ?? 0, 0, `${t.name as string}: no float_data left`);
    assert.equal((t.rawData as Uint8Array).length, (t.dims as number[]).reduce((a, b) => a * b, 1) * 4);
  }
  model.dispose();
});

test('a stand-alone reader of the wire format finds the trained values in the written file', { skip: noTorch }, () => {
  const model = loadOnnxModelFromBytes(editedFixture(), 'edited');
  trainOneStep(model);
  const path = join(dir, 'trained-for-reader.onnx');
  saveOnnx(model, path);
  const found = JSON.parse(runPython(reader, [path])) as Record<string, { dims: number[]; fields: number[]; values: number[] }>;
  const state = model.stateDict();
  assert.deepEqual(Object.keys(found).sort(), [...model.stateNames.keys(), 'unused_table'].sort());
  for (const [name, stateName] of model.stateNames) {
    const t = state.get(stateName) as Tensor;
    const f = found[name]!;
    assert.deepEqual(f.dims, t.shape, `${name} dims`);
    assert.ok(!f.fields.includes(4), `${name} has no float_data`);
    assert.deepEqual(Float32Array.from(f.values), t.dataSync(), `${name}: the reader sees advml's trained values`);
  }
  assert.deepEqual(found.unused_table!.values, [1.5, -2, 3]);
  model.dispose();
});

test('saving into a missing folder fails naming the path', { skip: noTorch }, () => {
  const model = loadOnnxModel(join(dir, `${FIXTURE}.onnx`));
  const path = join(dir, 'no-such-folder', 'model.onnx');
  assert.throws(() => saveOnnx(model, path), (e: Error) => e.message.includes(path));
  model.dispose();
});

test('a module converted to float64 is written back in the initialisers\' float32', { skip: noTorch }, () => {
  const model = loadOnnxModel(join(dir, `${FIXTURE}.onnx`)).toDtype('float64');
  assert.equal(model.stateDict().get('fc.weight')?.dtype, 'float64');
  noGrad(() => (model.stateDict().get('fc.weight') as Tensor).mul_(3));
  const loaded = loadOnnxModelFromBytes(serializeOnnx(model), 'float64 module');
  const saved = decodeModelMessage(serializeOnnx(model)) as Message;
  assert.ok(saved.graph.initializer.every((t) => t.dataType === 1), 'every initialiser stays FLOAT');
  for (const [name, t] of model.stateDict()) {
    const b = loaded.stateDict().get(name) as Tensor;
    assert.equal(b.dtype, 'float32');
    assert.ok(bytesOf(b).equals(scope(() => bytesOf(t.to('float32')))), `${name}: the float64 value rounded to float32`);
  }
  model.dispose();
  loaded.dispose();
});
