/**
 * What an attack did to one model, in words: fooled (the top class changed,
 * or a targeted method reached its target), held, held but weakened (the
 * top class kept with far less confidence), or wrong before the attack.
 * Pure, so that it is tested without a browser.
 */
import type { AttackResultJson } from './api.js';

export type VerdictKind = 'fooled' | 'held' | 'weakened' | 'wrong';

export interface Verdict {
  kind: VerdictKind;
  /** The badge: 'fooled: 7 → 3'. */
  text: string;
  /** The probabilities behind it: 'target 3: 0.1% → 62.0%; 7: 99.8% → 9.0%'. */
  detail: string;
}

/** A class name as people write it ('Egyptian_cat': 'Egyptian cat'). */
export function readable(name: string): string {
  return name.replace(/_/g, ' ');
}

/** A probability as the page shows it. */
export function pct(p: number): string {
  return p >= 0.9995 ? '100%' : p < 0.001 ? '<0.1%' : `${(p * 100).toFixed(1)}%`;
}

/** Kept with less than this probability after losing at least WEAKENED_DROP, a top class counts as weakened. */
const WEAKENED_BELOW = 0.5;
const WEAKENED_DROP = 0.25;

export function verdict(r: AttackResultJson): Verdict {
  const before = r.clean.top5[0];
  const after = r.adversarial.top5[0];
  if (!before || !after) return { kind: 'held', text: 'no prediction', detail: '' };
  const b = readable(before.name);
  const a = readable(after.name);
  // The clean top class's probability after the attack; below the fifth class's when it left the top 5.
  const kept = r.adversarial.top5.find((p) => p.index === before.index)?.probability;
  const keptAfter = kept ?? 0;
  const own = `${b}: ${pct(before.probability)} → ${kept === undefined ? 'out of the top 5' : pct(kept)}`;
  const target = r.target;
  const aim = target ? `target ${readable(target.name)}: ${pct(target.clean)} → ${pct(target.adversarial)}` : '';
  const detail = [aim, own].filter(Boolean).join('; ');
  if (r.trueLabel && before.index !== r.trueLabel.index) {
    return { kind: 'wrong', text: `wrong before the attack: ${b} (true ${readable(r.trueLabel.name)})`, detail };
  }
  if (target && after.index === target.index && before.index !== target.index) return { kind: 'fooled', text: `fooled into ${a}`, detail };
  if (after.index !== before.index) return { kind: 'fooled', text: `fooled: ${b} → ${a}`, detail: target ? `${detail} (target not reached)` : detail };
  if (keptAfter < WEAKENED_BELOW && before.probability - keptAfter >= WEAKENED_DROP) return { kind: 'weakened', text: `held, weakened: ${b}`, detail };
  return { kind: 'held', text: `held: ${b}`, detail };
}
