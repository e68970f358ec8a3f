/** Adversarial training: the paper's Algorithm 1 and its eps samplers. */
export * from './eps.js';
export * from './trainer.js';
export * from './run.js';
export * from './presets.js';
export * from './recipes.js';
export * from './guard.js';
