/**
 * `advml serve`: an HTTP server with one page (the built front end, dist/web)
 * and a small JSON API to watch adversarial examples happen.
 *
 *   GET  /api/config         models (with their status), methods, label sources, samples, limits
 *   GET  /api/samples/ID.png a sample's thumbnail
 *   POST /api/attack         multipart form: image (file) or sample (id), model (1-3), method, eps, label, seed, steps, stepSize, target
 *   POST /api/curve          JSON {models, methods, label?, dataset, images?}: accuracy against eps
 *   GET  /api/health         {"ok": true}
 *
 * Attacks run in worker threads (src/serve/pool.ts), so the event loop keeps
 * answering while one runs; admission is bounded (503 beyond it) and every job
 * has a deadline (504). Uploads are checked and decoded in memory; nothing is
 * written to disk except the quick-trained demo models in their cache folder.
 *
 * The pieces: the models (model-registry.ts), request fields (requests.ts),
 * the routes (routes.ts), the opening view (story.ts); this file starts them
 * and owns the HTTP server.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ModelState } from './api-types.js';
import { HttpError, sendError } from './http.js';
import { type ModelEvent, ModelRegistry } from './model-registry.js';
import { planModels } from './models.js';
import { BusyError, JobError, TimeoutError, WorkerPool } from './pool.js';
import { prepareFor, routes } from './routes.js';
import { loadSamples } from './samples.js';
import { StaticFiles, defaultWebRoot } from './static.js';
import { type StoryState, findStory } from './story.js';

/** Options of {@link startServer}; each default is given. */
export interface ServeOptions {
  /** TCP port (default 8000; 0 picks a free one). */
  port?: number;
  /** Interface to bind (default '127.0.0.1', loopback only). */
  host?: string;
  /** Model names or checkpoint paths (default: the demo's two MNIST models, and 'resnet50' when available). */
  models?: string[];
  /** Worker threads running attacks (default 1). */
  workers?: number;
  /** Jobs admitted at once, running plus queued (default 4); beyond it requests get 503. */
  maxPending?: number;
  /** Deadline of one job in milliseconds (default 60,000); past it the request gets 504. */
  timeoutMs?: number;
  /** Largest upload in bytes (default 8 MiB). */
  maxUploadBytes?: number;
  /** Largest image in pixels, width x height (default 25 million). */
  maxPixels?: number;
  /** Largest number of test images for an accuracy curve (default 500). */
  maxCurveImages?: number;
  /** Where `advml demo` wrote its models (default 'runs/demo'). */
  demoDir?: string;
  /** Parent folder of the quick-trained demo models (default: the system temporary folder's 'advml-serve'). */
  cacheDir?: string;
  /** MNIST training images per model when the demo models are trained at start-up (default 10,000). */
  trainImages?: number;
  /** The built page (default dist/web). */
  webRoot?: string;
  /** Folder of the sample photos (default Debian's python3-skimage data folder). */
  photoDir?: string;
  /** Receives what the server does (the library never prints). */
  onEvent?: (e: ServeEvent) => void;
}

/** What the server reports as it runs. */
export type ServeEvent =
  | { type: 'listening'; url: string }
  | ModelEvent
  | { type: 'story'; story: StoryState }
  | { type: 'request'; method: string; path: string; status: number; ms: number }
  | { type: 'error'; message: string };

/** A started server. */
export interface RunningServer {
  /** 'http://HOST:PORT'. */
  url: string;
  port: number;
  /** Settles when every model is ready or has failed. */
  ready: Promise<void>;
  /** Settles when the opening view is found or known to be missing. */
  story: Promise<StoryState>;
  /** The models and their status now. */
  models(): ModelState[];
  /** Stops listening, ends the workers. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  return host.split(':')[0] as string;
}

/** Starts the server; resolves once it listens (models keep loading in the background: see `ready`). */
export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  const emit = opts.onEvent ?? (() => {});
  const host = opts.host ?? '127.0.0.1';
  const limits = {
    timeoutMs: opts.timeoutMs ?? 60_000,
    maxUploadBytes: opts.maxUploadBytes ?? 8 * 1024 * 1024,
    maxPixels: opts.maxPixels ?? 25_000_000,
    maxCurveImages: opts.maxCurveImages ?? 500,
  };
  for (const [name, v] of Object.entries(limits)) {
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`startServer: ${name} must be a positive number, got ${v}`);
  }

  const files = StaticFiles.load(opts.webRoot ?? defaultWebRoot());
  const plan = await planModels(opts.models, { demoDir: opts.demoDir, cacheDir: opts.cacheDir, trainImages: opts.trainImages });
  const samples = await loadSamples({ photoDir: opts.photoDir });
  const pool = new WorkerPool({ size: opts.workers ?? 1, maxPending: opts.maxPending ?? 4 });
  const registry = new ModelRegistry(plan, pool, emit);
  const ready = registry.ready.catch((err: unknown) => emit({ type: 'error', message: (err as Error).message }));

  let storyState: StoryState = { status: 'pending' };
  const story = findStory(registry, pool, samples, (bytes, model) => prepareFor(bytes, model, limits))
    .catch((err: unknown): StoryState => ({ status: 'none', reason: `the search failed: ${(err as Error).message}` }))
    .then((s) => {
      storyState = s;
      emit({ type: 'story', story: s });
      return s;
    });

  const route = routes({ registry, pool, samples, files, limits, story: () => storyState });

  const server: Server = createServer((req, res) => {
    const t0 = performance.now();
    // The raw path, matched exactly: never normalised, never decoded, never joined to a folder.
    const path = (req.url ?? '/').split('?')[0] as string;
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
    const done = (): void => emit({ type: 'request', method: req.method ?? '?', path, status: res.statusCode, ms: performance.now() - t0 });
    res.on('finish', done);
    (async () => {
      // Bound to loopback, answer only names of loopback (a guard against DNS rebinding).
      if (LOOPBACK.has(host) && !LOOPBACK.has(hostnameOf(req.headers.host ?? ''))) {
        throw new HttpError(421, `this server answers requests for localhost only, not '${req.headers.host ?? ''}'`);
      }
      await route(req, res, path);
    })().catch((e: unknown) => {
      if (e instanceof HttpError) return sendError(res, e);
      if (e instanceof BusyError) return sendError(res, new HttpError(503, e.message, { 'retry-after': '2' }));
      if (e instanceof TimeoutError) return sendError(res, new HttpError(504, e.message));
      if (e instanceof JobError) return sendError(res, new HttpError(500, `the job failed: ${e.message}`));
      emit({ type: 'error', message: (e as Error).stack ?? String(e) });
      sendError(res, new HttpError(500, `internal error: ${(e as Error).message}`));
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8000, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  }).catch(async (e: unknown) => {
    registry.close();
    await pool.close();
    throw e;
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  emit({ type: 'listening', url });

  return {
    url,
    port,
    ready,
    story,
    models: () => registry.list(),
    async close() {
      registry.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await pool.close();
    },
  };
}
