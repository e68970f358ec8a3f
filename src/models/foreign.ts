/**
 * Modules from other frameworks' files, by format: TorchScript through
 * libtorch's JIT, ONNX on advml's engine, TensorFlow.js LayersModels. Both
 * loading paths (a file named by the user, a checkpoint that names the file
 * its graph came from) come through here, and writing a trained one back.
 */
import { basename, extname, join } from 'node:path';
import { tfjs } from '../io/index.js';
import type { Module } from '../nn/index.js';
import { TorchScriptModule, loadTorchScript, saveTorchScript } from './torchscript.js';
import { OnnxModule, loadOnnxModel, saveOnnx } from './onnx/index.js';

export const FOREIGN_FORMATS = ['torchscript', 'onnx', 'tfjs'] as const;
export type ForeignFormat = (typeof FOREIGN_FORMATS)[number];

/** The format of a model file by its name, or null when it is not a foreign model's. */
export function foreignFormatOf(path: string): ForeignFormat | null {
  const ext = extname(path).toLowerCase();
  if (ext === '.pt' || ext === '.pth' || ext === '.torchscript') return 'torchscript';
  if (ext === '.onnx') return 'onnx';
  if (basename(path).toLowerCase().endsWith('.json') && !basename(path).toLowerCase().endsWith('.card.json')) return 'tfjs';
  return null;
}

/** A loaded foreign module, with the input shape [C, H, W] and class count its file declares, if it does. */
export interface ForeignModule {
  module: Module;
  declaredShape?: [number, number, number];
  declaredClasses?: number;
}

/** Loads a foreign model file as a module in training mode. */
export function loadForeignModule(format: ForeignFormat, path: string): ForeignModule {
  switch (format) {
    case 'torchscript':
      return { module: loadTorchScript(path) };
    case 'tfjs': {
      const m = tfjs.loadLayersModel(path, { outputLogits: true });
      const [c, h, w] = m.inputShape;
      const declared = typeof c === 'number' && typeof h === 'number' && typeof w === 'number';
      return { module: m, declaredShape: declared ? [c, h, w] : undefined };
    }
    case 'onnx': {
      const m = loadOnnxModel(path);
      const [, c, h, w] = m.inputShape;
      const out = m.outputShapes[0];
      const declared = m.inputShape.length === 4 && typeof c === 'number' && typeof h === 'number' && typeof w === 'number';
      return {
        module: m,
        declaredShape: declared ? [c, h, w] : undefined,
        declaredClasses: out?.length === 2 && typeof out[1] === 'number' ? out[1] : undefined,
      };
    }
    default:
      throw new Error(`unknown model format '${String(format)}': expected ${FOREIGN_FORMATS.join(', ')}`);
  }
}

/**
 * Writes a TorchScript or ONNX module back in its own format with its current
 * weights, as `dir/model.pt` or `dir/model.onnx`; returns the path, or null for
 * any other module (nothing is written).
 */
export function saveForeign(module: Module, dir: string): string | null {
  if (module instanceof TorchScriptModule) {
    const path = join(dir, 'model.pt');
    saveTorchScript(module, path);
    return path;
  }
  if (module instanceof OnnxModule) {
    const path = join(dir, 'model.onnx');
    saveOnnx(module, path);
    return path;
  }
  return null;
}
