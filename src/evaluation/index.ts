/** Evaluation: accuracy grids with intervals, label leaking, transfer between models. */
export * from './stats.js';
export * from './evaluate.js';
export * from './transfer.js';
export * from './sweep-types.js';
export * from './audit.js';
export * from './robustness.js';
