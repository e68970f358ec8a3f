/**
 * Explicit memory management. `scope(fn)` frees every tensor made while `fn`
 * runs except those it returns, which pass to the enclosing scope. Scopes nest,
 * and an exception still frees what the scope made.
 */
import { Tensor } from './tensor.js';
import { closeScope, openScope, type Tracked } from './tracking.js';

/** Runs `fn`, then frees every tensor made inside it that `fn` does not return. */
export function scope<T>(fn: () => T): T {
  const list = openScope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(list);
    disposeAll(list, new Set());
    throw e;
  }
  const parent = closeScope(list);
  if (result instanceof Promise) {
    disposeAll(list, new Set());
    throw new Error('scope(fn): fn returned a Promise; scope() is synchronous: await outside it and open a scope in each synchronous part');
  }
  const returned = new Set<Tracked>();
  collectTensors(result, returned, 0);
  disposeAll(list, returned);
  // What was returned now belongs to the enclosing scope (or to no scope).
  for (const t of returned) {
    if (t.owner !== list) continue;
    t.owner = parent ?? null;
    parent?.push(t);
  }
  return result;
}

/** Frees each tensor in `tensors` (nested arrays and objects are searched). */
export function dispose(tensors: unknown): void {
  const found = new Set<Tracked>();
  collectTensors(tensors, found, 0);
  for (const t of found) t.dispose();
}

function disposeAll(list: Tracked[], except: Set<Tracked>): void {
  for (const t of list) {
    if (t.owner === list && !except.has(t) && !(t as Tensor).kept) t.dispose();
  }
}

/** Finds tensors in a returned value: a tensor, or arrays, maps and plain objects holding them. */
function collectTensors(x: unknown, out: Set<Tracked>, depth: number): void {
  if (depth > 32 || x === null || typeof x !== 'object') return;
  if (x instanceof Tensor) {
    out.add(x);
  } else if (Array.isArray(x)) {
    for (const v of x) collectTensors(v, out, depth + 1);
  } else if (x instanceof Map) {
    for (const v of x.values()) collectTensors(v, out, depth + 1);
  } else if (Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) collectTensors(v, out, depth + 1);
  }
}
