/**
 * The page's opening view, found rather than assumed: once the demo models
 * are ready, the MNIST samples are attacked with PGD at growing eps until
 * one is classified correctly by both the plain and the hardened model when
 * clean, fools the plain one and leaves the hardened one right. The page
 * opens on that sample, at that eps, with every demo model's accuracy curve.
 */
import type { Config, Story } from './api-types.js';
import type { ModelRegistry, ReadyModel } from './model-registry.js';
import { DEMO_ROLES } from './models.js';
import type { WorkerPool } from './pool.js';
import type { PreparedImage } from './protocol.js';
import type { Sample } from './samples.js';

/** The opening view's method: the standard first-order attack. */
export const STORY_METHOD = 'pgd';

/** eps tried, pixel values, smallest first (the page's slider ends at 64). */
export const STORY_EPS: readonly number[] = [32, 48, 64];

/** Deadline of each search attack. */
const STORY_TIMEOUT_MS = 60_000;

export type StoryState = Config['story'];

/**
 * Searches the opening view; resolves to 'none' with the reason when the
 * models are missing or no sample qualifies. `prepare` makes a sample's image
 * for a model, as attack requests do.
 */
export async function findStory(
  registry: ModelRegistry,
  pool: WorkerPool,
  samples: readonly Sample[],
  prepare: (bytes: Uint8Array, model: ReadyModel) => Promise<PreparedImage>,
): Promise<StoryState> {
  const plainName = registry.demo('plain');
  const hardenedName = registry.demo('fast-at') ?? registry.demo('adversarial');
  if (!plainName || !hardenedName) return { status: 'none', reason: 'the opening view needs mnist-plain and mnist-fast-at (or mnist-adversarial)' };
  await registry.ready;
  let plain: ReadyModel;
  let hardened: ReadyModel;
  try {
    plain = registry.usable(plainName);
    hardened = registry.usable(hardenedName);
  } catch (e) {
    return { status: 'none', reason: (e as Error).message };
  }
  const digits = samples.filter((s) => s.kind === 'mnist' && s.label !== undefined);
  const images = await Promise.all(digits.map(async (s) => ({ sample: s, plain: await prepare(s.bytes, plain), hardened: await prepare(s.bytes, hardened) })));
  for (const eps of STORY_EPS) {
    for (const { sample, plain: a, hardened: b } of images) {
      const [p, h] = await pool.run(
        { type: 'attack', method: STORY_METHOD, eps, seed: 0, targets: [{ model: plain.ref, image: a, trueLabel: sample.label }, { model: hardened.ref, image: b, trueLabel: sample.label }] },
        { timeoutMs: STORY_TIMEOUT_MS, internal: true },
      );
      const right = (top: { index: number }[] | undefined): boolean => top?.[0]?.index === sample.label;
      if (right(p!.clean.top5) && right(h!.clean.top5) && !right(p!.adversarial.top5) && right(h!.adversarial.top5)) {
        const curveModels = DEMO_ROLES.map((r) => registry.demo(r)).filter((n): n is string => n !== undefined);
        const story: Story = { sample: sample.id, models: [plainName, hardenedName], method: STORY_METHOD, eps, curveModels, dataset: 'mnist' };
        return { status: 'found', story };
      }
    }
  }
  return { status: 'none', reason: `no MNIST sample fools ${plainName} and not ${hardenedName} under ${STORY_METHOD} at eps ${STORY_EPS.join(', ')}` };
}
