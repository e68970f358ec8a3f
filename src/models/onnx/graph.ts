/**
 * OnnxModule: an ONNX graph as an advml Module. Loading checks the whole
 * model (opset, domains, operators and their attributes, that every input
 * exists), builds one kernel per node, folds the nodes that only depend on
 * constants, and registers the floating-point initialisers as parameters
 * under their PyTorch names where those fit the module tree. forward() then
 * runs the remaining nodes in order with engine ops, so gradients reach the
 * input and the parameters, and frees every intermediate at its last use.
 */
import { endianness } from 'node:os';
import { type DType, type Tensor, isFloating, noGrad, scope } from '../../engine/index.js';
import { writeFileAtomicSync } from '../../io/index.js';
import { Module } from '../../nn/module.js';
import { Attributes } from './attributes.js';
import { type Kernel, OPERATORS, type RunState } from './ops.js';
import { type ModelData, type NodeData, OnnxError, type ValueInfo, decodeModel, readModelFile } from './proto.js';
import { dtypeOf, tensorOf } from './tensors.js';
import { replaceInitializers } from './wire.js';

/** The opsets of the default domain the loader implements. */
export const MIN_OPSET = 11;
export const MAX_OPSET = 18;

export interface OnnxLoadOptions {
  /** Largest file read, in bytes (default 2 GiB - 1). */
  maxBytes?: number;
}

/** A node's error at run time, naming the node. */
function nodeLabel(node: NodeData, index: number, opset: number): string {
  return `node ${index}${node.name ? ` '${node.name}'` : ''} (${node.opType}, opset ${opset})`;
}

/** Holds the parameters and buffers of one level of the dotted name tree. */
class ParameterGroup extends Module {
  forward(): Tensor {
    throw new Error('a parameter group of an ONNX model is not callable; call the OnnxModule');
  }

  add(name: string, value: Tensor, buffer: boolean): void {
    if (buffer) this.registerBuffer(name, value);
    else this.registerParameter(name, value);
  }

  group(name: string): ParameterGroup {
    const found = this.namedChildren().find(([n]) => n === name);
    if (found) return found[1] as ParameterGroup;
    return this.registerModule(name, new ParameterGroup());
  }
}

type Ref = { kind: 'const'; tensor: Tensor } | { kind: 'slot'; index: number };

interface Step {
  kernel: Kernel;
  label: string;
  inputs: (Ref | null)[];
  /** Slot of each output; -1 for an output nobody reads. */
  outputs: number[];
  /** Slots whose last reader is this step. */
  frees: number[];
}

export class OnnxModule extends Module {
  /** Name of the graph's one data input. */
  readonly inputName: string;
  /** Declared input shape; null for a symbolic (dynamic) dimension. */
  readonly inputShape: (number | null)[];
  /** Declared output names; forward() returns the first (the logits). */
  readonly outputNames: string[];
  /** Declared output shapes (null where not declared). */
  readonly outputShapes: ((number | null)[] | null)[];
  /** Opset version of the default domain. */
  readonly opset: number;
  readonly producer: { name: string; version: string };
  readonly irVersion: number;
  /** ONNX initialiser name to its name in stateDict(), for the initialisers registered as parameters or buffers. */
  readonly stateNames: ReadonlyMap<string, string>;

  private readonly steps: Step[];
  private readonly outputRefs: Ref[];
  private readonly slotCount: number;
  private readonly constants: Tensor[] = [];
  private readonly owned = new Set<Tensor>();
  private readonly root = new ParameterGroup();
  /** The encoded model, written back by serialize() with the current weights. */
  private readonly encoded: Uint8Array;
  /** Data type and dims of each initialiser in stateNames, as the file declares them. */
  private readonly layouts = new Map<string, { dtype: DType; dims: number[] }>();

  constructor(model: ModelData, readonly source = '<buffer>') {
    super();
    const fail: (problem: string) => never = (problem) => {
      throw new OnnxError(source, problem);
    };
    const opset = model.opsets.get('');
    if (opset === undefined) fail('the model imports no opset of the default ONNX domain');
    if ((opset as number) < MIN_OPSET || (opset as number) > MAX_OPSET) {
      fail(`opset ${opset} is not supported (supported: ${MIN_OPSET} to ${MAX_OPSET})`);
    }
    this.opset = opset as number;
    this.producer = { name: model.producerName, version: model.producerVersion };
    this.irVersion = model.irVersion;
    this.encoded = model.bytes;
    if (model.sparseInitializers) fail('sparse initialisers are not supported');

    const inits = new Map<string, (typeof model.initializers)[number]>();
    for (const t of model.initializers) {
      if (!t.name) fail('an initialiser has no name');
      if (inits.has(t.name)) fail(`initialiser '${t.name}' is defined twice`);
      inits.set(t.name, t);
    }
    const dataInputs = model.inputs.filter((v) => !inits.has(v.name));
    if (dataInputs.length !== 1) {
      fail(`the graph must have exactly one data input (an image batch), it has ${dataInputs.length}${dataInputs.length ? `: ${dataInputs.map((v) => v.name).join(', ')}` : ''}`);
    }
    const input = dataInputs[0] as ValueInfo;
    this.inputName = input.name;
    this.inputShape = input.shape ?? [];
    if (model.outputs.length === 0) fail('the graph declares no outputs');
    this.outputNames = model.outputs.map((v) => v.name);
    this.outputShapes = model.outputs.map((v) => v.shape);

    // Pass 1: operators, domains, and that every input is defined before use; how initialisers are used.
    const defined = new Set<string>([input.name, ...inits.keys()]);
    const use = new Map<string, { dynamic: boolean; buffer: boolean }>();
    model.nodes.forEach((node, index) => {
      const label = nodeLabel(node, index, this.opset);
      if (node.domain !== '') fail(`${label}: domain '${node.domain}' is not supported (only the default ONNX domain)`);
      const spec = OPERATORS.get(node.opType);
      if (!spec) fail(`${label}: operator '${node.opType}' is not supported`);
      node.inputs.forEach((name, pos) => {
        if (name === '') return;
        if (!defined.has(name)) fail(`${label}: input '${name}' is neither a graph input, an initialiser nor an earlier node's output`);
        if (inits.has(name)) {
          const u = use.get(name) ?? { dynamic: false, buffer: true };
          if (!spec?.staticInputs?.includes(pos)) {
            u.dynamic = true;
            if (!spec?.bufferInputs?.includes(pos)) u.buffer = false;
          }
          use.set(name, u);
        }
      });
      for (const out of node.outputs) if (out) defined.add(out);
    });
    for (const name of this.outputNames) if (!defined.has(name)) fail(`graph output '${name}' is never computed`);

    // Initialisers: trainable floating-point values become parameters, running statistics buffers, the rest constants.
    const known = new Map<string, Ref>();
    const stateNames = new Map<string, string>();
    for (const [name, data] of inits) {
      const u = use.get(name);
      if (!u) continue;
      let t: Tensor;
      try {
        t = tensorOf(data);
      } catch (e) {
        fail(`initialiser '${name}': ${(e as Error).message}`);
      }
      if (u.dynamic && isFloating(t.dtype)) {
        stateNames.set(name, this.place(name, t, u.buffer));
        this.layouts.set(name, { dtype: dtypeOf(data.dataType) as DType, dims: data.dims });
      } else {
        this.constants.push(t.keep());
      }
      this.owned.add(t);
      known.set(name, { kind: 'const', tensor: t });
    }
    this.stateNames = stateNames;

    const consumed = new Set<string>([...model.nodes.flatMap((n) => n.inputs), ...this.outputNames]);

    // Pass 2: kernels; nodes that depend only on constants run now and become constants.
    let slots = 0;
    known.set(input.name, { kind: 'slot', index: slots++ });
    const steps: Step[] = [];
    const lastReader = new Map<number, number>();
    model.nodes.forEach((node, index) => {
      const label = nodeLabel(node, index, this.opset);
      const spec = OPERATORS.get(node.opType);
      if (!spec) return fail(`${label}: operator '${node.opType}' is not supported`);
      const refuse: (problem: string) => never = (problem) => fail(`${label}: ${problem}`);
      const attrs = new Attributes(node.attributes, refuse);
      let kernel: Kernel;
      try {
        kernel = spec.build({ opset: this.opset, attrs, outputUsed: node.outputs.map((o) => o !== '' && consumed.has(o)), refuse });
      } catch (e) {
        if (e instanceof OnnxError) throw e;
        return fail(`${label}: ${(e as Error).message}`);
      }
      const unread = attrs.unread();
      if (unread.length) fail(`${label}: attribute${unread.length > 1 ? 's' : ''} ${unread.map((a) => `'${a}'`).join(', ')} not supported`);
      const inputs = node.inputs.map((n) => (n === '' ? null : (known.get(n) as Ref)));
      const foldable = spec.deterministic !== false && node.opType !== 'Shape' && inputs.every((r) => r === null || (r.kind === 'const' && !this.isState(r.tensor)));
      if (foldable) {
        let outs: Tensor[];
        try {
          outs = noGrad(() => kernel(inputs.map((r) => (r ? (r as { tensor: Tensor }).tensor : undefined)), { training: false }));
        } catch (e) {
          return fail(`${label}: ${(e as Error).message}`);
        }
        node.outputs.forEach((name, k) => {
          const t = outs[k];
          if (!t) return fail(`${label}: output ${k} was not produced`);
          if (!name) return;
          if (!this.owned.has(t)) {
            this.owned.add(t);
            this.constants.push(t.keep());
          }
          known.set(name, { kind: 'const', tensor: t });
        });
        for (const t of outs.slice(node.outputs.length)) if (!this.owned.has(t)) t.dispose();
        return;
      }
      const stepIndex = steps.length;
      for (const r of inputs) if (r?.kind === 'slot') lastReader.set(r.index, stepIndex);
      const outputs = node.outputs.map((name) => {
        if (!name) return -1;
        const index = slots++;
        known.set(name, { kind: 'slot', index });
        // Freed right after the step unless a later step reads it (then its last reader frees it).
        lastReader.set(index, stepIndex);
        return index;
      });
      steps.push({ kernel, label, inputs, outputs, frees: [] });
    });
    this.outputRefs = this.outputNames.map((n) => known.get(n) as Ref);
    const kept = new Set(this.outputRefs.flatMap((r) => (r.kind === 'slot' ? [r.index] : [])));
    kept.add(0); // the caller's input
    for (const [slot, step] of lastReader) if (!kept.has(slot)) (steps[step] as Step).frees.push(slot);
    this.steps = steps;
    this.slotCount = slots;
    this.registerModule('params', this.root);
    // An ONNX graph is an inference graph: start in inference mode.
    this.eval();
  }

  /** Registers an initialiser under its dotted name when that fits the tree, else under a sanitised unique name. */
  private place(name: string, t: Tensor, buffer: boolean): string {
    const parts = name.split('.');
    const plain = parts.every((p) => /^[A-Za-z0-9_]+$/.test(p));
    if (plain) {
      try {
        let g = this.root;
        for (const p of parts.slice(0, -1)) g = g.group(p);
        g.add(parts[parts.length - 1] as string, t, buffer);
        return name;
      } catch {
        // a clash with an existing member: fall through to a flat name
      }
    }
    const base = name.replace(/[^A-Za-z0-9_]/g, '_') || 'initializer';
    for (let k = 1; ; k++) {
      const candidate = k === 1 ? base : `${base}_${k}`;
      try {
        this.root.add(candidate, t, buffer);
        return candidate;
      } catch {
        // taken; try the next suffix
      }
    }
  }

  /**
   * The model as loaded, with every initialiser that is a parameter or buffer
   * holding its current value (in the initialiser's own data type, as
   * raw_data); every other byte of the file is kept.
   */
  serialize(): Uint8Array {
    if (endianness() !== 'LE') throw new OnnxError(this.source, 'ONNX raw data is little-endian; this host is big-endian');
    const state = this.stateDict();
    const data = new Map<string, Uint8Array>();
    for (const [name, stateName] of this.stateNames) {
      const t = state.get(stateName) as Tensor;
      const { dtype, dims } = this.layouts.get(name) as { dtype: DType; dims: number[] };
      if (t.shape.length !== dims.length || t.shape.some((d, k) => d !== dims[k])) {
        throw new OnnxError(this.source, `cannot write back '${stateName}': its shape [${t.shape}] is not the initialiser's [${dims}]`);
      }
      data.set(name, scope(() => (t.dtype === dtype ? t : t.to(dtype)).rawBytes()));
    }
    try {
      return replaceInitializers(this.encoded, data);
    } catch (e) {
      throw new OnnxError(this.source, `cannot write the model back: ${(e as Error).message}`, { cause: e });
    }
  }

  private isState(t: Tensor): boolean {
    return !this.constants.includes(t);
  }

  // The parameter tree is one child named 'params'; state dicts are read from it so names carry no prefix.
  override stateDict(prefix = ''): Map<string, Tensor> {
    return this.root.stateDict(prefix);
  }

  override namedParameters(prefix = ''): [string, Tensor][] {
    return this.root.namedParameters(prefix);
  }

  override namedBuffers(prefix = ''): [string, Tensor][] {
    return this.root.namedBuffers(prefix);
  }

  /** The logits: the graph's first output. */
  forward(x: Tensor): Tensor {
    return this.run(x, 1)[0] as Tensor;
  }

  /** Every declared output, in order. */
  forwardAll(x: Tensor): Tensor[] {
    return this.run(x, this.outputRefs.length);
  }

  private run(x: Tensor, wanted: number): Tensor[] {
    this.checkInput(x);
    const values = new Array<Tensor | undefined>(this.slotCount);
    values[0] = x;
    const state: RunState = { training: this.training, dropoutGenerator: this.dropoutGenerator };
    // A kernel may return one of its inputs (Identity, Dropout in eval): count the slots holding each tensor.
    const holders = new Map<Tensor, number>();
    const hold = (t: Tensor): void => void holders.set(t, (holders.get(t) ?? 0) + 1);
    const release = (t: Tensor | undefined): void => {
      if (!t) return;
      const n = (holders.get(t) ?? 1) - 1;
      if (n > 0) {
        holders.set(t, n);
        return;
      }
      holders.delete(t);
      if (t !== x && !this.owned.has(t)) t.dispose();
    };
    hold(x);
    try {
      for (const step of this.steps) {
        const ins = step.inputs.map((r) => (r === null ? undefined : r.kind === 'const' ? r.tensor : values[r.index]));
        let outs: Tensor[];
        try {
          outs = step.kernel(ins, state);
        } catch (e) {
          throw new Error(`onnx ${this.source}: ${step.label}: ${(e as Error).message}`, { cause: e });
        }
        step.outputs.forEach((slot, k) => {
          const t = outs[k];
          if (slot < 0 || !t) return;
          values[slot] = t;
          hold(t);
        });
        // Outputs nobody reads (a Split's unused part) go at once, unless they alias a live value.
        outs.forEach((t, k) => {
          if ((step.outputs[k] ?? -1) < 0 && !holders.has(t) && !ins.includes(t) && t !== x && !this.owned.has(t)) t.dispose();
        });
        for (const slot of step.frees) {
          release(values[slot]);
          values[slot] = undefined;
        }
      }
    } catch (e) {
      for (const t of new Set(values)) if (t && t !== x && !this.owned.has(t)) t.dispose();
      throw e;
    }
    const all = this.outputRefs.map((r) => (r.kind === 'const' ? r.tensor : (values[r.index] as Tensor)));
    const results: Tensor[] = [];
    for (const t of all.slice(0, wanted)) {
      // A returned tensor belongs to the caller: never hand out a parameter, a constant, the input, or one tensor twice.
      results.push(t === x || this.owned.has(t) || results.includes(t) ? t.reshape(t.shape) : t);
    }
    for (const t of new Set(all.slice(wanted))) {
      if (!results.includes(t) && t !== x && !this.owned.has(t)) t.dispose();
    }
    return results;
  }

  private checkInput(x: Tensor): void {
    const s = x.shape;
    const want = this.inputShape;
    const bad = want.length !== 0 && (s.length !== want.length || want.some((d, k) => k > 0 && d !== null && d !== s[k]));
    if (bad) {
      throw new Error(`onnx ${this.source}: input '${this.inputName}' must have shape [${want.map((d, k) => (k === 0 || d === null ? 'N' : d))}], got [${s}]`);
    }
  }

  /** Frees the parameters, buffers and constants; the module cannot be used afterwards. */
  override dispose(): void {
    super.dispose();
    for (const t of this.constants) t.dispose();
  }
}

/** Loads an .onnx file as a module (see {@link OnnxModule}); every problem is an {@link OnnxError} naming the file. */
export function loadOnnxModel(path: string, opts: OnnxLoadOptions = {}): OnnxModule {
  return new OnnxModule(readModelFile(path, opts.maxBytes), path);
}

/** Loads an ONNX model from its bytes (kept, not copied, for writing back); `source` names it in errors. */
export function loadOnnxModelFromBytes(bytes: Uint8Array, source = '<buffer>'): OnnxModule {
  return new OnnxModule(decodeModel(bytes, source), source);
}


/** The bytes of the model with its current weights (see {@link OnnxModule.serialize}). */
export function serializeOnnx(module: OnnxModule): Uint8Array {
  return module.serialize();
}

/** Writes the model with its current weights to `path` (atomically), every other part of the original file unchanged. */
export function saveOnnx(module: OnnxModule, path: string): void {
  writeFileAtomicSync(path, module.serialize());
}
