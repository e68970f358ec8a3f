/**
 * The stack of open scopes. Every tensor made while a scope is open is
 * recorded in the innermost one, so `scope()` can free it on exit.
 */

/** What a scope needs to know of a tensor. */
export interface Tracked {
  /** The scope list that owns this tensor, or null when no scope owns it. */
  owner: Tracked[] | null;
  readonly isDisposed: boolean;
  dispose(): void;
}

const stack: Tracked[][] = [];

/** Records a new tensor in the innermost open scope, if any. */
export function track(t: Tracked): void {
  const top = stack[stack.length - 1];
  if (top) {
    top.push(t);
    t.owner = top;
  }
}

export function openScope(): Tracked[] {
  const list: Tracked[] = [];
  stack.push(list);
  return list;
}

/** Closes the innermost scope (which must be `list`) and returns its parent, if any. */
export function closeScope(list: Tracked[]): Tracked[] | undefined {
  const top = stack.pop();
  if (top !== list) throw new Error('advml internal error: scopes closed out of order');
  return stack[stack.length - 1];
}
