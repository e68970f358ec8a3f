/**
 * The one place an attack's label is chosen, vectorised over the batch:
 * the true label, the model's prediction, the least likely class, a random
 * class other than the prediction, or labels given explicitly.
 */
import { type Generator, type Tensor, noGrad, randint, scope } from '../engine/index.js';
import type { Classifier } from '../models/classifier.js';
import { checkLabels } from './common.js';

/** Where an attack's label comes from. Reports name it: label leaking depends on it. */
export type LabelSource = 'true' | 'predicted' | 'leastLikely' | 'random';

export const LABEL_SOURCES: readonly LabelSource[] = ['true', 'predicted', 'leastLikely', 'random'];

/** Readable names of the label sources, for the page. */
export const LABEL_SOURCE_TITLES: Record<LabelSource, string> = { true: 'true class', predicted: 'predicted class', leastLikely: 'least likely class', random: 'random other class' };

/** `v` as a label source; throws naming it and the known ones. */
export function checkLabelSource(v: unknown): LabelSource {
  if (typeof v !== 'string' || !(LABEL_SOURCES as readonly string[]).includes(v)) {
    throw new Error(`unknown label source '${String(v)}': expected ${LABEL_SOURCES.join(', ')}`);
  }
  return v as LabelSource;
}

export interface LabelOptions {
  /** True labels (int64 [N]), for source 'true'. */
  y?: Tensor;
  generator?: Generator;
  /** Logits of x if the caller already has them (saves a forward pass). */
  logits?: Tensor;
}

/**
 * int64 labels [N] for the batch x:
 * - 'true': `y`;
 * - 'predicted': argmax_c p(c|x);
 * - 'leastLikely': argmin_c p(c|x) (the paper's y_LL);
 * - 'random': uniform among the classes other than the prediction;
 * - a tensor: those labels, checked.
 */
export function chooseLabels(model: Classifier, x: Tensor, source: LabelSource | Tensor, opts: LabelOptions = {}): Tensor {
  if (typeof source !== 'string') {
    checkLabels(model, x, source, 'labels');
    return source.clone();
  }
  if (source === 'true') {
    if (!opts.y) throw new Error("label source 'true' needs the true labels: pass y");
    checkLabels(model, x, opts.y, 'y');
    return opts.y.clone();
  }
  return noGrad(() =>
    scope(() => {
      const logits = opts.logits ?? model.logits(x);
      switch (source) {
        case 'predicted':
          return logits.argmax(1);
        case 'leastLikely':
          return logits.argmin(1);
        case 'random': {
          // prediction + k (mod C), k uniform in 1..C-1: uniform over the other classes.
          const offset = randint(1, model.classes, [x.shape[0] as number], { generator: opts.generator });
          return logits.argmax(1).add(offset).remainder(model.classes);
        }
        default:
          throw new Error(`${checkLabelSource(source)} is not handled`);
      }
    }),
  );
}
