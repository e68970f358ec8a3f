/**
 * The catastrophic-overfitting guard of fast adversarial training. One-step
 * training can, within a few steps, reach a model whose single-step
 * adversarial accuracy climbs while its multi-step (PGD) accuracy falls to
 * near 0. The guard reads every held-out evaluation (which should measure PGD
 * accuracy: `--eval-method pgd`) and calls a collapse a fall of more than
 * `drop` (default 0.2, the threshold of fast AT's early stop) below the best
 * held-out robust accuracy so far. On a collapse it reports; with `stop` the
 * run also writes its checkpoint and ends; with `rollback` the run ends on the
 * weights of the last evaluation that was not a collapse (kept beside the
 * checkpoint as <name>.good.safetensors).
 */
import type { Json } from '../io/index.js';

export type GuardAction = 'report' | 'stop' | 'rollback';

export const GUARD_ACTIONS: readonly GuardAction[] = ['report', 'stop', 'rollback'];

export interface GuardConfig {
  /** Fall below the best held-out robust accuracy that counts as a collapse (default 0.2). */
  drop?: number;
  /** What a collapse does (default 'report'). */
  action?: GuardAction;
}

export interface GuardVerdict {
  step: number;
  robust: number;
  best: number;
  bestStep: number;
  collapsed: boolean;
}

export const DEFAULT_GUARD_DROP = 0.2;

export class OverfitGuard {
  readonly drop: number;
  readonly action: GuardAction;
  private best = -Infinity;
  private bestStep = -1;
  /** Every collapse seen, in order, including those before a resume. */
  private readonly seen: GuardVerdict[] = [];

  constructor(config: GuardConfig) {
    this.drop = config.drop ?? DEFAULT_GUARD_DROP;
    if (!(this.drop > 0 && this.drop <= 1)) throw new Error(`guard drop must be in (0, 1], got ${this.drop}`);
    this.action = config.action ?? 'report';
    if (!GUARD_ACTIONS.includes(this.action)) throw new Error(`guard action must be one of ${GUARD_ACTIONS.join(', ')}, got '${String(this.action)}'`);
  }

  /** Reads one held-out robust accuracy; a collapse does not lower the best. */
  check(step: number, robust: number): GuardVerdict {
    const collapsed = robust < this.best - this.drop;
    if (!collapsed && robust > this.best) {
      this.best = robust;
      this.bestStep = step;
    }
    const verdict = { step, robust, best: this.best, bestStep: this.bestStep, collapsed };
    if (collapsed) this.seen.push(verdict);
    return verdict;
  }

  get collapses(): readonly GuardVerdict[] {
    return this.seen;
  }

  /** What a checkpoint keeps, so a resumed run remembers the best so far. */
  state(): { [key: string]: Json } {
    const collapses = this.seen.map((v) => ({ step: v.step, robust: v.robust, best: v.best, bestStep: v.bestStep }));
    return { best: Number.isFinite(this.best) ? this.best : null, bestStep: this.bestStep, collapses };
  }

  restore(s: unknown): void {
    const o = (s ?? {}) as { best?: unknown; bestStep?: unknown; collapses?: unknown };
    if (typeof o.best === 'number') this.best = o.best;
    if (typeof o.bestStep === 'number') this.bestStep = o.bestStep;
    const isVerdict = (v: unknown): v is Omit<GuardVerdict, 'collapsed'> =>
      typeof v === 'object' && v !== null && ['step', 'robust', 'best', 'bestStep'].every((k) => typeof (v as Record<string, unknown>)[k] === 'number');
    this.seen.length = 0;
    if (Array.isArray(o.collapses)) for (const v of o.collapses) if (isVerdict(v)) this.seen.push({ ...v, collapsed: true });
  }
}
