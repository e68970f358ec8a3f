/**
 * TensorFlow.js LayersModel export: an advml model made of Sequential layers
 * becomes a Keras Sequential model.json plus float32 weight shards that
 * `tf.loadLayersModel` runs in a browser.
 *
 * Mapping (advml → Keras): Conv2d → Conv2D (kernel [out, in, kh, kw] →
 * [kh, kw, in, out]; symmetric padding becomes 'same' when that is exactly
 * TensorFlow's 'same', else ZeroPadding2D + 'valid'), Linear → Dense
 * (weight [out, in] → kernel [in, out]), BatchNorm2d → BatchNormalization
 * (momentum m → 1 - m), Activation relu/relu6/tanh → Activation, reluDecay(beta)
 * → LeakyReLU(alpha = -beta) (which is max(x, -beta x)), MaxPool2d /
 * AvgPool2d → MaxPooling2D / AveragePooling2D, AdaptiveAvgPool2d(1) →
 * GlobalAveragePooling2D, Flatten → Flatten, Dropout → Dropout; Identity is
 * dropped. Keras flattens (H, W, C) where advml flattens (C, H, W), so the
 * Dense after a Flatten gets its kernel rows reordered: the exported model
 * computes exactly the same function on channels-last images.
 *
 * Models that are not Sequential are exported through their `toSequential()`
 * method when they have one (MnistCnn does); other graphs (residual
 * networks) are refused with an error naming the module.
 */
import { join } from 'node:path';
import { type Tensor, scope } from '../../engine/index.js';
import {
  Activation, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, type Module,
  Sequential,
} from '../../nn/index.js';
import { writeFileAtomicSync, makeDirectorySync } from '../atomic.js';
import type { JsonObject, ModelJson } from './format.js';
import { samePadding } from './layers.js';
import { type NamedWeight, encodeWeights } from './weights.js';

/** Options of {@link exportLayersModel}. */
export interface ExportOptions {
  /** Shape of one input in advml layout: [C, H, W] for images, [features] for vectors. */
  inputShape: number[];
  /** The Keras model name (default 'advml_model'). */
  name?: string;
  /** Largest shard file in bytes (default 4 MiB, TensorFlow.js' own). */
  shardBytes?: number;
  /** Stored as model.json's userDefinedMetadata (e.g. the classifier's input range and preprocessing). */
  metadata?: JsonObject;
}

/** An exported model: model.json's contents and the shard files it names. */
export interface ExportedLayersModel {
  modelJson: ModelJson;
  /** Shard file name → bytes. */
  shards: Map<string, Uint8Array>;
}

/** A module that can present itself as a Sequential of exportable layers (MnistCnn does). */
export interface SequentialConvertible {
  /** A Sequential sharing this module's parameters that computes the same function. */
  toSequential(): Sequential;
}

function flattenModules(m: Module): Module[] {
  if (m instanceof Sequential) return m.layers.flatMap(flattenModules);
  const convertible = m as Partial<SequentialConvertible>;
  if (typeof convertible.toSequential === 'function') return flattenModules(convertible.toSequential());
  return [m];
}

const pairOf = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/**
 * Converts `model` to the TensorFlow.js LayersModel format. Throws an error
 * naming the module for a layer or option Keras cannot express exactly.
 */
export function exportLayersModel(model: Module, opts: ExportOptions): ExportedLayersModel {
  const shape0 = opts.inputShape;
  if (!Array.isArray(shape0) || (shape0.length !== 3 && shape0.length !== 1) || !shape0.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`exportLayersModel: inputShape must be [C, H, W] or [features] of positive integers, got [${shape0}]`);
  }
  const shardBytes = opts.shardBytes ?? 4 * 1024 * 1024;
  if (!Number.isInteger(shardBytes) || shardBytes < 4) throw new Error(`exportLayersModel: shardBytes must be an integer >= 4, got ${shardBytes}`);

  const layers: JsonObject[] = [];
  const weights: NamedWeight[] = [];
  const counters = new Map<string, number>();
  const add = (className: string, snake: string, config: JsonObject): string => {
    const k = (counters.get(snake) ?? 0) + 1;
    counters.set(snake, k);
    const name = `${snake}_${k}`;
    const full: JsonObject = { name, trainable: true, dtype: 'float32', ...config };
    if (layers.length === 0) full.batch_input_shape = [null, ...kerasShape(shape0)];
    layers.push({ class_name: className, config: full });
    return name;
  };
  const owned: Tensor[] = [];
  const weight = (layer: string, name: string, value: Tensor): void => {
    owned.push(value);
    weights.push({ name: `${layer}/${name}`, value });
  };

  // The current activation shape in advml layout (no batch); `collapsed` when
  // advml holds [C, 1, 1] but Keras [C] (after global pooling); `flattened`
  // holds the [C, H, W] a Flatten consumed until the Dense that reorders it.
  let s = [...shape0];
  let collapsed = false;
  let flattened: number[] | null = null;

  try {
    const modules = flattenModules(model);
    modules.forEach((m, i) => {
      const where = `exportLayersModel: layer ${i} (${m.constructor.name})`;
      const need = (ok: boolean, what: string): void => {
        if (!ok) throw new Error(`${where}: ${what}`);
      };
      const image = (): [number, number, number] => {
        need(s.length === 3 && !collapsed, `needs an image input [C, H, W], but the input here has shape [${s}]`);
        return s as [number, number, number];
      };
      const elementwise = m instanceof Activation || m instanceof Dropout || m instanceof Identity;
      if (flattened && !elementwise && !(m instanceof Linear)) {
        throw new Error(`${where}: only element-wise layers may come between Flatten and the next Linear`);
      }
      if (m instanceof Conv2d) {
        const [c, h, w] = image();
        need(m.inChannels === c, `has ${m.inChannels} input channels, the input here has ${c}`);
        need((m.opts.groups ?? 1) === 1, 'grouped convolutions cannot be exported');
        const [kh, kw] = pairOf(m.kernelSize);
        const [sh, sw] = pairOf(m.opts.stride ?? 1);
        const [ph, pw] = pairOf(m.opts.padding ?? 0);
        const [dh, dw] = pairOf(m.opts.dilation ?? 1);
        let padding = 'valid';
        let [hh, ww] = [h, w];
        if (ph || pw) {
          if (sh === 1 && sw === 1 && 2 * ph === dh * (kh - 1) && 2 * pw === dw * (kw - 1)) {
            padding = 'same';
          } else {
            add('ZeroPadding2D', 'zero_padding2d', { padding: [[ph, ph], [pw, pw]], data_format: 'channels_last' });
          }
          if (padding === 'valid') [hh, ww] = [h + 2 * ph, w + 2 * pw];
        }
        const name = add('Conv2D', 'conv2d', {
          filters: m.outChannels, kernel_size: [kh, kw], strides: [sh, sw], padding, data_format: 'channels_last',
          dilation_rate: [dh, dw], activation: 'linear', use_bias: m.bias !== null,
        });
        weight(name, 'kernel', scope(() => m.weight.detach().permute([2, 3, 1, 0]).contiguous()));
        if (m.bias) weight(name, 'bias', m.bias.detach());
        const oh = padding === 'same' ? h : Math.floor((hh - dh * (kh - 1) - 1) / sh) + 1;
        const ow = padding === 'same' ? w : Math.floor((ww - dw * (kw - 1) - 1) / sw) + 1;
        need(oh > 0 && ow > 0, `its ${kh}x${kw} kernel does not fit the ${h}x${w} input`);
        s = [m.outChannels, oh, ow];
      } else if (m instanceof Linear) {
        const features = collapsed ? (s[0] as number) : s.length === 1 ? (s[0] as number) : -1;
        need(features === m.inFeatures, `takes ${m.inFeatures} features, the input here has shape [${s}]${s.length === 3 && !collapsed ? ' (add a Flatten)' : ''}`);
        const name = add('Dense', 'dense', { units: m.outFeatures, activation: 'linear', use_bias: m.bias !== null });
        const f = flattened;
        const kernel = scope(() => {
          const wt = m.weight.detach().transpose(0, 1);
          if (!f) return wt.contiguous();
          const [c, h, w] = f as [number, number, number];
          // advml feature c*H*W + h*W + w is Keras feature (h*W + w)*C + c.
          return wt.reshape([c, h, w, m.outFeatures]).permute([1, 2, 0, 3]).reshape([h * w * c, m.outFeatures]).contiguous();
        });
        weight(name, 'kernel', kernel);
        if (m.bias) weight(name, 'bias', m.bias.detach());
        s = [m.outFeatures];
        collapsed = false;
        flattened = null;
      } else if (m instanceof BatchNorm2d) {
        const c = collapsed || s.length === 1 ? (s[0] as number) : image()[0];
        need(c === m.numFeatures, `normalises ${m.numFeatures} channels, the input here has ${c}`);
        const affine = m.weight !== null;
        const name = add('BatchNormalization', 'batch_normalization', {
          axis: -1, momentum: 1 - (m.opts.momentum ?? 0.1), epsilon: m.opts.eps ?? 1e-5, center: affine, scale: affine,
        });
        if (m.weight) weight(name, 'gamma', m.weight.detach());
        if (m.bias) weight(name, 'beta', m.bias.detach());
        weight(name, 'moving_mean', m.runningMean.detach());
        weight(name, 'moving_variance', m.runningVar.detach());
      } else if (m instanceof Activation) {
        if (m.name === 'reluDecay') add('LeakyReLU', 'leaky_re_lu', { alpha: -(m.opts.beta ?? 0.1) });
        else add('Activation', 'activation', { activation: m.name });
      } else if (m instanceof MaxPool2d || m instanceof AvgPool2d) {
        const [c, h, w] = image();
        const k = pairOf(m.kernelSize);
        const st = pairOf(m.opts.stride ?? m.kernelSize);
        const p = pairOf(m.opts.padding ?? 0);
        const isMax = m instanceof MaxPool2d;
        const includePad = !isMax && ((m as AvgPool2d).opts.countIncludePad ?? true);
        const torchOut = (n: number, d: 0 | 1): number => {
          const span = n + 2 * p[d] - k[d];
          return (m.opts.ceilMode ? Math.ceil(span / st[d]) : Math.floor(span / st[d])) + 1;
        };
        const outs = [torchOut(h, 0), torchOut(w, 1)] as [number, number];
        need(outs[0] > 0 && outs[1] > 0, `its window does not fit the ${h}x${w} input`);
        const validOut = (n: number, d: 0 | 1): number => Math.floor((n - k[d]) / st[d]) + 1;
        const sameMatches = ([h, w] as const).every((n, d) => Math.ceil(n / st[d as 0 | 1]) === outs[d] && samePadding(n, k[d as 0 | 1], st[d as 0 | 1])[0] === p[d]);
        let padding: string;
        if (p[0] === 0 && p[1] === 0 && validOut(h, 0) === outs[0] && validOut(w, 1) === outs[1]) {
          padding = 'valid';
        } else if (!includePad && sameMatches) {
          padding = 'same';
        } else if (includePad && validOut(h + 2 * p[0], 0) === outs[0] && validOut(w + 2 * p[1], 1) === outs[1]) {
          add('ZeroPadding2D', 'zero_padding2d', { padding: [[p[0], p[0]], [p[1], p[1]]], data_format: 'channels_last' });
          padding = 'valid';
        } else {
          throw new Error(`${where}: padding [${p}]${m.opts.ceilMode ? ' with ceilMode' : ''} on a ${h}x${w} input has no exact Keras equivalent`);
        }
        add(isMax ? 'MaxPooling2D' : 'AveragePooling2D', isMax ? 'max_pooling2d' : 'average_pooling2d', {
          pool_size: k, strides: st, padding, data_format: 'channels_last',
        });
        s = [c, outs[0], outs[1]];
      } else if (m instanceof AdaptiveAvgPool2d) {
        const [c] = image();
        const o = pairOf(m.outputSize);
        need(o[0] === 1 && o[1] === 1, `only AdaptiveAvgPool2d(1) (global average pooling) can be exported, got output size [${o}]`);
        add('GlobalAveragePooling2D', 'global_average_pooling2d', { data_format: 'channels_last' });
        s = [c, 1, 1];
        collapsed = true;
      } else if (m instanceof Flatten) {
        need(m.startDim === 1 && (m.endDim === -1 || m.endDim === s.length), `only Flatten(1, -1) can be exported, got Flatten(${m.startDim}, ${m.endDim})`);
        if (collapsed) {
          s = [s[0] as number];
          collapsed = false;
        } else if (s.length === 3) {
          add('Flatten', 'flatten', { data_format: 'channels_last' });
          flattened = [...s];
          s = [s.reduce((a, b) => a * b, 1)];
        }
      } else if (m instanceof Dropout) {
        add('Dropout', 'dropout', { rate: m.p });
      } else if (m instanceof Identity) {
        // nothing to export
      } else {
        throw new Error(`${where}: this module cannot be exported (supported: Sequential, Conv2d, Linear, BatchNorm2d, Activation, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Dropout, Identity, and modules with toSequential())`);
      }
    });
    if (layers.length === 0) throw new Error('exportLayersModel: the model has no layers to export');
    const { group, shards } = encodeWeights(weights, shardBytes);
    const modelJson: ModelJson = {
      format: 'layers-model',
      generatedBy: 'advml',
      convertedBy: null,
      modelTopology: { class_name: 'Sequential', config: { name: opts.name ?? 'advml_model', layers }, backend: 'tensor_flow.js' },
      weightsManifest: [group],
    };
    if (opts.metadata) modelJson.userDefinedMetadata = opts.metadata;
    return { modelJson, shards };
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** Keras shape of an advml input shape: [C, H, W] → [H, W, C]. */
function kerasShape(s: number[]): number[] {
  return s.length === 3 ? [s[1] as number, s[2] as number, s[0] as number] : [...s];
}

/**
 * Exports `model` (see {@link exportLayersModel}) into directory `dir`
 * (created if missing): the shards first, then model.json, each written
 * atomically, so a model.json never names a shard that is not in place.
 * Returns the path of model.json.
 */
export function saveLayersModel(dir: string, model: Module, opts: ExportOptions): string {
  const { modelJson, shards } = exportLayersModel(model, opts);
  makeDirectorySync(dir);
  for (const [name, data] of shards) writeFileAtomicSync(join(dir, name), data);
  const path = join(dir, 'model.json');
  writeFileAtomicSync(path, `${JSON.stringify(modelJson)}\n`);
  return path;
}
