/** The classifier contract for a loaded ONNX model, from what its graph declares. */
import { Classifier, type ClassifierOptions } from '../classifier.js';
import type { OnnxModule } from './graph.js';

export type OnnxClassifierOptions = Omit<ClassifierOptions, 'inputShape' | 'classes'> & {
  /** Default: the last dimension of the first output, when the graph declares it. */
  classes?: number;
  /** Default: the declared [C, H, W] of the input, when static. */
  inputShape?: [number, number, number];
};

/**
 * A Classifier over an ONNX model. The input shape and class count come from
 * the graph's declarations unless given; preprocessing (range, mean, std) is
 * not in an ONNX file, so pass what the model was trained with.
 */
export function onnxClassifier(model: OnnxModule, opts: OnnxClassifierOptions = {}): Classifier {
  const s = model.inputShape;
  let inputShape = opts.inputShape;
  if (!inputShape) {
    const chw = s.slice(1);
    if (s.length !== 4 || chw.some((d) => d === null)) {
      throw new Error(`onnx ${model.source}: the input '${model.inputName}' is declared [${s.map((d) => d ?? '?')}]; pass inputShape [C, H, W]`);
    }
    inputShape = chw as [number, number, number];
  }
  const out = model.outputShapes[0];
  const classes = opts.classes ?? (out && out.length === 2 ? out[1] : null);
  if (typeof classes !== 'number') {
    throw new Error(`onnx ${model.source}: the first output's class count is not declared; pass classes`);
  }
  return new Classifier(model, { memoryFormat: 'contiguous', ...opts, inputShape, classes });
}
