/**
 * Module: the base of every layer and model. Parameters, buffers and child
 * modules are registered by name, so state dicts carry PyTorch's names
 * ("layer1.0.conv1.weight", "bn1.running_mean", ...) and layouts.
 */
import { type DType, type Generator, type MemoryFormat, Tensor, isFloating, noGrad } from '../engine/index.js';

/** A state dict: dotted names to tensors, as PyTorch's `state_dict()`. */
export type StateDict = Map<string, Tensor>;

export abstract class Module {
  /** Training mode (batch norm uses batch statistics, dropout is active). */
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Computes the module's output. */
  abstract forward(x: Tensor): Tensor;

  /** Registers a trainable tensor; it is kept out of scopes and requires gradients. */
  protected registerParameter(name: string, value: Tensor): Tensor {
    this.checkName(name);
    value.keep().requiresGrad_(true);
    this.params.set(name, value);
    return value;
  }

  /** Registers state that is saved but not trained (batch-norm running statistics). */
  protected registerBuffer(name: string, value: Tensor): Tensor {
    this.checkName(name);
    value.keep();
    this.buffers.set(name, value);
    return value;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    this.children.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`module member name '${name}' must be non-empty and contain no '.'`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`module member '${name}' is registered twice`);
    }
  }

  /** Direct children, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** Every parameter of this module and its descendants, with dotted names. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.buffers) out.push([prefix + n, b]);
    for (const [n, m] of this.children) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Every module in the tree, this one first. */
  modules(): Module[] {
    return [this, ...[...this.children.values()].flatMap((m) => m.modules())];
  }

  /**
   * Parameters and buffers by name, in PyTorch's order (each module's own
   * parameters, then its buffers, then its children). The tensors are the
   * module's own: read them, do not dispose them.
   */
  stateDict(prefix = ''): StateDict {
    const out: StateDict = new Map();
    for (const [n, p] of this.params) out.set(prefix + n, p);
    for (const [n, b] of this.buffers) out.set(prefix + n, b);
    for (const [n, m] of this.children) for (const [k, v] of m.stateDict(`${prefix}${n}.`)) out.set(k, v);
    return out;
  }

  /**
   * Copies values into this module's parameters and buffers. With `strict`
   * (the default) names must match exactly; shapes must always match. Values
   * are converted to each destination's dtype and memory format.
   */
  loadStateDict(dict: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): void {
    const source = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !source.has(k));
    const unexpected = [...source.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    if ((opts.strict ?? true) && (missing.length || unexpected.length)) {
      if (missing.length) problems.push(`missing: ${missing.join(', ')}`);
      if (unexpected.length) problems.push(`unexpected: ${unexpected.join(', ')}`);
    }
    for (const [k, dst] of own) {
      const src = source.get(k);
      if (src && src.shape.join(',') !== dst.shape.join(',')) {
        problems.push(`${k}: shape [${src.shape}] does not match the module's [${dst.shape}]`);
      }
    }
    if (problems.length) throw new Error(`loadStateDict: ${problems.join('; ')}`);
    noGrad(() => {
      for (const [k, dst] of own) {
        const src = source.get(k);
        if (src) dst.copy_(src);
      }
    });
  }

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /**
   * The stream dropout masks are drawn from in training mode; undefined draws
   * from libtorch's global generator, which nothing seeds per run.
   */
  dropoutGenerator: Generator | undefined = undefined;

  /**
   * Makes this module and every descendant draw dropout masks from
   * `generator` (a training run passes its own seeded stream, so the same
   * seed gives the same masks); undefined goes back to the global generator.
   */
  setDropoutGenerator(generator: Generator | undefined): this {
    for (const m of this.modules()) m.dropoutGenerator = generator;
    return this;
  }

  /** Inference mode: batch norm uses running statistics, dropout is off. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Stores every 4-D parameter in the given memory format. Convolutions on
   * channels-last data and weights run 10-25% faster on CPU (oneDNN).
   */
  toMemoryFormat(format: MemoryFormat): this {
    noGrad(() => {
      for (const p of this.parameters()) {
        if (p.rank !== 4) continue;
        // Exact strides even for one input channel: the weight's layout decides the convolution's output layout.
        const converted = p.copyInFormat(format);
        p.setData(converted);
        converted.dispose();
      }
    });
    return this;
  }

  /**
   * Converts every floating-point parameter and buffer to `dtype` in place
   * (PyTorch's module.to(dtype)); integer buffers such as num_batches_tracked stay.
   */
  toDtype(dtype: DType): this {
    if (!isFloating(dtype)) throw new Error(`toDtype: ${dtype} is not a floating-point dtype`);
    noGrad(() => {
      for (const [, t] of this.stateDict()) {
        if (!isFloating(t.dtype) || t.dtype === dtype) continue;
        const converted = t.to(dtype);
        t.setData(converted);
        converted.dispose();
      }
    });
    return this;
  }

  /** Clears every parameter's gradient (set to none, as PyTorch 2 does by default). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Frees every parameter and buffer; the module cannot be used afterwards. */
  dispose(): void {
    for (const m of this.modules()) m.releaseCaches();
    for (const [, t] of this.stateDict()) t.dispose();
  }

  /** Frees tensors a module derived from its parameters (batch norm's folded filters). */
  protected releaseCaches(): void {}
}

/**
 * Applies `f` to `t` and frees `t` at once, unless `f` returned it. Model
 * code chains layers with it so each activation is freed at its last use,
 * which keeps the working set in cache (autograd keeps what backward needs).
 */
export function consume(t: Tensor, f: (t: Tensor) => Tensor): Tensor {
  const out = f(t);
  if (out !== t) t.dispose();
  return out;
}
