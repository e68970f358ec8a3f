/**
 * The optimizer base: a list of parameters, per-parameter state tensors, a
 * learning rate that schedules may change between steps, and a state dict for
 * checkpoints. Updates run in place without recording gradients.
 */
import { type Tensor, noGrad, scope } from '../engine/index.js';

/** Serializable optimizer state: step count, hyper-parameters and state tensors by "index.name". */
export interface OptimizerState {
  kind: string;
  step: number;
  lr: number;
  tensors: Map<string, Tensor>;
}

export abstract class Optimizer {
  /** Number of steps taken. */
  stepCount = 0;
  protected readonly state: Map<string, Tensor>[];
  private rate: number;

  constructor(
    readonly params: Tensor[],
    lr: number,
    readonly kind: string,
  ) {
    if (params.length === 0) throw new Error(`${kind}: no parameters to optimise`);
    this.rate = checkRate(kind, lr);
    this.state = params.map(() => new Map());
  }

  /** The learning rate the next step uses. */
  get lr(): number {
    return this.rate;
  }

  set lr(value: number) {
    this.rate = checkRate(this.kind, value);
  }

  /** Applies one update from each parameter's `.grad`; parameters without a gradient are skipped. */
  step(): void {
    this.stepCount++;
    noGrad(() => {
      this.params.forEach((p, i) => {
        const g = p.grad;
        if (g === null) return;
        scope(() => this.update(p, g, this.state[i] as Map<string, Tensor>));
        g.dispose();
      });
    });
  }

  /** Clears the gradients of every parameter. */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** One parameter's update, in place. `state` persists across steps (tensors added there are kept). */
  protected abstract update(param: Tensor, grad: Tensor, state: Map<string, Tensor>): void;

  /** Gets a state tensor, creating it with `init` (kept out of scopes) on first use. */
  protected slot(state: Map<string, Tensor>, name: string, init: () => Tensor): Tensor {
    let t = state.get(name);
    if (!t) {
      t = init().keep();
      state.set(name, t);
    }
    return t;
  }

  /** The state for a checkpoint; its tensors are the optimizer's own (read, do not dispose). */
  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    this.state.forEach((s, i) => {
      for (const [k, v] of s) tensors.set(`${i}.${k}`, v);
    });
    return { kind: this.kind, step: this.stepCount, lr: this.lr, tensors };
  }

  /** Restores state saved by `stateDict()` from an optimizer of the same kind over the same parameters. */
  loadStateDict(s: OptimizerState): void {
    if (s.kind !== this.kind) throw new Error(`${this.kind}.loadStateDict: state was saved by ${s.kind}`);
    for (const [key, value] of s.tensors) {
      const m = /^(\d+)\.(.+)$/.exec(key);
      const index = m ? Number(m[1]) : -1;
      const param = this.params[index];
      if (!m || !param) throw new Error(`${this.kind}.loadStateDict: state '${key}' names no parameter of this optimizer`);
      if (value.shape.join(',') !== param.shape.join(',') && value.rank !== 0) {
        throw new Error(`${this.kind}.loadStateDict: '${key}' has shape [${value.shape}], parameter has [${param.shape}]`);
      }
      const own = this.state[index] as Map<string, Tensor>;
      own.get(m[2] as string)?.dispose();
      own.set(m[2] as string, value.clone().keep());
    }
    this.stepCount = s.step;
    this.lr = s.lr;
  }

  /** Frees the state tensors. */
  dispose(): void {
    for (const s of this.state) {
      for (const t of s.values()) t.dispose();
      s.clear();
    }
  }
}

function checkRate(kind: string, lr: number): number {
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`${kind}: learning rate must be a finite number >= 0, got ${lr}`);
  return lr;
}

/** Checks an optional hyper-parameter lies in [low, high]. */
export function checkRange(kind: string, name: string, v: number, low: number, high: number): number {
  if (!(v >= low && v <= high)) throw new Error(`${kind}: ${name} must be in [${low}, ${high}], got ${v}`);
  return v;
}
