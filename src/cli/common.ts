/** Option parsers and loaders shared by the CLI commands. */
import * as A from '../attacks/index.js';
import { type Dataset, TensorDataset } from '../data/dataset.js';
import { centerCrop, loadFashionMnist, loadMnist, openImageFolder, resize } from '../data/index.js';
import { UsageError, numberOption } from './command.js';
import { type ConcretePrecision, checkPrecision, resolvePrecision } from '../engine/index.js';
import { type NumberSpec, makeDirectorySync, writeFileAtomicSync } from '../io/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Classifier, type PartialContract, loadModel as loadAnyModel, readClassNames } from '../models/index.js';

const DATASETS = {
  mnist: loadMnist,
  'fashion-mnist': loadFashionMnist,
} as const;

export type DatasetName = keyof typeof DATASETS;

/** Parses 'mnist:test' style dataset names. */
export function parseDataset(spec: string, command: string): { name: DatasetName; split: 'train' | 'test' } {
  const [name, split = 'test'] = spec.split(':');
  if (!name || !(name in DATASETS)) throw new UsageError(`advml ${command}: --data: unknown dataset '${name}' (known: ${Object.keys(DATASETS).join(', ')})`);
  if (split !== 'train' && split !== 'test') throw new UsageError(`advml ${command}: --data: split must be train or test, got '${split}'`);
  return { name: name as DatasetName, split };
}

/** Loads a named dataset split into memory as a TensorDataset. */
export function loadDataset(name: DatasetName, split: 'train' | 'test', limit?: number): TensorDataset {
  return TensorDataset.from(DATASETS[name](split, { limit }));
}

/** A dataset opened from a --data value, and how to release it. */
export interface OpenedData {
  dataset: Dataset;
  label: string;
  dispose(): void;
}

/**
 * Opens --data: 'mnist[:split]', 'fashion-mnist[:split]', or 'folder:PATH' (an
 * image folder, one sub-folder per class, resized and centre-cropped to the
 * model's input size).
 */
/**
 * Opens --data: 'mnist[:split]', 'fashion-mnist[:split]', or 'folder:PATH' (an
 * image folder, one sub-folder per class, resized and centre-cropped to the
 * model's input size). The dataset declares its range; models map it onto
 * theirs with Classifier.fromData.
 */
export async function openData(spec: string, command: string, opts: { limit?: number; imageSize?: [number, number] } = {}): Promise<OpenedData> {
  if (spec.startsWith('folder:')) {
    const root = spec.slice('folder:'.length);
    if (!root) throw new UsageError(`advml ${command}: --data folder: needs a path, e.g. folder:/data/images`);
    const [h, w] = opts.imageSize ?? [224, 224];
    const folder = await openImageFolder(root, { transforms: [resize(Math.min(h, w)), centerCrop([h, w])] });
    const dataset = opts.limit === undefined || opts.limit >= folder.length ? folder : firstN(folder, opts.limit);
    return { dataset, label: `folder:${root}`, dispose: () => {} };
  }
  const { name, split } = parseDataset(spec, command);
  const dataset = loadDataset(name, split, opts.limit);
  return { dataset, label: `${name}:${split}`, dispose: () => dataset.dispose() };
}

/** The first n samples of a dataset. */
function firstN(d: Dataset, n: number): Dataset {
  return { length: n, classNames: d.classNames, range: d.range, get: (indices, o) => d.get(indices, o) };
}

/** Parses a comma-separated eps list in pixel units (spaces after commas allowed); L2 and L1 eps may exceed 255. */
export function parseEpsList(text: string, command: string, norm: A.Norm = 'linf'): number[] {
  const parts = text.split(',');
  const max = A.maxEpsFor(norm);
  return parts.map((s, i) => numberOption(command, parts.length === 1 ? 'eps' : `eps value ${i + 1}`, s.trim(), { min: 0, max: Number.isFinite(max) ? max : undefined, unit: 'pixel values' }));
}

/** Parses --norm. */
export function parseNorm(text: string | undefined, command: string): A.Norm {
  if (text === undefined) return 'linf';
  if (text !== 'linf' && text !== 'l2' && text !== 'l1') throw new UsageError(`advml ${command}: --norm must be linf, l2 or l1, got '${text}'`);
  return text;
}

/** Reads --label: a label source, or undefined for each method's own. */
export function parseLabelSource(text: string | undefined, command: string): A.LabelSource | undefined {
  if (text === undefined) return undefined;
  try {
    return A.checkLabelSource(text);
  } catch (e) {
    throw new UsageError(`advml ${command}: --label: ${(e as Error).message}`);
  }
}

/** Parses a comma-separated method list ('all' for every method). */
export function parseMethods(text: string, command: string): A.MethodName[] {
  if (text === 'all') return [...A.METHOD_NAMES];
  const methods = text.split(',').map((m) => m.trim());
  for (const m of methods) {
    if (!(A.METHOD_NAMES as readonly string[]).includes(m)) {
      throw new UsageError(`advml ${command}: unknown method '${m}' (known: ${A.METHOD_NAMES.join(', ')})`);
    }
  }
  return methods as A.MethodName[];
}

/** The options of a foreign model's input contract, taken by every command that takes --model. */
export const CONTRACT_OPTIONS = {
  'input-range': { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  'input-size': { type: 'string' },
  'class-names': { type: 'string' },
  bgr: { type: 'boolean' },
} as const;

/** Help lines of {@link CONTRACT_OPTIONS}. */
export const CONTRACT_HELP = `  --model FILE      a checkpoint (.safetensors), a TorchScript .pt, an ONNX
                    .onnx, a TensorFlow.js model.json, or resnet50
  For a foreign model (.pt, .onnx, model.json), overriding its model card
  (NAME.card.json beside the file; docs/models.md):
  --input-range LO,HI  the range of the images it takes (default 0,1)
  --mean LIST       per-channel mean subtracted inside the model, input units
  --std LIST        per-channel std divided by after the mean
  --input-size H,W  image size (or one number for square images)
  --class-names F   class names, one a line (or a JSON array)
  --bgr             the model takes channels in BGR order`;

type ContractValues = { [K in keyof typeof CONTRACT_OPTIONS]?: (typeof CONTRACT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** A comma-separated list of numbers (`count` of them when given), each read strictly. */
function numberList(command: string, option: string, text: string, count?: number, spec: NumberSpec = {}): number[] {
  const parts = text.split(',');
  if (count !== undefined && parts.length !== count) {
    throw new UsageError(`advml ${command}: --${option} must be ${count} comma-separated numbers, got '${text}'`);
  }
  return parts.map((part, i) => numberOption(command, parts.length > 1 ? `${option} value ${i + 1}` : option, part, spec));
}

/** The input contract the options give (empty when none is given). */
export function parseContract(o: ContractValues, command: string): PartialContract {
  const c: PartialContract = {};
  if (o['input-range'] !== undefined) c.inputRange = numberList(command, 'input-range', o['input-range'], 2) as [number, number];
  if (o.mean !== undefined) c.mean = numberList(command, 'mean', o.mean);
  if (o.std !== undefined) c.std = numberList(command, 'std', o.std);
  if (o['input-size'] !== undefined) {
    const size = numberList(command, 'input-size', o['input-size'], undefined, { integer: true, min: 1, max: 65536 });
    if (size.length > 2) throw new UsageError(`advml ${command}: --input-size must be H,W or one size, got '${o['input-size']}'`);
    c.inputSize = [size[0] as number, (size[1] ?? size[0]) as number];
  }
  if (o['class-names'] !== undefined) c.classNames = readClassNames(o['class-names']);
  if (o.bgr) c.bgr = true;
  return c;
}

/** Loads --model with the contract options (see CONTRACT_HELP). */
export async function loadModel(spec: string, command: string, o: ContractValues = {}): Promise<Classifier> {
  return loadAnyModel(spec, parseContract(o, command));
}

/** Parses --precision and resolves 'auto' for the CPU, where the commands run: the one resolution of a command's precision. */
export function parsePrecision(text: string, command: string): ConcretePrecision {
  try {
    return resolvePrecision(checkPrecision(text, '--precision'));
  } catch (e) {
    throw new UsageError(`advml ${command}: ${(e as Error).message}`);
  }
}

/** One dataset's part of a report: a Markdown section headed `## ${title}...` and its figures. */
export interface ReportSection {
  key: string;
  markdown: string;
  json: unknown;
}

/**
 * Writes a report of per-dataset sections, FILE.md and FILE.json beside it
 * (each atomically), and prints the Markdown. The sections of an existing
 * report that this run did not produce are kept, so a run over one dataset
 * leaves the others' results in place. `titles` gives each key's heading, in
 * the order the sections appear.
 */
export function writeSectionedReport(out: string, header: string, sections: ReportSection[], titles: Record<string, string>): void {
  const jsonPath = out.replace(/\.md$/, '') + '.json';
  const kept = previousSections(out, jsonPath, titles);
  for (const r of sections) kept.set(r.key, r);
  const ordered = Object.keys(titles).flatMap((k) => (kept.has(k) ? [kept.get(k) as ReportSection] : []));
  const markdown = [header.trimEnd(), ...ordered.map((r) => r.markdown.trim())].join('\n\n') + '\n';
  makeDirectorySync(dirname(out));
  writeFileAtomicSync(jsonPath, JSON.stringify(Object.fromEntries(ordered.map((r) => [r.key, r.json])), null, 2) + '\n');
  writeFileAtomicSync(out, markdown);
  console.log(markdown);
  console.log(`wrote ${out}`);
}

/** The sections of the report at `out`, by key, with the figures its JSON holds for each (none when there is no report). */
function previousSections(out: string, jsonPath: string, titles: Record<string, string>): Map<string, ReportSection> {
  const found = new Map<string, ReportSection>();
  if (!existsSync(out)) return found;
  let json: Record<string, unknown> = {};
  if (existsSync(jsonPath)) {
    try {
      json = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${jsonPath}: not readable JSON (${(e as Error).message}); move it away to start the report afresh`);
    }
  }
  // A section runs from its '## ' heading to the next one.
  for (const chunk of readFileSync(out, 'utf8').split(/^(?=## )/m)) {
    const heading = chunk.split('\n', 1)[0] as string;
    const key = Object.keys(titles).find((k) => heading === `## ${titles[k]}` || heading.startsWith(`## ${titles[k]},`));
    if (key !== undefined) found.set(key, { key, markdown: chunk, json: json[key] });
  }
  return found;
}
