/**
 * `advml serve`: an HTTP server with one page (the built front end, dist/web)
 * and a small JSON API to watch adversarial examples happen.
 *
 *   GET  /api/config         models (with their status), methods, label sources, samples, limits
 *   GET  /api/samples/ID.png a sample's thumbnail
 *   POST /api/attack         multipart form: image (file) or sample (id), model (1-2), method, eps, label, seed, steps
 *   POST /api/curve          JSON {models, method, label?, dataset, images?}: accuracy against eps
 *   GET  /api/health         {"ok": true}
 *
 * Attacks run in worker threads (src/serve/pool.ts), so the event loop keeps
 * answering while one runs; admission is bounded (503 beyond it) and every job
 * has a deadline (504). Uploads are checked and decoded in memory; nothing is
 * written to disk except the quick-trained demo models in their cache folder.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LABEL_SOURCES, type LabelSource, MAX_ATTACK_STEPS, checkLabelSource, MAX_EPS, METHOD_NAMES, type MethodName, attackSpec, attacks, labelSourceOf } from '../attacks/index.js';
import { describeNumber } from '../io/numbers.js';
import { HttpError, formatBytes, numberField, parseJsonObject, parseMultipart, readBody, sendError, sendJson } from './http.js';
import { prepareImage, probeImage } from './images.js';
import { type PlannedModel, type TestSet, planModels } from './models.js';
import { BusyError, JobError, TimeoutError, WorkerPool, runInOwnWorker } from './pool.js';
import type { AttackTarget, ModelInfo, ModelRef, PreparedImage } from './protocol.js';
import { type Sample, loadSamples, sampleInfo } from './samples.js';
import { StaticFiles, defaultWebRoot } from './static.js';
import { makeDirectorySync } from '../io/index.js';

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
  /** MNIST training images per model when the demo pair is trained at start-up (default 10,000). */
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
  | { type: 'model'; name: string; status: ModelStatus; message?: string }
  | { type: 'progress'; name: string; done: number; total: number }
  | { type: 'request'; method: string; path: string; status: number; ms: number }
  | { type: 'error'; message: string };

/** Where a model is in its start-up. */
export type ModelStatus = 'training' | 'loading' | 'ready' | 'failed';

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
  /** Test sets whose labels apply to it. */
  testSets: TestSet[];
}

/** A started server. */
export interface RunningServer {
  /** 'http://HOST:PORT'. */
  url: string;
  port: number;
  /** Settles when every model is ready or has failed. */
  ready: Promise<void>;
  /** The models and their status now. */
  models(): ModelState[];
  /** Stops listening, ends the workers. */
  close(): Promise<void>;
}

/** eps values of the accuracy curve, pixel units. */
export const CURVE_EPS: readonly number[] = [0, 2, 4, 8, 16, 24, 32, 48, 64];

/** Largest eps the page's slider offers, pixel units (the API takes up to 255). */
export const SLIDER_MAX_EPS = 64;

const ATTACK_FIELDS = ['image', 'sample', 'model', 'method', 'eps', 'label', 'seed', 'steps'] as const;
const CURVE_FIELDS = ['models', 'method', 'label', 'dataset', 'images', 'seed'] as const;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Entry extends ModelState {
  plan: PlannedModel;
}

function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  return host.split(':')[0] as string;
}

/** Starts the server; resolves once it listens (models keep loading in the background: see `ready`). */
export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  const emit = opts.onEvent ?? (() => {});
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxUpload = opts.maxUploadBytes ?? 8 * 1024 * 1024;
  const limits = { maxPixels: opts.maxPixels ?? 25_000_000 };
  const maxCurveImages = opts.maxCurveImages ?? 500;
  for (const [name, v] of [['timeoutMs', timeoutMs], ['maxUploadBytes', maxUpload], ['maxPixels', limits.maxPixels], ['maxCurveImages', maxCurveImages]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`startServer: ${name} must be a positive number, got ${v}`);
  }

  const files = StaticFiles.load(opts.webRoot ?? defaultWebRoot());
  const plan = await planModels(opts.models, { demoDir: opts.demoDir, cacheDir: opts.cacheDir, trainImages: opts.trainImages });
  const samples = await loadSamples({ photoDir: opts.photoDir });
  const sampleById = new Map<string, Sample>(samples.map((s) => [s.id, s]));
  const pool = new WorkerPool({ size: opts.workers ?? 1, maxPending: opts.maxPending ?? 4 });

  const entries: Entry[] = plan.models.map((p) => ({
    name: p.name,
    description: p.description,
    status: p.source ? 'loading' : 'training',
    testSets: [...p.testSets],
    plan: p,
  }));
  const byName = new Map(entries.map((e) => [e.name, e]));
  let closing = false;
  const setStatus = (e: Entry, status: ModelStatus, message?: string): void => {
    if (closing) return;
    e.status = status;
    if (status === 'failed') e.error = message;
    if (status !== 'training') delete e.progress;
    emit({ type: 'model', name: e.name, status, message });
  };

  const load = async (e: Entry): Promise<void> => {
    if (!e.plan.source) return;
    setStatus(e, 'loading');
    try {
      e.info = await pool.run({ type: 'info', model: { name: e.name, source: e.plan.source } }, { timeoutMs: 10 * 60_000, internal: true });
      const [c, h, w] = e.info.inputShape;
      if (e.testSets.length === 0 && c === 1 && h === 28 && w === 28 && e.info.classes === 10) e.testSets = ['mnist', 'fashion-mnist'];
      setStatus(e, 'ready');
    } catch (err) {
      setStatus(e, 'failed', (err as Error).message);
    }
  };

  const start = async (): Promise<void> => {
    const demo = plan.demo;
    const demoEntries = entries.filter((e) => e.plan.demoRole);
    const others = Promise.all(entries.filter((e) => !e.plan.demoRole).map(load));
    if (demo.kind === 'train' && demoEntries.length > 0) {
      for (const e of demoEntries) setStatus(e, 'training', `one epoch on ${demo.images} MNIST images into ${demo.dir}`);
      try {
        makeDirectorySync(demo.dir);
        const paths = await runInOwnWorker(
          { type: 'train', dir: demo.dir, images: demo.images },
          {
            signal: stop.signal,
            onProgress: (done, total, what) => {
              const role = what.endsWith('adversarial') ? 1 : 0;
              for (const [i, e] of demoEntries.entries()) {
                const own = e.plan.demoRole === 'plain' ? 0 : 1;
                e.progress = own < role ? 1 : own > role ? 0 : done / total;
                if (i === 0 || own === role) emit({ type: 'progress', name: `mnist-${['plain', 'adversarial'][role]}`, done, total });
              }
            },
          },
        );
        for (const e of demoEntries) e.plan.source = { kind: 'checkpoint', path: paths[e.plan.demoRole!] };
      } catch (err) {
        for (const e of demoEntries) setStatus(e, 'failed', `training failed: ${(err as Error).message}`);
      }
    }
    await Promise.all([others, ...demoEntries.map(load)]);
  };

  const stop = new AbortController();
  const ready = start().catch((err: unknown) => emit({ type: 'error', message: (err as Error).message }));

  const refOf = (e: Entry): ModelRef => ({ name: e.name, source: e.plan.source! });
  const usable = (name: string): Entry & { info: ModelInfo } => {
    const e = byName.get(name);
    if (!e) throw new HttpError(400, `unknown model '${name}': this server has ${entries.map((x) => x.name).join(', ')}`);
    if (e.status === 'failed') throw new HttpError(409, `model '${name}' is not available: ${e.error}`);
    if (e.status !== 'ready' || !e.info) {
      const pct = e.progress === undefined ? '' : ` (${Math.round(e.progress * 100)}%)`;
      throw new HttpError(503, `model '${name}' is still ${e.status}${pct}; try again shortly`, { 'retry-after': '2' });
    }
    return e as Entry & { info: ModelInfo };
  };
  const method = (v: unknown): MethodName => {
    if (typeof v !== 'string' || v === '') throw new HttpError(400, `method is required: one of ${METHOD_NAMES.join(', ')}`);
    if (!(METHOD_NAMES as readonly string[]).includes(v)) throw new HttpError(400, `unknown method '${v}': expected one of ${METHOD_NAMES.join(', ')}`);
    return v as MethodName;
  };
  const label = (v: unknown): LabelSource | undefined => {
    if (v === undefined || v === '' || v === 'default') return undefined;
    try {
      return checkLabelSource(v);
    } catch (e) {
      throw new HttpError(400, `${(e as Error).message} (or default)`);
    }
  };
  const seed = (v: unknown): number => (v === undefined || v === '' ? 0 : numberField(v, 'seed', { integer: true, min: 0, max: 2 ** 31 - 1 }));

  // Bounded: each step is a forward and a backward pass per model.
  const iterativeSteps = (m: MethodName, v: string | undefined): number | undefined => {
    if (v === undefined || v === '') return undefined;
    if (!attackSpec(m).options.includes('steps')) {
      throw new HttpError(400, `steps applies to ${attacks().filter((a) => a.options.includes('steps')).map((a) => a.name).join(', ')}, not to ${m}`);
    }
    return numberField(v, 'steps', { integer: true, min: 1, max: MAX_ATTACK_STEPS });
  };

  const config = (): unknown => ({
    models: entries.map(({ plan: _p, ...state }) => state),
    methods: METHOD_NAMES,
    labelSources: LABEL_SOURCES,
    methodLabels: Object.fromEntries(METHOD_NAMES.map((m) => [m, labelSourceOf(m)])),
    samples: samples.map(sampleInfo),
    eps: { max: SLIDER_MAX_EPS, apiMax: MAX_EPS },
    curve: { eps: CURVE_EPS, datasets: [...new Set(samples.filter((s) => s.kind !== 'photo').map((s) => s.kind))], defaultImages: 100, maxImages: maxCurveImages },
    limits: { maxUploadBytes: maxUpload, maxPixels: limits.maxPixels, maxPending: pool.maxPending, timeoutMs, maxSteps: MAX_ATTACK_STEPS },
  });

  async function attack(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await parseMultipart(req, await readBody(req, maxUpload + 64 * 1024));
    for (const key of new Set(form.keys())) {
      if (!(ATTACK_FIELDS as readonly string[]).includes(key)) throw new HttpError(400, `unknown field '${key}': expected ${ATTACK_FIELDS.join(', ')}`);
      if (key !== 'model' && form.getAll(key).length > 1) throw new HttpError(400, `field '${key}' is given more than once`);
    }
    const text = (key: string): string | undefined => {
      const v = form.get(key);
      if (v === null) return undefined;
      if (typeof v !== 'string') throw new HttpError(400, `field '${key}' must be text, not a file`);
      return v;
    };
    const upload = form.get('image');
    const sampleId = text('sample');
    if ((upload === null) === (sampleId === undefined)) throw new HttpError(400, "give exactly one of 'image' (a file) and 'sample' (a sample id)");
    let bytes: Uint8Array;
    let sample: Sample | undefined;
    if (upload !== null) {
      if (typeof upload === 'string') throw new HttpError(400, "field 'image' must be a file upload");
      if (upload.size > maxUpload) throw new HttpError(413, `the image is ${formatBytes(upload.size)}, larger than the limit of ${formatBytes(maxUpload)}`);
      bytes = new Uint8Array(await upload.arrayBuffer());
    } else {
      sample = sampleById.get(sampleId as string);
      if (!sample) throw new HttpError(400, `unknown sample '${sampleId}'`);
      bytes = sample.bytes;
    }
    const names = form.getAll('model').map((v) => {
      if (typeof v !== 'string') throw new HttpError(400, "field 'model' must be text, not a file");
      return v;
    });
    if (names.length < 1 || names.length > 2) throw new HttpError(400, `give one or two models (field 'model'), got ${names.length}`);
    if (new Set(names).size !== names.length) throw new HttpError(400, 'the same model is given twice');
    const m = method(text('method'));
    const epsSpec = { min: 0, max: MAX_EPS, unit: 'pixel values' };
    const epsText = text('eps');
    if (epsText === undefined) throw new HttpError(400, `eps is required: ${describeNumber(epsSpec)}`);
    const eps = numberField(epsText, 'eps', epsSpec);
    const l = label(text('label'));
    const s = seed(text('seed'));
    const steps = iterativeSteps(m, text('steps'));
    const models = names.map(usable);
    const probe = await probeImage(bytes, limits);
    const prepared = new Map<string, Promise<PreparedImage>>();
    const targets: AttackTarget[] = await Promise.all(
      models.map(async (e) => {
        const key = e.info.inputShape.join('x');
        if (!prepared.has(key)) prepared.set(key, prepareImage(bytes, e.info, limits));
        const image = await (prepared.get(key) as Promise<PreparedImage>);
        const known = sample?.label !== undefined && sample.kind !== 'photo' && e.testSets.includes(sample.kind);
        return { model: refOf(e), image, trueLabel: known ? sample!.label : undefined };
      }),
    );
    if (l === 'true') {
      const missing = targets.filter((t) => t.trueLabel === undefined).map((t) => t.model.name);
      if (missing.length > 0) {
        throw new HttpError(400, `label source 'true' needs the image's true class, which is known only for test images of the model's own dataset (not for ${missing.join(', ')}); choose 'predicted' or a test image`);
      }
    }
    const results = await pool.run({ type: 'attack', targets, method: m, eps, label: l, seed: s, steps }, { timeoutMs });
    const dataUrl = (png: Uint8Array): string => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    sendJson(res, 200, {
      method: m,
      eps,
      seed: s,
      image: { source: sample ? `sample:${sample.id}` : 'upload', width: probe.width, height: probe.height, format: probe.format },
      results: results.map((r, i) => {
        const t = targets[i] as AttackTarget;
        const names = (byName.get(r.model) as Entry).info?.classNames ?? [];
        return {
          model: r.model,
          labelSource: r.labelSource,
          trueLabel: t.trueLabel === undefined ? null : { index: t.trueLabel, name: names[t.trueLabel] ?? String(t.trueLabel) },
          clean: { image: dataUrl(r.clean.png), top5: r.clean.top5 },
          perturbation: { image: dataUrl(r.perturbation.png), magnification: r.perturbation.magnification, linf: r.perturbation.linf, l2: r.perturbation.l2 },
          adversarial: { image: dataUrl(r.adversarial.png), top5: r.adversarial.top5 },
          ms: r.ms,
        };
      }),
    });
  }

  async function curve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(req, await readBody(req, 16 * 1024));
    for (const key of Object.keys(body)) {
      if (!(CURVE_FIELDS as readonly string[]).includes(key)) throw new HttpError(400, `unknown field '${key}': expected ${CURVE_FIELDS.join(', ')}`);
    }
    const names = body.models;
    if (!Array.isArray(names) || names.length < 1 || names.length > entries.length || names.some((n) => typeof n !== 'string')) {
      throw new HttpError(400, 'models must be a non-empty list of model names');
    }
    if (new Set(names).size !== names.length) throw new HttpError(400, 'the same model is given twice');
    const m = method(body.method);
    const l = label(body.label);
    const dataset = body.dataset;
    if (dataset !== 'mnist' && dataset !== 'fashion-mnist') throw new HttpError(400, `dataset must be 'mnist' or 'fashion-mnist', got '${String(dataset)}'`);
    const images = body.images ?? 100;
    if (!Number.isInteger(images) || (images as number) < 1 || (images as number) > maxCurveImages) {
      throw new HttpError(400, `images must be an integer in [1, ${maxCurveImages}], got ${JSON.stringify(images)}`);
    }
    const models = (names as string[]).map(usable);
    const applicable = models.filter((e) => e.testSets.includes(dataset));
    const skipped = models.filter((e) => !e.testSets.includes(dataset)).map((e) => ({ model: e.name, reason: `it does not classify ${dataset} images` }));
    if (applicable.length === 0) throw new HttpError(400, `none of ${names.join(', ')} classifies ${dataset} test images, so there is no accuracy to measure`);
    const curves = await pool.run(
      { type: 'curve', models: applicable.map(refOf), dataset, images: images as number, method: m, label: l, eps: [...CURVE_EPS], seed: seed(body.seed) },
      { timeoutMs },
    );
    sendJson(res, 200, { dataset, images, method: m, eps: CURVE_EPS, curves, skipped });
  }

  function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): void {
    const file = files.lookup(path);
    if (!file) throw new HttpError(404, `not found: ${path}`);
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...(file.type.startsWith('text/html') ? { 'content-security-policy': CSP } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const verb = req.method ?? 'GET';
    const only = (...allowed: string[]): void => {
      if (!allowed.includes(verb)) throw new HttpError(405, `${path} takes ${allowed.join(' or ')}, not ${verb}`, { allow: allowed.join(', ') });
    };
    if (path === '/api/health') {
      only('GET');
      return sendJson(res, 200, { ok: true });
    }
    if (path === '/api/config') {
      only('GET');
      return sendJson(res, 200, config());
    }
    if (path.startsWith('/api/samples/')) {
      only('GET');
      const id = path.slice('/api/samples/'.length).replace(/\.png$/, '');
      const s = sampleById.get(id);
      if (!s || !path.endsWith('.png')) throw new HttpError(404, `no sample '${id}'`);
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': s.thumbnail.length, 'cache-control': 'public, max-age=3600' });
      res.end(s.thumbnail);
      return;
    }
    if (path === '/api/attack') {
      only('POST');
      return attack(req, res);
    }
    if (path === '/api/curve') {
      only('POST');
      return curve(req, res);
    }
    if (path.startsWith('/api/')) throw new HttpError(404, `no API route ${path}`);
    only('GET', 'HEAD');
    serveStatic(req, res, path);
  }

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
    models: () => entries.map(({ plan: _p, ...state }) => ({ ...state })),
    async close() {
      closing = true;
      stop.abort();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await pool.close();
    },
  };
}
