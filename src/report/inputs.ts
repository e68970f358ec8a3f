/**
 * Reading and checking the JSON files a report is made from: the output of
 * `advml eval --json` ({@link EvalInput}), a transfer matrix
 * (`{ cells: TransferCell[] }`, {@link TransferInput}) and a capacity or
 * activation sweep ({@link SweepInput}). Every fault is reported as a
 * {@link ReportInputError} that names the file and the JSON path of the bad
 * value (`runs/eval.json: cells[3].top1.low: expected a number, got "x"`).
 *
 * `JSON.stringify` writes NaN as `null`; interval fields accept `null` and read
 * it back as NaN (an accuracy over zero images, a transfer rate with no fooled
 * source images).
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Cell, EvalResult } from '../evaluation/evaluate.js';
import type { Interval } from '../evaluation/stats.js';
import type { SweepEntry, SweepResult } from '../evaluation/sweep-types.js';
import type { TransferCell } from '../evaluation/transfer.js';
import type { MethodName, Norm } from '../attacks/index.js';
import { type ProbeResult, audit } from '../evaluation/audit.js';
import { type MinimalSummary, type SuiteSummary, suiteRow } from '../evaluation/robustness.js';

/** A missing, unreadable or malformed report input; `file` is the path as given. */
export class ReportInputError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'ReportInputError';
  }
}

/** One evaluation grid with where it came from. */
export interface EvalInput {
  /** Short name used in titles and file names: the model file's base name, else the JSON file's. */
  name: string;
  /** The JSON file read (or a caller's label for in-memory input). */
  source: string;
  /** The checkpoint evaluated, when the file says (`advml eval --json` writes it). */
  model?: string;
  /** The dataset and split, e.g. 'mnist:test', when the file says. */
  data?: string;
  result: EvalResult;
}

/** A transfer matrix: every (method, eps, source, target) cell, plus optional metadata. */
export interface TransferInput {
  source: string;
  cells: TransferCell[];
  /** Dataset and split, when the file says. */
  data?: string;
  /** Number of sampled test images, when the file says. */
  samples?: number;
  /** Checkpoint of each model by name, when the file says (`advml transfer --json` writes it). */
  models?: Record<string, string>;
}

/** A capacity or activation study. */
export interface SweepInput {
  source: string;
  sweep: SweepResult;
}

/** Reads a whole JSON file, naming it in every error. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    if (statSync(file).isDirectory()) throw new ReportInputError(file, 'is a directory, expected a JSON file');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ReportInputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ReportInputError(file, code === 'ENOENT' ? 'no such file' : `cannot read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ReportInputError(file, `not valid JSON (${(e as Error).message})`);
  }
}

/** Checks the shape of parsed JSON, throwing {@link ReportInputError}s that name the file and path. */
class Checker {
  constructor(readonly file: string) {}

  fail(path: string, expected: string, got: unknown): never {
    const shown = got === undefined ? 'nothing (missing)' : JSON.stringify(got)?.slice(0, 60) ?? String(got);
    throw new ReportInputError(this.file, `${path || 'top level'}: expected ${expected}, got ${shown}`);
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    return v as Record<string, unknown>;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'an array', v);
    return v as unknown[];
  }

  number(v: unknown, path: string, opts: { nullIsNaN?: boolean; min?: number } = {}): number {
    if ((v === null || Number.isNaN(v)) && opts.nullIsNaN) return NaN;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'a number', v);
    const n = v as number;
    if (opts.min !== undefined && n < opts.min) this.fail(path, `a number >= ${opts.min}`, v);
    return n;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'a string', v);
    return v as string;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, 'true or false', v);
    return v as boolean;
  }

  optionalString(v: unknown, path: string): string | undefined {
    return v === undefined ? undefined : this.string(v, path);
  }

  /** An {@link Interval}: value, low, high (numbers or null); halfWidth optional. */
  interval(v: unknown, path: string): Interval {
    const o = this.object(v, path);
    const value = this.number(o.value, `${path}.value`, { nullIsNaN: true });
    const low = this.number(o.low, `${path}.low`, { nullIsNaN: true });
    const high = this.number(o.high, `${path}.high`, { nullIsNaN: true });
    const halfWidth = o.halfWidth === undefined ? (high - low) / 2 : this.number(o.halfWidth, `${path}.halfWidth`, { nullIsNaN: true });
    if (low > value + 1e-12 || high < value - 1e-12) this.fail(path, 'low <= value <= high', o);
    return { value, low, high, halfWidth };
  }

  cell(v: unknown, path: string): Cell {
    const o = this.object(v, path);
    const top1 = this.interval(o.top1, `${path}.top1`);
    const counts = o.counts === undefined ? undefined : this.object(o.counts, `${path}.counts`);
    return {
      method: this.string(o.method, `${path}.method`) as MethodName,
      eps: this.number(o.eps, `${path}.eps`, { min: 0 }),
      labelSource: this.string(o.labelSource, `${path}.labelSource`),
      top1,
      top5: this.interval(o.top5, `${path}.top5`),
      ratio: this.number(o.ratio, `${path}.ratio`, { nullIsNaN: true }),
      difference: o.difference === undefined ? { value: NaN, low: NaN, high: NaN, halfWidth: NaN } : this.interval(o.difference, `${path}.difference`),
      labelLeaking: this.boolean(o.labelLeaking, `${path}.labelLeaking`),
      // Older result files have only labelLeaking.
      aboveClean: o.aboveClean === undefined ? this.boolean(o.labelLeaking, `${path}.labelLeaking`) : this.boolean(o.aboveClean, `${path}.aboveClean`),
      tiedWithStrongest: this.boolean(o.tiedWithStrongest, `${path}.tiedWithStrongest`),
      counts: (counts as unknown as Cell['counts'] | undefined) ?? { n: 0, top1: 0, top5: 0, paired: { n: 0, up: 0, down: 0 } },
    };
  }

  evalResult(v: unknown, path: string): EvalResult {
    const o = this.object(v, path);
    const at = (k: string): string => (path ? `${path}.${k}` : k);
    const images = this.number(o.images, at('images'), { min: 0 });
    const c = this.object(o.clean, at('clean'));
    const top1 = this.interval(c.top1, at('clean.top1'));
    const top5 = this.interval(c.top5, at('clean.top5'));
    const cells = this.array(o.cells, at('cells')).map((x, i) => this.cell(x, `${at('cells')}[${i}]`));
    const seen = new Set<string>();
    cells.forEach((cell, i) => {
      const key = `${cell.method}@${cell.eps}`;
      if (seen.has(key)) throw new ReportInputError(this.file, `${at('cells')}[${i}]: method ${cell.method} at eps ${cell.eps} appears twice`);
      seen.add(key);
    });
    const counts = c.counts === undefined ? { n: images, top1: Math.round(top1.value * images), top5: Math.round(top5.value * images) } : (this.object(c.counts, at('clean.counts')) as EvalResult['clean']['counts']);
    const suite = o.suite === undefined ? undefined : this.suite(o.suite, at('suite'));
    const minimal = o.minimal === undefined ? [] : this.array(o.minimal, at('minimal')).map((m, i) => this.minimal(m, `${at('minimal')}[${i}]`));
    const probes = o.probes === undefined ? undefined : this.probes(o.probes, at('probes'));
    // The audit is recomputed from what it rests on, never taken from the file.
    return { images, clean: { top1, top5, counts }, cells, suite, minimal, probes, audit: audit(cells, suite, probes) };
  }

  private norm(v: unknown, path: string): Norm {
    const s = this.string(v, path);
    if (s !== 'linf' && s !== 'l2' && s !== 'l1') this.fail(path, 'linf, l2 or l1', v);
    return s as Norm;
  }

  suite(v: unknown, path: string): SuiteSummary {
    const o = this.object(v, path);
    const rows = this.array(o.rows, `${path}.rows`).map((r, i) => {
      const p = `${path}.rows[${i}]`;
      const row = this.object(r, p);
      const attacks = this.array(row.attacks, `${p}.attacks`).map((a, j) => {
        const q = `${p}.attacks[${j}]`;
        const t = this.object(a, q);
        return { attack: this.string(t.attack, `${q}.attack`), broken: this.number(t.broken, `${q}.broken`, { min: 0 }), attacked: this.number(t.attacked, `${q}.attacked`, { min: 0 }), seconds: this.number(t.seconds, `${q}.seconds`, { min: 0 }) };
      });
      const counts = { eps: this.number(row.eps, `${p}.eps`, { min: 0 }), n: this.number(row.n, `${p}.n`, { min: 0 }), robust: this.number(row.robust, `${p}.robust`, { min: 0 }), attacks };
      if (counts.robust > counts.n) this.fail(`${p}.robust`, `at most n (${counts.n})`, counts.robust);
      return suiteRow(counts);
    });
    return { name: this.string(o.name, `${path}.name`), norm: this.norm(o.norm, `${path}.norm`), attacks: this.array(o.attacks, `${path}.attacks`).map((a, i) => this.string(a, `${path}.attacks[${i}]`)), rows };
  }

  minimal(v: unknown, path: string): MinimalSummary {
    const o = this.object(v, path);
    // JSON writes Infinity (a failed search) and NaN (no image) as null.
    const size = (x: unknown, p: string): number => (x === null ? Number.POSITIVE_INFINITY : this.number(x, p, { min: 0 }));
    const quantiles = this.array(o.quantiles, `${path}.quantiles`).map((q, i) => {
      const e = this.object(q, `${path}.quantiles[${i}]`);
      return { q: this.number(e.q, `${path}.quantiles[${i}].q`, { min: 0 }), value: size(e.value, `${path}.quantiles[${i}].value`) };
    });
    const n = this.number(o.n, `${path}.n`, { min: 0 });
    return {
      method: this.string(o.method, `${path}.method`), norm: this.norm(o.norm, `${path}.norm`), n, found: this.number(o.found, `${path}.found`, { min: 0 }),
      median: n === 0 ? NaN : size(o.median, `${path}.median`), quantiles,
    };
  }

  probes(v: unknown, path: string): ProbeResult {
    const o = this.object(v, path);
    const num = (k: string, from: Record<string, unknown> = o, p = path): number => this.number(from[k], `${p}.${k}`, { min: 0 });
    const u = this.object(o.unbounded, `${path}.unbounded`);
    const m = o.moreSteps === null || o.moreSteps === undefined ? null : this.object(o.moreSteps, `${path}.moreSteps`);
    return {
      images: num('images'), outputDifference: num('outputDifference'), probabilityOutputs: this.boolean(o.probabilityOutputs, `${path}.probabilityOutputs`),
      zeroGradients: num('zeroGradients'), correct: num('correct'), classes: num('classes'),
      unbounded: { correct: num('correct', u, `${path}.unbounded`), n: num('n', u, `${path}.unbounded`) },
      moreSteps: m && { eps: num('eps', m, `${path}.moreSteps`), steps: num('steps', m, `${path}.moreSteps`), few: num('few', m, `${path}.moreSteps`), many: num('many', m, `${path}.moreSteps`), n: num('n', m, `${path}.moreSteps`) },
    };
  }

  transferCell(v: unknown, path: string): TransferCell {
    const o = this.object(v, path);
    return {
      method: this.string(o.method, `${path}.method`) as MethodName,
      eps: this.number(o.eps, `${path}.eps`, { min: 0 }),
      source: this.string(o.source, `${path}.source`),
      target: this.string(o.target, `${path}.target`),
      sourceFooled: this.number(o.sourceFooled, `${path}.sourceFooled`, { min: 0 }),
      transferred: this.number(o.transferred, `${path}.transferred`, { min: 0 }),
      targetErrors: this.number(o.targetErrors, `${path}.targetErrors`, { min: 0 }),
      n: this.number(o.n, `${path}.n`, { min: 0 }),
      transferRate: this.interval(o.transferRate, `${path}.transferRate`),
      errorRate: this.interval(o.errorRate, `${path}.errorRate`),
    };
  }

  sweepEntry(v: unknown, path: string): SweepEntry {
    const o = this.object(v, path);
    return {
      rho: this.number(o.rho, `${path}.rho`, { min: 0 }),
      activation: this.string(o.activation, `${path}.activation`),
      adversarial: this.boolean(o.adversarial, `${path}.adversarial`),
      checkpoint: o.checkpoint === undefined ? '' : this.string(o.checkpoint, `${path}.checkpoint`),
      parameters: o.parameters === undefined ? NaN : this.number(o.parameters, `${path}.parameters`, { min: 0 }),
      trainSeconds: o.trainSeconds === undefined ? NaN : this.number(o.trainSeconds, `${path}.trainSeconds`, { min: 0 }),
      result: this.evalResult(o.result, `${path}.result`),
    };
  }
}

const stem = (p: string): string => basename(p).replace(/\.[^.]*$/, '');

/**
 * Checks a parsed `advml eval --json` document (`{model?, data?, ...EvalResult}`);
 * `source` names it in errors and becomes {@link EvalInput.source}.
 */
export function parseEvalInput(value: unknown, source: string): EvalInput {
  const c = new Checker(source);
  const o = c.object(value, '');
  const model = c.optionalString(o.model, 'model');
  const data = c.optionalString(o.data, 'data');
  const result = c.evalResult(o, '');
  if (result.cells.length === 0) throw new ReportInputError(source, 'cells: the evaluation has no cells (no method was evaluated)');
  return { name: stem(model ?? source), source, model, data, result };
}

/** Reads and checks an `advml eval --json` file; see {@link parseEvalInput}. */
export function readEvalInput(file: string): EvalInput {
  return parseEvalInput(readJsonFile(file), file);
}

/**
 * Checks a parsed transfer document, as `advml transfer --json` writes it:
 * `{ cells: TransferCell[], data?, samples?, models?: {name: checkpoint}, ... }` (other keys are ignored).
 */
export function parseTransferInput(value: unknown, source: string): TransferInput {
  const c = new Checker(source);
  const o = c.object(value, '');
  const cells = c.array(o.cells, 'cells').map((x, i) => c.transferCell(x, `cells[${i}]`));
  if (cells.length === 0) throw new ReportInputError(source, 'cells: the transfer matrix has no cells');
  const seen = new Set<string>();
  cells.forEach((cell, i) => {
    const key = `${cell.method}@${cell.eps}:${cell.source}>${cell.target}`;
    if (seen.has(key)) throw new ReportInputError(source, `cells[${i}]: ${cell.method} eps ${cell.eps} from ${cell.source} to ${cell.target} appears twice`);
    seen.add(key);
  });
  return {
    source,
    cells,
    data: c.optionalString(o.data, 'data'),
    samples: o.samples === undefined ? undefined : c.number(o.samples, 'samples', { min: 0 }),
    models: o.models === undefined ? undefined : Object.fromEntries(Object.entries(c.object(o.models, 'models')).map(([k, v]) => [k, c.string(v, `models.${k}`)])),
  };
}

/** Reads and checks a transfer file; see {@link parseTransferInput}. */
export function readTransferInput(file: string): TransferInput {
  return parseTransferInput(readJsonFile(file), file);
}

/** Checks a parsed {@link SweepResult} (study 'capacity' or 'activation', at least one entry). */
export function parseSweepInput(value: unknown, source: string): SweepInput {
  const c = new Checker(source);
  const o = c.object(value, '');
  const study = c.string(o.study, 'study');
  if (study !== 'capacity' && study !== 'activation') c.fail('study', "'capacity' or 'activation'", study);
  const entries = c.array(o.entries, 'entries').map((x, i) => c.sweepEntry(x, `entries[${i}]`));
  if (entries.length === 0) throw new ReportInputError(source, 'entries: the sweep has no entries');
  const sweep: SweepResult = {
    preset: o.preset === undefined ? '' : c.string(o.preset, 'preset'),
    study: study as SweepResult['study'],
    methods: o.methods === undefined ? [] : c.array(o.methods, 'methods').map((m, i) => c.string(m, `methods[${i}]`)),
    eps: o.eps === undefined ? [] : c.array(o.eps, 'eps').map((e, i) => c.number(e, `eps[${i}]`, { min: 0 })),
    entries,
  };
  return { source, sweep };
}

/** Reads and checks a sweep file; see {@link parseSweepInput}. */
export function readSweepInput(file: string): SweepInput {
  return parseSweepInput(readJsonFile(file), file);
}
