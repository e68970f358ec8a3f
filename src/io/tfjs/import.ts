/**
 * TensorFlow.js LayersModel import: model.json (a Keras functional or
 * sequential topology) and its weight shards become a {@link LayersModel}
 * that runs on advml. See ./layers.ts for the layer mapping and the layout
 * (weights are transposed to channels-first once, at import).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { type Tensor, noGrad, scope } from '../../engine/index.js';
import { type JsonObject, type JsonValue, JsonReader, type ModelJson, TfjsModelError, describeJson } from './format.js';
import { type GraphNode, type GraphSpec, LayersModel } from './graph.js';
import { KerasConv2D, KerasDense, KerasElementwise, type KerasLayer, type KerasShape, LAYER_ALIASES, LAYER_TYPES, KerasInputLayer, inputShapeOf } from './layers.js';
import { decodeWeights, readManifest } from './weights.js';

/** Options of {@link loadLayersModel} and {@link importLayersModel}. */
export interface ImportOptions {
  /**
   * Remove the softmax that ends the model (a Dense or Conv2D with activation
   * 'softmax', or a final Activation('softmax') / Softmax layer) so the model
   * returns logits, as advml's Classifier and the attacks need. Throws when
   * the output does not end in a softmax. Default false.
   */
  outputLogits?: boolean;
  /** Refuse manifest weights that no layer uses (default true, as TensorFlow.js' strict loading). */
  strict?: boolean;
}

/** A model.json already read, with a way to read its shards. */
export interface LayersModelArtifacts {
  /** The parsed model.json (any JSON value: it is validated). */
  modelJson: unknown;
  /** Returns the bytes of a shard named in the manifest; throws when it cannot be read. */
  readShard: (path: string) => Uint8Array;
  /** Names the model in error messages (default '<memory>'). */
  source?: string;
}

/**
 * Loads a TensorFlow.js LayersModel from `modelJsonPath`, its shards read from
 * the same directory. Throws a {@link TfjsModelError} naming the file and the
 * fault for malformed JSON, unsupported layers or options, missing or short
 * shards and weights that do not fit the layers.
 */
export function loadLayersModel(modelJsonPath: string, opts: ImportOptions = {}): LayersModel {
  let text: string;
  try {
    text = readFileSync(modelJsonPath, 'utf8');
  } catch (e) {
    throw new TfjsModelError(modelJsonPath, `cannot be read: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfjsModelError(modelJsonPath, `is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const dir = dirname(modelJsonPath);
  const readShard = (p: string): Uint8Array => {
    if (isAbsolute(p) || normalize(p).split(sep).includes('..')) throw new Error('shard paths must stay inside the model directory');
    return readFileSync(join(dir, p));
  };
  return importLayersModel({ modelJson: json, readShard, source: modelJsonPath }, opts);
}

/** Builds a {@link LayersModel} from an already parsed model.json and a shard reader. */
export function importLayersModel(artifacts: LayersModelArtifacts, opts: ImportOptions = {}): LayersModel {
  const r = new JsonReader(artifacts.source ?? '<memory>');
  const root = r.object(artifacts.modelJson, 'model.json');
  if (root.format !== undefined && root.format !== 'layers-model') {
    r.fail(`format is ${describeJson(root.format)}: only 'layers-model' (tf.loadLayersModel) models can be imported, not graph models`);
  }
  const topo = r.object(root.modelTopology, 'modelTopology');
  const manifest = readManifest(r, root.weightsManifest);
  const graph = buildGraph(r, topo);

  if (opts.outputLogits) stripOutputSoftmax(r, graph);

  const model = new LayersModel(graph);
  try {
    loadWeights(r, graph.nodes, decodeWeights(r, manifest, artifacts.readShard), opts.strict ?? true, graph.unreachable ?? []);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

interface LayerEntry {
  layer: KerasLayer;
  /** Inbound nodes: for each call, the refs it reads. */
  calls: string[][];
}

/** Parses the topology into layers and nodes, checks it, infers shapes and creates weights. */
function buildGraph(r: JsonReader, topo: JsonObject): GraphSpec {
  let cfgPath = 'modelTopology';
  let mc = topo;
  if (topo.model_config !== undefined) {
    mc = r.object(topo.model_config, 'modelTopology.model_config');
    cfgPath = 'modelTopology.model_config';
  }
  const cls = r.string(mc.class_name, `${cfgPath}.class_name`);
  const config = mc.config;
  if (cls === 'Sequential') return sequentialGraph(r, config, `${cfgPath}.config`);
  if (cls === 'Model' || cls === 'Functional') return functionalGraph(r, r.object(config, `${cfgPath}.config`), `${cfgPath}.config`);
  return r.fail(`${cfgPath}.class_name is '${cls}': expected Sequential, Model or Functional`);
}

function makeLayer(r: JsonReader, entry: unknown, path: string, fallbackName: string): KerasLayer {
  const o = r.object(entry, path);
  const className0 = r.string(o.class_name, `${path}.class_name`);
  const className = LAYER_ALIASES[className0] ?? className0;
  const config = r.object(o.config ?? {}, `${path}.config`);
  const name = o.name !== undefined ? r.string(o.name, `${path}.name`) : config.name !== undefined ? r.string(config.name, `${path}.config.name`) : fallbackName;
  if (['Sequential', 'Model', 'Functional'].includes(className)) {
    r.fail(`${path} (layer '${name}'): nested models are not supported; flatten the model before converting it`);
  }
  const make = LAYER_TYPES[className];
  if (!make) {
    r.fail(`${path} (layer '${name}'): layer type ${className0} is not supported (supported: ${Object.keys(LAYER_TYPES).join(', ')})`);
  }
  return make({ r, path, name, className, config });
}

function sequentialGraph(r: JsonReader, config: unknown, path: string): GraphSpec {
  let name = 'sequential';
  let list: JsonValue[];
  let listPath = path;
  if (Array.isArray(config)) {
    list = config;
  } else {
    const o = r.object(config, path);
    if (o.name !== undefined) name = r.string(o.name, `${path}.name`);
    listPath = `${path}.layers`;
    list = r.array(o.layers, listPath);
  }
  if (list.length === 0) r.fail(`${listPath} is empty`);
  const layers = list.map((e, i) => makeLayer(r, e, `${listPath}[${i}]`, `layer_${i}`));
  const entries: LayerEntry[] = [];
  let prev: string;
  const first = layers[0] as KerasLayer;
  if (first instanceof KerasInputLayer) {
    entries.push({ layer: first, calls: [[]] });
    prev = `${first.kerasName}#0`;
  } else {
    const src = { r, path: `${listPath}[0]`, name: first.kerasName, className: first.className, config: r.object(r.object(list[0], `${listPath}[0]`).config, `${listPath}[0].config`) };
    const shape = inputShapeOf(src, false);
    if (shape === null) r.fail(`${listPath}[0] (layer '${first.kerasName}'): the first layer of a Sequential model must declare batch_input_shape (or be an InputLayer)`);
    const input = new KerasInputLayer({ ...src, name: `${first.kerasName}_input`, className: 'InputLayer', config: { batch_input_shape: [null, ...shape] } });
    entries.push({ layer: input, calls: [[]] });
    prev = `${input.kerasName}#0`;
  }
  for (const layer of layers) {
    if (layer === first && first instanceof KerasInputLayer) continue;
    if (layer instanceof KerasInputLayer) r.fail(`layer '${layer.kerasName}': an InputLayer may only come first in a Sequential model`);
    entries.push({ layer, calls: [[prev]] });
    prev = `${layer.kerasName}#0`;
  }
  const input = (entries[0] as LayerEntry).layer.kerasName;
  return finishGraph(r, name, entries, `${input}#0`, [prev]);
}

/** One inbound tensor reference: [layer name, node index, tensor index]. */
function refOf(r: JsonReader, v: unknown, path: string): string {
  const a = r.array(v, path);
  if (a.length < 3) r.expect(path, '[layer name, node index, tensor index, ...]', v);
  const name = r.string(a[0], `${path}[0]`);
  const node = r.int(a[1], `${path}[1]`);
  const tensor = r.int(a[2], `${path}[2]`);
  if (tensor !== 0) r.fail(`${path}: tensor ${tensor} of layer '${name}' is referenced; layers with several outputs are not supported`);
  const kwargs = a[3];
  if (kwargs !== undefined && kwargs !== null) {
    const k = r.object(kwargs, `${path}[3]`);
    const extra = Object.keys(k).filter((key) => key !== 'training');
    if (extra.length) r.fail(`${path}[3]: call arguments ${extra.join(', ')} are not supported`);
  }
  return `${name}#${node}`;
}

/** The inputs of one inbound node, in the Keras 2 (list) or Keras 3 ({args, kwargs}) format. */
function nodeInputs(r: JsonReader, node: unknown, path: string): string[] {
  if (Array.isArray(node)) return node.map((ref, i) => refOf(r, ref, `${path}[${i}]`));
  const o = r.object(node, path);
  const refs: string[] = [];
  const walk = (v: unknown, p: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${p}[${i}]`));
    } else if (v !== null && typeof v === 'object') {
      const obj = v as JsonObject;
      if (obj.class_name === '__keras_tensor__') {
        const cfg = r.object(obj.config, `${p}.config`);
        refs.push(refOf(r, cfg.keras_history, `${p}.config.keras_history`));
      }
    }
  };
  walk(o.args, `${path}.args`);
  return refs;
}

function functionalGraph(r: JsonReader, config: JsonObject, path: string): GraphSpec {
  const name = config.name === undefined ? 'model' : r.string(config.name, `${path}.name`);
  const list = r.array(config.layers, `${path}.layers`);
  const entries: LayerEntry[] = list.map((e, i) => {
    const lp = `${path}.layers[${i}]`;
    const layer = makeLayer(r, e, lp, `layer_${i}`);
    const inbound = r.array(r.object(e, lp).inbound_nodes ?? [], `${lp}.inbound_nodes`);
    const calls = inbound.map((n, j) => nodeInputs(r, n, `${lp}.inbound_nodes[${j}]`));
    if (layer instanceof KerasInputLayer) {
      if (calls.length) r.fail(`${lp} (layer '${layer.kerasName}'): an InputLayer has no inbound nodes`);
      calls.push([]);
    } else if (calls.length === 0) {
      r.fail(`${lp} (layer '${layer.kerasName}'): no inbound_nodes: the layer is never called`);
    }
    return { layer, calls };
  });
  const io = (key: string): string[] => {
    const v = config[key];
    const p = `${path}.${key}`;
    const a = r.array(v, p);
    // A single [name, node, tensor] is also accepted.
    if (a.length === 3 && typeof a[0] === 'string') return [refOf(r, a, p)];
    return a.map((x, i) => refOf(r, x, `${p}[${i}]`));
  };
  const inputs = io('input_layers');
  const outputs = io('output_layers');
  if (inputs.length !== 1) r.fail(`${path}.input_layers: models with ${inputs.length} inputs are not supported (one input)`);
  if (outputs.length === 0) r.fail(`${path}.output_layers is empty`);
  return finishGraph(r, name, entries, inputs[0] as string, outputs);
}

/** Orders the nodes, checks every reference, infers shapes (creating weights) and names the modules. */
function finishGraph(r: JsonReader, name: string, entries: LayerEntry[], inputId: string, outputIds: string[]): GraphSpec {
  const byName = new Map<string, LayerEntry>();
  for (const e of entries) {
    if (byName.has(e.layer.kerasName)) r.fail(`two layers are named '${e.layer.kerasName}'`);
    byName.set(e.layer.kerasName, e);
  }
  const nodes = new Map<string, GraphNode>();
  for (const e of entries) e.calls.forEach((inputs, i) => nodes.set(`${e.layer.kerasName}#${i}`, { id: `${e.layer.kerasName}#${i}`, layer: e.layer, inputs }));
  const describeRef = (id: string): string => {
    const [layer, node] = id.split('#');
    return byName.has(layer as string) ? `node ${node} of layer '${layer}'` : `layer '${layer}'`;
  };
  for (const n of nodes.values()) {
    for (const i of n.inputs) if (!nodes.has(i)) r.fail(`layer '${n.layer.kerasName}' reads ${describeRef(i)}, which does not exist`);
  }
  const inputNode = nodes.get(inputId);
  if (!inputNode) r.fail(`the model input is ${describeRef(inputId)}, which does not exist`);
  if (!(inputNode.layer instanceof KerasInputLayer)) r.fail(`the model input '${inputNode.layer.kerasName}' is not an InputLayer`);
  for (const o of outputIds) if (!nodes.has(o)) r.fail(`the model output is ${describeRef(o)}, which does not exist`);

  // Depth-first topological order of what the outputs need; cycles are errors.
  const order: GraphNode[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string): void => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'visiting') r.fail(`the layer graph has a cycle through layer '${(nodes.get(id) as GraphNode).layer.kerasName}'`);
    state.set(id, 'visiting');
    const node = nodes.get(id) as GraphNode;
    if (node.layer instanceof KerasInputLayer && id !== inputId) r.fail(`input layer '${node.layer.kerasName}' is used but is not the model input`);
    for (const i of node.inputs) visit(i);
    state.set(id, 'done');
    order.push(node);
  };
  for (const o of outputIds) visit(o);
  if (!state.has(inputId)) r.fail(`the model outputs do not depend on the model input '${inputNode.layer.kerasName}'`);
  // The input first (it has no inputs, so moving it keeps the order topological).
  const ordered = [inputNode, ...order.filter((n) => n !== inputNode)];

  const shapes = new Map<string, KerasShape>();
  for (const n of ordered) shapes.set(n.id, n.layer.build(n.inputs.map((i) => shapes.get(i) as KerasShape)));

  const moduleNames = new Map<KerasLayer, string>();
  const used = new Set<string>();
  for (const n of ordered) {
    if (moduleNames.has(n.layer)) continue;
    let m = n.layer.kerasName.replace(/\./g, '_') || 'layer';
    for (let k = 1; used.has(m); k++) m = `${n.layer.kerasName.replace(/\./g, '_')}_${k}`;
    used.add(m);
    moduleNames.set(n.layer, m);
  }
  const reachable = new Set(ordered.map((n) => n.layer));
  return {
    name,
    nodes: ordered,
    inputId,
    outputIds,
    inputShape: shapes.get(inputId) as KerasShape,
    outputShapes: outputIds.map((o) => shapes.get(o) as KerasShape),
    moduleNames,
    unreachable: entries.filter((e) => !reachable.has(e.layer)).map((e) => e.layer.kerasName),
  };
}

/** Drops the final softmax so the model returns logits (see {@link ImportOptions.outputLogits}). */
function stripOutputSoftmax(r: JsonReader, graph: GraphSpec): void {
  if (graph.outputIds.length !== 1) r.fail(`outputLogits: the model has ${graph.outputIds.length} outputs; expected one`);
  const out = graph.nodes.find((n) => n.id === graph.outputIds[0]) as GraphNode;
  const layer = out.layer;
  const calls = graph.nodes.filter((n) => n.layer === layer).length;
  if (calls > 1) r.fail(`outputLogits: the output layer '${layer.kerasName}' is shared (called ${calls} times)`);
  if ((layer instanceof KerasDense || layer instanceof KerasConv2D || layer instanceof KerasElementwise) && layer.act === 'softmax') {
    layer.act = 'linear';
    return;
  }
  const act = layer instanceof KerasDense || layer instanceof KerasConv2D || layer instanceof KerasElementwise ? ` (activation '${layer.act}')` : '';
  r.fail(`outputLogits: the output layer '${layer.kerasName}' (${layer.className}${act}) does not end in a softmax`);
}

/** Copies the manifest weights into the layers, checking names and shapes. */
function loadWeights(r: JsonReader, nodes: GraphNode[], weights: Map<string, Tensor>, strict: boolean, unreachable: string[]): void {
  try {
    const unused = new Set(weights.keys());
    const seen = new Set<KerasLayer>();
    for (const { layer } of nodes) {
      if (seen.has(layer)) continue;
      seen.add(layer);
      for (const w of layer.kerasWeights) {
        const name = findWeight(r, weights, layer.kerasName, w.kerasName);
        const value = weights.get(name) as Tensor;
        unused.delete(name);
        const want = w.kerasShape.join(',');
        if (value.shape.join(',') !== want) {
          r.fail(`weight '${name}' has shape [${value.shape}] in the manifest, but layer '${layer.kerasName}' (${layer.className}) needs [${w.kerasShape}]`);
        }
        if (value.dtype !== 'float32') r.fail(`weight '${name}' is ${value.dtype}; layer weights must be float32`);
        noGrad(() => scope(() => void w.target.copy_(w.toTorch(value))));
      }
    }
    // Weights of layers the outputs do not depend on are skipped, as their layers are.
    for (const name of [...unused]) if (unreachable.some((l) => name.startsWith(`${l}/`))) unused.delete(name);
    if (strict && unused.size) {
      const list = [...unused];
      r.fail(`the manifest holds ${list.length} weight(s) no layer uses: ${list.slice(0, 8).join(', ')}${list.length > 8 ? ', ...' : ''}`);
    }
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}

/** The manifest name of a layer's weight: `<layer>/<weight>`, or a unique name ending in it (converters may prefix scopes). */
function findWeight(r: JsonReader, weights: Map<string, Tensor>, layer: string, weight: string): string {
  const exact = `${layer}/${weight}`;
  if (weights.has(exact)) return exact;
  const candidates = [...weights.keys()].filter((k) => k.endsWith(`/${exact}`) || k === `${exact}:0`);
  if (candidates.length === 1) return candidates[0] as string;
  if (candidates.length > 1) r.fail(`weight '${exact}' is ambiguous in the manifest: ${candidates.join(', ')}`);
  return r.fail(`the manifest has no weight '${exact}' for layer '${layer}'`);
}
