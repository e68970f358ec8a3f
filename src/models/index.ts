/** The model zoo. */
export { MnistCnn, type MnistCnnOptions } from './mnist-cnn.js';
export { ResNet, BasicBlock, type ResNetOptions } from './resnet.js';
export { Classifier, type ClassifierOptions } from './classifier.js';
export * from './registry.js';
