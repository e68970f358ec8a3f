/** Neural-network building blocks with PyTorch-compatible state dicts. */
export { Module, type StateDict, consume } from './module.js';
export * from './layers.js';
export { convBn, setBatchNormFolding, withFrozenParameters } from './fold.js';
export * from './activations.js';
export * as init from './init.js';
