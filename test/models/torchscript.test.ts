/**
 * TorchScript models through libtorch's JIT: torchvision ResNet-18 (scripted)
 * and MobileNetV2 (traced), with random weights, written by Debian's PyTorch
 * (test/models/torchscript_ref.py): inference logits and input gradients, one
 * SGD step in training mode (batch norm on batch statistics), the .pt written
 * back and read by torch.jit.load, and corrupt files refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator, type Tensor, crossEntropy, grad, memory, noGrad, rand, scope, setNumThreads } from '../../src/index.js';
import { loadSafetensorsSync } from '../../src/io/index.js';
import { type TorchScriptModule, loadTorchScript, saveTorchScript } from '../../src/models/index.js';
import { withFrozenParameters } from '../../src/nn/index.js';
import { SGD } from '../../src/optim/index.js';
import { PYTHON, hasTorch, runPython } from '../helpers/python.js';

setNumThreads(2);

const script = fileURLToPath(new URL('./torchscript_ref.py', import.meta.url));
const noTorch = !hasTorch() && 'the reference Python cannot import torch (scripts/setup.sh installs python3-torch)';
const dir = mkdtempSync(join(tmpdir(), 'advml-torchscript-'));
if (!noTorch) runPython(script, ['export', dir]);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const load = (name: string): TorchScriptModule => loadTorchScript(join(dir, name));
const maxAbs = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item());
const maxRel = (a: Tensor, b: Tensor): number => scope(() => a.sub(b).abs().max().item() / b.abs().max().item());

for (const name of ['resnet18', 'mobilenet_v2']) {
  test(`${name}: inference logits within 1e-4 and input gradients within 1e-4 relative of PyTorch's`, { skip: noTorch }, () => {
    const ref = loadSafetensorsSync(join(dir, `${name}.ref.safetensors`)).tensors;
    const model = load(`${name}.pt`).eval();
    try {
      scope(() => {
        const x = ref.get('x')!.detach().requiresGrad_(true);
        const logits = model.forward(x);
        assert.ok(maxAbs(logits, ref.get('logits')!) < 1e-4, `logits differ by ${maxAbs(logits, ref.get('logits')!)}`);
        const [g] = grad(logits.mul(ref.get('w')!).sum(), x);
        const rel = maxRel(g!, ref.get('grad')!);
        assert.ok(rel < 1e-4, `input gradient differs by ${rel} of its largest element`);
      });
    } finally {
      model.dispose();
      for (const t of ref.values()) t.dispose();
    }
  });
}

test('resnet18: PyTorch names and shapes for every parameter and buffer; one SGD step equals PyTorch\'s', { skip: noTorch }, () => {
  const ref = loadSafetensorsSync(join(dir, 'resnet18.ref.safetensors')).tensors;
  const model = load('resnet18.pt');
  try {
    const after = [...ref.keys()].filter((k) => k.startsWith('after.')).map((k) => k.slice('after.'.length));
    assert.deepEqual([...model.stateDict().keys()].sort(), after.sort(), 'the state dict has PyTorch\'s names');
    assert.equal(model.parameters().length, 62);
    const opt = new SGD(model.parameters(), 0.1, { momentum: 0 });
    model.train();
    scope(() => {
      const logits = model.forward(ref.get('x')!);
      assert.ok(maxAbs(logits, ref.get('train_logits')!) < 1e-4, 'training-mode logits (batch statistics) match');
      crossEntropy(logits, ref.get('y')!).backward();
    });
    opt.step();
    for (const [k, t] of model.stateDict()) {
      const d = maxAbs(t.to('float64'), ref.get(`after.${k}`)!.to('float64'));
      assert.ok(d < 1e-4, `${k} after the step differs from PyTorch's by ${d}`);
    }
    opt.dispose();
  } finally {
    model.dispose();
    for (const t of ref.values()) t.dispose();
  }
});

test('a trained model written back as .pt loads in PyTorch with advml\'s weights and gives advml\'s logits', { skip: noTorch }, () => {
  const model = load('resnet18.pt');
  try {
    // A step that moves every weight, so a file with the old weights would not pass.
    const opt = new SGD(model.parameters(), 0.5, { momentum: 0 });
    const ref = loadSafetensorsSync(join(dir, 'resnet18.ref.safetensors')).tensors;
    model.train();
    scope(() => crossEntropy(model.forward(ref.get('x')!), ref.get('y')!).backward());
    opt.step();
    opt.dispose();
    model.eval();
    const out = join(dir, 'trained.pt');
    saveTorchScript(model, out);
    const dumped = join(dir, 'trained.dump.safetensors');
    runPython(script, ['dump', out, join(dir, 'resnet18.ref.safetensors'), dumped]);
    const back = loadSafetensorsSync(dumped).tensors;
    try {
      for (const [k, t] of model.stateDict()) {
        assert.equal(maxAbs(t.to('float64'), back.get(`state.${k}`)!.to('float64')), 0, `${k} as PyTorch reads it`);
      }
      const logits = scope(() => model.forward(ref.get('x')!).detach().keep());
      assert.ok(maxAbs(logits, back.get('logits')!) < 1e-4, 'PyTorch computes advml\'s logits from the file');
      assert.ok(maxAbs(logits, ref.get('logits')!) > 1e-3, 'and they are not the untrained model\'s');
      logits.dispose();
    } finally {
      for (const t of [...ref.values(), ...back.values()]) t.dispose();
    }
  } finally {
    model.dispose();
  }
});

test('corrupt and truncated .pt files are refused with the file named; nothing leaks', { skip: noTorch }, () => {
  const live = memory().liveTensors;
  const whole = readFileSync(join(dir, 'mobilenet_v2.pt'));
  const cases: [string, Uint8Array][] = [
    ['empty.pt', new Uint8Array(0)],
    ['text.pt', new TextEncoder().encode('not a model\n')],
    ['truncated.pt', whole.subarray(0, Math.floor(whole.length / 2))],
  ];
  for (const [file, bytes] of cases) {
    writeFileSync(join(dir, file), bytes);
    assert.throws(() => load(file), (e: Error) => {
      assert.match(e.message, new RegExp(`${file.replace('.', '\\.')}: not an intact zip archive \\(no end-of-directory record`));
      return true;
    });
  }
  // A flipped byte inside a weight's record: the archive's CRC check refuses it.
  const flipped = Uint8Array.from(whole);
  const at = Math.floor(flipped.length * 0.6);
  flipped[at] = (flipped[at] as number) ^ 0xff;
  writeFileSync(join(dir, 'flipped.pt'), flipped);
  assert.throws(() => load('flipped.pt'), /flipped\.pt: not an intact zip archive \(entry '.*' does not match its CRC-32/);
  // An intact zip archive that is no TorchScript module: libtorch's own refusal, with the file named.
  runPython(script, ['plainzip', join(dir, 'plain.pt')]);
  assert.throws(() => load('plain.pt'), /plain\.pt: not a loadable TorchScript file/);
  assert.equal(memory().liveTensors, live);
});

test('dropout inside a TorchScript model follows the dropout stream it is given (same seed, same masks)', { skip: noTorch }, () => {
  const pt = join(dir, 'dropout.pt');
  const p = spawnSync(PYTHON, [fileURLToPath(new URL('../../examples/export_torchscript.py', import.meta.url)), pt], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const x = rand([8, 1, 28, 28], { generator: new Generator(1) });
  const run = (seed: number): number[] => {
    const model = loadTorchScript(pt).train().setDropoutGenerator(new Generator(seed));
    try {
      // Two passes: the second mask must come from the advanced stream, not repeat the first.
      return [0, 1].flatMap(() => Array.from(noGrad(() => scope(() => model.forward(x).detach().keep())).dataSync() as Float32Array));
    } finally {
      model.dispose();
    }
  };
  const a = run(5);
  assert.deepEqual(run(5), a, 'the same stream gives the same training-mode outputs');
  assert.notDeepEqual(run(6), a, 'another stream gives other masks');
  assert.notDeepEqual(a.slice(0, 80), a.slice(80), 'consecutive passes draw new masks');
  x.dispose();
});

test('frozen passes switch to a frozen copy (batch norm folded) with the same logits and input gradients; a weight change retires it', { skip: noTorch }, () => {
  const ref = loadSafetensorsSync(join(dir, 'resnet18.ref.safetensors')).tensors;
  const model = load('resnet18.pt').eval();
  try {
    const pass = (): { logits: Tensor; g: Tensor } => withFrozenParameters(() => scope(() => {
      const x = ref.get('x')!.detach().requiresGrad_(true);
      const logits = model.forward(x);
      const [g] = grad(logits.mul(ref.get('w')!).sum(), x);
      return { logits: logits.detach().keep(), g: g!.keep() };
    }));
    const passes = [pass(), pass(), pass(), pass()];
    for (const [i, p] of passes.entries()) {
      assert.ok(maxAbs(p.logits, ref.get('logits')!) < 1e-4, `pass ${i}: logits`);
      assert.ok(maxRel(p.g, ref.get('grad')!) < 1e-4, `pass ${i}: input gradient`);
    }
    // The frozen copy folds batch norm: its rounding differs from the unfolded passes'.
    assert.ok(maxAbs(passes[3]!.logits, passes[0]!.logits) > 0, 'the fourth pass ran the frozen copy');
    // An optimizer step changes the weights: frozen passes follow them at once.
    const opt = new SGD(model.parameters(), 0.5, { momentum: 0 });
    scope(() => crossEntropy(model.forward(ref.get('x')!), ref.get('y')!).backward());
    opt.step();
    opt.dispose();
    // Gradients on and parameters not frozen: the JIT module itself.
    const unfrozen = scope(() => model.forward(ref.get('x')!).detach().keep());
    const again = [pass(), pass(), pass(), pass()];
    for (const [i, p] of again.entries()) {
      assert.ok(maxAbs(p.logits, unfrozen) < 1e-4, `pass ${i} after the step follows the new weights`);
    }
    assert.ok(maxAbs(again[3]!.logits, ref.get('logits')!) > 1e-3, 'and they are not the old weights');
    for (const t of [...passes, ...again].flatMap((p) => [p.logits, p.g]).concat(unfrozen)) t.dispose();
  } finally {
    model.dispose();
    for (const t of ref.values()) t.dispose();
  }
});
