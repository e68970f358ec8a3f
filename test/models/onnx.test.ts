/**
 * ONNX models run on advml's engine, against PyTorch: fixtures are exported by
 * test/models/fixtures/export_onnx.py (torch.onnx.export, Debian's PyTorch)
 * into a temporary directory, with PyTorch's logits, input gradients,
 * parameter gradients and training-mode values. Also the load-time errors:
 * unsupported operators, opsets, domains, attributes, missing inputs, and
 * truncated, empty or non-regular files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, grad, memory, noGrad, optim, scope, setNumThreads } from '../../src/index.js';
import { loadSafetensorsSync } from '../../src/io/index.js';
import { OnnxError, type OnnxModule, loadForeign, loadOnnxModel, loadOnnxModelFromBytes } from '../../src/models/index.js';
import { decodeModelMessage, encodeModelMessage } from '../../src/models/onnx/proto.js';
import { hasTorch, runPython } from '../helpers/python.js';

setNumThreads(2);

const script = fileURLToPath(new URL('./fixtures/export_onnx.py', import.meta.url));
const noTorch = !hasTorch() && '/usr/bin/python3 cannot import torch (scripts/setup.sh installs python3-torch): PyTorch fixtures skipped';
let dir = '';

before(() => {
  if (noTorch) return;
  dir = mkdtempSync(join(tmpdir(), 'advml-onnx-'));
  runPython(script, [dir]);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const file = (name: string): string => join(dir, `${name}.onnx`);

/** PyTorch's reference values of a fixture; the caller disposes them. */
function reference(name: string): Map<string, Tensor> {
  return loadSafetensorsSync(join(dir, `${name}.safetensors`)).tensors;
}

function disposeAll(m: Map<string, Tensor>): void {
  for (const t of m.values()) t.dispose();
}

/** max |a - b| / max |b|. */
const relErr = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item() / Math.max(b.abs().max().item(), 1e-12));

const CASES = [
  'resnet18_op13', 'resnet18_op13_preserve', 'mobilenet_v2_op11', 'mobilenet_v2_op17',
  'ops_op11', 'ops_op13', 'ops_op17', 'activations_op11', 'activations_op13', 'activations_op17', 'dropout_op13', 'tiny_mnist_op13',
];

for (const name of CASES) {
  test(`${name}: logits and input gradient match PyTorch (1e-4); nothing leaks`, { skip: noTorch }, () => {
    const model = loadOnnxModel(file(name));
    const ref = reference(name);
    const before = memory().liveTensors;
    scope(() => {
      const x = (ref.get('x') as Tensor).clone().requiresGrad_();
      const logits = model.forward(x);
      const want = ref.get('logits') as Tensor;
      assert.deepEqual(logits.shape, want.shape);
      const e = relErr(logits, want);
      assert.ok(e < 1e-4, `logits differ from PyTorch's by ${e} of their scale`);
      const [g] = grad(logits.mul(ref.get('w') as Tensor).sum(), x);
      const ge = relErr(g as Tensor, ref.get('x_grad') as Tensor);
      assert.ok(ge < 1e-4, `input gradient differs from PyTorch's by ${ge} of its scale`);
    });
    assert.equal(memory().liveTensors, before, 'forward and backward left tensors behind');
    disposeAll(ref);
    model.dispose();
  });
}

test('what the graph declares: input, shapes, opset, producer; a Classifier from it', { skip: noTorch }, () => {
  const model = loadOnnxModel(file('mobilenet_v2_op17'));
  assert.equal(model.inputName, 'input');
  assert.deepEqual(model.inputShape, [2, 3, 64, 64]);
  assert.deepEqual(model.outputNames, ['logits']);
  assert.equal(model.opset, 17);
  assert.equal(model.producer.name, 'pytorch');
  const ref = reference('mobilenet_v2_op17');
  model.dispose();
  // The input contract from what the graph declares, through the loader the CLI uses.
  const c = loadForeign(file('mobilenet_v2_op17'), 'onnx');
  assert.deepEqual(c.inputShape, [3, 64, 64]);
  assert.equal(c.classes, 10);
  scope(() => {
    const e = relErr(noGrad(() => c.logits(ref.get('x') as Tensor)), ref.get('logits') as Tensor);
    assert.ok(e < 1e-4, `classifier logits differ by ${e}`);
  });
  assert.throws(() => c.module.forward(ref.get('x')?.slice(2, 0, 32) as Tensor), /input 'input' must have shape \[N,3,64,64\], got \[2,3,32,64\]/);
  disposeAll(ref);
  c.dispose();
});

test('batch norm kept: PyTorch names in the state dict, parameter gradients and one SGD step match PyTorch', { skip: noTorch }, () => {
  const model = loadOnnxModel(file('resnet18_op13_preserve'));
  const ref = reference('resnet18_op13_preserve');
  const params = new Map(model.namedParameters());
  const torchParams = [...ref.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
  assert.deepEqual([...params.keys()].sort(), [...torchParams].sort(), 'parameter names are torchvision\'s');
  const buffers = model.namedBuffers().map(([n]) => n);
  assert.ok(buffers.includes('layer1.0.bn1.running_mean') && buffers.includes('bn1.running_var'), 'running statistics are buffers');
  assert.equal(buffers.length, 40);
  assert.ok(model.stateDict().has('layer4.1.bn2.weight'));

  const sgd = new optim.SGD(model.parameters(), 0.1);
  scope(() => {
    const logits = model.forward(ref.get('x') as Tensor);
    logits.mul(ref.get('w') as Tensor).sum().backward();
  });
  for (const [n, p] of params) {
    const g = p.grad as Tensor;
    assert.ok(g, `${n} received a gradient`);
    const e = relErr(g, ref.get(`grad.${n}`) as Tensor);
    assert.ok(e < 1e-4, `gradient of ${n} differs from PyTorch's by ${e}`);
    g.dispose();
  }
  sgd.step();
  for (const n of ['conv1.weight', 'layer4.1.bn2.weight', 'fc.weight']) {
    const e = relErr(params.get(n) as Tensor, ref.get(`sgd.${n}`) as Tensor);
    assert.ok(e < 1e-5, `${n} after one SGD step differs from PyTorch's by ${e}`);
  }
  disposeAll(ref);
  model.dispose();
});

test('training mode: batch norm normalises with batch statistics and updates the running ones as PyTorch does', { skip: noTorch }, () => {
  const model = loadOnnxModel(file('resnet18_op13_preserve'));
  const ref = reference('resnet18_op13_preserve');
  assert.equal(model.training, false, 'a loaded model starts in inference mode');
  model.train();
  scope(() => {
    const y = noGrad(() => model.forward(ref.get('x') as Tensor));
    const e = relErr(y, ref.get('train.logits') as Tensor);
    assert.ok(e < 1e-4, `training-mode logits differ by ${e}`);
  });
  for (const [n, b] of model.namedBuffers()) {
    const e = relErr(b, ref.get(`train.${n}`) as Tensor);
    assert.ok(e < 1e-4, `${n} after one training step differs from PyTorch's by ${e}`);
  }
  disposeAll(ref);
  model.dispose();
});

test('Dropout is active in training mode only', { skip: noTorch }, () => {
  const model = loadOnnxModel(file('dropout_op13'));
  const ref = reference('dropout_op13');
  scope(() => {
    const x = ref.get('x') as Tensor;
    const evalOut = model.forward(x);
    assert.ok(relErr(evalOut, ref.get('logits') as Tensor) < 1e-5);
    model.train();
    const a = model.forward(x);
    const b = model.forward(x);
    assert.ok(relErr(a, evalOut) > 1e-3, 'training mode drops units');
    assert.ok(relErr(a, b) > 1e-3, 'each call draws a new mask');
    model.eval();
    assert.equal(relErr(model.forward(x), evalOut), 0);
  });
  disposeAll(ref);
  model.dispose();
});

test('parameters exported under generated names are registered under sanitised unique names', { skip: noTorch }, () => {
  const model = loadOnnxModel(file('resnet18_op13'));
  const names = model.namedParameters().map(([n]) => n);
  assert.ok(names.includes('fc.weight'), 'a name that fits the tree is kept');
  assert.ok(names.some((n) => /^onnx__Conv_\d+$/.test(n)), 'onnx::Conv_N becomes onnx__Conv_N');
  for (const [onnxName, stateName] of model.stateNames) assert.ok(model.stateDict().has(stateName), `${onnxName} is in the state dict`);
  assert.equal(new Set(names).size, names.length);
  model.dispose();
});

test('an unsupported operator is refused at load, naming operator, node and opset', { skip: noTorch }, () => {
  assert.throws(() => loadOnnxModel(file('unsupported_op13')), (e: Error) => {
    assert.ok(e instanceof OnnxError);
    assert.match(e.message, /unsupported_op13\.onnx: node 1 '\/CumSum' \(CumSum, opset 13\): operator 'CumSum' is not supported/);
    return true;
  });
});

test('truncated, empty, missing, oversized and non-regular files give clear errors', { skip: noTorch }, () => {
  const bytes = readFileSync(file('ops_op13'));
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  for (const n of [1, 7, 100, Math.floor(bytes.length / 2), bytes.length - 3]) {
    const p = join(bad, `cut${n}.onnx`);
    writeFileSync(p, bytes.subarray(0, n));
    assert.throws(() => loadOnnxModel(p), (e: Error) => {
      assert.ok(e instanceof OnnxError, `cut at ${n}: ${e.message}`);
      assert.ok(e.message.startsWith(`onnx ${p}: `), e.message);
      return true;
    });
  }
  const empty = join(bad, 'empty.onnx');
  writeFileSync(empty, '');
  assert.throws(() => loadOnnxModel(empty), /empty\.onnx: the file is empty/);
  assert.throws(() => loadOnnxModel(bad), /: not a regular file \(a directory\); refusing to read it/);
  assert.throws(() => loadOnnxModel(join(bad, 'none.onnx')), /none\.onnx: cannot read \(ENOENT\)/);
  assert.throws(() => loadOnnxModel(file('ops_op13'), { maxBytes: 1000 }), /more than the 1000 bytes accepted/);
  writeFileSync(join(bad, 'text.onnx'), 'this is not a protobuf file at all\n');
  assert.throws(() => loadOnnxModel(join(bad, 'text.onnx')), OnnxError);
});

/** The model's protobuf fields as objects, edited by `edit`, encoded again. */
function edited(name: string, edit: (m: Record<string, any>) => void): Uint8Array {
  const m = decodeModelMessage(readFileSync(file(name))) as Record<string, any>;
  edit(m);
  return encodeModelMessage(m);
}

test('edited models: opsets outside 11..18, other domains, missing initialisers, unknown attributes are refused', { skip: noTorch }, () => {
  const setOpset = (v: number) => (m: Record<string, any>) => { m.opsetImport[0].version = v; };
  assert.throws(() => loadOnnxModelFromBytes(edited('ops_op13', setOpset(10)), 'm10'), /onnx m10: opset 10 is not supported \(supported: 11 to 18\)/);
  assert.throws(() => loadOnnxModelFromBytes(edited('ops_op13', setOpset(19)), 'm19'), /opset 19 is not supported/);
  assert.throws(
    () => loadOnnxModelFromBytes(edited('ops_op13', (m) => { m.graph.node[0].domain = 'com.example'; }), 'dom'),
    /onnx dom: node 0 '\/conv\/Conv' \(Conv, opset 13\): domain 'com.example' is not supported/,
  );
  assert.throws(
    () => loadOnnxModelFromBytes(edited('ops_op13', (m) => { m.graph.initializer.splice(0, 1); m.graph.input = m.graph.input.slice(0, 1); }), 'noinit'),
    /node 0 '\/conv\/Conv' \(Conv, opset 13\): input 'conv.weight' is neither a graph input, an initialiser nor an earlier node's output/,
  );
  assert.throws(
    () => loadOnnxModelFromBytes(edited('ops_op13', (m) => { m.graph.node[0].attribute.push({ name: 'frobnicate', type: 2, i: 1 }); }), 'attr'),
    /node 0 '\/conv\/Conv' \(Conv, opset 13\): attribute 'frobnicate' not supported/,
  );
  assert.throws(
    () => loadOnnxModelFromBytes(edited('ops_op13', (m) => {
      const a = m.graph.node[0].attribute.find((x: { name: string }) => x.name === 'pads');
      a.ints = [1, 1];
    }), 'pads'),
    /Conv, opset 13\): pads \[1,1\] must be 4 non-negative values/,
  );
  assert.throws(
    () => loadOnnxModelFromBytes(edited('ops_op13', (m) => { m.graph.initializer[0].rawData = m.graph.initializer[0].rawData.subarray(0, 10); }), 'short'),
    /onnx short: initialiser 'conv.weight': .*raw data has 10 bytes/,
  );
});

test('opset 18: ReduceMean and Split axes as inputs give PyTorch\'s opset-17 results', { skip: noTorch }, () => {
  // The opset-17 graph rewritten as opset 18 expects it: ReduceMean's axes move from an attribute to an input.
  const bytes = edited('ops_op17', (m) => {
    m.opsetImport[0].version = 18;
    const node = m.graph.node.find((n: { opType: string }) => n.opType === 'ReduceMean');
    const axes = node.attribute.find((a: { name: string }) => a.name === 'axes');
    node.attribute = node.attribute.filter((a: { name: string }) => a.name !== 'axes');
    const data = new Uint8Array(new BigInt64Array(axes.ints.map(BigInt)).buffer);
    m.graph.initializer.push({ name: 'reduce_axes', dims: [axes.ints.length], dataType: 7, rawData: data });
    node.input.push('reduce_axes');
  });
  const model = loadOnnxModelFromBytes(bytes, 'op18');
  assert.equal(model.opset, 18);
  const ref = reference('ops_op17');
  scope(() => {
    const e = relErr(noGrad(() => model.forward(ref.get('x') as Tensor)), ref.get('logits') as Tensor);
    assert.ok(e < 1e-4, `logits differ by ${e}`);
  });
  disposeAll(ref);
  model.dispose();
});

test('forwardAll returns every output; forward the first', { skip: noTorch }, () => {
  // A second graph output: the first node's output.
  const bytes = edited('activations_op13', (m) => {
    m.graph.output.push({ name: m.graph.node.find((n: { opType: string }) => n.opType === 'Conv').output[0] });
  });
  const model: OnnxModule = loadOnnxModelFromBytes(bytes);
  const ref = reference('activations_op13');
  const before = memory().liveTensors;
  scope(() => {
    const outs = noGrad(() => model.forwardAll(ref.get('x') as Tensor));
    assert.equal(outs.length, 2);
    assert.deepEqual(outs[1]?.shape, [2, 4, 16, 16]);
    assert.ok(relErr(outs[0] as Tensor, ref.get('logits') as Tensor) < 1e-4);
    assert.ok(relErr(noGrad(() => model.forward(ref.get('x') as Tensor)), ref.get('logits') as Tensor) < 1e-4);
  });
  assert.equal(memory().liveTensors, before);
  disposeAll(ref);
  model.dispose();
});

test('a batch size other than the exported one runs where Reshape takes its shape from Shape', { skip: noTorch }, () => {
  const model = loadOnnxModel(file('ops_op13'));
  const ref = reference('ops_op13');
  scope(() => {
    const one = noGrad(() => model.forward((ref.get('x') as Tensor).slice(0, 1, 2)));
    assert.deepEqual(one.shape, [1, 7]);
    assert.ok(relErr(one, (ref.get('logits') as Tensor).slice(0, 1, 2)) < 1e-4);
  });
  disposeAll(ref);
  model.dispose();
});

test('Gelu (one node in place of the Erf pattern PyTorch exports) gives PyTorch\'s gelu', { skip: noTorch }, () => {
  // x / sqrt(2) -> Erf -> + 1 -> x * . -> * 0.5 becomes Gelu(x).
  const bytes = edited('activations_op13', (m) => {
    type Node = { opType: string; input: string[]; output: string[]; attribute?: unknown[]; name?: string };
    const nodes = m.graph.node as Node[];
    const producer = (name: string): Node => nodes.find((n) => (n.output ?? []).includes(name)) as Node;
    const reader = (n: Node): Node => nodes.find((k) => (k.input ?? []).includes(n.output[0] as string)) as Node;
    const erf = nodes.find((n) => n.opType === 'Erf') as Node;
    const div = producer(erf.input[0] as string);
    const add = reader(erf);
    const mul1 = reader(add);
    const mul2 = reader(mul1);
    assert.deepEqual([div.opType, add.opType, mul1.opType, mul2.opType], ['Div', 'Add', 'Mul', 'Mul'], 'the exported pattern');
    const gelu: Node = { opType: 'Gelu', name: 'gelu', input: [div.input[0] as string], output: mul2.output, attribute: [] };
    nodes.splice(nodes.indexOf(div), 1, gelu);
    for (const n of [erf, add, mul1, mul2]) nodes.splice(nodes.indexOf(n), 1);
  });
  const model = loadOnnxModelFromBytes(bytes);
  const ref = reference('activations_op13');
  scope(() => {
    const x = (ref.get('x') as Tensor).clone().requiresGrad_();
    const y = model.forward(x);
    assert.ok(relErr(y, ref.get('logits') as Tensor) < 1e-4);
    const [g] = grad(y.mul(ref.get('w') as Tensor).sum(), x);
    assert.ok(relErr(g as Tensor, ref.get('x_grad') as Tensor) < 1e-4);
  });
  disposeAll(ref);
  model.dispose();
});
