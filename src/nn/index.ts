/** Neural-network building blocks with PyTorch-compatible state dicts. */
export { Module, type StateDict, consume } from './module.js';
export * from './layers.js';
export { type BatchNormParameters, type ConvParameters, convBn, foldedParameters, foldingApplies, setBatchNormFolding } from './fold.js';
export { type ActivationSpec, batchNormActivation, batchNormReluFuses, convBnActivation, setBatchNormReluFusion } from './fused.js';
export { autocastParameters, derived, forgetDerived, parametersFrozen, withFrozenParameters } from './frozen.js';
export * from './activations.js';
export * as init from './init.js';
