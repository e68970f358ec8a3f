/**
 * The JSON of the `advml serve` HTTP API: the server builds these objects and
 * the page (web/src/api.ts) reads them through `import type`. This file
 * imports nothing, so the page type-checks it without the rest of the tree.
 */

/** Where a model is in its start-up. */
export type ModelStatus = 'training' | 'loading' | 'ready' | 'failed';

/** The test sets whose images carry a true label a model understands. */
export type TestSet = 'mnist' | 'fashion-mnist';

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

/** A model as the API lists it. */
export interface ModelState {
  name: string;
  description: string;
  status: ModelStatus;
  /** Training progress, 0-1, while training. */
  progress?: number;
  /** Why it failed. */
  error?: string;
  info?: ModelInfo;
  /** Test sets whose labels apply to it; empty for a model of photos. */
  testSets: TestSet[];
}

/** A sample image offered by the server. */
export interface SampleInfo {
  /** Stable id used in the API ('photo-chelsea', 'mnist-3'). */
  id: string;
  title: string;
  kind: 'photo' | TestSet;
  /** The true class, for test images. */
  label?: number;
  labelName?: string;
}

/** An attack method as the page offers it. */
export interface MethodInfo {
  /** The registry's name ('r-step-ll'). */
  name: string;
  /** A readable name ('R+Step l.l.'). */
  title: string;
  /** One line on what it does. */
  summary: string;
  /** Its own label source; 'none' where it takes no label, 'targets' for the top other classes. */
  label: string;
  /** Whether it pushes towards a class (its label is the target) rather than away from the true one. */
  targeted: boolean;
  /** Whether the request's `steps` applies to it. */
  steps: boolean;
  /** Whether the request's `stepSize` applies to it. */
  stepSize: boolean;
  /** Its default number of steps, where it has a fixed one. */
  defaultSteps?: number;
}

/** A choice of label source. */
export interface LabelSourceInfo {
  name: string;
  title: string;
}

/** The page's opening view: a sample, eps and method at which the plain model is fooled and the hardened one holds. */
export interface Story {
  sample: string;
  /** The plain model first, the hardened one second. */
  models: [string, string];
  method: string;
  eps: number;
  /** Every model whose accuracy curve the opening view draws. */
  curveModels: string[];
  dataset: TestSet;
}

/** GET /api/config. */
export interface Config {
  models: ModelState[];
  methods: MethodInfo[];
  labelSources: LabelSourceInfo[];
  samples: SampleInfo[];
  eps: { max: number; apiMax: number };
  curve: { eps: number[]; datasets: TestSet[]; defaultImages: number; maxImages: number; maxMethods: number };
  limits: { maxUploadBytes: number; maxPixels: number; maxPending: number; timeoutMs: number; maxSteps: number; maxModels: number };
  /** 'pending' until the demo models are ready and searched; 'none' with a reason when no sample tells the story. */
  story: { status: 'pending' } | { status: 'found'; story: Story } | { status: 'none'; reason: string };
}

/** One prediction. */
export interface Prediction {
  index: number;
  name: string;
  probability: number;
}

/** A class followed through the attack: its probability before and after. */
export interface ClassShift {
  index: number;
  name: string;
  clean: number;
  adversarial: number;
}

/** One model's result in POST /api/attack. */
export interface AttackResultJson {
  model: string;
  labelSource: string;
  /** The true class, when known (a test image of the model's own dataset). */
  trueLabel: ClassShift | null;
  /** The class a targeted method pushed towards, and where it came from. */
  target: (ClassShift & { source: 'chosen' | 'leastLikely' | 'random' }) | null;
  clean: { image: string; top5: Prediction[] };
  perturbation: { image: string; magnification: number; linf: number; l2: number };
  adversarial: { image: string; top5: Prediction[] };
  /** Milliseconds of the attack and its forward passes in the worker. */
  ms: number;
}

/** POST /api/attack. */
export interface AttackResponse {
  method: string;
  eps: number;
  seed: number;
  steps?: number;
  stepSize?: number;
  image: { source: string; width: number; height: number; format: string };
  results: AttackResultJson[];
  /** Milliseconds the job waited behind other jobs before a worker took it. */
  queuedMs: number;
}

/** One model and method's accuracy curve. */
export interface CurveJson {
  model: string;
  method: string;
  labelSource: string;
  /** Top-1 accuracy at each eps of the response (eps 0 is clean accuracy). */
  accuracy: number[];
  ms: number;
}

/** POST /api/curve. */
export interface CurveResponse {
  dataset: TestSet;
  images: number;
  methods: string[];
  eps: number[];
  curves: CurveJson[];
  skipped: { model: string; reason: string }[];
  queuedMs: number;
}

/** Any 4xx or 5xx. */
export interface ErrorResponse {
  error: string;
}
