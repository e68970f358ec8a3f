/** advml: adversarial machine learning at scale on a libtorch engine. */
export * from './engine/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as models from './models/index.js';
export * as io from './io/index.js';
export * as attacks from './attacks/index.js';
export * as data from './data/index.js';
export * as training from './training/index.js';
export * as evaluation from './evaluation/index.js';
export * as distributed from './distributed/index.js';
