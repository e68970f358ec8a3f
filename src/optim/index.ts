/** Optimizers and learning-rate schedules. */
export { Optimizer, type OptimizerState } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { RMSProp, type RMSPropOptions, type RMSPropVariant } from './rmsprop.js';
export { Adam, type AdamOptions } from './adam.js';
export * from './schedules.js';
