/**
 * Request parsing for `advml serve`: each field checked by the check the rest
 * of the toolkit uses (the attack registry, the label sources, the strict
 * number reader), its error turned into a 400 that names the field.
 */
import { MAX_ATTACK_STEPS, MAX_EPS, type LabelSource, type MethodName, attackSpec, attacks, checkLabelSource, isTargeted } from '../attacks/index.js';
import { describeNumber } from '../io/numbers.js';
import type { TestSet } from './api-types.js';
import { HttpError, numberField } from './http.js';

/** Most models one attack or one curve compares. */
export const MAX_MODELS = 3;

/** Most methods one curve compares. */
export const MAX_CURVE_METHODS = 3;

/** Runs a check of the toolkit; its error becomes a 400 with the same message. */
function badRequest<T>(check: () => T, suffix = ''): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, `${(e as Error).message}${suffix}`);
  }
}

/** A method name from the registry. */
export function methodField(v: unknown): MethodName {
  if (v === undefined || v === '') throw new HttpError(400, `method is required: one of ${attacks().map((a) => a.name).join(', ')}`);
  if (typeof v !== 'string') throw new HttpError(400, `method must be a method name, got ${JSON.stringify(v)}`);
  return badRequest(() => attackSpec(v).name);
}

/** A label source override; absent, empty or 'default': the method's own. */
export function labelField(v: unknown): LabelSource | undefined {
  if (v === undefined || v === '' || v === 'default') return undefined;
  return badRequest(() => checkLabelSource(v), ' (or default)');
}

/** The seed of the attack's random stream (default 0). */
export function seedField(v: unknown): number {
  return v === undefined || v === '' ? 0 : numberField(v, 'seed', { integer: true, min: 0, max: 2 ** 31 - 1 });
}

/** eps in pixel values, required. */
export function epsField(v: unknown): number {
  const spec = { min: 0, max: MAX_EPS, unit: 'pixel values' };
  if (v === undefined) throw new HttpError(400, `eps is required: ${describeNumber(spec)}`);
  return numberField(v, 'eps', spec);
}

/** An option of some methods only: refused, naming those methods, for the others. */
function onlyFor(method: MethodName, option: 'steps' | 'stepSize', field: string): void {
  if (attackSpec(method).options.includes(option)) return;
  const takers = attacks().filter((a) => a.options.includes(option)).map((a) => a.name);
  throw new HttpError(400, `${field} applies to ${takers.join(', ')}, not to ${method}`);
}

/** Steps of an iterative method, bounded: each is a forward and a backward pass per model. */
export function stepsField(method: MethodName, v: unknown): number | undefined {
  if (v === undefined || v === '') return undefined;
  onlyFor(method, 'steps', 'steps');
  return numberField(v, 'steps', { integer: true, min: 1, max: MAX_ATTACK_STEPS });
}

/** Step size of an iterative method that takes one, pixel values. */
export function stepSizeField(method: MethodName, v: unknown): number | undefined {
  if (v === undefined || v === '') return undefined;
  onlyFor(method, 'stepSize', 'stepSize');
  return numberField(v, 'stepSize', { greaterThan: 0, max: MAX_EPS, unit: 'pixel values' });
}

/** A targeted method's target class: an index below every chosen model's number of classes. */
export function targetField(method: MethodName, v: unknown, classes: number): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!isTargeted(method)) {
    const targeted = attacks().filter((a) => isTargeted(a.name)).map((a) => a.name);
    throw new HttpError(400, `target applies to the targeted methods (${targeted.join(', ')}), not to ${method}`);
  }
  return numberField(v, 'target', { integer: true, min: 0, max: classes - 1 });
}

/** Model names: 1 to `max`, each once. */
export function modelNames(v: unknown, field: string, max = MAX_MODELS): string[] {
  if (!Array.isArray(v) || v.some((n) => typeof n !== 'string')) throw new HttpError(400, `${field} must be a list of model names`);
  if (v.length < 1 || v.length > max) throw new HttpError(400, `give 1 to ${max} models (${field}), got ${v.length}`);
  if (new Set(v).size !== v.length) throw new HttpError(400, 'the same model is given twice');
  return v as string[];
}

/** The curve's methods: `methods` (a list) or `method` (one), 1 to MAX_CURVE_METHODS, each once. */
export function curveMethods(body: Record<string, unknown>): MethodName[] {
  if (body.methods !== undefined && body.method !== undefined) throw new HttpError(400, "give 'methods' or 'method', not both");
  if (body.methods === undefined) return [methodField(body.method)];
  const list = body.methods;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_CURVE_METHODS) throw new HttpError(400, `methods must be a list of 1 to ${MAX_CURVE_METHODS} method names`);
  if (new Set(list).size !== list.length) throw new HttpError(400, 'the same method is given twice');
  return list.map(methodField);
}

/** A test set name. */
export function datasetField(v: unknown): TestSet {
  if (v !== 'mnist' && v !== 'fashion-mnist') throw new HttpError(400, `dataset must be 'mnist' or 'fashion-mnist', got '${String(v)}'`);
  return v;
}

/** Refuses fields other than `known`, and repeats of those that take one value. */
export function checkFields(keys: Iterable<string>, known: readonly string[], count: (key: string) => number = () => 1, repeatable: readonly string[] = []): void {
  for (const key of new Set(keys)) {
    if (!known.includes(key)) throw new HttpError(400, `unknown field '${key}': expected ${known.join(', ')}`);
    if (!repeatable.includes(key) && count(key) > 1) throw new HttpError(400, `field '${key}' is given more than once`);
  }
}
