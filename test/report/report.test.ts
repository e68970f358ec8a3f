import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import {
  type AccuracyDatum, type CapacityDatum, type ReportOutput, type TransferDatum, type ActivationDatum, type ExampleDatum,
  ReportInputError, accuracySpec, activationSpec, buildReport, capacitySpec, chartFontFiles, decodeImage, exampleGridSpec, inlineSvg,
  loadExampleGrids, parseEvalInput, parseFontAdvances, parseSweepInput, parseTransferInput, rasterToPng, readAttackInput, readEvalInput,
  readSweepInput, readTransferInput, renderSvg, transferSpec, upscale,
} from '../../src/report/index.js';
import { report } from '../../src/cli/report.js';
import { UsageError } from '../../src/cli/command.js';
import * as F from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'advml-report-'));
const files = {
  plain: join(dir, 'plain.json'),
  leaking: join(dir, 'leaking.json'),
  transfer: join(dir, 'transfer.json'),
  capacity: join(dir, 'capacity.json'),
  activation: join(dir, 'activation.json'),
  attack: join(dir, 'attack'),
};
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const pngSize = (b: Uint8Array): [number, number] => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return [v.getUint32(16), v.getUint32(20)];
};
const svgSize = (svg: string): [number, number] => {
  const m = /^<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  assert.ok(m, 'svg has width and height');
  return [Number(m[1]), Number(m[2])];
};

let built: ReportOutput;
const warnings: string[] = [];

before(async () => {
  writeFileSync(files.plain, JSON.stringify(F.plainEval(), null, 2));
  writeFileSync(files.leaking, JSON.stringify(F.leakingEval(), null, 2));
  // As `advml transfer --json` writes it: NaN rates become null.
  writeFileSync(files.transfer, JSON.stringify({ data: 'mnist:test', models: { plain: 'p.safetensors', adv: 'a.safetensors', wide: 'w.safetensors' }, samples: 200, seed: 0, cells: F.transferCells() }));
  writeFileSync(files.capacity, JSON.stringify(F.capacitySweep()));
  writeFileSync(files.activation, JSON.stringify(F.activationSweep()));
  F.writeAttackDir(files.attack, 4);
  built = await buildReport(
    {
      evals: [readEvalInput(files.plain), readEvalInput(files.leaking)],
      transfers: [readTransferInput(files.transfer)],
      sweeps: [readSweepInput(files.capacity), readSweepInput(files.activation)],
      attacks: [readAttackInput(files.attack)],
    },
    join(dir, 'out'),
    { pngScale: 1, onWarning: (w) => warnings.push(w) },
  );
});

test('buildReport writes index.html and one PNG per chart, without chart warnings', () => {
  assert.ok(existsSync(join(dir, 'out', 'index.html')));
  assert.deepEqual(warnings, []);
  const sections = new Set(built.figures.map((f) => f.section));
  assert.deepEqual([...sections].sort(), ['accuracy', 'activation', 'capacity', 'examples', 'transfer']);
  // 2 evals, 2 methods x 2 eps of transfer, 2 capacity methods, 1 activation chart, 2 eps of examples.
  assert.equal(built.figures.length, 2 + 4 + 2 + 1 + 2);
  const pngs = readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.png')).sort();
  assert.deepEqual(pngs, built.figures.map((f) => f.png).sort());
  for (const f of built.figures) assert.ok(existsSync(join(dir, 'out', f.png.replace(/\.png$/, '.vl.json'))), `${f.id}: spec file`);
});

test('the page is self-contained: no external URL, no script, every chart embedded as SVG', () => {
  const html = readFileSync(built.html, 'utf8');
  assert.doesNotMatch(html, /https?:\/\//i, 'no http(s) URL anywhere');
  assert.doesNotMatch(html, /<script|<link|<iframe|@import/i);
  for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) {
    const url = m[1] as string;
    assert.ok(url.startsWith('data:') || url.startsWith('#') || /^[\w.-]+\.png$/.test(url), `reference ${url.slice(0, 40)} stays inside the page or its folder`);
  }
  for (const f of built.figures) {
    const at = html.indexOf(`<figure id="${f.id}">`);
    assert.ok(at >= 0, `${f.id} has a figure`);
    const end = html.indexOf('</figure>', at);
    const block = html.slice(at, end);
    assert.match(block, /<svg role="img" aria-label="[^"]+"/, `${f.id} embeds its SVG`);
    assert.ok(block.includes(`href="${f.png}"`), `${f.id} links its PNG`);
  }
  assert.equal(html.match(/<svg\b/g)?.length, built.figures.length);
  // Explanations of what the numbers mean.
  for (const phrase of ['A ratio above 1', 'Label leaking', 'Transfer rate', 'Error rate', 'rho']) assert.ok(html.includes(phrase), phrase);
  // Leaking cells are highlighted in the table of the leaking model.
  assert.equal(html.match(/<tr class="leak">/g)?.length, 3);
  // Each evaluation's gradient-masking audit, recomputed from its cells: the leaking model's fires label-leaking.
  assert.ok(html.includes('Gradient-masking audit: flagged'), 'the leaking model is flagged');
  assert.ok(/<tr class="fired"><td>label-leaking<\/td>/.test(html), 'label-leaking fires in the audit table');
  // Ids of different charts cannot collide.
  const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length, 'every id on the page is unique');
});

test('PNG files have the PNG signature and the size of their SVG times the scale', async () => {
  for (const f of built.figures) {
    const png = readFileSync(join(dir, 'out', f.png));
    assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE, f.png);
    const [w, h] = pngSize(png);
    assert.ok(w >= 300 && w <= 4000 && h >= 150 && h <= 4000, `${f.png}: ${w}x${h}`);
  }
  const spec = built.figures[0]?.spec;
  assert.ok(spec);
  const svg = await renderSvg(spec);
  const [sw, sh] = svgSize(svg);
  const [pw, ph] = pngSize(readFileSync(join(dir, 'out', built.figures[0]?.png as string)));
  assert.deepEqual([pw, ph], [Math.ceil(sw), Math.ceil(sh)]);
});

test('accuracySpec holds every method and eps with its value and 95% bounds, the clean reference, and the leaking flags', () => {
  const input = parseEvalInput(F.leakingEval(), 'leaking.json');
  const spec = accuracySpec(input) as { data: { values: AccuracyDatum[] } };
  const values = spec.data.values;
  const r = input.result;
  for (const panel of ['top-1', 'top-5'] as const) {
    const key = panel === 'top-1' ? 'top1' : 'top5';
    const clean = values.filter((v) => v.kind === 'clean' && v.panel === panel);
    assert.equal(clean.length, 1);
    assert.deepEqual([clean[0]?.value, clean[0]?.low, clean[0]?.high], [r.clean[key].value, r.clean[key].low, r.clean[key].high]);
    assert.equal(clean[0]?.series, 'clean (no attack)');
    for (const c of r.cells) {
      const rows = values.filter((v) => v.kind === 'attack' && v.panel === panel && v.method === c.method && v.eps === c.eps);
      assert.equal(rows.length, 1, `${panel} ${c.method}@${c.eps}`);
      const row = rows[0] as AccuracyDatum;
      assert.deepEqual([row.value, row.low, row.high], [c[key].value, c[key].low, c[key].high]);
      assert.equal(row.series, `${c.method} (label: ${c.labelSource})`, 'the legend names the label source');
      assert.equal(row.labelLeaking, panel === 'top-1' && c.labelLeaking);
    }
  }
  // The fixture leaks for fgsm at eps 4, 8 and 16 (adversarial above clean beyond the interval), not at 2.
  assert.deepEqual(values.filter((v) => v.labelLeaking).map((v) => `${v.method}@${v.eps}`), ['fgsm@4', 'fgsm@8', 'fgsm@16']);
  assert.equal(values.length, 2 * (1 + r.cells.length));
});

test('the rendered accuracy chart shows the legend with label sources and marks label leaking', async () => {
  const svg = await renderSvg(accuracySpec(parseEvalInput(F.leakingEval(), 'leaking.json')));
  assert.ok(svg.includes('fgsm (label: true)'));
  assert.ok(svg.includes('iter-ll (label: leastLikely)'));
  assert.equal(svg.match(/>label leaking</g)?.length, 3);
  const plain = await renderSvg(accuracySpec(parseEvalInput(F.plainEval(), 'plain.json')));
  assert.ok(!plain.includes('>label leaking<'));
});

test('transferSpec: both rates of every source x target cell, counts, and n/a where the source was never fooled', () => {
  const cells = F.transferCells();
  const spec = transferSpec(cells, 'fgsm', 4) as { data: { values: TransferDatum[] } };
  const values = spec.data.values;
  assert.equal(values.length, 2 * 9);
  for (const c of cells.filter((x) => x.method === 'fgsm' && x.eps === 4)) {
    const t = values.find((v) => v.metric === 'transfer rate' && v.source === c.source && v.target === c.target) as TransferDatum;
    const e = values.find((v) => v.metric === 'error rate' && v.source === c.source && v.target === c.target) as TransferDatum;
    assert.equal(t.counts, `${c.transferred}/${c.sourceFooled}`);
    assert.equal(e.counts, `${c.targetErrors}/${c.n}`);
    assert.equal(e.value, c.errorRate.value);
    if (c.sourceFooled === 0) {
      assert.equal(t.value, null);
      assert.equal(t.text, 'n/a');
    } else {
      assert.equal(t.value, c.transferRate.value);
      assert.equal(t.low, c.transferRate.low);
    }
  }
  assert.throws(() => transferSpec(cells, 'fgsm', 3), /no cells for method fgsm at eps 3/);
});

test('capacitySpec: clean, adversarial and ratio against rho for each training regime and eps; log2 axis', () => {
  const sweep = F.capacitySweep();
  const spec = capacitySpec(sweep, 'step-ll') as unknown as { data: { values: CapacityDatum[] }; vconcat: { hconcat: { layer: { encoding?: { x?: { scale?: { type?: string } } } }[] }[] }[] };
  const values = spec.data.values;
  for (const entry of sweep.entries) {
    const series = entry.adversarial ? 'adversarial training' : 'plain training';
    for (const c of entry.result.cells.filter((x) => x.method === 'step-ll')) {
      const at = (kind: string): CapacityDatum[] => values.filter((v) => v.kind === kind && v.rho === entry.rho && v.eps === c.eps && v.series === series);
      assert.equal(at('adversarial')[0]?.value, c.top1.value);
      assert.equal(at('adversarial')[0]?.high, c.top1.high);
      assert.equal(at('ratio')[0]?.value, c.ratio);
      assert.equal(at('clean')[0]?.value, entry.result.clean.top1.value);
    }
  }
  assert.equal(spec.vconcat.length, 3, 'one row per eps');
  assert.equal(spec.vconcat[0]?.hconcat[0]?.layer[1]?.encoding?.x?.scale?.type, 'log');
  assert.throws(() => capacitySpec(sweep, 'pgd'), /no entry of the sweep evaluated method pgd/);
});

test('activationSpec: a panel for clean and for each method and eps, a bar per activation and training regime', () => {
  const spec = activationSpec(F.activationSweep()) as { data: { values: ActivationDatum[] } };
  const measures = [...new Set(spec.data.values.map((v) => v.measure))];
  assert.deepEqual(measures, ['clean', 'fgsm, eps 8']);
  assert.equal(spec.data.values.length, 3 * 2 * 2);
  const tanhAdv = F.activationSweep().entries.find((e) => e.activation === 'tanh' && e.adversarial);
  const bar = spec.data.values.find((v) => v.measure === 'fgsm, eps 8' && v.activation === 'tanh' && v.series === 'adversarial training');
  assert.equal(bar?.value, tanhAdv?.result.cells[0]?.top1.value);
});

test('example grids: clean, perturbation magnified around mid-gray, adversarial, with captions and wrong predictions flagged', async () => {
  const grids = await loadExampleGrids(readAttackInput(files.attack), { count: 3 });
  assert.deepEqual(grids.map((g) => `${g.method}@${g.eps}:${g.examples.length}`), ['fgsm@8:3', 'fgsm@32:3']);
  const g = grids[1];
  assert.ok(g);
  // The checkerboard adds +-32 (clipped at 0 and 255): the largest |delta| is 32, magnified by floor(127 / 32) = 3.
  assert.equal(g.magnification, 3);
  const e = g.examples[0];
  assert.ok(e);
  for (let i = 0; i < e.clean.pixels.length; i++) {
    const delta: number = (e.adversarial.pixels[i] as number) - (e.clean.pixels[i] as number);
    assert.equal(e.perturbation.pixels[i], Math.max(0, Math.min(255, 128 + 3 * delta)));
  }
  const spec = exampleGridSpec(g) as { data: { values: ExampleDatum[] } };
  assert.equal(spec.data.values.length, 3 * 3);
  assert.deepEqual([...new Set(spec.data.values.map((v) => v.row))], ['clean', 'perturbation x3', 'adversarial']);
  const adv = spec.data.values.filter((v) => v.row === 'adversarial');
  assert.deepEqual(adv.map((v) => v.caption), ['pred 3', 'pred 4', 'pred 5']);
  assert.ok(adv.every((v) => v.wrong));
  assert.ok(spec.data.values.every((v) => v.url.startsWith('data:image/png;base64,')));
});

test('example grids read clean images from the dataset the summary names when the folder has none', async () => {
  const { loadMnist } = await import('../../src/data/mnist.js');
  const mnist = loadMnist('test', { limit: 2 });
  const pixels = Uint8Array.from(mnist.images.dataSync() as Float32Array, (v) => Math.round(v * 255));
  const labels = Array.from(mnist.labels.dataSync() as BigInt64Array, Number);
  mnist.images.dispose();
  mnist.labels.dispose();
  const d = join(dir, 'attack-mnist');
  mkdirSync(join(d, 'fgsm', 'eps-8'), { recursive: true });
  const perImage = [0, 1].map((i) => {
    const clean = pixels.subarray(i * 784, (i + 1) * 784);
    const adv = clean.map((v, j) => Math.max(0, Math.min(255, v + (j % 3 === 0 ? 8 : -8))));
    const file = join('fgsm', 'eps-8', `${i}.png`);
    writeFileSync(join(d, file), rasterToPng({ width: 28, height: 28, channels: 1, pixels: adv }));
    return { index: i, label: labels[i], clean: labels[i], adversarial: 3, linf: 8, l2: 100, file };
  });
  writeFileSync(join(d, 'summary.json'), JSON.stringify({ model: 'm', data: 'mnist:test', images: 2, cleanAccuracy: 1, results: [{ method: 'fgsm', eps: 8, labelSource: 'true', accuracy: 0, perImage }] }));
  const [grid] = await loadExampleGrids(readAttackInput(d));
  assert.ok(grid);
  assert.deepEqual([...(grid.examples[1]?.clean.pixels ?? [])], [...pixels.subarray(784, 1568)]);
  assert.equal(grid.classNames?.[7], '7');
  // A summary that names no dataset and has no clean files cannot be shown: the error says so and names it.
  writeFileSync(join(d, 'summary.json'), JSON.stringify({ images: 2, cleanAccuracy: 1, results: [{ method: 'fgsm', eps: 8, labelSource: 'true', accuracy: 0, perImage }] }));
  await assert.rejects(loadExampleGrids(readAttackInput(d)), (e: Error) => e instanceof ReportInputError && e.message.includes(join(d, 'summary.json')) && /names no dataset/.test(e.message));
});

test('malformed or missing inputs give errors that name the file and the bad value', () => {
  const bad = (name: string, content: string): string => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  const named = (file: string, pattern: RegExp) => (e: unknown): boolean => {
    assert.ok(e instanceof ReportInputError, String(e));
    assert.equal(e.file, file);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.message, pattern);
    return true;
  };
  const missing = join(dir, 'nope.json');
  assert.throws(() => readEvalInput(missing), named(missing, /no such file/));
  const syntax = bad('syntax.json', '{"images": 3,');
  assert.throws(() => readEvalInput(syntax), named(syntax, /not valid JSON/));
  const e1 = F.plainEval() as unknown as { cells: { top1: { low: unknown } }[] };
  (e1.cells[1] as { top1: { low: unknown } }).top1.low = 'x';
  const wrongType = bad('wrong-type.json', JSON.stringify(e1));
  assert.throws(() => readEvalInput(wrongType), named(wrongType, /cells\[1\]\.top1\.low: expected a number, got "x"/));
  const noCells = bad('no-cells.json', JSON.stringify({ ...F.plainEval(), cells: undefined }));
  assert.throws(() => readEvalInput(noCells), named(noCells, /cells: expected an array, got nothing \(missing\)/));
  const twice = F.plainEval();
  twice.cells.push(twice.cells[0] as (typeof twice.cells)[number]);
  const dup = bad('dup.json', JSON.stringify(twice));
  assert.throws(() => readEvalInput(dup), named(dup, /method fgsm at eps 2 appears twice/));
  const notTransfer = bad('not-transfer.json', JSON.stringify(F.plainEval()));
  assert.throws(() => readTransferInput(notTransfer), named(notTransfer, /cells\[0\]\.source: expected a string/));
  const badStudy = bad('bad-study.json', JSON.stringify({ ...F.capacitySweep(), study: 'depth' }));
  assert.throws(() => readSweepInput(badStudy), named(badStudy, /study: expected 'capacity' or 'activation', got "depth"/));
  const badEntry = F.capacitySweep() as unknown as { entries: { rho: unknown }[] };
  (badEntry.entries[2] as { rho: unknown }).rho = -1;
  const badRho = bad('bad-rho.json', JSON.stringify(badEntry));
  assert.throws(() => readSweepInput(badRho), named(badRho, /entries\[2\]\.rho: expected a number >= 0, got -1/));
  const emptyDir = join(dir, 'empty-attack');
  mkdirSync(emptyDir, { recursive: true });
  assert.throws(() => readAttackInput(emptyDir), named(join(emptyDir, 'summary.json'), /no such file/));
  assert.throws(() => parseTransferInput({ cells: [] }, 't.json'), named('t.json', /no cells/));
  assert.throws(() => parseSweepInput([], 's.json'), named('s.json', /top level: expected an object/));
});

test('a PNG named by an attack summary but missing is reported by its path', async () => {
  const d = join(dir, 'attack-missing');
  F.writeAttackDir(d, 2);
  rmSync(join(d, 'fgsm', 'eps-32', '1.png'));
  const named = (e: Error): boolean => e instanceof ReportInputError && e.message.startsWith(join(d, 'fgsm', 'eps-32', '1.png')) && /no such file/.test(e.message);
  await assert.rejects(loadExampleGrids(readAttackInput(d)), named);
  const out = join(dir, 'attack-missing-out');
  await assert.rejects(buildReport({ evals: [readEvalInput(files.plain)], attacks: [readAttackInput(d)] }, out), named);
  assert.ok(!existsSync(out), 'nothing is written');
});

test('advml report: options are checked, unknown ones rejected, and bad files named', async () => {
  const out = join(dir, 'cli-out');
  await assert.rejects(report.run(['--eval', files.plain, '--bogus', 'x', '--out', out]), (e: Error) => e instanceof UsageError && /bogus/.test(e.message));
  await assert.rejects(report.run(['--eval', files.plain]), (e: Error) => e instanceof UsageError && /--out is required/.test(e.message));
  await assert.rejects(report.run(['--out', out]), (e: Error) => e instanceof UsageError && /at least one of --eval/.test(e.message));
  await assert.rejects(report.run(['--eval', files.plain, '--out', out, '--examples', '0']), (e: Error) => e instanceof UsageError && /--examples/.test(e.message));
  await assert.rejects(report.run(['--eval', files.plain, '--sweep', join(dir, 'missing.json'), '--out', out]), (e: Error) => e instanceof ReportInputError && e.message === `${join(dir, 'missing.json')}: no such file`);
  assert.ok(!existsSync(join(out, 'index.html')), 'nothing is written when an input is bad');
  const log = console.log;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    assert.equal(await report.run(['--eval', files.plain, '--out', out, '--title', 'Plain <model>', '--scale', '1']), 0);
  } finally {
    console.log = log;
  }
  assert.match(lines[0] as string, /wrote .*index\.html and 1 chart/);
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  assert.ok(html.includes('<title>Plain &lt;model&gt;</title>'), 'the title is escaped');
  assert.ok(existsSync(join(out, 'accuracy-plain.png')));
});

test('advml report through the command line: a malformed file exits 1 with a message naming it', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const badFile = join(dir, 'cli-bad.json');
  writeFileSync(badFile, JSON.stringify({ images: 3, clean: { top1: 0.5 } }));
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'report', '--eval', badFile, '--out', join(dir, 'cli-bad')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), `advml report: ${badFile}: clean.top1: expected an object, got 0.5`);
});

test('raster helpers: PNG round trip through an independent decoder, nearest-neighbour upscaling', async () => {
  const gray = { width: 3, height: 2, channels: 1 as const, pixels: Uint8Array.of(0, 50, 100, 150, 200, 255) };
  const back = await decodeImage(rasterToPng(gray), 'gray.png');
  assert.deepEqual(back, gray);
  const rgb = { width: 2, height: 1, channels: 3 as const, pixels: Uint8Array.of(255, 0, 0, 0, 128, 255) };
  assert.deepEqual(await decodeImage(rasterToPng(rgb), 'rgb.png'), rgb);
  assert.deepEqual([...upscale(gray, 2).pixels.subarray(0, 6)], [0, 0, 50, 50, 100, 100]);
  assert.deepEqual([...upscale(gray, 2).pixels.subarray(6, 12)], [0, 0, 50, 50, 100, 100]);
  await assert.rejects(decodeImage(Uint8Array.of(1, 2, 3), 'junk.png'), /junk\.png: cannot decode/);
});

test('text is measured with the font resvg draws with (against resvg bounding boxes)', () => {
  const [regular, bold] = chartFontFiles();
  assert.ok(regular && bold, 'the dejavu-fonts-ttf package is installed');
  const fonts = { normal: parseFontAdvances(readFileSync(regular)), bold: parseFontAdvances(readFileSync(bold)) };
  for (const [text, weight] of [['Accuracy under attack: plain', 'normal'], ['method (label source)', 'bold'], ['fgsm (label: leastLikely) 0.5 x 16', 'normal']] as const) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="60"><text x="10" y="40" font-family="DejaVu Sans" font-size="20" font-weight="${weight}">${text}</text></svg>`;
    const ink = new Resvg(svg, { font: { loadSystemFonts: false, fontFiles: chartFontFiles(), defaultFontFamily: 'DejaVu Sans' } }).getBBox()?.width ?? NaN;
    const advance = fonts[weight].width(text) * 20;
    // The ink box omits the side bearings of the first and last glyph: a few pixels at 20px.
    assert.ok(advance >= ink - 1 && advance - ink < 6, `${text}: measured ${advance}, ink ${ink}`);
  }
});

test('inlineSvg drops namespace URLs and prefixes ids and their references', () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="1"><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"><use xlink:href="#clip1"/></g></svg>';
  const out = inlineSvg(svg, 'fig', 'A "chart"');
  assert.equal(out, '<svg role="img" aria-label="A &quot;chart&quot;" width="1"><defs><clipPath id="fig-clip1"><rect/></clipPath></defs><g clip-path="url(#fig-clip1)"><use xlink:href="#fig-clip1"/></g></svg>');
});
