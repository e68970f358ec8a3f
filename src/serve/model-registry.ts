/**
 * The models a running server offers and where each is in its start-up:
 * demo models trained in a worker of their own, then every model loaded and
 * described by the pool. Requests ask it for a model that is ready.
 */
import type { ModelInfo, ModelState, ModelStatus } from './api-types.js';
import { HttpError } from './http.js';
import type { ModelPlan, PlannedModel } from './models.js';
import { type WorkerPool, runInOwnWorker } from './pool.js';
import type { ModelRef } from './protocol.js';
import { makeDirectorySync } from '../io/index.js';

/** What the registry reports as models change. */
export type ModelEvent =
  | { type: 'model'; name: string; status: ModelStatus; message?: string }
  | { type: 'progress'; name: string; done: number; total: number };

interface Entry extends ModelState {
  plan: PlannedModel;
}

/** A model that is ready, with what requests need of it. */
export interface ReadyModel {
  name: string;
  info: ModelInfo;
  testSets: ModelState['testSets'];
  ref: ModelRef;
}

/** How long loading one model may take (the ResNet50's weights are large). */
const LOAD_TIMEOUT_MS = 10 * 60_000;

export class ModelRegistry {
  private readonly entries: Entry[];
  private readonly byName: Map<string, Entry>;
  private readonly stop = new AbortController();
  /** Settles when every model is ready or has failed. */
  readonly ready: Promise<void>;

  constructor(
    private readonly plan: ModelPlan,
    private readonly pool: WorkerPool,
    private readonly emit: (e: ModelEvent) => void,
  ) {
    this.entries = plan.models.map((p) => ({ name: p.name, description: p.description, status: p.source ? 'loading' : 'training', testSets: [...p.testSets], plan: p }));
    this.byName = new Map(this.entries.map((e) => [e.name, e]));
    this.ready = this.start();
  }

  /** The models and their status now (copies). */
  list(): ModelState[] {
    return this.entries.map(({ plan: _p, ...state }) => ({ ...state, testSets: [...state.testSets] }));
  }

  /** Names of every model, in order. */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** The demo model of a role, when offered. */
  demo(role: NonNullable<PlannedModel['demoRole']>): string | undefined {
    return this.entries.find((e) => e.plan.demoRole === role)?.name;
  }

  /** The model `name`, ready; an HTTP error (400 unknown, 409 failed, 503 still starting) otherwise. */
  usable(name: string): ReadyModel {
    const e = this.byName.get(name);
    if (!e) throw new HttpError(400, `unknown model '${name}': this server has ${this.names().join(', ')}`);
    if (e.status === 'failed') throw new HttpError(409, `model '${name}' is not available: ${e.error}`);
    if (e.status !== 'ready' || !e.info || !e.plan.source) {
      const pct = e.progress === undefined ? '' : ` (${Math.round(e.progress * 100)}%)`;
      throw new HttpError(503, `model '${name}' is still ${e.status}${pct}; try again shortly`, { 'retry-after': '2' });
    }
    return { name: e.name, info: e.info, testSets: e.testSets, ref: { name: e.name, source: e.plan.source } };
  }

  /** The class names of a loaded model (empty before it is loaded). */
  classNames(name: string): string[] {
    return this.byName.get(name)?.info?.classNames ?? [];
  }

  /** Stops the start-up training; status changes after this are not reported. */
  close(): void {
    this.stop.abort();
  }

  private setStatus(e: Entry, status: ModelStatus, message?: string): void {
    if (this.stop.signal.aborted) return;
    e.status = status;
    if (status === 'failed') e.error = message;
    if (status !== 'training') delete e.progress;
    this.emit({ type: 'model', name: e.name, status, message });
  }

  private async load(e: Entry): Promise<void> {
    if (!e.plan.source) return;
    this.setStatus(e, 'loading');
    try {
      e.info = await this.pool.run({ type: 'info', model: { name: e.name, source: e.plan.source } }, { timeoutMs: LOAD_TIMEOUT_MS, internal: true });
      const [c, h, w] = e.info.inputShape;
      // A checkpoint of a 1x28x28, 10-class model classifies MNIST-like images.
      if (e.testSets.length === 0 && c === 1 && h === 28 && w === 28 && e.info.classes === 10) e.testSets = ['mnist', 'fashion-mnist'];
      this.setStatus(e, 'ready');
    } catch (err) {
      this.setStatus(e, 'failed', (err as Error).message);
    }
  }

  private async start(): Promise<void> {
    const training = this.plan.training;
    const trained = this.entries.filter((e) => e.plan.demoRole && !e.plan.source);
    const others = Promise.all(this.entries.filter((e) => !trained.includes(e)).map((e) => this.load(e)));
    if (training && trained.length > 0) {
      for (const e of trained) this.setStatus(e, 'training', `on ${training.images} MNIST images into ${training.dir}`);
      try {
        makeDirectorySync(training.dir);
        const paths = await runInOwnWorker(
          { type: 'train', dir: training.dir, images: training.images, roles: training.roles },
          { signal: this.stop.signal, onProgress: (done, total, what) => this.progress(trained, done, total, what) },
        );
        for (const e of trained) {
          const path = paths[e.plan.demoRole!];
          if (path) e.plan.source = { kind: 'checkpoint', path };
        }
      } catch (err) {
        for (const e of trained) this.setStatus(e, 'failed', `training failed: ${(err as Error).message}`);
      }
    }
    await Promise.all([others, ...trained.map((e) => this.load(e))]);
  }

  /** Progress of the start-up training ('training mnist-ROLE'): the models are trained one after another. */
  private progress(trained: Entry[], done: number, total: number, what: string): void {
    const current = trained.findIndex((e) => what.endsWith(e.name));
    if (current < 0) return;
    trained.forEach((e, i) => (e.progress = i < current ? 1 : i > current ? 0 : done / total));
    this.emit({ type: 'progress', name: (trained[current] as Entry).name, done, total });
  }
}
