/**
 * The routes of `advml serve`: the configuration, sample thumbnails, attacks
 * and accuracy curves (run on the worker pool), and the page's static files.
 * Every answer's JSON is a type of src/serve/api-types.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LABEL_SOURCES, LABEL_SOURCE_TITLES, MAX_ATTACK_STEPS, MAX_EPS, attackSpec, attacks, isTargeted, methodTitle } from '../attacks/index.js';
import type { AttackResponse, AttackResultJson, ClassShift, Config, CurveResponse, MethodInfo } from './api-types.js';
import { HttpError, formatBytes, parseJsonObject, parseMultipart, readBody, sendJson } from './http.js';
import { type ImageLimits, prepareImage, probeImage } from './images.js';
import type { ModelRegistry, ReadyModel } from './model-registry.js';
import type { WorkerPool } from './pool.js';
import type { AttackTarget, ClassProbabilities, Job, JobResults, PreparedImage } from './protocol.js';
import * as field from './requests.js';
import { type Sample, sampleInfo } from './samples.js';
import type { StaticFiles } from './static.js';
import type { StoryState } from './story.js';

/** eps values of the accuracy curve, pixel units. */
export const CURVE_EPS: readonly number[] = [0, 2, 4, 8, 16, 24, 32, 48, 64];

/** Largest eps the page's slider offers, pixel units (the API takes up to 255). */
export const SLIDER_MAX_EPS = 64;

const ATTACK_FIELDS = ['image', 'sample', 'model', 'method', 'eps', 'label', 'seed', 'steps', 'stepSize', 'target'] as const;
const CURVE_FIELDS = ['models', 'method', 'methods', 'label', 'dataset', 'images', 'seed'] as const;
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** What the routes work with. */
export interface RouteContext {
  registry: ModelRegistry;
  pool: WorkerPool;
  samples: readonly Sample[];
  files: StaticFiles;
  limits: ImageLimits & { maxUploadBytes: number; timeoutMs: number; maxCurveImages: number };
  /** The opening view, as far as it is known now. */
  story: () => StoryState;
}

/** Describes a registered method for the page. */
function methodInfo(name: string): MethodInfo {
  const spec = attackSpec(name);
  const steps = spec.defaults?.steps;
  return {
    name, title: methodTitle(name), summary: spec.summary, label: spec.label, targeted: isTargeted(name),
    steps: spec.options.includes('steps'), stepSize: spec.options.includes('stepSize'), ...(typeof steps === 'number' ? { defaultSteps: steps } : {}),
  };
}

/** A sample's image prepared for a model, as every route does it. */
export function prepareFor(bytes: Uint8Array, model: ReadyModel, limits: ImageLimits): Promise<PreparedImage> {
  return prepareImage(bytes, model.info, limits);
}

/** Builds the request handler: resolves when the answer is sent, throws an HttpError (or a pool error) otherwise. */
export function routes(ctx: RouteContext): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> {
  const { registry, pool, limits } = ctx;
  const sampleById = new Map(ctx.samples.map((s) => [s.id, s]));

  /** Runs a job and measures its time in the queue. */
  const timed = async <K extends Job['type']>(job: Extract<Job, { type: K }>): Promise<{ result: JobResults[K]; queuedMs: number }> => {
    const admitted = performance.now();
    let started = admitted;
    const result = await pool.run(job, { timeoutMs: limits.timeoutMs, onStart: () => (started = performance.now()) });
    return { result, queuedMs: started - admitted };
  };

  const config = (): Config => {
    const models = registry.list();
    const classified = new Set(models.flatMap((m) => m.testSets));
    return {
      models,
      methods: attacks().map((a) => methodInfo(a.name)),
      labelSources: LABEL_SOURCES.map((name) => ({ name, title: LABEL_SOURCE_TITLES[name] })),
      samples: ctx.samples.map(sampleInfo),
      eps: { max: SLIDER_MAX_EPS, apiMax: MAX_EPS },
      curve: {
        eps: [...CURVE_EPS],
        datasets: (['mnist', 'fashion-mnist'] as const).filter((d) => classified.has(d) && ctx.samples.some((s) => s.kind === d)),
        defaultImages: 100,
        maxImages: limits.maxCurveImages,
        maxMethods: field.MAX_CURVE_METHODS,
      },
      limits: { maxUploadBytes: limits.maxUploadBytes, maxPixels: limits.maxPixels, maxPending: pool.maxPending, timeoutMs: limits.timeoutMs, maxSteps: MAX_ATTACK_STEPS, maxModels: field.MAX_MODELS },
      story: ctx.story(),
    };
  };

  async function attack(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await parseMultipart(req, await readBody(req, limits.maxUploadBytes + 64 * 1024));
    field.checkFields(form.keys(), ATTACK_FIELDS, (k) => form.getAll(k).length, ['model']);
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
      if (upload.size > limits.maxUploadBytes) throw new HttpError(413, `the image is ${formatBytes(upload.size)}, larger than the limit of ${formatBytes(limits.maxUploadBytes)}`);
      bytes = new Uint8Array(await upload.arrayBuffer());
    } else {
      sample = sampleById.get(sampleId as string);
      if (!sample) throw new HttpError(400, `unknown sample '${sampleId}'`);
      bytes = sample.bytes;
    }
    const names = field.modelNames(form.getAll('model').map((v) => {
      if (typeof v !== 'string') throw new HttpError(400, "field 'model' must be text, not a file");
      return v;
    }), 'model');
    const method = field.methodField(text('method'));
    const eps = field.epsField(text('eps'));
    const label = field.labelField(text('label'));
    const seed = field.seedField(text('seed'));
    const steps = field.stepsField(method, text('steps'));
    const stepSize = field.stepSizeField(method, text('stepSize'));
    const models = names.map((n) => registry.usable(n));
    const target = field.targetField(method, text('target'), Math.min(...models.map((m) => m.info.classes)));
    const probe = await probeImage(bytes, limits);
    const prepared = new Map<string, Promise<PreparedImage>>();
    const targets: AttackTarget[] = await Promise.all(
      models.map(async (m) => {
        const key = m.info.inputShape.join('x');
        if (!prepared.has(key)) prepared.set(key, prepareFor(bytes, m, limits));
        const image = await (prepared.get(key) as Promise<PreparedImage>);
        const known = sample?.label !== undefined && sample.kind !== 'photo' && m.testSets.includes(sample.kind);
        return { model: m.ref, image, trueLabel: known ? sample!.label : undefined };
      }),
    );
    if (label === 'true') {
      const missing = targets.filter((t) => t.trueLabel === undefined).map((t) => t.model.name);
      if (missing.length > 0) {
        throw new HttpError(400, `label source 'true' needs the image's true class, which is known only for test images of the model's own dataset (not for ${missing.join(', ')}); choose 'predicted' or a test image`);
      }
    }
    const { result, queuedMs } = await timed({ type: 'attack', targets, method, eps, label, seed, steps, stepSize, target });
    const dataUrl = (png: Uint8Array): string => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    const body: AttackResponse = {
      method,
      eps,
      seed,
      ...(steps === undefined ? {} : { steps }),
      ...(stepSize === undefined ? {} : { stepSize }),
      image: { source: sample ? `sample:${sample.id}` : 'upload', width: probe.width, height: probe.height, format: probe.format },
      results: result.map((r): AttackResultJson => {
        const classNames = registry.classNames(r.model);
        const shift = (c: ClassProbabilities): ClassShift => ({ ...c, name: classNames[c.index] ?? String(c.index) });
        return {
          model: r.model,
          labelSource: r.labelSource,
          trueLabel: r.trueLabel ? shift(r.trueLabel) : null,
          target: r.target ? { ...shift(r.target), source: r.target.source } : null,
          clean: { image: dataUrl(r.clean.png), top5: r.clean.top5 },
          perturbation: { image: dataUrl(r.perturbation.png), magnification: r.perturbation.magnification, linf: r.perturbation.linf, l2: r.perturbation.l2 },
          adversarial: { image: dataUrl(r.adversarial.png), top5: r.adversarial.top5 },
          ms: r.ms,
        };
      }),
      queuedMs,
    };
    sendJson(res, 200, body);
  }

  async function curve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(req, await readBody(req, 16 * 1024));
    field.checkFields(Object.keys(body), CURVE_FIELDS);
    const names = field.modelNames(body.models, 'models');
    const methods = field.curveMethods(body);
    const label = field.labelField(body.label);
    const dataset = field.datasetField(body.dataset);
    const images = body.images ?? 100;
    if (!Number.isInteger(images) || (images as number) < 1 || (images as number) > limits.maxCurveImages) {
      throw new HttpError(400, `images must be an integer in [1, ${limits.maxCurveImages}], got ${JSON.stringify(images)}`);
    }
    const seed = field.seedField(body.seed);
    const models = names.map((n) => registry.usable(n));
    const applicable = models.filter((m) => m.testSets.includes(dataset));
    const skipped = models.filter((m) => !m.testSets.includes(dataset)).map((m) => ({ model: m.name, reason: `it does not classify ${dataset} images` }));
    if (applicable.length === 0) throw new HttpError(400, `none of ${names.join(', ')} classifies ${dataset} test images, so there is no accuracy to measure`);
    const { result, queuedMs } = await timed({ type: 'curve', models: applicable.map((m) => m.ref), dataset, images: images as number, methods, label, eps: [...CURVE_EPS], seed });
    const answer: CurveResponse = { dataset, images: images as number, methods, eps: [...CURVE_EPS], curves: result, skipped, queuedMs };
    sendJson(res, 200, answer);
  }

  function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): void {
    const file = ctx.files.lookup(path);
    if (!file) throw new HttpError(404, `not found: ${path}`);
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...(file.type.startsWith('text/html') ? { 'content-security-policy': CSP } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  return async (req, res, path) => {
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
  };
}
