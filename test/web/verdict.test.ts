/** The page's verdicts, from hand-made results whose answer is plain to see. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttackResultJson, Prediction } from '../../src/serve/api-types.js';
import { pct, readable, verdict } from '../../web/src/verdict.js';

const p = (index: number, name: string, probability: number): Prediction => ({ index, name, probability });

function result(clean: Prediction[], adversarial: Prediction[], extra: Partial<AttackResultJson> = {}): AttackResultJson {
  return {
    model: 'm', labelSource: 'true', trueLabel: null, target: null,
    clean: { image: '', top5: clean }, adversarial: { image: '', top5: adversarial },
    perturbation: { image: '', magnification: 1, linf: 1, l2: 1 }, ms: 1, ...extra,
  };
}

test('the top class changing is fooled; kept is held, or weakened when its probability collapses', () => {
  assert.deepEqual(verdict(result([p(7, '7', 0.99)], [p(3, '3', 0.8), p(7, '7', 0.1)])), { kind: 'fooled', text: 'fooled: 7 → 3', detail: '7: 99.0% → 10.0%' });
  assert.equal(verdict(result([p(7, '7', 0.99)], [p(7, '7', 0.9)])).kind, 'held');
  // The case: espresso kept at 9% from 99.8%.
  const v = verdict(result([p(967, 'espresso', 0.998)], [p(967, 'espresso', 0.09), p(968, 'cup', 0.08)]));
  assert.deepEqual(v, { kind: 'weakened', text: 'held, weakened: espresso', detail: 'espresso: 99.8% → 9.0%' });
});

test('a targeted attack names its target, reached or not', () => {
  const target = { index: 285, name: 'Egyptian_cat', clean: 0.001, adversarial: 0.6, source: 'leastLikely' as const };
  const reached = verdict(result([p(967, 'espresso', 0.998)], [p(285, 'Egyptian_cat', 0.6)], { target }));
  assert.deepEqual(reached, { kind: 'fooled', text: 'fooled into Egyptian cat', detail: 'target Egyptian cat: 0.1% → 60.0%; espresso: 99.8% → out of the top 5' });
  const missed = verdict(result([p(967, 'espresso', 0.998)], [p(968, 'cup', 0.5)], { target: { ...target, adversarial: 0.05 } }));
  assert.equal(missed.text, 'fooled: espresso → cup');
  assert.match(missed.detail, /^target Egyptian cat: 0\.1% → 5\.0%; .*\(target not reached\)$/);
  const held = verdict(result([p(967, 'espresso', 0.998)], [p(967, 'espresso', 0.97)], { target: { ...target, adversarial: 0.002 } }));
  assert.deepEqual([held.kind, held.text], ['held', 'held: espresso']);
});

test('an image wrong before the attack says so', () => {
  const v = verdict(result([p(2, '2', 0.7)], [p(2, '2', 0.6)], { trueLabel: { index: 7, name: '7', clean: 0.2, adversarial: 0.1 } }));
  assert.deepEqual([v.kind, v.text], ['wrong', 'wrong before the attack: 2 (true 7)']);
});

test('readable names and percentages', () => {
  assert.equal(readable('Egyptian_cat'), 'Egyptian cat');
  assert.deepEqual([pct(0.9996), pct(0.0004), pct(0.1234)], ['100%', '<0.1%', '12.3%']);
});
