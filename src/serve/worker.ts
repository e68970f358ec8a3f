/**
 * The worker-thread entry of `advml serve`: receives {@link JobMessage}s, runs
 * them one at a time on the libtorch engine (the addon is context-aware, so
 * each worker loads its own instance; the pool sets ADVML_NUM_THREADS, which
 * the engine reads when it loads) and answers with the result or the error
 * message. Keeps its loaded models between jobs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CancelledError, ModelCache, accuracyCurves, attackOne, describe, trainDemoModels } from './jobs.js';
import type { WorkerData } from './pool.js';
import type { Job, JobMessage, WorkerMessage } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('src/serve/worker.ts must run in a worker thread');

const cache = new ModelCache();
const { cancel } = workerData as WorkerData;

async function run(id: number, job: Job): Promise<unknown> {
  const progress = (done: number, total: number, what: string): void => {
    const m: WorkerMessage = { id, progress: { done, total, what } };
    port!.postMessage(m);
  };
  // The pool writes a job's id into cancel[0] to stop it; checked between steps and batches.
  const check = (): void => {
    if (Atomics.load(cancel, 0) === id) throw new CancelledError(`job ${id} was cancelled`);
  };
  switch (job.type) {
    case 'info':
      return describe(await cache.get(job.model));
    case 'attack': {
      const results = [];
      for (const t of job.targets) results.push(attackOne(await cache.get(t.model), t.model.name, t, job, check));
      // PNG bytes are small: copied, not transferred (Node may pool their ArrayBuffers).
      return results;
    }
    case 'curve':
      return accuracyCurves(cache, job, progress, check);
    case 'train':
      return trainDemoModels(job, progress, check);
    default:
      throw new Error(`unknown job type '${(job as { type: string }).type}'`);
  }
}

port.on('message', (m: JobMessage) => {
  run(m.id, m.job).then(
    (result) => {
      const reply: WorkerMessage = { id: m.id, ok: true, result };
      port.postMessage(reply);
    },
    (e: unknown) => {
      const reply: WorkerMessage = { id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) };
      port.postMessage(reply);
    },
  );
});
