/**
 * The data layer: MNIST and Fashion-MNIST (IDX files, whole tensors),
 * image folders in the ImageNet layout (streamed from disk), transforms, and
 * the loader (seeded shuffling, sharding, batching, prefetching).
 */
export * from './idx.js';
export * from './mnist.js';
export * from './dataset.js';
export * from './transforms.js';
export * from './image-folder.js';
export * from './loader.js';
