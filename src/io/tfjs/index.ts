/**
 * TensorFlow.js LayersModel import and export: model.json with binary weight
 * shards, the format `tf.loadLayersModel` reads and `model.save` writes.
 * Imported models run on advml with channels-first tensors (weights are
 * transposed once, at import); exported Sequential models run in a browser.
 */
export { loadLayersModel, importLayersModel, type ImportOptions, type LayersModelArtifacts } from './import.js';
export { exportLayersModel, saveLayersModel, type ExportOptions, type ExportedLayersModel, type SequentialConvertible } from './export.js';
export { LayersModel } from './graph.js';
export {
  KerasLayer, KerasConv2D, KerasDense, KerasBatchNormalization, KerasElementwise, KerasPooling2D, KerasGlobalPooling2D, KerasMerge,
  KerasConcatenate, KerasZeroPadding2D, KerasFlatten, KerasDropout, KerasInputLayer, LAYER_TYPES, KERAS_ACTIVATIONS, samePadding,
  torchAxis, type KerasShape, type KerasActivation, type KerasWeight, type LayerSource,
} from './layers.js';
export {
  TfjsModelError, type ModelJson, type WeightSpec, type WeightsManifestGroup, type WeightQuantization, type WeightDType,
  type JsonValue as TfjsJsonValue, type JsonObject as TfjsJsonObject,
} from './format.js';
