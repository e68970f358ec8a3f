/** The model zoo. */
export { MAX_HIDDEN, MnistCnn, type MnistCnnOptions } from './mnist-cnn.js';
export { ResNet, BasicBlock, Bottleneck, ResNetImageNet, type ResNetOptions, type ResNetImageNetOptions } from './resnet.js';
export {
  InceptionV3, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionAux, BasicConv2d, MAX_EXTRA_BLOCKS,
  type InceptionV3Options, type InceptionExtraBlocks, type InceptionOutputs,
} from './inception.js';
export {
  loadResNet50ImageNet, resnet50ImageNetModelPath, readImageNetLabels, CAFFE_MEAN_BGR, RESNET50_PACKAGE,
  type ResNet50ImageNetOptions,
} from './resnet50-imagenet.js';
export { Classifier, type ClassifierOptions } from './classifier.js';
export * from './onnx/index.js';
export * from './registry.js';
export { TorchScriptModule, loadTorchScript, saveTorchScript } from './torchscript.js';
export { FOREIGN_FORMATS, type ForeignFormat, foreignFormatOf, loadForeignModule, saveForeign } from './foreign.js';
export {
  loadModel, loadForeign, foreignSpec, classifierFor, readModelCard, writeModelCard, readClassNames, modelCardPath,
  type InputContract, type PartialContract,
} from './load.js';
