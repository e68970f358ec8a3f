/**
 * End to end: the real `advml serve` process, driven by Debian's Chromium
 * through playwright-core. The server starts with its default models (the
 * demo pair, trained at start-up here (3,000 images each) because the demo folder is empty, and
 * the ImageNet ResNet50 when its importer and weights are present). The page
 * picks a sample photo and runs FGSM on ResNet50 when it is available,
 * otherwise on the MNIST pair with an MNIST test image; uploads a photo through
 * the file input and attacks it; then it attacks an MNIST test image on the plain and the adversarially trained model side by
 * side and draws accuracy against eps. Screenshots go to test-artifacts/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import sharp from 'sharp';
import { METHOD_NAMES } from '../../src/attacks/index.js';
import { resnet50Available } from '../../src/serve/models.js';
import { SKIMAGE_DATA } from '../../src/serve/samples.js';
import { ROOT, type ServeProcess, ensureBuilt, startServeProcess } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const resnet = resnet50Available();
const path = resnet ? 'FGSM on ResNet50 with a sample photo' : 'FGSM on the MNIST models with an MNIST test image (ResNet50 is not available)';

const work = mkdtempSync(join(tmpdir(), 'advml-serve-e2e-'));
let server: ServeProcess | undefined;
let browser: BrowserContext | undefined;

/** Installs Debian's chromium when it is missing (the tests run as root). */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8', env });
    r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], { encoding: 'utf8', env });
  }
  if (r.status !== 0 || !existsSync(CHROMIUM)) throw new Error(`could not install chromium (apt-get install chromium):\n${r.stdout}\n${r.stderr}`);
}

before(async () => {
  ensureChromium();
  ensureBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  // An empty demo folder and a fresh cache: the demo pair is trained at start-up (3,000 images each keeps it short).
  server = await startServeProcess(['--demo-dir', join(work, 'no-demo'), '--cache-dir', join(work, 'cache'), '--train-images', '3000', '--timeout', '300']);
  browser = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 1000 },
  });
});

after(async () => {
  await browser?.close();
  const code = await server?.stop();
  if (server) assert.equal(code, 0, `advml serve exited with ${code}:\n${server.output()}`);
  rmSync(work, { recursive: true, force: true });
});

/** Selects exactly these models in the page. */
async function selectModels(page: Page, names: string[]): Promise<void> {
  for (const box of await page.locator('#models input[type=checkbox]').all()) {
    if ((await box.isChecked()) && !names.includes((await box.getAttribute('value')) ?? '')) await box.uncheck();
  }
  for (const n of names) await page.check(`#models input[value="${n}"]`);
  const checked = await page.locator('#models input:checked').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
  assert.deepEqual(checked.sort(), [...names].sort());
}

/** Runs the attack and checks each model's result: both top-5 lists and the three images, loaded. */
async function attackAndCheck(page: Page, models: string[]): Promise<{ clean: string[]; adversarial: string[] }[]> {
  const before = Number((await page.locator('#results').getAttribute('data-done')) ?? '0');
  await page.click('#attack');
  await page.waitForFunction((n) => Number(document.getElementById('results')?.dataset.done ?? '0') > n, before, { timeout: 240_000 });
  const error = await page.locator('#status.error').count();
  assert.equal(error, 0, `the page reported: ${await page.locator('#status').textContent()}`);
  assert.equal(await page.locator('#results article.result').count(), models.length, 'one result per model');
  const out = [];
  for (const m of models) {
    const card = page.locator(`#results article.result[data-model="${m}"]`);
    assert.equal(await card.count(), 1, `a result for ${m}`);
    for (const kind of ['clean', 'perturbation', 'adversarial']) {
      const img = card.locator(`img[data-testid="${kind}"]`);
      await img.waitFor({ state: 'visible' });
      const loaded = await img.evaluate((e) => (e as HTMLImageElement).complete && (e as HTMLImageElement).naturalWidth > 0);
      assert.ok(loaded, `${m}: the ${kind} image is shown`);
    }
    const clean = await card.locator('[data-testid="clean-top5"] li .cls').allTextContents();
    const adversarial = await card.locator('[data-testid="adversarial-top5"] li .cls').allTextContents();
    assert.equal(clean.length, 5, `${m}: clean top-5`);
    assert.equal(adversarial.length, 5, `${m}: adversarial top-5`);
    const probabilities = await card.locator('[data-testid="clean-top5"] li .p').allTextContents();
    assert.ok(probabilities.every((p) => /%$/.test(p)), `${m}: probabilities shown: ${probabilities}`);
    out.push({ clean, adversarial });
  }
  return out;
}

test(`advml serve in Chromium: ${path}; then the MNIST pair side by side and accuracy against eps`, { timeout: 600_000 }, async () => {
  const page = browser!.pages()[0] ?? (await browser!.newPage());
  const outside: string[] = [];
  const consoleErrors: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(server!.url) && !r.url().startsWith('data:')) outside.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  await page.goto(server!.url + '/');
  await page.waitForSelector('body[data-ready="true"]');
  // Models train or load in the background; the page polls until all are ready.
  const expected = resnet ? 3 : 2;
  await page.waitForFunction((n) => document.querySelectorAll('#models .badge.ready').length === n || document.querySelector('#models .badge.failed') !== null, expected, { timeout: 300_000 });
  assert.equal(await page.locator('#models .badge.failed').count(), 0, `a model failed to load:\n${server!.output()}`);
  const methods = await page.locator('#method option').allTextContents();
  // The page offers every registered attack.
  assert.deepEqual(methods, [...METHOD_NAMES], `methods offered: ${methods}`);

  if (resnet) {
    await page.click('button.sample[data-id="photo-chelsea"]');
    await selectModels(page, ['resnet50']);
    await page.selectOption('#method', 'fgsm');
    await page.locator('#eps').fill('4');
    const [r] = await attackAndCheck(page, ['resnet50']);
    // Chelsea is a cat: the importer's preprocessing must get this right.
    assert.ok(r!.clean.slice(0, 3).some((c) => /cat|tabby|lynx/i.test(c)), `ResNet50's clean top-3 for the cat photo: ${r!.clean}`);
  } else {
    await page.click('button.sample[data-id^="mnist-"]');
    await selectModels(page, ['mnist-plain', 'mnist-adversarial']);
    await page.selectOption('#method', 'fgsm');
    await page.locator('#eps').fill('48');
    await attackAndCheck(page, ['mnist-plain', 'mnist-adversarial']);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'serve.png'), fullPage: true });

  // An image of one's own, through the file input (what a drop does too).
  const coffee = join(SKIMAGE_DATA, 'coffee.png');
  const upload = existsSync(coffee) ? coffee : join(work, 'upload.png');
  if (upload !== coffee) await sharp({ create: { width: 80, height: 60, channels: 3, background: '#c08040' } }).png().toFile(upload);
  await page.setInputFiles('#file', upload);
  await page.waitForSelector('#drop.selected img');
  const uploaded = await attackAndCheck(page, resnet ? ['resnet50'] : ['mnist-plain', 'mnist-adversarial']);
  if (resnet && upload === coffee) assert.ok(uploaded[0]!.clean.slice(0, 3).some((c) => /espresso|cup|coffee/i.test(c)), `ResNet50's clean top-3 for the coffee photo: ${uploaded[0]!.clean}`);

  // The demo pair on an MNIST test image, side by side, and their accuracy against eps.
  await page.click('button.sample[data-id^="mnist-"]');
  await selectModels(page, ['mnist-plain', 'mnist-adversarial']);
  await page.selectOption('#method', 'fgsm');
  await page.locator('#eps').fill('48');
  await attackAndCheck(page, ['mnist-plain', 'mnist-adversarial']);
  await page.selectOption('#curve-dataset', 'mnist');
  await page.fill('#curve-images', '100');
  await page.click('#curve');
  await page.waitForFunction(() => document.querySelector('#chart svg') !== null || document.querySelector('#curve-status.error') !== null, undefined, { timeout: 240_000 });
  assert.equal(await page.locator('#curve-status.error').count(), 0, `${await page.locator('#curve-status').textContent()}`);
  assert.equal(await page.locator('#chart svg polyline').count(), 2, 'one accuracy line per model');
  assert.deepEqual(await page.locator('#chart svg text.legend').allTextContents(), ['mnist-plain', 'mnist-adversarial']);
  await page.screenshot({ path: join(ARTIFACTS, resnet ? 'serve-mnist.png' : 'serve-mnist-curve.png'), fullPage: true });

  assert.deepEqual(outside, [], 'the page fetched nothing from other origins');
  assert.deepEqual(consoleErrors, [], 'no errors (CSP violations included) in the console');
});
