/**
 * An imported Keras model as an advml Module: the layer graph, executed in
 * topological order with each intermediate freed as soon as its last consumer
 * has run.
 */
import type { Tensor } from '../../engine/index.js';
import { Module, foldingApplies } from '../../nn/index.js';
import { KerasBatchNormalization, KerasConv2D, type KerasLayer, type KerasShape } from './layers.js';

/** @internal One call of a layer: its inputs are the outputs of earlier nodes. */
export interface GraphNode {
  /** `<layer name>#<node index>`. */
  id: string;
  layer: KerasLayer;
  inputs: string[];
}

/** @internal What the importer hands to {@link LayersModel}. */
export interface GraphSpec {
  name: string;
  /** Nodes in topological order; the first is the input. */
  nodes: GraphNode[];
  inputId: string;
  outputIds: string[];
  inputShape: KerasShape;
  outputShapes: KerasShape[];
  /** Unique module names for the layers (Keras names with '.' replaced). */
  moduleNames: Map<KerasLayer, string>;
  /** Layers the outputs do not depend on (left out of the model). */
  unreachable?: string[];
}

/**
 * A TensorFlow.js / Keras LayersModel running on advml. Takes advml-layout
 * batches: [N, C, H, W] for image models (Keras' [N, H, W, C] transposed),
 * [N, features] for vector models. Parameters and buffers are registered
 * under the Keras layer names (`conv1.weight`, `bn_conv1.running_mean`), so
 * the model trains, saves and loads like any other advml module.
 */
export class LayersModel extends Module {
  /** The Keras model name. */
  readonly name: string;
  /** The input shape in Keras order without the batch dimension ([H, W, C] for images). */
  readonly kerasInputShape: KerasShape;
  /** The output shapes in Keras order without the batch dimension. */
  readonly kerasOutputShapes: KerasShape[];
  /** Layers by Keras name. */
  readonly layers: Map<string, KerasLayer>;
  private readonly nodes: GraphNode[];
  private readonly inputId: string;
  private readonly outputIds: string[];
  private readonly uses: Map<string, number>;
  /** Convolution nodes whose only consumer is a batch norm, with that batch norm's node (foldable pairs). */
  private readonly foldPairs: Map<string, GraphNode>;

  /** @internal Built by the importer. */
  constructor(spec: GraphSpec) {
    super();
    this.name = spec.name;
    this.nodes = spec.nodes;
    this.inputId = spec.inputId;
    this.outputIds = spec.outputIds;
    this.kerasInputShape = spec.inputShape;
    this.kerasOutputShapes = spec.outputShapes;
    this.layers = new Map();
    for (const n of spec.nodes) {
      if (this.layers.has(n.layer.kerasName)) continue;
      this.layers.set(n.layer.kerasName, n.layer);
      this.registerModule(spec.moduleNames.get(n.layer) as string, n.layer);
    }
    this.uses = new Map(spec.nodes.map((n) => [n.id, 0]));
    for (const n of spec.nodes) for (const i of n.inputs) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
    for (const o of spec.outputIds) this.uses.set(o, (this.uses.get(o) ?? 0) + 1);
    this.foldPairs = new Map();
    const byId = new Map(spec.nodes.map((n) => [n.id, n]));
    for (const n of spec.nodes) {
      const conv = byId.get(n.inputs[0] as string);
      if (n.layer instanceof KerasBatchNormalization && n.inputs.length === 1 && conv?.layer instanceof KerasConv2D && this.uses.get(conv.id) === 1) {
        this.foldPairs.set(conv.id, n);
      }
    }
  }

  /**
   * The input shape in advml layout without the batch dimension: [C, H, W]
   * for image models (null for sizes only known at run time).
   */
  get inputShape(): KerasShape {
    const s = this.kerasInputShape;
    return s.length === 3 ? [s[2] as number | null, s[0] as number | null, s[1] as number | null] : [...s];
  }

  /** The model's (first) output for a batch `x` in advml layout; `x` is not freed. */
  forward(x: Tensor): Tensor {
    const outs = this.forwardAll(x);
    for (const t of outs.slice(1)) if (t !== outs[0]) t.dispose();
    return outs[0] as Tensor;
  }

  /** Every output of the model, in the order of Keras' output_layers; `x` is not freed. */
  forwardAll(x: Tensor): Tensor[] {
    this.checkInput(x);
    const values = new Map<string, Tensor>();
    const refs = new Map<Tensor, number>();
    const release = (t: Tensor): void => {
      const n = (refs.get(t) ?? 0) - 1;
      refs.set(t, n);
      if (n <= 0 && t !== x) {
        refs.delete(t);
        t.dispose();
      }
    };
    // Batch norms already applied by the convolution before them (folded): they pass their input on.
    const folded = new Set<string>();
    try {
      for (const node of this.nodes) {
        const inputs = node.inputs.map((id) => values.get(id) as Tensor);
        const out = node.id === this.inputId ? x : folded.has(node.id) ? (inputs[0] as Tensor) : this.call(node, inputs, folded);
        values.set(node.id, out);
        refs.set(out, (refs.get(out) ?? 0) + (this.uses.get(node.id) ?? 0));
        for (const t of inputs) release(t);
        if ((this.uses.get(node.id) ?? 0) === 0) {
          refs.set(out, (refs.get(out) ?? 0) + 1);
          release(out);
        }
      }
      // Each output holds one reference per time it is listed; the caller owns them.
      return this.outputIds.map((id) => {
        const t = values.get(id) as Tensor;
        return t === x ? x.clone() : t;
      });
    } catch (e) {
      for (const t of refs.keys()) if (t !== x && !t.isDisposed) t.dispose();
      throw e;
    }
  }

  /** Runs one node; a convolution followed only by an inference-mode batch norm of a frozen model runs folded with it. */
  private call(node: GraphNode, inputs: Tensor[], folded: Set<string>): Tensor {
    const bn = this.foldPairs.get(node.id);
    const conv = node.layer;
    if (bn && conv instanceof KerasConv2D && bn.layer instanceof KerasBatchNormalization && conv.act === 'linear' && foldingApplies(bn.layer.training)) {
      folded.add(bn.id);
      return conv.callFolded(inputs, bn.layer);
    }
    return node.layer.call(inputs);
  }

  private checkInput(x: Tensor): void {
    const want = this.inputShape;
    const s = x.shape;
    const ok = s.length === want.length + 1 && want.every((d, i) => d === null || d === s[i + 1]);
    if (!ok) {
      const layout = want.length === 3 ? ' (advml layout [N, C, H, W]: Keras images are transposed)' : '';
      throw new Error(`LayersModel '${this.name}': input must have shape [N, ${want.map((d) => d ?? '?').join(', ')}]${layout}, got [${s.join(', ')}]`);
    }
  }
}
