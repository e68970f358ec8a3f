/**
 * The `advml serve` page: choose an image, models, method, eps and label
 * source; show each model's clean and adversarial top-5 and the magnified
 * perturbation; chart accuracy against eps on test images.
 */
import './style.css';
import { type AttackResponse, type AttackResult, type Config, type ModelState, type Prediction, getConfig, postAttack, postCurve, sampleUrl } from './api.js';
import { lineChart } from './chart.js';

const COLORS = ['#1f6fb4', '#d1495b', '#2e9e5b', '#8a5cc2'];
const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
};

type Choice = { kind: 'sample'; id: string } | { kind: 'file'; file: File; preview: string };

let config: Config;
let choice: Choice | null = null;
const chosenModels: string[] = [];
let epsTouched = false;

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

// ---- image choice ----

function renderSamples(): void {
  const box = $('samples');
  box.replaceChildren();
  const groups: [string, string][] = [['photo', 'Photos'], ['mnist', 'MNIST test images'], ['fashion-mnist', 'Fashion-MNIST test images']];
  for (const [kind, title] of groups) {
    const list = config.samples.filter((s) => s.kind === kind);
    if (list.length === 0) continue;
    const row = h('div', { class: `sample-row ${kind}` });
    for (const s of list) {
      const b = h('button', { type: 'button', class: 'sample', 'data-id': s.id, title: s.title, 'aria-label': s.title }, h('img', { src: sampleUrl(s.id), alt: s.title }));
      b.addEventListener('click', () => choose({ kind: 'sample', id: s.id }));
      row.append(b);
    }
    box.append(h('h3', {}, title), row);
  }
}

function choose(c: Choice): void {
  choice = c;
  for (const b of document.querySelectorAll<HTMLButtonElement>('.sample')) b.classList.toggle('selected', c.kind === 'sample' && b.dataset.id === c.id);
  const drop = $('drop');
  drop.classList.toggle('selected', c.kind === 'file');
  drop.querySelector('img')?.remove();
  if (c.kind === 'file') {
    $('drop-text').textContent = `${c.file.name} (${Math.ceil(c.file.size / 1024)} KiB)`;
    drop.append(h('img', { src: c.preview, alt: 'your image' }));
  } else {
    $('drop-text').textContent = 'Drop an image here, or click to choose a file';
    const s = config.samples.find((x) => x.id === c.id);
    if (s && s.kind !== 'photo' && config.curve.datasets.includes(s.kind)) ($('curve-dataset') as HTMLSelectElement).value = s.kind;
  }
}

function takeFile(file: File | undefined): void {
  if (!file) return;
  if (file.size > config.limits.maxUploadBytes) {
    setStatus('status', `${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; the limit is ${(config.limits.maxUploadBytes / 1048576).toFixed(0)} MiB`, 'error');
    return;
  }
  const reader = new FileReader();
  reader.onload = () => choose({ kind: 'file', file, preview: String(reader.result) });
  reader.onerror = () => setStatus('status', `could not read ${file.name}`, 'error');
  reader.readAsDataURL(file);
}

function wireDrop(): void {
  const drop = $('drop');
  const input = $<HTMLInputElement>('file');
  input.addEventListener('change', () => takeFile(input.files?.[0]));
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
  return s ? `${s[0] === 1 ? 'grey' : 'RGB'} ${s[1]}x${s[2]}, ${m.info?.classes} classes` : 'ready';
}

function renderModels(): void {
  const box = $('models');
  box.replaceChildren();
  for (const m of config.models) {
    const input = h('input', { type: 'checkbox', value: m.name, name: 'model' });
    input.checked = chosenModels.includes(m.name);
    input.disabled = m.status === 'failed';
    input.addEventListener('change', () => {
      const i = chosenModels.indexOf(m.name);
      if (input.checked && i < 0) {
        chosenModels.push(m.name);
        if (chosenModels.length > 2) chosenModels.shift();
      } else if (!input.checked && i >= 0) chosenModels.splice(i, 1);
      renderModels();
      suggestEps();
    });
    const badge = h('span', { class: `badge ${m.status}` }, statusText(m));
    box.append(h('label', { class: 'model', title: m.error ?? m.description }, input, h('span', { class: 'name' }, m.name), badge, h('span', { class: 'desc' }, m.error ?? m.description)));
  }
}

/** Until the slider is moved, eps follows the models: 4 for photo models, 32 for MNIST-sized ones. */
function suggestEps(): void {
  if (epsTouched) return;
  const rgb = chosenModels.some((n) => config.models.find((m) => m.name === n)?.info?.inputShape[0] === 3);
  const slider = $<HTMLInputElement>('eps');
  slider.value = String(rgb ? 4 : 32);
  showEps();
}

function showEps(): void {
  const v = Number($<HTMLInputElement>('eps').value);
  $('eps-value').textContent = String(v);
  $('eps-note').textContent = `of 255 (${(v / 255).toFixed(3)} of the range)`;
}

async function poll(): Promise<void> {
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const fresh = await getConfig();
      config.models = fresh.models;
      renderModels();
      suggestEps();
      if (config.models.every((m) => m.status === 'ready' || m.status === 'failed')) return;
    } catch {
      // The server may be restarting; keep polling.
    }
  }
}

// ---- method and label ----

function renderMethods(): void {
  const method = $<HTMLSelectElement>('method');
  for (const m of config.methods) method.append(h('option', { value: m }, m));
  method.value = config.methods.includes('fgsm') ? 'fgsm' : (config.methods[0] ?? '');
  const label = $<HTMLSelectElement>('label');
  const update = (): void => {
    const own = config.methodLabels[method.value] ?? 'none';
    const keep = label.value;
    const text = own === 'true' ? "method's own (true; predicted for photos)" : `method's own (${own})`;
    label.replaceChildren(h('option', { value: 'default' }, text), ...config.labelSources.map((s) => h('option', { value: s }, s)));
    label.value = keep || 'default';
    label.disabled = own === 'none';
  };
  method.addEventListener('change', update);
  update();
}

// ---- attack ----

function pct(p: number): string {
  return p >= 0.9995 ? '100%' : p < 0.001 ? '<0.1%' : `${(p * 100).toFixed(1)}%`;
}

function top5List(preds: Prediction[], trueIndex: number | undefined, testid: string): HTMLOListElement {
  const ol = h('ol', { class: 'top5', 'data-testid': testid });
  for (const p of preds) {
    const bar = h('span', { class: 'fill' });
    bar.style.width = `${Math.max(0.5, p.probability * 100)}%`;
    const li = h('li', { class: p.index === trueIndex ? 'true-class' : '' }, h('span', { class: 'cls', title: p.name }, p.name), h('span', { class: 'bar' }, bar), h('span', { class: 'p' }, pct(p.probability)));
    ol.append(li);
  }
  return ol;
}

function figure(title: string, image: string, alt: string, testid: string, pixelated: boolean, ...extra: Node[]): HTMLElement {
  const img = h('img', { src: image, alt, 'data-testid': testid, class: pixelated ? 'pixelated' : '' });
  return h('figure', { class: testid }, h('figcaption', {}, title), img, ...extra);
}

function renderResult(r: AttackResult, response: AttackResponse): HTMLElement {
  const model = config.models.find((m) => m.name === r.model);
  const small = (model?.info?.inputShape[1] ?? 224) < 64;
  const before = r.clean.top5[0];
  const after = r.adversarial.top5[0];
  const changed = before && after && before.index !== after.index;
  const verdict = h('span', { class: `verdict ${changed ? 'fooled' : 'held'}` }, changed ? `fooled: ${before.name} → ${after.name}` : `unchanged: ${before?.name ?? '?'}`);
  const meta = [`label source: ${r.labelSource}`, r.trueLabel ? `true class: ${r.trueLabel.name}` : 'true class unknown', `${r.ms.toFixed(0)} ms`].join(' · ');
  const trueIndex = r.trueLabel?.index;
  const mag = r.perturbation.magnification;
  return h(
    'article',
    { class: 'result', 'data-model': r.model },
    h('h3', {}, r.model, ' ', verdict),
    h('p', { class: 'meta' }, `${response.method}, eps ${response.eps} · ${meta}`),
    h(
      'div',
      { class: 'triptych' },
      figure('Clean', r.clean.image, `clean image as ${r.model} sees it`, 'clean', small, top5List(r.clean.top5, trueIndex, 'clean-top5')),
      figure(
        mag > 0 ? `Perturbation ×${mag.toFixed(1)}` : 'Perturbation (none)',
        r.perturbation.image,
        'perturbation, magnified',
        'perturbation',
        small,
        h('p', { class: 'norms' }, `L∞ ${r.perturbation.linf.toFixed(1)}, L2 ${r.perturbation.l2.toFixed(1)} pixel values`),
        h('p', { class: 'hint' }, 'grey is no change; lighter adds, darker removes'),
      ),
      figure('Adversarial', r.adversarial.image, `adversarial image for ${r.model}`, 'adversarial', small, top5List(r.adversarial.top5, trueIndex, 'adversarial-top5')),
    ),
  );
}

async function attack(): Promise<void> {
  if (!choice) return setStatus('status', 'Pick a sample image or drop one of your own first.', 'error');
  if (chosenModels.length === 0) return setStatus('status', 'Pick one or two models.', 'error');
  const form = new FormData();
  if (choice.kind === 'sample') form.append('sample', choice.id);
  else form.append('image', choice.file, choice.file.name);
  for (const m of chosenModels) form.append('model', m);
  form.append('method', $<HTMLSelectElement>('method').value);
  form.append('eps', $<HTMLInputElement>('eps').value);
  form.append('label', $<HTMLSelectElement>('label').value);
  const button = $<HTMLButtonElement>('attack');
  button.disabled = true;
  setStatus('status', 'Attacking…', 'busy');
  const t0 = performance.now();
  try {
    const r = await postAttack(form);
    $('results').replaceChildren(...r.results.map((x) => renderResult(x, r)));
    setStatus('status', `Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`);
  } catch (e) {
    setStatus('status', (e as Error).message, 'error');
  } finally {
    button.disabled = false;
    // Counts finished attacks (for scripts driving the page).
    $('results').dataset.done = String(Number($('results').dataset.done ?? '0') + 1);
  }
}

// ---- accuracy against eps ----

async function curve(): Promise<void> {
  if (chosenModels.length === 0) return setStatus('curve-status', 'Pick one or two models.', 'error');
  const button = $<HTMLButtonElement>('curve');
  button.disabled = true;
  const dataset = $<HTMLSelectElement>('curve-dataset').value;
  const images = Number($<HTMLInputElement>('curve-images').value);
  setStatus('curve-status', `Attacking ${images} ${dataset} test images at ${config.curve.eps.length} eps values…`, 'busy');
  try {
    const label = $<HTMLSelectElement>('label').value;
    const r = await postCurve({ models: chosenModels, method: $<HTMLSelectElement>('method').value, label: label === 'default' ? undefined : label, dataset, images });
    const chart = lineChart({
      x: r.eps,
      series: r.curves.map((c, i) => ({ name: c.model, values: c.accuracy, color: COLORS[i % COLORS.length] as string })),
      xLabel: 'eps (pixel values of 255)',
      yLabel: 'top-1 accuracy',
    });
    $('chart').replaceChildren(chart);
    const notes = [`${r.method} on the first ${r.images} ${r.dataset} test images; label source ${r.curves.map((c) => c.labelSource)[0] ?? '-'}`];
    for (const s of r.skipped) notes.push(`${s.model} left out: ${s.reason}`);
    setStatus('curve-status', notes.join('. ') + '.');
  } catch (e) {
    setStatus('curve-status', (e as Error).message, 'error');
  } finally {
    button.disabled = false;
  }
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
  wireDrop();
  renderMethods();
  for (const m of config.models.filter((x) => x.status !== 'failed').slice(0, 2)) chosenModels.push(m.name);
  renderModels();
  const eps = $<HTMLInputElement>('eps');
  eps.max = String(config.eps.max);
  eps.addEventListener('input', () => {
    epsTouched = true;
    showEps();
  });
  suggestEps();
  const ds = $<HTMLSelectElement>('curve-dataset');
  for (const d of config.curve.datasets) ds.append(h('option', { value: d }, d));
  const n = $<HTMLInputElement>('curve-images');
  n.max = String(config.curve.maxImages);
  n.value = String(config.curve.defaultImages);
  const first = config.samples.find((s) => s.kind === 'mnist') ?? config.samples[0];
  if (first) choose({ kind: 'sample', id: first.id });
  $('attack').addEventListener('click', () => void attack());
  $('curve').addEventListener('click', () => void curve());
  document.body.dataset.ready = 'true';
  if (config.models.some((m) => m.status !== 'ready' && m.status !== 'failed')) void poll();
}

void start();
