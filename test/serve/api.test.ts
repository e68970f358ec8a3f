/**
 * The `advml serve` API in process: attacks on sample and uploaded images, the
 * accuracy curve, every error case (bad uploads, limits, unknown names, path
 * traversal, host names), the concurrency limit, deadlines, and that a slow
 * job leaves the event loop free.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { METHOD_NAMES } from '../../src/attacks/index.js';
import { readIdx, mnistDir } from '../../src/data/index.js';
import { type AttackResponse, type Config, type CurveResponse, type RunningServer, startServer } from '../../src/serve/index.js';
import { loadClassifier } from '../../src/models/index.js';
import { tensor } from '../../src/engine/index.js';
import { writeMnistCheckpoint } from '../helpers/checkpoints.js';
import { ensureBuilt, rawGet } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-serve-api-'));
const ckpt = join(dir, 'mnist.safetensors');
const KiB = 1024;

type AttackBody = AttackResponse & { error?: string };

function form(fields: Record<string, string | string[] | Blob>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (Array.isArray(v)) for (const x of v) f.append(k, x);
    else if (v instanceof Blob) f.append(k, v, 'upload.bin');
    else f.append(k, v);
  }
  return f;
}

async function post(server: RunningServer, path: string, body: FormData | object): Promise<{ status: number; body: AttackBody; headers: Headers }> {
  const init: RequestInit =
    body instanceof FormData
      ? { method: 'POST', body }
      : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
  const r = await fetch(server.url + path, init);
  return { status: r.status, body: (await r.json()) as AttackBody, headers: r.headers };
}

function pngBytes(dataUrl: string): Buffer {
  assert.match(dataUrl, /^data:image\/png;base64,/);
  return Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64');
}

let server: RunningServer;
let mnistSample: { id: string; label: number; index: number };

before(async () => {
  ensureBuilt();
  writeMnistCheckpoint(ckpt);
  server = await startServer({ port: 0, models: [ckpt, ckpt], maxUploadBytes: 256 * KiB, maxPixels: 4_000_000, photoDir: dir });
  await server.ready;
  assert.deepEqual(server.models().map((m) => [m.name, m.status]), [['mnist', 'ready'], ['mnist-2', 'ready']]);
});

after(async () => {
  await server?.close();
});

describe('advml serve API', () => {
  test('GET / serves the built page with a CSP that allows only this origin; /api/config lists models, methods and samples', async () => {
    const page = await fetch(server.url + '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /https?:/, 'the CSP names no other origin');
    const html = await page.text();
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no external URLs in the page');
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'the page loads its script from ./assets');
    const js = await fetch(`${server.url}/${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);

    const config = (await (await fetch(server.url + '/api/config')).json()) as Config;
    assert.deepEqual(config.methods.map((m) => m.name), [...METHOD_NAMES]);
    const byName = new Map(config.methods.map((m) => [m.name, m]));
    assert.equal(byName.get('r-step-ll')?.title, 'R+Step l.l.');
    assert.deepEqual(config.methods.filter((m) => m.title === m.name || !m.summary).map((m) => m.name), [], 'every method has a readable name and a summary');
    assert.deepEqual(config.methods.filter((m) => m.targeted).map((m) => m.name), ['step-ll', 'step-rnd', 'r-step-ll', 'iter-ll']);
    assert.deepEqual([byName.get('pgd')?.steps, byName.get('pgd')?.stepSize, byName.get('pgd')?.defaultSteps, byName.get('fgsm')?.steps], [true, true, 10, false]);
    assert.deepEqual(config.labelSources.find((l) => l.name === 'leastLikely'), { name: 'leastLikely', title: 'least likely class' });
    assert.equal(config.limits.maxModels, 3);
    // Two checkpoints, no demo models: there is no opening view to search, and the page is told why.
    const story = await server.story;
    assert.ok(story.status === 'none' && /needs mnist-plain and mnist-fast-at/.test(story.reason), JSON.stringify(story));
    const later = (await (await fetch(server.url + '/api/config')).json()) as Config;
    assert.deepEqual(later.story, story);
    assert.deepEqual(config.models[0]?.info?.inputShape, [1, 28, 28]);
    assert.deepEqual(config.models[0]?.testSets, ['mnist', 'fashion-mnist']);
    const digits = config.samples.filter((s) => s.kind === 'mnist');
    assert.deepEqual(digits.map((s) => s.label), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'one MNIST test image per class');
    assert.equal(config.samples.filter((s) => s.kind === 'photo').length, 0, 'no photos in an empty photo folder');
    const first = digits[0]!;
    mnistSample = { id: first.id, label: first.label!, index: Number(first.id.split('-')[1]) };
    const thumb = await fetch(`${server.url}/api/samples/${first.id}.png`);
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get('content-type'), 'image/png');
  });

  test('FGSM on an MNIST test image with two models: exact input, top-5 in order, perturbation of exactly eps, true label used', async () => {
    const r = await post(server, '/api/attack', form({ sample: mnistSample.id, model: ['mnist', 'mnist-2'], method: 'fgsm', eps: '16' }));
    assert.equal(r.status, 200, r.body.error);
    assert.deepEqual(r.body.results.map((x) => x.model), ['mnist', 'mnist-2']);
    const images = readIdx(join(mnistDir(), 't10k-images-idx3-ubyte'));
    const expected = images.data.subarray(mnistSample.index * 784, (mnistSample.index + 1) * 784);
    for (const res of r.body.results) {
      assert.equal(res.labelSource, 'true');
      assert.equal(res.target, null, 'FGSM is not targeted');
      assert.deepEqual([res.trueLabel?.index, res.trueLabel?.name], [mnistSample.label, String(mnistSample.label)]);
      // The true class's probabilities are those of the top-5 lists wherever it appears there.
      for (const [list, p] of [[res.clean.top5, res.trueLabel!.clean], [res.adversarial.top5, res.trueLabel!.adversarial]] as const) {
        const listed = list.find((x) => x.index === mnistSample.label);
        if (listed) assert.ok(Math.abs(listed.probability - p) < 1e-6, `${listed.probability} vs ${p}`);
      }
      assert.ok(r.body.queuedMs >= 0);
      for (const list of [res.clean.top5, res.adversarial.top5]) {
        assert.equal(list.length, 5);
        const p = list.map((x) => x.probability);
        assert.ok(p.every((v, i) => i === 0 || v <= (p[i - 1] as number)), `descending: ${p}`);
        assert.ok(p.reduce((a, b) => a + b) <= 1 + 1e-5);
      }
      // The model saw exactly the test image (28x28 grey: no resampling on the way).
      const meta = await sharp(pngBytes(res.clean.image)).metadata();
      assert.deepEqual([meta.width, meta.height, meta.channels], [28, 28, 1]);
      const clean = await sharp(pngBytes(res.clean.image)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual(new Uint8Array(clean.data), new Uint8Array(expected));
      // FGSM moves some pixel by exactly eps and none by more; the adversarial PNG differs by at most eps.
      assert.ok(Math.abs(res.perturbation.linf - 16) < 1e-3, `L-inf ${res.perturbation.linf}`);
      const adv = await sharp(pngBytes(res.adversarial.image)).extractChannel(0).raw().toBuffer();
      let maxDiff = 0;
      for (let i = 0; i < adv.length; i++) maxDiff = Math.max(maxDiff, Math.abs((adv[i] as number) - (expected[i] as number)));
      assert.ok(maxDiff <= 16 && maxDiff >= 15, `largest pixel change ${maxDiff}`);
      assert.ok(Math.abs(res.perturbation.magnification - 127.5 / 16) < 1e-3);
      const pert = await sharp(pngBytes(res.perturbation.image)).metadata();
      assert.deepEqual([pert.width, pert.height], [28, 28]);
    }
  });

  test('an uploaded photo is cropped and resized to the model; without a true label, FGSM falls back to the predicted one', async () => {
    const photo = await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 220, g: 120, b: 40 } } }).jpeg().toBuffer();
    const r = await post(server, '/api/attack', form({ image: new Blob([photo], { type: 'image/jpeg' }), model: 'mnist', method: 'basic-iter', eps: '8', label: 'default' }));
    assert.equal(r.status, 200, r.body.error);
    assert.equal(r.body.image.source, 'upload');
    assert.deepEqual([r.body.image.width, r.body.image.height], [96, 64]);
    const res = r.body.results[0]!;
    assert.equal(res.labelSource, 'predicted');
    assert.equal(res.trueLabel, null);
    assert.ok(res.perturbation.linf <= 8 + 1e-3);
    const clean = await sharp(pngBytes(res.clean.image)).metadata();
    assert.deepEqual([clean.width, clean.height, clean.channels], [28, 28, 1]);
  });

  test('every method runs through the API, with every label source', async () => {
    for (const method of METHOD_NAMES) {
      const r = await post(server, '/api/attack', form({ sample: mnistSample.id, model: 'mnist', method, eps: '4', seed: '3' }));
      assert.equal(r.status, 200, `${method}: ${r.body.error}`);
      assert.ok(r.body.results[0]!.perturbation.linf <= 4 + 1e-3 || method.startsWith('fast-l') || method === 'random-normal', `${method}: L-inf ${r.body.results[0]!.perturbation.linf}`);
    }
    // steps reaches the attack: 2 steps of 1 pixel (basic iter.'s alpha) cannot move a pixel by more than 2.
    const two = await post(server, '/api/attack', form({ sample: mnistSample.id, model: 'mnist', method: 'basic-iter', eps: '16', steps: '2' }));
    assert.equal(two.status, 200, two.body.error);
    assert.ok(two.body.results[0]!.perturbation.linf > 1.5 && two.body.results[0]!.perturbation.linf <= 2 + 1e-3, `L-inf ${two.body.results[0]!.perturbation.linf}`);
    for (const label of ['true', 'predicted', 'leastLikely', 'random']) {
      const r = await post(server, '/api/attack', form({ sample: mnistSample.id, model: 'mnist', method: 'fgsm', eps: '4', label }));
      assert.equal(r.status, 200, `${label}: ${r.body.error}`);
      assert.equal(r.body.results[0]!.labelSource, label);
    }
  });

  test('targeted methods name their target: the least likely class by default, or the one chosen, whose probability rises', async () => {
    const classifier = await loadClassifier(ckpt);
    const images = readIdx(join(mnistDir(), 't10k-images-idx3-ubyte'));
    const pixels = Float32Array.from(images.data.subarray(mnistSample.index * 784, (mnistSample.index + 1) * 784));
    const x = classifier.fromData(tensor(pixels, { shape: [1, 1, 28, 28] }), [0, 255], 'the sample');
    const leastLikely = classifier.logits(x).argmin(1).item();
    classifier.dispose();
    const own = await post(server, '/api/attack', form({ sample: mnistSample.id, model: 'mnist', method: 'step-ll', eps: '16' }));
    assert.equal(own.status, 200, own.body.error);
    assert.deepEqual([own.body.results[0]!.target?.index, own.body.results[0]!.target?.source], [leastLikely, 'leastLikely']);
    const chosen = (mnistSample.label + 3) % 10;
    const aimed = await post(server, '/api/attack', form({ sample: mnistSample.id, model: 'mnist', method: 'iter-ll', eps: '32', target: String(chosen) }));
    assert.equal(aimed.status, 200, aimed.body.error);
    const t = aimed.body.results[0]!.target!;
    assert.deepEqual([t.index, t.name, t.source, aimed.body.results[0]!.labelSource], [chosen, String(chosen), 'chosen', 'chosen target']);
    assert.ok(t.adversarial > t.clean, `the target's probability rises: ${t.clean} -> ${t.adversarial}`);
  });

  test('accuracy against eps: one value per eps, clean first, FGSM never helps much; two methods give a curve each', async () => {
    const r = (await post(server, '/api/curve', { models: ['mnist'], method: 'fgsm', dataset: 'mnist', images: 50 })) as unknown as { status: number; body: CurveResponse & { error?: string } };
    assert.equal(r.status, 200, r.body.error);
    const two = (await post(server, '/api/curve', { models: ['mnist', 'mnist-2'], methods: ['fgsm', 'step-ll'], dataset: 'mnist', images: 20 })) as unknown as { status: number; body: CurveResponse & { error?: string } };
    assert.equal(two.status, 200, two.body.error);
    assert.deepEqual(two.body.curves.map((c) => `${c.model} ${c.method}`), ['mnist fgsm', 'mnist step-ll', 'mnist-2 fgsm', 'mnist-2 step-ll']);
    // The same weights, the same images: both models' curves agree, and each method's clean point is the same.
    assert.deepEqual(two.body.curves[0]!.accuracy, two.body.curves[2]!.accuracy);
    assert.equal(two.body.curves[0]!.accuracy[0], two.body.curves[1]!.accuracy[0]);
    const c = r.body.curves[0]!;
    assert.equal(c.accuracy.length, r.body.eps.length);
    assert.equal(r.body.eps[0], 0);
    assert.equal(c.labelSource, 'true');
    assert.ok(c.accuracy[0]! > 0.6, `clean accuracy ${c.accuracy[0]}`);
    assert.ok(c.accuracy.at(-1)! < c.accuracy[0]!, `accuracy at eps 64 (${c.accuracy.at(-1)}) is below clean (${c.accuracy[0]})`);
    assert.ok(c.accuracy.every((a) => a >= 0 && a <= 1 && Math.abs(a * 50 - Math.round(a * 50)) < 1e-9), `counts out of 50 images: ${c.accuracy}`);
  });

  test('bad requests get a 4xx with a message naming the problem', async () => {
    const notImage = new Blob([Buffer.from('hello, this is not an image')], { type: 'image/png' });
    const svg = new Blob([Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="file:///etc/passwd"/></svg>')], { type: 'image/svg+xml' });
    const goodPng = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).png().toBuffer();
    // The header survives (so it is probed as a PNG), the pixel data does not.
    const truncated = new Blob([goodPng.subarray(0, 200)], { type: 'image/png' });
    const big = await sharp({ create: { width: 2500, height: 2000, channels: 3, background: '#000' } }).png({ compressionLevel: 9 }).toBuffer();
    assert.ok(big.length < 256 * KiB, 'the 5-megapixel PNG is small in bytes');
    const huge = new Blob([Buffer.alloc(300 * KiB, 7)], { type: 'image/png' });
    const base = { model: 'mnist', method: 'fgsm', eps: '8' };
    const cases: [string, FormData | object, number, RegExp][] = [
      ['not an image', form({ ...base, image: notImage }), 415, /not an image/],
      ['SVG', form({ ...base, image: svg }), 415, /svg format are not accepted/],
      ['truncated PNG', form({ ...base, image: truncated }), 400, /could not be decoded/],
      ['too many pixels', form({ ...base, image: new Blob([big]) }), 413, /2500x2000 = 5\.0 megapixels, more than the limit of 4\.0/],
      ['too many bytes', form({ ...base, image: huge }), 413, /the image is 300 KiB, larger than the limit of 256 KiB/],
      ['request body too large', form({ ...base, image: new Blob([Buffer.alloc(1024 * KiB)]) }), 413, /the request body is larger than the limit of 320 KiB/],
      ['unknown field', form({ ...base, sample: mnistSample.id, bogus: 'x' }), 400, /unknown field 'bogus'/],
      ['image as text', form({ ...base, image: 'abc' }), 400, /'image' must be a file/],
      ['both image and sample', form({ ...base, sample: mnistSample.id, image: new Blob([goodPng]) }), 400, /exactly one of 'image'/],
      ['neither', form(base), 400, /exactly one of 'image'/],
      ['unknown sample', form({ ...base, sample: '../../package.json' }), 400, /unknown sample/],
      ['unknown method', form({ ...base, sample: mnistSample.id, method: 'deep-fool' }), 400, /unknown attack method 'deep-fool': expected one of fgsm,/],
      ['no method', form({ sample: mnistSample.id, model: 'mnist', eps: '8' }), 400, /method is required/],
      ['unknown model', form({ ...base, sample: mnistSample.id, model: 'resnet152' }), 400, /unknown model 'resnet152'/],
      ['four models', form({ ...base, sample: mnistSample.id, model: ['mnist', 'mnist-2', 'a', 'b'] }), 400, /give 1 to 3 models \(model\), got 4/],
      ['a target for an untargeted method', form({ ...base, sample: mnistSample.id, target: '3' }), 400, /^target applies to the targeted methods \(step-ll, step-rnd, r-step-ll, iter-ll\), not to fgsm$/],
      ['a target beyond the classes', form({ ...base, sample: mnistSample.id, method: 'step-ll', target: '10' }), 400, /^target must be an integer in \[0, 9\], got '10'$/],
      ['a step size for a method without one', form({ ...base, sample: mnistSample.id, method: 'basic-iter', stepSize: '2' }), 400, /^stepSize applies to pgd, rs-fgsm/],
      ['same model twice', form({ ...base, sample: mnistSample.id, model: ['mnist', 'mnist'] }), 400, /same model is given twice/],
      ['eps too large', form({ ...base, sample: mnistSample.id, eps: '300' }), 400, /eps must be a number in \[0, 255\]/],
      ['eps not a number', form({ ...base, sample: mnistSample.id, eps: 'lots' }), 400, /eps must be a number/],
      // Number() would take these as 16, 0, 0, Infinity, Infinity and 8: parsed as the CLI parses them.
      ...['0x10', '', '   ', 'Infinity', '1e999', ' 8'].map((eps): [string, FormData, number, RegExp] => [
        `eps '${eps}'`, form({ ...base, sample: mnistSample.id, eps }), 400,
        new RegExp(`^eps must be a number in \\[0, 255\\] pixel values, got '${eps}'$`),
      ]),
      ['seed in hex', form({ ...base, sample: mnistSample.id, seed: '0x1' }), 400, /^seed must be an integer in \[0, 2147483647\], got '0x1'$/],
      ['steps beyond the limit', form({ ...base, sample: mnistSample.id, method: 'pgd', steps: '1e12' }), 400, /^steps must be an integer in \[1, 1000\], got '1e12'$/],
      ['steps not an integer', form({ ...base, sample: mnistSample.id, method: 'pgd', steps: '2.5' }), 400, /^steps must be an integer in \[1, 1000\], got '2.5'$/],
      ['steps of a one-step method', form({ ...base, sample: mnistSample.id, steps: '3' }), 400, /^steps applies to basic-iter, iter-ll, pgd, .*, not to fgsm$/],
      ['no eps', form({ sample: mnistSample.id, model: 'mnist', method: 'fgsm' }), 400, /^eps is required: a number in \[0, 255\] pixel values$/],
      ['field twice', form({ ...base, sample: mnistSample.id, method: ['fgsm', 'pgd'] }), 400, /'method' is given more than once/],
      ['unknown label source', form({ ...base, sample: mnistSample.id, label: 'target' }), 400, /unknown label source 'target'/],
      ['true label of an upload', form({ ...base, image: new Blob([goodPng]), label: 'true' }), 400, /label source 'true' needs the image's true class/],
      ['bad seed', form({ ...base, sample: mnistSample.id, seed: '-1' }), 400, /seed must be an integer/],
      ['JSON to the form route', { sample: mnistSample.id }, 415, /expected a multipart\/form-data body/],
    ];
    for (const [what, body, status, message] of cases) {
      const r = await post(server, '/api/attack', body);
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error ?? '', message, what);
    }
    const curveCases: [string, object, number, RegExp][] = [
      ['unknown field', { models: ['mnist'], method: 'fgsm', dataset: 'mnist', extra: 1 }, 400, /unknown field 'extra'/],
      ['bad dataset', { models: ['mnist'], method: 'fgsm', dataset: 'cifar10' }, 400, /dataset must be 'mnist' or 'fashion-mnist'/],
      ['too many images', { models: ['mnist'], method: 'fgsm', dataset: 'mnist', images: 100000 }, 400, /images must be an integer in \[1, 500\]/],
      ['unknown model', { models: ['nope'], method: 'fgsm', dataset: 'mnist' }, 400, /unknown model 'nope'/],
      ['unknown method', { models: ['mnist'], method: 'cw', dataset: 'mnist' }, 400, /unknown attack method 'cw'/],
      ['method and methods', { models: ['mnist'], method: 'fgsm', methods: ['fgsm'], dataset: 'mnist' }, 400, /give 'methods' or 'method', not both/],
      ['four methods', { models: ['mnist'], methods: ['fgsm', 'pgd', 'step-ll', 'kl'], dataset: 'mnist' }, 400, /methods must be a list of 1 to 3 method names/],
    ];
    for (const [what, body, status, message] of curveCases) {
      const r = await post(server, '/api/curve', body);
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error ?? '', message, what);
    }
    const badJson = await fetch(server.url + '/api/curve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"models": [' });
    assert.equal(badJson.status, 400);
    assert.match(((await badJson.json()) as { error: string }).error, /malformed JSON/);
    const wrongVerb = await fetch(server.url + '/api/attack');
    assert.equal(wrongVerb.status, 405);
    assert.equal(wrongVerb.headers.get('allow'), 'POST');
    assert.equal((await fetch(server.url + '/api/nope')).status, 404);
    assert.equal((await fetch(server.url + '/index.html', { method: 'DELETE' })).status, 405);
  });

  test('no path leaves the page folder: traversal in every spelling is a 404; foreign Host names are refused', async () => {
    const paths = [
      '/../package.json', '/../../package.json', '/%2e%2e/package.json', '/%2E%2E/package.json', '/%2e%2e%2fpackage.json',
      '/..%2fpackage.json', '/..%2Fpackage.json', '/..\\package.json', '/..%5cpackage.json', '/assets/../../package.json',
      '/assets/..%2f..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '//etc/passwd', '/%2fetc%2fpasswd',
      '/index.html/../../package.json', '/.%2e/package.json', '/%252e%252e/package.json', '/api/samples/../../package.json',
      '/api/samples/..%2f..%2fpackage.json.png', '/dist/web/index.html', '/src/serve/server.ts', '/package.json', '/%00',
      '/index.html%00', '/web/index.html', '/../../../../../../etc/passwd',
    ];
    for (const p of paths) {
      const r = await rawGet(server.url, p);
      assert.equal(r.status, 404, `${p}: ${r.status} ${r.body.slice(0, 80)}`);
      assert.doesNotMatch(r.body, /"name": "advml"|root:x:0:0|startServer/, p);
    }
    // What the page does use is served.
    for (const p of ['/', '/index.html', '/index.html?../../package.json']) assert.equal((await rawGet(server.url, p)).status, 200, p);
    // Nothing was written into the page folder or beside the checkpoint.
    assert.deepEqual(readdirSync(dir).sort(), ['mnist.safetensors']);
    const evil = await rawGet(server.url, '/', { host: 'attacker.example:80' });
    assert.equal(evil.status, 421);
    assert.equal((await rawGet(server.url, '/', { host: `localhost:${server.port}` })).status, 200);
  });

  test('the bundle has no external URLs', () => {
    const assets = readdirSync(new URL('../../dist/web/assets/', import.meta.url));
    for (const f of assets) {
      const text = readFileSync(new URL(`../../dist/web/assets/${f}`, import.meta.url), 'utf8');
      const urls = [...text.matchAll(/https?:\/\/[^\s"'`)]+/g)].map((m) => m[0]).filter((u) => !u.startsWith('http://www.w3.org/'));
      assert.deepEqual(urls, [], f);
    }
  });
});

describe('advml serve under load', () => {
  let slow: RunningServer;
  before(async () => {
    slow = await startServer({ port: 0, models: [ckpt], maxPending: 1, timeoutMs: 2500, photoDir: dir });
    await slow.ready;
  });
  after(async () => {
    await slow?.close();
  });

  test('a slow attack runs off the event loop: the page answers at once, a second job gets 503, the slow one 504 at its deadline', async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let slowDone = false;
    const t0 = performance.now();
    // basic-iter on 500 images at 8 eps values: far longer than the 2.5 s deadline.
    const slowJob = post(slow, '/api/curve', { models: ['mnist'], method: 'basic-iter', dataset: 'mnist', images: 500 }).then((r) => {
      slowDone = true;
      return { ...r, ms: performance.now() - t0 };
    });
    await new Promise((r) => setTimeout(r, 300));
    const g0 = performance.now();
    const page = await fetch(slow.url + '/');
    const pageMs = performance.now() - g0;
    assert.equal(page.status, 200);
    assert.ok(!slowDone, 'the page came back while the attack was still running');
    assert.ok(pageMs < 1500, `GET / took ${pageMs.toFixed(0)} ms during the attack`);
    assert.equal((await fetch(slow.url + '/api/config')).status, 200);

    const busy = await post(slow, '/api/attack', form({ sample: 'mnist-3', model: 'mnist', method: 'fgsm', eps: '8' }));
    assert.equal(busy.status, 503, JSON.stringify(busy.body));
    assert.match(busy.body.error ?? '', /busy \(1 jobs admitted, limit 1\)/);
    assert.equal(busy.headers.get('retry-after'), '2');

    const r = await slowJob;
    delay.disable();
    assert.equal(r.status, 504, JSON.stringify(r.body));
    assert.match(r.body.error ?? '', /the job took longer than 2\.5 s and was stopped/);
    assert.ok(r.ms >= 2400 && r.ms < 10_000, `the deadline answered after ${r.ms.toFixed(0)} ms`);
    const maxDelayMs = delay.max / 1e6;
    assert.ok(maxDelayMs < 1000, `the event loop stalled for ${maxDelayMs.toFixed(0)} ms while the attack ran`);

    // The cancelled job stops at its next step; then the worker serves again.
    let after = await post(slow, '/api/attack', form({ sample: 'mnist-3', model: 'mnist', method: 'fgsm', eps: '8' }));
    for (let i = 0; i < 100 && after.status === 503; i++) {
      await new Promise((res) => setTimeout(res, 100));
      after = await post(slow, '/api/attack', form({ sample: 'mnist-3', model: 'mnist', method: 'fgsm', eps: '8' }));
    }
    assert.equal(after.status, 200, JSON.stringify(after.body));
  });
});
