/**
 * The `advml serve` page: choose an image, models, method, eps and label
 * source (or target); see each model's answer before and after the attack
 * and the magnified perturbation; chart accuracy against eps on test images.
 * It opens on the view the server found (story.ts): a digit the plain model
 * gets wrong under PGD and the hardened one still gets right.
 */
import './style.css';
import { type AttackResponse, type AttackResultJson, type Config, type MethodInfo, type ModelState, type Prediction, type SampleInfo, type Story, getConfig, postAttack, postCurve, sampleUrl } from './api.js';
import { chartTable, lineChart } from './chart.js';
import { pct, readable, verdict } from './verdict.js';

const COLORS = ['#1f6fb4', '#c2410c', '#15803d', '#7e22ce'];
const DASHES = ['', '7 4', '2 3'];

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
};

type Choice = { kind: 'sample'; sample: SampleInfo } | { kind: 'file'; file: File; preview: string };

let config: Config;
let choice: Choice | null = null;
let chosenModels: string[] = [];
let epsTouched = false;
/** Whether the person changed anything yet: the opening view is applied only before that. */
let touched = false;
let attacking = false;
let measuring = false;
let lastCurve: { spec: Parameters<typeof lineChart>[0] } | null = null;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function setStatus(id: string, text: string, kind: 'info' | 'error' | 'busy' = 'info'): void {
  const e = $(id);
  e.textContent = text;
  e.className = `status ${kind}`;
}

const model = (name: string): ModelState | undefined => config.models.find((m) => m.name === name);
const method = (name: string): MethodInfo | undefined => config.methods.find((m) => m.name === name);
const currentMethod = (): MethodInfo => method($<HTMLSelectElement>('method').value) as MethodInfo;

/** Whether a model is made for an image: test images of its own datasets; photos for models of no dataset. */
function fits(m: ModelState, c: Choice | null): boolean {
  if (!c) return true;
  if (c.kind === 'file') return true;
  return c.sample.kind === 'photo' ? m.testSets.length === 0 : m.testSets.includes(c.sample.kind);
}

/** The person changed something: the results on screen no longer match the settings. */
function settingsChanged(): void {
  touched = true;
  if ($('results').childElementCount > 0) $('stale').hidden = false;
  updateAttackButton();
}

// ---- image choice ----

/** Samples no model can classify are not offered. */
function offered(s: SampleInfo): boolean {
  return config.models.some((m) => m.status !== 'failed' && (s.kind === 'photo' ? m.testSets.length === 0 : m.testSets.includes(s.kind)));
}

function sampleButtons(): HTMLButtonElement[] {
  return [...document.querySelectorAll<HTMLButtonElement>('#samples .sample')];
}

function renderSamples(): void {
  const box = $('samples');
  const keep = choice?.kind === 'sample' ? choice.sample.id : undefined;
  box.replaceChildren();
  const groups: [SampleInfo['kind'], string][] = [['mnist', 'MNIST test images'], ['fashion-mnist', 'Fashion-MNIST test images'], ['photo', 'Photos']];
  for (const [kind, title] of groups) {
    const list = config.samples.filter((s) => s.kind === kind && offered(s));
    if (list.length === 0) continue;
    const row = h('div', { class: `sample-row ${kind}` });
    for (const s of list) {
      const b = h('button', { type: 'button', role: 'radio', class: 'sample', 'data-id': s.id, title: s.title, 'aria-label': s.title, 'aria-checked': String(s.id === keep), tabindex: '-1' }, h('img', { src: sampleUrl(s.id), alt: '' }));
      b.addEventListener('click', () => {
        choose({ kind: 'sample', sample: s });
        settingsChanged();
      });
      row.append(b);
    }
    box.append(h('h3', {}, title), row);
  }
  rovingTabStop();
}

/** One tab stop for the whole group (the selected sample, else the first); arrows move between samples. */
function rovingTabStop(): void {
  const buttons = sampleButtons();
  const selected = buttons.find((b) => b.getAttribute('aria-checked') === 'true') ?? buttons[0];
  for (const b of buttons) b.tabIndex = b === selected ? 0 : -1;
}

function wireSampleKeys(): void {
  $('samples').addEventListener('keydown', (e) => {
    const keys: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    const step = keys[e.key];
    if (step === undefined && e.key !== 'Home' && e.key !== 'End') return;
    const buttons = sampleButtons();
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (at < 0) return;
    e.preventDefault();
    const next = e.key === 'Home' ? 0 : e.key === 'End' ? buttons.length - 1 : (at + (step as number) + buttons.length) % buttons.length;
    const b = buttons[next] as HTMLButtonElement;
    b.focus();
    b.click();
  });
}

function choose(c: Choice | null): void {
  choice = c;
  for (const b of sampleButtons()) b.setAttribute('aria-checked', String(c?.kind === 'sample' && b.dataset.id === c.sample.id));
  rovingTabStop();
  const drop = $('drop');
  drop.classList.toggle('selected', c?.kind === 'file');
  drop.querySelector('img')?.remove();
  if (c?.kind === 'file') {
    $('drop-text').textContent = `${c.file.name} (${Math.ceil(c.file.size / 1024)} KiB)`;
    drop.append(h('img', { src: c.preview, alt: `your image, ${c.file.name}` }));
  } else {
    $('drop-text').textContent = 'Drop an image here, or choose a file';
  }
  if (c?.kind === 'sample' && c.sample.kind !== 'photo' && config.curve.datasets.includes(c.sample.kind)) $<HTMLSelectElement>('curve-dataset').value = c.sample.kind;
  renderModels();
}

/** Refuses a file the page cannot use, and forgets the previous image so that Attack cannot quietly attack it. */
function refuseFile(message: string): void {
  choose(null);
  setStatus('status', message, 'error');
}

function takeFile(file: File | undefined): void {
  if (!file) return;
  settingsChanged();
  const limit = config.limits.maxUploadBytes;
  if (file.size > limit) return refuseFile(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; the limit is ${(limit / 1048576).toFixed(0)} MiB. Choose another image.`);
  const reader = new FileReader();
  reader.onerror = () => refuseFile(`Could not read ${file.name}. Choose another image.`);
  reader.onload = () => {
    const preview = String(reader.result);
    // The browser decodes it first: a file that is not an image is refused here, before any attack.
    const probe = new Image();
    probe.onload = () => {
      choose({ kind: 'file', file, preview });
      setStatus('status', '');
    };
    probe.onerror = () => refuseFile(`${file.name} is not an image this page can read (PNG, JPEG, WebP or GIF). Choose another image.`);
    probe.src = preview;
  };
  reader.readAsDataURL(file);
}

function wireDrop(): void {
  const drop = $('drop');
  const input = $<HTMLInputElement>('file');
  input.addEventListener('change', () => {
    takeFile(input.files?.[0]);
    input.value = '';
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    e.preventDefault();
    input.click();
  });
  for (const ev of ['dragenter', 'dragover']) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    takeFile((e as DragEvent).dataTransfer?.files[0]);
  });
}

// ---- models ----

function statusText(m: ModelState): string {
  if (m.status === 'training') return `training ${Math.round((m.progress ?? 0) * 100)}%`;
  if (m.status === 'failed') return 'failed';
  if (m.status === 'loading') return 'loading';
  const s = m.info?.inputShape;
  return s ? `${s[0] === 1 ? 'grey' : 'colour'} ${s[1]}×${s[2]}, ${m.info?.classes} classes` : 'ready';
}

function renderModels(): void {
  const box = $('models');
  const max = config.limits.maxModels;
  const full = chosenModels.length >= max;
  box.replaceChildren();
  for (const m of config.models) {
    const id = `model-${m.name}`;
    const input = h('input', { type: 'checkbox', value: m.name, name: 'model', id, 'aria-describedby': `${id}-desc` });
    input.checked = chosenModels.includes(m.name);
    input.disabled = m.status === 'failed' || (full && !input.checked);
    input.addEventListener('change', () => {
      chosenModels = input.checked ? [...chosenModels, m.name] : chosenModels.filter((n) => n !== m.name);
      renderModels();
      suggestEps();
      settingsChanged();
      document.getElementById(id)?.focus();
    });
    const notes = [m.error ?? m.description];
    if (m.status === 'ready' && !fits(m, choice)) notes.push(choice?.kind === 'sample' && choice.sample.kind === 'photo' ? 'not made for photos' : 'not made for this image');
    const badge = h('span', { class: `badge ${m.status}` }, statusText(m));
    box.append(h('label', { class: 'model', for: id }, input, h('span', { class: 'name' }, m.name), badge, h('span', { class: 'desc', id: `${id}-desc` }, notes.join(' · '))));
  }
  $('models-limit').textContent = full ? `(at most ${max} at once: untick one to choose another)` : `(1 to ${max})`;
  renderTargets();
  updateAttackButton();
}

/** Until the slider is moved, eps follows the models: 4 for colour photo models, 32 for MNIST-sized ones. */
function suggestEps(): void {
  if (epsTouched) return;
  const rgb = chosenModels.some((n) => model(n)?.info?.inputShape[0] === 3);
  setEps(rgb ? 4 : 32);
}

function setEps(v: number): void {
  $<HTMLInputElement>('eps').value = String(v);
  showEps();
}

function showEps(): void {
  const v = Number($<HTMLInputElement>('eps').value);
  $('eps-value').textContent = String(v);
  $('eps-note').textContent = `of 255 (${(v / 255).toFixed(3)} of the range)`;
}

/** The Attack button says what it waits for; it is enabled only when an attack can run. */
function updateAttackButton(): void {
  const button = $<HTMLButtonElement>('attack');
  const waiting = chosenModels.map(model).filter((m): m is ModelState => !!m && m.status !== 'ready');
  let text = 'Attack';
  if (attacking) text = measuring ? 'Waiting for the accuracy curve…' : 'Attacking…';
  else if (!choice) text = 'Choose an image first';
  else if (chosenModels.length === 0) text = 'Choose a model first';
  else if (waiting.length > 0) text = `Waiting for ${waiting.map((m) => `${m.name} (${statusText(m)})`).join(', ')}`;
  button.textContent = text;
  button.disabled = text !== 'Attack';
}

async function poll(): Promise<void> {
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const fresh = await getConfig();
      config.models = fresh.models;
      config.curve = fresh.curve;
      config.story = fresh.story;
      renderSamples();
      renderModels();
      renderCurveDatasets();
      suggestEps();
      const settled = config.models.every((m) => m.status === 'ready' || m.status === 'failed');
      if (settled && config.story.status !== 'pending') {
        if (config.story.status === 'found' && !touched) void openStory(config.story.story);
        return;
      }
    } catch {
      // The server may be restarting; keep polling.
    }
  }
}

// ---- method, label source, target, steps ----

function renderMethods(): void {
  const select = $<HTMLSelectElement>('method');
  for (const m of config.methods) select.append(h('option', { value: m.name }, m.title));
  select.value = method('pgd') ? 'pgd' : (config.methods[0]?.name ?? '');
  select.addEventListener('change', () => {
    updateMethodFields();
    settingsChanged();
  });
  for (const id of ['label', 'target', 'steps', 'step-size']) $(id).addEventListener('change', settingsChanged);
  updateMethodFields();
}

function sourceTitle(name: string): string {
  if (name === 'targets') return 'the most likely other classes';
  return config.labelSources.find((s) => s.name === name)?.title ?? name;
}

function updateMethodFields(): void {
  const m = currentMethod();
  $('method-summary').textContent = m.summary;
  const label = $<HTMLSelectElement>('label');
  const keep = label.value;
  const own = m.label === 'true' ? 'own: true class (predicted for photos)' : m.label === 'none' ? 'none (takes no label)' : `own: ${sourceTitle(m.label)}`;
  label.replaceChildren(h('option', { value: 'default' }, own), ...config.labelSources.map((s) => h('option', { value: s.name }, s.title)));
  label.value = keep || 'default';
  label.disabled = m.label === 'none' || m.label === 'targets';
  $('target-field').hidden = !m.targeted;
  $('iterative-fields').hidden = !m.steps && !m.stepSize;
  $('steps-field').hidden = !m.steps;
  $('step-size-field').hidden = !m.stepSize;
  const steps = $<HTMLInputElement>('steps');
  steps.max = String(config.limits.maxSteps);
  steps.placeholder = m.defaultSteps ? `default ${m.defaultSteps}` : "method's own";
  $<HTMLInputElement>('step-size').placeholder = "method's own";
  renderTargets();
}

/** Target classes: those of the chosen models (shared by all of them), offered for targeted methods. */
function renderTargets(): void {
  const select = $<HTMLSelectElement>('target');
  const keep = select.value;
  const infos = chosenModels.map((n) => model(n)?.info).filter((i) => i !== undefined);
  const names = infos[0]?.classNames ?? [];
  const shared = infos.every((i) => i.classes === names.length);
  const own = currentMethod().label;
  select.replaceChildren(h('option', { value: '' }, own === 'none' || own === 'targets' ? 'its own' : `as the label source says`));
  if (shared) names.forEach((n, i) => select.append(h('option', { value: String(i) }, `${i}: ${readable(n)}`)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : '';
}

// ---- attack ----

function top5List(preds: Prediction[], marks: { trueIndex?: number; targetIndex?: number }, testid: string): HTMLOListElement {
  const ol = h('ol', { class: 'top5', 'data-testid': testid });
  for (const p of preds) {
    const bar = h('span', { class: 'fill' });
    bar.style.width = `${Math.max(0.5, p.probability * 100)}%`;
    const tags = [p.index === marks.trueIndex ? 'true class' : '', p.index === marks.targetIndex ? 'target' : ''].filter(Boolean);
    const cls = h('span', { class: 'cls', title: readable(p.name) }, readable(p.name));
    const li = h('li', { class: [p.index === marks.trueIndex ? 'true-class' : '', p.index === marks.targetIndex ? 'target-class' : ''].join(' ').trim() }, cls, h('span', { class: 'bar', 'aria-hidden': 'true' }, bar), h('span', { class: 'p' }, pct(p.probability)));
    if (tags.length) li.setAttribute('aria-label', `${readable(p.name)} (${tags.join(', ')}): ${pct(p.probability)}`);
    ol.append(li);
  }
  return ol;
}

function figure(title: string, image: string, alt: string, testid: string, pixelated: boolean, ...extra: Node[]): HTMLElement {
  const img = h('img', { src: image, alt, 'data-testid': testid, class: pixelated ? 'pixelated' : '' });
  return h('figure', { class: testid }, h('figcaption', {}, title), img, ...extra);
}

function renderResult(r: AttackResultJson, response: AttackResponse): HTMLElement {
  const m = model(r.model);
  const small = (m?.info?.inputShape[1] ?? 224) < 64;
  const v = verdict(r);
  const mag = r.perturbation.magnification;
  const marks = { trueIndex: r.trueLabel?.index, targetIndex: r.target?.index };
  const label = r.target ? `target ${readable(r.target.name)} (${r.target.source === 'chosen' ? 'chosen' : sourceTitle(r.target.source)})` : `label: ${sourceTitle(r.labelSource)}`;
  const meta = [`${method(response.method)?.title ?? response.method}, eps ${response.eps}`, label, r.trueLabel ? `true class ${readable(r.trueLabel.name)}` : 'true class unknown', `${r.ms.toFixed(0)} ms`];
  const warning = m && !fits(m, choice) ? h('p', { class: 'warning' }, `${r.model} was not made for this image (it classifies ${m.info ? `${m.info.inputShape[1]}×${m.info.inputShape[2]} ${m.info.inputShape[0] === 1 ? 'grey' : 'colour'} images` : 'other images'}), so its classes mean little here.`) : '';
  const download = h('a', { class: 'download', href: r.adversarial.image, download: `adversarial-${r.model}-${response.method}-eps${response.eps}.png` }, 'Download the adversarial image');
  return h(
    'article',
    { class: `result ${v.kind}`, 'data-model': r.model, 'data-verdict': v.kind, 'aria-label': `${r.model}: ${v.text}` },
    h('h3', {}, h('span', { class: 'model-name' }, r.model), h('span', { class: `verdict ${v.kind}` }, v.text)),
    h('p', { class: 'detail' }, v.detail),
    h('p', { class: 'meta' }, meta.join(' · ')),
    warning,
    h(
      'div',
      { class: 'triptych' },
      figure('Clean', r.clean.image, `clean image as ${r.model} sees it`, 'clean', small),
      figure(mag > 0 ? `Change ×${mag.toFixed(1)}` : 'Change (none)', r.perturbation.image, `the perturbation, magnified ${mag.toFixed(1)} times`, 'perturbation', small),
      figure('Adversarial', r.adversarial.image, `adversarial image for ${r.model}`, 'adversarial', small),
    ),
    h('p', { class: 'norms' }, `L∞ ${r.perturbation.linf.toFixed(1)}, L2 ${r.perturbation.l2.toFixed(1)} pixel values; in the change image grey is none, lighter adds, darker removes.`),
    h('div', { class: 'predictions' }, h('div', {}, h('h4', {}, 'Before'), top5List(r.clean.top5, marks, 'clean-top5')), h('div', {}, h('h4', {}, 'After'), top5List(r.adversarial.top5, marks, 'adversarial-top5'))),
    download,
  );
}

function imageName(): string {
  if (!choice) return 'this image';
  if (choice.kind === 'file') return choice.file.name;
  return choice.sample.labelName ? `this ${readable(choice.sample.labelName)}` : choice.sample.title;
}

async function attack(): Promise<void> {
  if (!choice) return setStatus('status', 'Pick a sample image or drop one of your own first.', 'error');
  if (chosenModels.length === 0) return setStatus('status', 'Pick at least one model.', 'error');
  const m = currentMethod();
  const form = new FormData();
  if (choice.kind === 'sample') form.append('sample', choice.sample.id);
  else form.append('image', choice.file, choice.file.name);
  for (const name of chosenModels) form.append('model', name);
  form.append('method', m.name);
  form.append('eps', $<HTMLInputElement>('eps').value);
  form.append('label', $<HTMLSelectElement>('label').value);
  const steps = $<HTMLInputElement>('steps').value.trim();
  const stepSize = $<HTMLInputElement>('step-size').value.trim();
  const target = $<HTMLSelectElement>('target').value;
  if (m.steps && steps) form.append('steps', steps);
  if (m.stepSize && stepSize) form.append('stepSize', stepSize);
  if (m.targeted && target) form.append('target', target);
  attacking = true;
  updateAttackButton();
  setStatus('status', measuring ? 'Waiting for the accuracy curve to finish, then attacking…' : 'Attacking…', 'busy');
  const t0 = performance.now();
  try {
    const r = await postAttack(form);
    $('results').replaceChildren(...r.results.map((x) => renderResult(x, r)));
    $('stale').hidden = true;
    const attackMs = r.results.reduce((s, x) => s + x.ms, 0);
    const waited = r.queuedMs >= 500 ? `, after ${(r.queuedMs / 1000).toFixed(1)} s waiting behind other work` : '';
    setStatus('status', `Done: the attack took ${attackMs.toFixed(0)} ms${waited} (${((performance.now() - t0) / 1000).toFixed(1)} s in all).`);
    $('announce').textContent = r.results.map((x) => `${x.model}: ${verdict(x).text}.`).join(' ');
    revealResults();
  } catch (e) {
    // A failed attack leaves no results of earlier settings on screen.
    $('results').replaceChildren();
    $('stale').hidden = true;
    setStatus('status', (e as Error).message, 'error');
  } finally {
    attacking = false;
    updateAttackButton();
    // Counts finished attacks (for scripts driving the page).
    $('results').dataset.done = String(Number($('results').dataset.done ?? '0') + 1);
  }
}

/** On a narrow screen the results sit above the controls: bring them into view after an attack started there. */
function revealResults(): void {
  const top = $('results-section').getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.5) $('results-section').scrollIntoView({ block: 'start' });
}

// ---- accuracy against eps ----

const datasetTitle = (d: string): string => (d === 'mnist' ? 'MNIST' : d === 'fashion-mnist' ? 'Fashion-MNIST' : d);

function renderCurveDatasets(): void {
  const ds = $<HTMLSelectElement>('curve-dataset');
  const keep = ds.value;
  ds.replaceChildren(...config.curve.datasets.map((d) => h('option', { value: d }, datasetTitle(d))));
  if (config.curve.datasets.includes(keep as never)) ds.value = keep;
}

function renderCompare(): void {
  const select = $<HTMLSelectElement>('curve-compare');
  select.replaceChildren(h('option', { value: '' }, 'no other method'), ...config.methods.map((m) => h('option', { value: m.name }, m.title)));
  select.value = method('fgsm') ? 'fgsm' : '';
}

let drawnWidth = 0;

/** Draws the last curve at the chart box's width (again when that width changes, not its height). */
function drawChart(force = false): void {
  const box = $('chart');
  const width = box.clientWidth || 600;
  if (!lastCurve || (!force && width === drawnWidth)) return;
  drawnWidth = width;
  box.replaceChildren(lineChart({ ...lastCurve.spec, width }));
}

async function curve(models = chosenModels, methods?: string[]): Promise<void> {
  if (models.length === 0) return setStatus('curve-status', 'Pick at least one model.', 'error');
  const main = currentMethod().name;
  const compare = $<HTMLSelectElement>('curve-compare').value;
  const list = methods ?? [main, ...(compare && compare !== main ? [compare] : [])];
  const button = $<HTMLButtonElement>('curve');
  button.disabled = true;
  measuring = true;
  const dataset = $<HTMLSelectElement>('curve-dataset').value;
  const images = Number($<HTMLInputElement>('curve-images').value);
  setStatus('curve-status', `Attacking ${images} ${datasetTitle(dataset)} test images at ${config.curve.eps.length} eps values…`, 'busy');
  try {
    const label = $<HTMLSelectElement>('label').value;
    const r = await postCurve({ models, methods: list, label: label === 'default' ? undefined : label, dataset, images });
    const modelsDrawn = [...new Set(r.curves.map((c) => c.model))];
    const series = r.curves.map((c) => ({
      name: list.length > 1 ? `${c.model}, ${method(c.method)?.title ?? c.method}` : c.model,
      values: c.accuracy,
      color: COLORS[modelsDrawn.indexOf(c.model) % COLORS.length] as string,
      dash: DASHES[r.methods.indexOf(c.method) % DASHES.length] as string,
    }));
    lastCurve = { spec: { x: r.eps, series, xLabel: 'eps (pixel values of 255)', yLabel: 'top-1 accuracy', width: 0 } };
    drawChart(true);
    $('chart-table').replaceChildren(chartTable(lastCurve.spec));
    $('chart-table-box').hidden = false;
    const notes = [`${r.methods.map((x) => method(x)?.title ?? x).join(' and ')} on the first ${r.images} ${datasetTitle(r.dataset)} test images`];
    for (const s of r.skipped) notes.push(`${s.model} left out: ${s.reason}`);
    if (r.queuedMs >= 500) notes.push(`waited ${(r.queuedMs / 1000).toFixed(1)} s behind other work`);
    setStatus('curve-status', notes.join('. ') + '.');
  } catch (e) {
    setStatus('curve-status', (e as Error).message, 'error');
  } finally {
    button.disabled = false;
    measuring = false;
    updateAttackButton();
    $('chart').dataset.done = String(Number($('chart').dataset.done ?? '0') + 1);
  }
}

// ---- the opening view ----

/** Applies the server's opening view, attacks, and draws every demo model's curve. */
async function openStory(story: Story): Promise<void> {
  const sample = config.samples.find((s) => s.id === story.sample);
  if (!sample) return;
  choose({ kind: 'sample', sample });
  chosenModels = [...story.models];
  $<HTMLSelectElement>('method').value = story.method;
  updateMethodFields();
  setEps(story.eps);
  renderModels();
  $<HTMLSelectElement>('curve-dataset').value = story.dataset;
  $<HTMLSelectElement>('curve-compare').value = '';
  await attack();
  const shown = [...document.querySelectorAll<HTMLElement>('#results article.result')].map((e) => `${e.dataset.model} ${e.dataset.verdict}`);
  const [plain, hardened] = story.models;
  const line = $('story');
  line.textContent = `${method(story.method)?.title ?? story.method} at eps ${story.eps} changes what ${plain} sees in this ${readable(sample.labelName ?? '')}, and ${hardened}, trained on such attacks, still sees a ${readable(sample.labelName ?? '')}. Move the slider, or pick another image or method.`;
  line.hidden = !(shown.includes(`${plain} fooled`) && shown.includes(`${hardened} held`));
  await curve(story.curveModels, [story.method]);
}

// ---- start ----

async function start(): Promise<void> {
  try {
    config = await getConfig();
  } catch (e) {
    setStatus('status', `The server did not answer: ${(e as Error).message}`, 'error');
    return;
  }
  renderSamples();
  wireSampleKeys();
  wireDrop();
  renderMethods();
  chosenModels = config.models.filter((x) => x.status !== 'failed').slice(0, 2).map((m) => m.name);
  const eps = $<HTMLInputElement>('eps');
  eps.max = String(config.eps.max);
  eps.addEventListener('input', () => {
    epsTouched = true;
    showEps();
    settingsChanged();
  });
  // Re-attacks when the slider is released (keyboard changes end the same way), once an attack has been shown.
  eps.addEventListener('change', () => {
    if ($('results').childElementCount > 0 && !attacking && !$<HTMLButtonElement>('attack').disabled) void attack();
  });
  renderCurveDatasets();
  renderCompare();
  const n = $<HTMLInputElement>('curve-images');
  n.max = String(config.curve.maxImages);
  n.value = String(config.curve.defaultImages);
  const first = config.samples.find((s) => s.kind === 'mnist' && offered(s)) ?? config.samples.find(offered);
  choose(first ? { kind: 'sample', sample: first } : null);
  suggestEps();
  $('attack').addEventListener('click', () => void attack());
  $('curve').addEventListener('click', () => void curve());
  new ResizeObserver(() => drawChart()).observe($('chart'));
  document.body.dataset.ready = 'true';
  const settled = config.models.every((m) => m.status === 'ready' || m.status === 'failed');
  if (settled && config.story.status === 'found') void openStory(config.story.story);
  else if (!settled || config.story.status === 'pending') void poll();
}

void start();
