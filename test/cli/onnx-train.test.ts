/**
 * `advml train --init model.onnx` on MNIST hands the model back as ONNX: a
 * small PyTorch-exported conv net with batch norm (test/models/fixtures/
 * export_onnx.py) comes back as DIR/model.onnx with its card, and the file
 * loads with weights and running statistics that training moved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, setNumThreads } from '../../src/index.js';
import { loadOnnxModel } from '../../src/models/index.js';
import { runCli } from '../helpers/cli.js';
import { hasTorch, runPython } from '../helpers/python.js';

setNumThreads(2);

const exporter = fileURLToPath(new URL('../models/fixtures/export_onnx.py', import.meta.url));
const noTorch = !hasTorch() && '/usr/bin/python3 cannot import torch (scripts/setup.sh installs python3-torch)';

test('advml train --init model.onnx writes DIR/model.onnx and its card, with the trained weights', { skip: noTorch, timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'advml-onnx-train-'));
  try {
    runPython(exporter, [dir, 'tiny_mnist_op13']);
    const init = join(dir, 'tiny_mnist_op13.onnx');
    const out = join(dir, 'run');
    const r = runCli(['train', '--init', init, '--out', out, '--steps', '5', '--limit', '160', '--batch', '32', '--eval-images', '32', '--json'], { timeoutMs: 170_000 });
    assert.equal(r.status, 0, r.stderr);
    const handedBack = join(out, 'model.onnx');
    assert.match(r.stdout, /trained 5 steps in \d+ s; checkpoint .*, trained model .*model\.onnx/);
    assert.ok(existsSync(handedBack), 'DIR/model.onnx written');
    const card = JSON.parse(readFileSync(join(out, 'model.card.json'), 'utf8')) as { inputShape: number[]; classes: number };
    assert.deepEqual([card.inputShape, card.classes], [[1, 28, 28], 10]);

    const before = loadOnnxModel(init);
    const after = loadOnnxModel(handedBack);
    const was = before.stateDict();
    const now = after.stateDict();
    assert.deepEqual([...now.keys()], [...was.keys()]);
    for (const name of ['conv.weight', 'fc.bias', 'bn.running_mean']) {
      const moved = (now.get(name) as Tensor).sub(was.get(name) as Tensor).abs().max().item();
      assert.ok(moved > 0, `${name} was trained (max change ${moved})`);
    }
    before.dispose();
    after.dispose();
    // The handed-back model is a model advml runs from the command line, contract from its card.
    const ev = runCli(['eval', '--model', handedBack, '--limit', '20', '--methods', 'fgsm', '--eps', '8']);
    assert.equal(ev.status, 0, ev.stderr);
    assert.match(ev.stdout, /20 images\. clean top-1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
