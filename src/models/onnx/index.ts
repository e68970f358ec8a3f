/** ONNX image classifiers as differentiable advml modules. */
export { OnnxModule, loadOnnxModel, loadOnnxModelFromBytes, saveOnnx, serializeOnnx, MIN_OPSET, MAX_OPSET, type OnnxLoadOptions } from './graph.js';
export { OnnxError, MAX_ONNX_BYTES } from './proto.js';
export { OPERATORS as ONNX_OPERATORS } from './ops.js';
