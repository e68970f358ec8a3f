/**
 * End to end: the real `advml serve` process, driven by Debian's Chromium
 * through playwright-core, as a new user would meet it at 1280x900, 768x1024
 * and 390x844. The server starts with its default models: the three demo
 * models, trained at start-up here (3,000 images each) because the demo
 * folder is empty, and the ImageNet ResNet50 when its weights are present.
 *
 * At each size: no horizontal scroll, the controls inside the screen, and the
 * first screen shows the opening view the server found (the plain model
 * fooled beside the hardened one that holds, announced to screen readers) and
 * the accuracy curves with their table. Then, at 1280: focus order and the
 * keyboard, honest state (a refused upload, a third and fourth model, a
 * photo on MNIST models, an attack queued behind a curve), targets named,
 * contrast, and the attacks and uploads of before. Screenshots go to
 * test-artifacts/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import sharp from 'sharp';
import { METHOD_NAMES } from '../../src/attacks/index.js';
import { resnet50Available } from '../../src/serve/models.js';
import { SKIMAGE_DATA } from '../../src/serve/samples.js';
import { ROOT, type ServeProcess, ensureBuilt, startServeProcess } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const SIZES = [
  { width: 1280, height: 900 },
  { width: 768, height: 1024 },
  { width: 390, height: 844 },
] as const;
const resnet = resnet50Available();

const work = mkdtempSync(join(tmpdir(), 'advml-serve-e2e-'));
let server: ServeProcess | undefined;
let browser: Browser | undefined;
const outside: string[] = [];
const consoleErrors: string[] = [];

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
  // An empty demo folder and a fresh cache: the demo models are trained at start-up (3,000 images each keeps it short).
  server = await startServeProcess(['--demo-dir', join(work, 'no-demo'), '--cache-dir', join(work, 'cache'), '--train-images', '3000', '--timeout', '300']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  const code = await server?.stop();
  if (server) assert.equal(code, 0, `advml serve exited with ${code}:\n${server.output()}`);
  rmSync(work, { recursive: true, force: true });
});

/**
 * Text below 4.5:1 against its background (WCAG's contrast ratio), as a list.
 * A string: page.evaluate runs it as written (no helpers of the test's
 * compiler inside).
 */
const CONTRAST = `(() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.map((v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const out = [];
  for (const e of document.querySelectorAll('.verdict, .badge, .hint, .meta, .detail, .status, .desc, .stale-note, .top5 .p, button.primary, .warning')) {
    const a = lum(rgb(getComputedStyle(e).color));
    const b = lum(rgb(background(e)));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(e.className + ' "' + (e.textContent || '').slice(0, 30) + '": ' + ratio.toFixed(2));
  }
  return out;
})()`;

async function openPage(size: { width: number; height: number }): Promise<Page> {
  const page = await browser!.newPage({ viewport: size });
  page.on('request', (r) => {
    if (!r.url().startsWith(server!.url) && !r.url().startsWith('data:')) outside.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${size.width}px: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${size.width}px: ${e.message}`));
  await page.goto(server!.url + '/');
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

/** Waits for the opening view: its attack shown and its curve drawn. */
async function waitForOpeningView(page: Page): Promise<void> {
  await page.waitForFunction(() => Number(document.getElementById('chart')?.dataset.done ?? '0') >= 1, undefined, { timeout: 300_000 });
}

/** Runs the attack and waits for it; returns each result card's model and verdict. */
async function attack(page: Page): Promise<{ model: string; verdict: string }[]> {
  // An attack still running (releasing the slider starts one) ends first, so that the count below is of this one.
  await page.waitForSelector('#attack:not([disabled])', { timeout: 240_000 });
  const before = Number((await page.locator('#results').getAttribute('data-done')) ?? '0');
  await page.click('#attack');
  await page.waitForFunction((n) => Number(document.getElementById('results')?.dataset.done ?? '0') > n, before, { timeout: 240_000 });
  assert.equal(await page.locator('#status.error').count(), 0, `the page reported: ${await page.locator('#status').textContent()}`);
  return cards(page);
}

async function cards(page: Page): Promise<{ model: string; verdict: string }[]> {
  return page.locator('#results article.result').evaluateAll((els) => els.map((e) => ({ model: (e as HTMLElement).dataset.model ?? '', verdict: (e as HTMLElement).dataset.verdict ?? '' })));
}

/** Selects exactly these models. */
async function selectModels(page: Page, names: string[]): Promise<void> {
  for (const box of await page.locator('#models input[type=checkbox]').all()) {
    if ((await box.isChecked()) && !names.includes((await box.getAttribute('value')) ?? '')) await box.uncheck();
  }
  for (const n of names) await page.check(`#models input[value="${n}"]`);
}

/** Each result card shows its three images, loaded, and both top-5 lists with probabilities. */
async function checkCards(page: Page, models: string[]): Promise<{ clean: string[]; adversarial: string[] }[]> {
  assert.equal(await page.locator('#results article.result').count(), models.length, 'one result per model');
  const out = [];
  for (const m of models) {
    const card = page.locator(`#results article.result[data-model="${m}"]`);
    for (const kind of ['clean', 'perturbation', 'adversarial']) {
      const loaded = await card.locator(`img[data-testid="${kind}"]`).evaluate((e) => (e as HTMLImageElement).complete && (e as HTMLImageElement).naturalWidth > 0);
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

test('the page at 1280, 768 and 390 px: no sideways scroll, and the first screen tells the story', { timeout: 600_000 }, async () => {
  for (const size of SIZES) {
    const page = await openPage(size);
    if (size === SIZES[0]) {
      // Fresh cache: the models are still training, and Attack says so instead of letting a click meet a 503.
      assert.ok((await page.locator('#models .badge.training').count()) > 0, 'the demo models train at start-up');
      assert.equal(await page.locator('#attack').isDisabled(), true);
      assert.match((await page.locator('#attack').textContent()) ?? '', /^Waiting for .*training/);
    }
    await waitForOpeningView(page);
    assert.equal(await page.locator('#models .badge.failed').count(), 0, `a model failed:\n${server!.output()}`);
    const w = size.width;

    const scroll = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll.scroll <= scroll.client, `${w}px: the page scrolls sideways (${scroll.scroll} > ${scroll.client})`);
    for (const sel of ['#controls', '#label', '#eps', '#attack', '#results article.result', '#chart svg']) {
      const box = await page.locator(sel).first().boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= w + 0.5, `${w}px: ${sel} lies inside the screen (${JSON.stringify(box)})`);
    }

    // The opening view: the plain model fooled beside the hardened one that holds, said in words and announced.
    assert.deepEqual(await cards(page), [{ model: 'mnist-plain', verdict: 'fooled' }, { model: 'mnist-fast-at', verdict: 'held' }]);
    assert.equal(await page.locator('#story').isVisible(), true, `${w}px: the story line is shown`);
    assert.match((await page.locator('#story').textContent()) ?? '', /^PGD at eps \d+ changes what mnist-plain sees/);
    assert.match((await page.locator('#announce').textContent()) ?? '', /^mnist-plain: fooled: \d → \d\. mnist-fast-at: held: \d\.$/);
    assert.equal(await page.locator('#announce').getAttribute('aria-live'), 'polite');
    const firstScreen = w >= 768 ? ['mnist-plain', 'mnist-fast-at'] : ['mnist-plain'];
    for (const m of firstScreen) {
      const top = (await page.locator(`#results article.result[data-model="${m}"] .verdict`).boundingBox())!.y;
      assert.ok(top < size.height, `${w}px: ${m}'s verdict is on the first screen (at ${top.toFixed(0)} px)`);
    }
    // Every demo model's curve, the hardened one above the plain one at the largest eps, and the figures as a table.
    assert.deepEqual(await page.locator('#chart svg text.legend').allTextContents(), ['mnist-plain', 'mnist-adversarial', 'mnist-fast-at']);
    const rows = await page.locator('#chart-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
    assert.deepEqual(rows.map((r) => r[0]), ['mnist-plain', 'mnist-adversarial', 'mnist-fast-at']);
    const last = (r: string[]): number => Number.parseFloat(r.at(-1) ?? 'NaN');
    assert.ok(last(rows[2]!) > last(rows[0]!), `fast AT above plain at eps 64: ${rows.map((r) => r.at(-1))}`);
    // The chart's text stays readable at every width.
    const tick = await page.locator('#chart svg text.tick').first().evaluate((e) => (e as SVGGraphicsElement).getBoundingClientRect().height);
    assert.ok(tick >= 10, `${w}px: chart text ${tick.toFixed(1)} px high`);

    await page.screenshot({ path: join(ARTIFACTS, `serve-${w}.png`) });
    await page.screenshot({ path: join(ARTIFACTS, `serve-${w}-full.png`), fullPage: true });
    if (w < 1000) {
      // One column: the Attack button lies below the results; an attack started there brings them into view.
      await page.locator('#attack').scrollIntoViewIfNeeded();
      assert.ok((await page.locator('#results-section').boundingBox())!.y < 0, `${w}px: the results are scrolled away`);
      await attack(page);
      const top = (await page.locator('#results-section').boundingBox())!.y;
      assert.ok(top >= -1 && top < size.height / 2, `${w}px: the results are in view after the attack (top at ${top.toFixed(0)} px)`);
    }
    await page.close();
  }
});

test('keyboard and screen readers: focus order, one tab stop for the samples, Enter opens the file chooser, contrast', { timeout: 300_000 }, async () => {
  const page = await openPage(SIZES[0]);
  await waitForOpeningView(page);
  await page.locator('h1').click();
  const order: string[] = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => {
      const e = document.activeElement as HTMLElement;
      return e.id || `${e.getAttribute('role') ?? e.tagName.toLowerCase()}`;
    }));
  }
  const models = (await page.locator('#models input').evaluateAll((els) => els.map((e) => e.id)));
  assert.deepEqual(order.slice(0, 2 + models.length + 1), ['radio', 'drop', ...models, 'method'], `focus order: ${order}`);
  // The sample group is one tab stop, at the selected sample; arrows move the selection.
  await page.locator('#samples [aria-checked="true"]').focus();
  const selected = await page.locator('#samples [aria-checked="true"]').getAttribute('data-id');
  await page.keyboard.press('ArrowRight');
  const next = await page.locator('#samples [aria-checked="true"]').getAttribute('data-id');
  assert.notEqual(next, selected);
  assert.equal(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id), next);
  assert.equal(await page.locator('#samples [tabindex="0"]').count(), 1);
  assert.equal(await page.locator('#stale').isVisible(), true, 'the results are marked as being for earlier settings');
  // Enter and Space on the drop zone click the file input, which opens the chooser. Counted on the input
  // itself: whether the browser's chooser event reaches the test depends on interception timing.
  await page.evaluate("window.fileClicks = 0; document.getElementById('file').addEventListener('click', () => { window.fileClicks++; })");
  await page.locator('#drop').focus();
  await page.keyboard.press('Enter');
  await page.keyboard.press(' ');
  assert.equal(await page.evaluate('window.fileClicks'), 2, 'Enter and Space each open the file chooser');
  // Text and badges reach 4.5:1 against their background.
  const low = (await page.evaluate(CONTRAST)) as string[];
  assert.deepEqual(low, [], 'contrast below 4.5:1');
  await page.close();
});

test('honest state: refused files, model limits, photos on MNIST models, a queued attack, targets named; and the attacks of before', { timeout: 600_000 }, async () => {
  const page = await openPage(SIZES[0]);
  await waitForOpeningView(page);
  // The page offers every registered attack, by readable name.
  assert.deepEqual(await page.locator('#method option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)), [...METHOD_NAMES]);
  assert.ok((await page.locator('#method option[value="r-step-ll"]').textContent()) === 'R+Step l.l.');
  // Samples only of what some model classifies: no Fashion-MNIST model, no Fashion-MNIST samples.
  assert.equal(await page.locator('.sample-row.fashion-mnist').count(), 0);

  // A file that is not an image: refused, the previous image forgotten, the old results marked.
  const notImage = join(work, 'notes.png');
  writeFileSync(notImage, 'this is not an image');
  await page.setInputFiles('#file', notImage);
  await page.waitForSelector('#status.error');
  assert.match((await page.locator('#status').textContent()) ?? '', /notes\.png is not an image this page can read/);
  assert.equal(await page.locator('#drop img').count(), 0, 'no broken preview');
  assert.equal(await page.locator('#attack').isDisabled(), true, 'Attack cannot attack the previous image');
  assert.equal(await page.locator('#stale').isVisible(), true);
  // A file over the limit: the same.
  const big = join(work, 'big.png');
  writeFileSync(big, Buffer.alloc(9 * 1024 * 1024, 1));
  await page.setInputFiles('#file', big);
  assert.match((await page.locator('#status').textContent()) ?? '', /big\.png is 9\.0 MiB; the limit is 8 MiB/);
  assert.equal(await page.locator('#attack').isDisabled(), true);

  // Three models at most: the fourth box is disabled and the limit said, nothing unticked behind the person's back.
  const all = await page.locator('#models input').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
  if (all.length >= 4) {
    await selectModels(page, all.slice(0, 3));
    assert.equal(await page.locator(`#models input[value="${all[3]}"]`).isDisabled(), true);
    assert.match((await page.locator('#models-limit').textContent()) ?? '', /at most 3 at once/);
    assert.equal(await page.locator('#models input:checked').count(), 3);
  }

  // A photo on MNIST models: said on the model and on the result.
  await page.click('button.sample[data-id="photo-coffee"]');
  await selectModels(page, resnet ? ['resnet50', 'mnist-plain'] : ['mnist-plain']);
  assert.match((await page.locator('#model-mnist-plain-desc').textContent()) ?? '', /not made for photos/);
  // The target picker is there for targeted methods only; steps for iterative ones.
  assert.deepEqual([await page.locator('#target-field').isVisible(), await page.locator('#steps-field').isVisible()], [false, true], 'PGD: steps, no target');
  await page.selectOption('#method', 'fgsm');
  assert.deepEqual([await page.locator('#target-field').isVisible(), await page.locator('#iterative-fields').isVisible()], [false, false], 'FGSM: neither');
  await page.selectOption('#method', 'iter-ll');
  assert.equal(await page.locator('#target-field').isVisible(), true, 'iter. l.l.: a target');
  await page.locator('#eps').fill('4');
  await attack(page);
  assert.match((await page.locator('#results article[data-model="mnist-plain"] .warning').textContent()) ?? '', /was not made for this image/);
  if (resnet) {
    // A targeted method names its target, with its probability before and after.
    const detail = (await page.locator('#results article[data-model="resnet50"] .detail').textContent()) ?? '';
    assert.match(detail, /^target [^:]+: [\d.<%]+ → [\d.<%]+; /, detail);
    assert.match((await page.locator('#results article[data-model="resnet50"] .meta').textContent()) ?? '', /target .* \(least likely class\)/);
    // A chosen target (the target classes are offered when the chosen models share their classes).
    await selectModels(page, ['resnet50']);
    await page.selectOption('#target', '967');
    const [r] = (await attack(page)).filter((c) => c.model === 'resnet50');
    assert.ok(r);
    assert.match((await page.locator('#results article[data-model="resnet50"] .meta').textContent()) ?? '', /target espresso \(chosen\)/);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'serve-photo.png'), fullPage: true });

  // An attack queued behind a long curve says so, and reports the attack's own time apart from the wait.
  await page.click('button.sample[data-id^="mnist-"]');
  await selectModels(page, ['mnist-plain', 'mnist-fast-at']);
  await page.locator('#eps').fill('48');
  await page.waitForSelector('#attack:not([disabled])');
  await page.selectOption('#method', 'basic-iter');
  await page.fill('#curve-images', '100');
  const curveDone = Number((await page.locator('#chart').getAttribute('data-done')) ?? '0');
  await page.click('#curve');
  await page.selectOption('#method', 'fgsm');
  const before = Number((await page.locator('#results').getAttribute('data-done')) ?? '0');
  await page.click('#attack');
  assert.match((await page.locator('#status').textContent()) ?? '', /^Waiting for the accuracy curve to finish, then attacking/);
  await page.waitForFunction((n) => Number(document.getElementById('results')?.dataset.done ?? '0') > n, before, { timeout: 300_000 });
  assert.match((await page.locator('#status').textContent()) ?? '', /^Done: the attack took \d+ ms, after [\d.]+ s waiting behind other work/);
  await page.waitForFunction((n) => Number(document.getElementById('chart')?.dataset.done ?? '0') > n, curveDone, { timeout: 300_000 });
  await checkCards(page, ['mnist-plain', 'mnist-fast-at']);

  // Two methods compared on one chart: a line per model and method.
  await page.selectOption('#method', 'pgd');
  await page.selectOption('#curve-compare', 'fgsm');
  await page.click('#curve');
  await page.waitForFunction((n) => Number(document.getElementById('chart')?.dataset.done ?? '0') > n + 1, curveDone, { timeout: 300_000 });
  assert.equal(await page.locator('#curve-status.error').count(), 0, `${await page.locator('#curve-status').textContent()}`);
  assert.deepEqual(await page.locator('#chart svg text.legend').allTextContents(), ['mnist-plain, PGD', 'mnist-plain, FGSM', 'mnist-fast-at, PGD', 'mnist-fast-at, FGSM']);

  // Releasing the slider attacks again.
  const n = Number((await page.locator('#results').getAttribute('data-done')) ?? '0');
  await page.locator('#eps').focus();
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction((k) => Number(document.getElementById('results')?.dataset.done ?? '0') > k, n, { timeout: 120_000 });
  assert.match((await page.locator('#results article.result .meta').first().textContent()) ?? '', /PGD, eps 47/);

  // The cat photo on ResNet50 (the importer's preprocessing must get this right), and an upload of one's own.
  if (resnet) {
    await page.click('button.sample[data-id="photo-chelsea"]');
    await selectModels(page, ['resnet50']);
    await page.selectOption('#method', 'fgsm');
    await page.locator('#eps').fill('4');
    await attack(page);
    const [r] = await checkCards(page, ['resnet50']);
    assert.ok(r!.clean.slice(0, 3).some((c) => /cat|tabby|lynx/i.test(c)), `ResNet50's clean top-3 for the cat photo: ${r!.clean}`);
  }
  const coffee = join(SKIMAGE_DATA, 'coffee.png');
  const upload = existsSync(coffee) ? coffee : join(work, 'upload.png');
  if (upload !== coffee) await sharp({ create: { width: 80, height: 60, channels: 3, background: '#c08040' } }).png().toFile(upload);
  await page.setInputFiles('#file', upload);
  await page.waitForSelector('#drop.selected img');
  await attack(page);
  const [u] = await checkCards(page, resnet ? ['resnet50'] : ['mnist-plain', 'mnist-fast-at']);
  if (resnet && upload === coffee) assert.ok(u!.clean.slice(0, 3).some((c) => /espresso|cup|coffee/i.test(c)), `ResNet50's clean top-3 for the coffee photo: ${u!.clean}`);
  // The adversarial image can be downloaded.
  const href = await page.locator('#results a.download').first().getAttribute('href');
  assert.match(href ?? '', /^data:image\/png;base64,/);
  await page.close();

  assert.deepEqual(outside, [], 'the page fetched nothing from other origins');
  assert.deepEqual(consoleErrors, [], 'no errors (CSP violations included) in the console');
});
